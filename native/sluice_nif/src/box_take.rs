//! Copying messages out of a box into the caller's env: the batches of
//! `box_take/2`, `box_arm/2` and a post's delivery to an owner armed
//! `active` (the loop is `sluice_core::batch`; here are its terms), and the
//! dirty jobs that copy large messages (see `boxes`).

use rustler::sys::{
    c_int, c_uint, enif_get_uint64, enif_make_copy, enif_make_list_from_array,
    enif_make_tuple_from_array, enif_make_uint64, enif_schedule_nif, ErlNifEnv, ErlNifTerm,
    ERL_NIF_DIRTY_JOB_CPU_BOUND,
};
use rustler::{Encoder, Env, Term};
use sluice_core::batch::{Batch, Budget, Request};

use crate::atoms;
use crate::boxes::{get, Envs, State, TAKE_BUDGET, TAKE_CAP, TAKE_STRIDE};
use nif_glue::clock::now;
use nif_glue::raw::{Fail, RawResult};
use nif_glue::versioned::Held;

/// Sends the owner the batch a post owes it when the box was armed
/// `active` (`{mail, Box, Msgs, Count, Dropped}`, with `earlier` more
/// drops), or, if the owner is dead, puts it back into the box for the
/// heir (or the next owner) to take. Not `dirty`: when the first message
/// is large, nothing is taken and the drops to report are answered, for
/// a dirty job to deliver (see [`deliver_job`]).
pub(crate) fn deliver<'a>(
    env: Env<'a>,
    sbox: &Held<'_, State>,
    handle: Term<'a>,
    dirty: bool,
    earlier: u64,
) -> Result<(), u64> {
    let req = Request {
        max: TAKE_CAP,
        large: dirty,
        keep: true,
        dropped: earlier,
    };
    let batch = take_batch(env, sbox, req);
    if batch.wants_large() {
        return Err(batch.dropped);
    }
    if env
        .send(&sbox.owner(), mail_term(env, handle, &batch))
        .is_err()
    {
        let dropped = batch.dropped;
        sbox.store()
            .give_back(&mut Envs, batch.into_back(), dropped, now());
    }
    Ok(())
}

/// Runs `job` with `args` (terms of `env`) as the rest of the current NIF
/// call, on a dirty CPU scheduler: the copy of a large message.
///
/// # Safety
/// `env` must be the env of the NIF call being run, and its answer must be
/// what that call returns.
pub(crate) unsafe fn reschedule(
    env: *mut ErlNifEnv,
    name: &std::ffi::CStr,
    job: unsafe extern "C" fn(*mut ErlNifEnv, c_int, *const ErlNifTerm) -> ErlNifTerm,
    args: &[ErlNifTerm],
) -> ErlNifTerm {
    // SAFETY: as the contract says; `args` are at most a few terms of `env`,
    // which the VM copies before this call returns.
    unsafe {
        enif_schedule_nif(
            env,
            name.as_ptr(),
            ERL_NIF_DIRTY_JOB_CPU_BOUND as c_int,
            job,
            args.len() as c_int,
            args.as_ptr(),
        )
    }
}

/// An unsigned integer term of `env`.
pub(crate) fn uint(env: Env<'_>, n: u64) -> ErlNifTerm {
    // SAFETY: `env` is a live env of this call.
    unsafe { enif_make_uint64(env.as_c_arg(), n) }
}

/// Reads argument `i` of a job as an unsigned integer.
fn uint_arg(env: *mut ErlNifEnv, args: &[ErlNifTerm], i: usize) -> Result<u64, Fail> {
    let arg = *args.get(i).ok_or(Fail::BadArg)?;
    let mut n: u64 = 0;
    // SAFETY: `env` and the argument are this call's.
    if unsafe { enif_get_uint64(env, arg, &mut n) } == 0 {
        return Err(Fail::BadArg);
    }
    Ok(n)
}

/// The body of a dirty job, as [`raw_nif!`] runs a raw NIF.
///
/// # Safety
/// `argv` must hold `argc` valid terms of `env`, the env of the call.
unsafe fn run_job(
    env: *mut ErlNifEnv,
    argc: c_int,
    argv: *const ErlNifTerm,
    body: fn(*mut ErlNifEnv, &[ErlNifTerm]) -> RawResult,
) -> ErlNifTerm {
    // SAFETY: the VM passes the `argc` terms given to `enif_schedule_nif`.
    let args = unsafe { std::slice::from_raw_parts(argv, usize::try_from(argc).unwrap_or(0)) };
    // SAFETY: `env` is this call's env.
    unsafe { nif_glue::raw::run(env, || body(env, args)) }
}

/// The delivery of a post whose batch starts with a large message, on a
/// dirty CPU scheduler: `[Handle, Answer, Dropped]`; answers the post's
/// `Answer`.
pub(crate) unsafe extern "C" fn deliver_job(
    env: *mut ErlNifEnv,
    argc: c_int,
    argv: *const ErlNifTerm,
) -> ErlNifTerm {
    fn body(env: *mut ErlNifEnv, args: &[ErlNifTerm]) -> RawResult {
        let handle = *args.first().ok_or(Fail::BadArg)?;
        let answer = *args.get(1).ok_or(Fail::BadArg)?;
        // SAFETY: the handle is this call's argument.
        let sbox = unsafe { get(env, handle) }.ok_or(Fail::BadArg)?;
        let dropped = uint_arg(env, args, 2)?;
        let lifetime = ();
        // SAFETY: `env` is this call's env, valid while `lifetime` lives.
        let env = unsafe { Env::new(&lifetime, env) };
        // SAFETY: as above.
        let handle = unsafe { Term::new(env, handle) };
        let _ = deliver(env, &sbox, handle, true, dropped);
        Ok(answer)
    }
    // SAFETY: the VM calls a job with its env and the arguments scheduled.
    unsafe { run_job(env, argc, argv, body) }
}

/// A take's (or an arming's) copy-out whose first message is large, on a
/// dirty CPU scheduler: `[Handle, N, Dropped]`; answers `{Msgs, Count,
/// Dropped}` as `box_take/2` does.
unsafe extern "C" fn take_job(
    env: *mut ErlNifEnv,
    argc: c_int,
    argv: *const ErlNifTerm,
) -> ErlNifTerm {
    fn body(env: *mut ErlNifEnv, args: &[ErlNifTerm]) -> RawResult {
        let handle = *args.first().ok_or(Fail::BadArg)?;
        // SAFETY: the handle is this call's argument.
        let sbox = unsafe { get(env, handle) }.ok_or(Fail::BadArg)?;
        let n = uint_arg(env, args, 1)?;
        let dropped = uint_arg(env, args, 2)?;
        let lifetime = ();
        // SAFETY: `env` is this call's env, valid while `lifetime` lives.
        let env = unsafe { Env::new(&lifetime, env) };
        let req = Request {
            max: usize::try_from(n).unwrap_or(TAKE_CAP),
            large: true,
            keep: false,
            dropped,
        };
        Ok(batch_term(env, &take_batch(env, &sbox, req)).as_c_arg())
    }
    // SAFETY: the VM calls a job with its env and the arguments scheduled.
    unsafe { run_job(env, argc, argv, body) }
}

/// The answer of a take or an arming `active` (`{Msgs, Count, Dropped}`)
/// for up to `n` messages: taken here, or, when the first message is
/// large, by [`take_job`] on a dirty CPU scheduler.
pub(crate) fn take_answer<'a>(
    env: Env<'a>,
    handle: Term<'a>,
    sbox: &Held<'_, State>,
    n: usize,
) -> Term<'a> {
    let req = Request {
        max: n,
        large: false,
        keep: false,
        dropped: 0,
    };
    let batch = take_batch(env, sbox, req);
    if batch.wants_large() {
        let job = [
            handle.as_c_arg(),
            uint(env, n as u64),
            uint(env, batch.dropped),
        ];
        // SAFETY: `env` is this call's and its answer is returned; the
        // job's terms are of `env`.
        return unsafe { Term::new(env, reschedule(env.as_c_arg(), c"box_take", take_job, &job)) };
    }
    batch_term(env, &batch)
}

/// How much one copy-out does on the caller's scheduler (see `boxes`).
const TAKE: Budget = Budget {
    cap: TAKE_CAP,
    stride: TAKE_STRIDE,
    time: TAKE_BUDGET.as_nanos() as u64,
};

/// Takes a batch into `env` as `req` asks, within [`TAKE`] (see
/// `sluice_core::batch`): each message is copied into `env` while the box
/// is unlocked, so producers are not held up by the copying.
fn take_batch(env: Env<'_>, sbox: &Held<'_, State>, req: Request) -> Batch<ErlNifTerm> {
    let raw = env.as_c_arg();
    // SAFETY: `raw` is this call's env; the core copies each message while
    // its storage is pinned (until it is given back).
    let copy = |item| unsafe { enif_make_copy(raw, item) };
    TAKE.take(sbox.store(), &mut Envs, req, now, copy)
}

/// The messages of `batch` as a list of `env`.
fn list<'a>(env: Env<'a>, batch: &Batch<ErlNifTerm>) -> Term<'a> {
    let msgs = &batch.copies;
    // SAFETY: every element is a term of `env`; the count fits (at most
    // TAKE_CAP).
    unsafe {
        let list = enif_make_list_from_array(env.as_c_arg(), msgs.as_ptr(), msgs.len() as c_uint);
        Term::new(env, list)
    }
}

/// `{Msgs, Count, Dropped}`.
fn batch_term<'a>(env: Env<'a>, batch: &Batch<ErlNifTerm>) -> Term<'a> {
    (list(env, batch), batch.copies.len(), batch.dropped).encode(env)
}

/// `{mail, Box, Msgs, Count, Dropped}`.
fn mail_term<'a>(env: Env<'a>, handle: Term<'a>, batch: &Batch<ErlNifTerm>) -> Term<'a> {
    let elems = [
        atoms::mail().as_c_arg(),
        handle.as_c_arg(),
        list(env, batch).as_c_arg(),
        batch.copies.len().encode(env).as_c_arg(),
        batch.dropped.encode(env).as_c_arg(),
    ];
    // SAFETY: every element is a term of `env`.
    unsafe {
        Term::new(
            env,
            enif_make_tuple_from_array(env.as_c_arg(), elems.as_ptr(), 5),
        )
    }
}
