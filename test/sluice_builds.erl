%% Builds of an application's NIF library for the upgrade tests, and
%% installing one as a new copy of the application.
%%
%% `default' is the library the application was built with;
%% `layout_b' is the same sources built with the cargo feature `layout_b',
%% which lays every resource kind out differently (and fingerprints it
%% differently), so loading one over the other converts every live object.
%% Each install is a new directory `<App>-<Vsn>' (beams and library), so the
%% VM opens a new copy of the library rather than the one it has loaded.
-module(sluice_builds).

-export([root/0, library/3, install/4, restore/2, in_process/1, settled/1, settled/2,
         reaches/3]).

-type build() :: default | layout_b.
-export_type([build/0]).

%% The repository's root: the first directory above the application's
%% build directory that holds the cargo workspace.
-spec root() -> file:filename().
root() ->
    up(code:lib_dir(sluice)).

up("/") -> error(no_workspace_root);
up(Dir) ->
    case filelib:is_regular(filename:join(Dir, "Cargo.lock")) of
        true -> Dir;
        false -> up(filename:dirname(Dir))
    end.

%% The path of library `Lib' (`"sluice_nif"') of `App' in build `Build',
%% made first if it is missing (a layout_b build takes a minute or two).
-spec library(atom(), string(), build()) -> file:filename().
library(App, Lib, default) ->
    filename:join([code:lib_dir(App), "priv", Lib ++ ".so"]);
library(_App, Lib, layout_b) ->
    Root = root(),
    Target = filename:join([Root, "target", "features-layout_b"]),
    Path = filename:join([Target, "release", "lib" ++ Lib ++ ".so"]),
    Cmd = lists:flatten(
            io_lib:format(
              "cd '~ts' && cargo build --quiet --release --locked -p ~s "
              "--features ~s/layout_b --target-dir '~ts' 2>&1; echo \"rc=$?\"",
              [Root, Lib, Lib, Target])),
    Out = os:cmd(Cmd),
    case string:find(Out, "rc=0") of
        nomatch -> error({layout_b_build_failed, Lib, Out});
        _ -> Path
    end.

%% Installs a copy of `App' (its beams, and every library of its `priv' in
%% build `Build') as version `Vsn' under `Dir', and points the code path at
%% it. Returns the copy's directory. Loading the NIF module then loads the
%% copy's library.
-spec install(atom(), file:filename(), string(), build()) -> file:filename().
install(App, Dir, Vsn, Build) ->
    Name = atom_to_list(App),
    Copy = filename:join(Dir, Name ++ "-" ++ Vsn),
    [ok = filelib:ensure_dir(filename:join([Copy, Sub, "x"])) || Sub <- ["ebin", "priv"]],
    From = code:lib_dir(App),
    [{ok, _} = file:copy(F, filename:join([Copy, "ebin", filename:basename(F)]))
     || F <- filelib:wildcard(filename:join([From, "ebin", "*"]))],
    [begin
         Lib = filename:basename(So, ".so"),
         {ok, _} = file:copy(library(App, Lib, Build), filename:join([Copy, "priv", Lib ++ ".so"]))
     end || So <- filelib:wildcard(filename:join([From, "priv", "*.so"]))],
    true = code:replace_path(App, filename:join(Copy, "ebin")),
    Copy.

%% Points `App' back at its own `Ebin' (as it was before `install/4') and
%% loads `Mods' (its NIF modules) from there, purging the copy's code.
-spec restore({atom(), file:filename()}, [module()]) -> ok.
restore({App, Ebin}, Mods) ->
    true = code:replace_path(App, Ebin),
    [begin
         {module, M} = code:load_file(M),
         _ = code:purge(M)
     end || M <- Mods],
    ok.

%% Runs `Fun' in a process of its own, so that nothing it held stays
%% referenced from the test process; returns its result.
-spec in_process(fun(() -> T)) -> T.
in_process(Fun) ->
    {Pid, Ref} = spawn_monitor(fun() -> exit({done, Fun()}) end),
    receive
        {'DOWN', Ref, process, Pid, {done, Result}} -> Result;
        {'DOWN', Ref, process, Pid, Reason} -> ct:fail(Reason)
    end.

%% `Count()' (a live count) once garbage collection everywhere frees
%% nothing more: two equal looks 20 ms apart; fails after 100 looks.
-spec settled(fun(() -> integer())) -> integer().
settled(Count) -> settled(Count, 20).

%% As `settled/1', with looks `Gap' ms apart.
-spec settled(fun(() -> integer()), pos_integer()) -> integer().
settled(Count, Gap) -> settled(Count, Gap, -1, 100).

settled(Count, Gap, Last, Tries) ->
    _ = [erlang:garbage_collect(P) || P <- processes()],
    timer:sleep(Gap),
    case Count() of
        Last -> Last;
        Now when Tries > 0 -> settled(Count, Gap, Now, Tries - 1);
        Now -> ct:fail({never_settled, Now})
    end.

%% Collects garbage everywhere until `Count()' is `Want', at most `Tries'
%% times 20 ms; returns the last count seen.
-spec reaches(fun(() -> integer()), integer(), non_neg_integer()) -> integer().
reaches(Count, Want, Tries) ->
    _ = [erlang:garbage_collect(P) || P <- processes()],
    case Count() of
        Want -> Want;
        _ when Tries > 0 -> timer:sleep(20), reaches(Count, Want, Tries - 1);
        Other -> Other
    end.
