//! A small hand-written dump shared by the tests.

#![allow(dead_code)]

/// A process section.
pub fn proc(pid: &str, name: &str, queue: u64, memory: u64, pc: &str) -> String {
    let name_line = if name.is_empty() {
        String::new()
    } else {
        format!("Name: {name}\n")
    };
    format!(
        "=proc:{pid}\nState: Waiting\n{name_line}Spawned as: erlang:apply/2\nMessage queue length: {queue}\n\
         Reductions: 100\nStack+heap: {}\nOldHeap: {}\nMemory: {memory}\n\
         Program counter: 0x00007f2eab217898 ({pc} + 88)\narity = 0\n",
        memory / 16,
        memory / 32
    )
}

/// A complete dump: a big mailbox, a few processes, ports, ETS, a binary
/// whose line is `bin_len` bytes long, modules.
pub fn dump(bin_len: usize) -> String {
    let mut d = String::from(
        "=erl_crash_dump:0.5\nTue Dec  1 23:38:16 2026\nSlogan: test slogan\n\
         System version: Erlang/OTP 25 [erts-13.1.5]\nTaints: \nAtoms: 8638\nCalling Thread: scheduler:1\n\
         =scheduler:1\nScheduler Sleep Info Flags: \nCurrent Process: <0.9.0>\n\
         =memory\ntotal: 19789344\nprocesses: 8985680\nprocesses_used: 8980440\nsystem: 10803664\n\
         atom: 270505\natom_used: 240714\nbinary: 436328\ncode: 4675110\nets: 1071504\n\
         =hash_table:atom_tab\nsize: 8192\n=index_table:atom_tab\nsize: 9216\nlimit: 1048576\nentries: 8638\n\
         =allocated_areas\nsys_misc: 58000\nprocess_table: 3145728\nport_table: 786432\n\
         =allocator:eheap_alloc[0]\nversions: 0.9 3.0\noption e: true\nmbcs blocks[eheap_alloc] size: 1000 2000 2000\n\
         mbcs carriers size: 4096 4096 4096\nsbcs blocks[eheap_alloc] size: 500 500 500\nsbcs carriers size: 8192 8192 8192\n\
         =allocator:eheap_alloc[1]\nmbcs carriers size: 4096 4096 4096\nmbcs blocks[binary_alloc] size: 10 0 0\n",
    );
    d += &proc("<0.0.0>", "init", 0, 5920, "init:boot_loop/2");
    d += &proc("<0.42.0>", "logger", 3, 11_000, "gen_server:loop/7");
    d += &proc(
        "<0.79.0>",
        "bigbox",
        20_000,
        3_858_496,
        "prim_eval:receive/2",
    );
    d += &proc("<0.80.0>", "", 150, 9_000, "my_server:loop/1");
    d += "=port:#Port<0.3>\nState: CONNECTED\nSlot: 24\nConnected: <0.63.0>\nPort is UNIX fd not opened by emulator: 2/2\nInput: 0\n\
          =port:#Port<0.5>\nState: CONNECTED\nPort controls linked-in driver: tcp_inet\nPort Data: inet_tcp\n\
          =port:#Port<0.6>\nPort controls linked-in driver: udp_inet\n\
          =ets:<0.42.0>\nSlot: 1\nTable: logger\nName: logger\nBuckets: 256\nObjects: 3\nWords: 3593\nType: set\nProtection: protected\n\
          =ets:<0.9.0>\nTable: #Ref<0.1.2.3>\nName: t\nObjects: 10000\nWords: 80807\nType: set\n\
          =node:'nonode@nohost'\n=no_distribution\n=loaded_modules\nCurrent code: 4328072\nOld code: 0\n\
          =mod:init\nCurrent size: 72832\n=mod:lists\nCurrent size: 107520\n\
          =proc_messages:<0.79.0>\nH7F2EA99B6070:N\nH7F2EA99B6088:N\n";
    d += &format!("=binary:7F2EA97201C0\n{:X}:", bin_len * 3 / 4);
    d += &"AQEB".repeat(bin_len / 4);
    d += "\n=binary:55C3CD2741C0\n118:UD1zcGF3bihmdW4oKS0+\n=atoms\n'-eval/5-fun-3-'\nfoo\n=end\n";
    d
}
