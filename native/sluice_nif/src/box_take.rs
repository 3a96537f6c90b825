//! Copying messages out of a box into the caller's env: the batches of
//! `box_take/2`, `box_arm/2` and a post's delivery to an owner armed
//! `active`, and the dirty jobs that copy large messages (see `boxes`).

use std::time::Instant;

use rustler::sys::{
    c_int, c_uint, enif_get_uint64, enif_make_copy, enif_make_list_from_array,
    enif_make_tuple_from_array, enif_make_uint64, enif_schedule_nif, ErlNifEnv, ErlNifTerm,
    ERL_NIF_DIRTY_JOB_CPU_BOUND,
};
use rustler::{Encoder, Env, Term};
use sluice_core::mailbox::{Back, Taken};

use crate::atoms;
use crate::boxes::{get, Envs, SluiceBox, TAKE_BUDGET, TAKE_CAP, TAKE_STRIDE};
use nif_glue::clock::now;
use nif_glue::raw::{Fail, RawResult};

/// Sends the owner the batch a post owes it when the box was armed
/// `active` (`{mail, Box, Msgs, Count, Dropped}`, with `earlier` more
/// drops), or, if the owner is dead, puts it back into the box for the
/// heir (or the next owner) to take. Not `dirty`: when the first message
/// is large, nothing is taken and the drops to report are answered, for
/// a dirty job to deliver (see [`deliver_job`]).
pub(crate) fn deliver<'a>(
    env: Env<'a>,
    sbox: &SluiceBox,
    handle: Term<'a>,
    dirty: bool,
    earlier: u64,
) -> Result<(), u64> {
    let mut batch = take_batch(env, sbox, TAKE_CAP, true, dirty);
    batch.dropped += earlier;
    if batch.count == 0 && batch.stopped {
        return Err(batch.dropped);
    }
    let (items, dropped) = (std::mem::take(&mut batch.copies), batch.dropped);
    if env
        .send(&sbox.owner(), mail_term(env, handle, batch))
        .is_err()
    {
        sbox.store().give_back(&mut Envs, items, dropped, now());
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
        let _ = deliver(env, sbox, handle, true, dropped);
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
        let n = usize::try_from(n).unwrap_or(TAKE_CAP);
        let mut batch = take_batch(env, sbox, n, false, true);
        batch.dropped += dropped;
        Ok(batch_term(env, batch).as_c_arg())
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
    sbox: &SluiceBox,
    n: usize,
) -> Term<'a> {
    let batch = take_batch(env, sbox, n, false, false);
    if batch.count == 0 && batch.stopped {
        let job = [
            handle.as_c_arg(),
            uint(env, n as u64),
            uint(env, batch.dropped),
        ];
        // SAFETY: `env` is this call's and its answer is returned; the
        // job's terms are of `env`.
        return unsafe { Term::new(env, reschedule(env.as_c_arg(), c"box_take", take_job, &job)) };
    }
    batch_term(env, batch)
}

/// Messages copied out of a box: the list, its length, drops since the last delivery.
pub(crate) struct Batch<'a> {
    msgs: Term<'a>,
    count: usize,
    dropped: u64,
    /// The messages (terms of the call's env) with their sizes and large
    /// marks, in delivery order: to put back if they reach nobody.
    copies: Vec<Back<ErlNifTerm>>,
    /// Whether the take stopped before a large message (on a normal
    /// scheduler only).
    stopped: bool,
}

/// Takes up to `max` messages into `env`, within [`TAKE_BUDGET`]: in strides
/// of [`TAKE_STRIDE`], each removed under the box's locks and copied into
/// `env` after it is released (see `Mailbox::take`), so producers are not
/// held up by the copying. `keep`: also keep the messages with their sizes
/// in [`Batch::copies`] (for a delivery that may have to be put back).
///
/// A large message (posted by `box_post_dirty/2`) is only copied when
/// `dirty` (on a dirty scheduler), at most one per stride, the clock read
/// after each; otherwise the take stops before it ([`Batch::stopped`]).
pub(crate) fn take_batch<'a>(
    env: Env<'a>,
    sbox: &SluiceBox,
    max: usize,
    keep: bool,
    dirty: bool,
) -> Batch<'a> {
    let raw = env.as_c_arg();
    let max = max.min(TAKE_CAP);
    let start = Instant::now();
    let stamp = now();
    let mut msgs: Vec<ErlNifTerm> = Vec::with_capacity(max.min(sbox.store().len()));
    let mut sizes: Vec<(u64, bool)> = Vec::new();
    let mut dropped = 0;
    let mut copied: Vec<Taken<ErlNifTerm>> = Vec::new();
    let large_max = usize::from(dirty);
    let mut stopped;
    loop {
        let stride = (max - msgs.len()).min(TAKE_STRIDE);
        // One lock per stride: give back the previous stride, take this one.
        let (taken, fresh, before_large) = sbox
            .store()
            .take_limited(&mut Envs, &copied, stride, large_max, stamp);
        dropped += fresh;
        for t in &taken {
            // SAFETY: `raw` is this call's env; the message's storage is
            // pinned until it is given back.
            msgs.push(unsafe { enif_make_copy(raw, t.item()) });
            if keep {
                sizes.push((t.bytes(), t.large()));
            }
        }
        stopped = before_large && !dirty;
        let empty = taken.len() < stride && !before_large;
        let last = empty || stopped || msgs.len() >= max || start.elapsed() >= TAKE_BUDGET;
        copied = taken;
        if last {
            break;
        }
    }
    if !copied.is_empty() {
        let _ = sbox.store().take(&mut Envs, &copied, 0, stamp);
    }
    let count = msgs.len();
    // SAFETY: every element is a term of `raw`; `count` fits (at most TAKE_CAP).
    let list = unsafe { enif_make_list_from_array(raw, msgs.as_ptr(), count as c_uint) };
    Batch {
        // SAFETY: the list was just made in `env`.
        msgs: unsafe { Term::new(env, list) },
        count,
        dropped,
        copies: if keep {
            let items = msgs.into_iter().zip(sizes);
            items.map(|(m, (bytes, large))| (m, bytes, large)).collect()
        } else {
            Vec::new()
        },
        stopped,
    }
}

pub(crate) fn batch_term<'a>(env: Env<'a>, batch: Batch<'a>) -> Term<'a> {
    (batch.msgs, batch.count, batch.dropped).encode(env)
}

fn mail_term<'a>(env: Env<'a>, handle: Term<'a>, batch: Batch<'a>) -> Term<'a> {
    let elems = [
        atoms::mail().as_c_arg(),
        handle.as_c_arg(),
        batch.msgs.as_c_arg(),
        batch.count.encode(env).as_c_arg(),
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
