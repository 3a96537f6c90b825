//! NIFs of `sluice_box`: bounded buffers whose messages are stored in
//! chunks of process-independent envs (see `sluice_core::mailbox`).
//!
//! A box handle is the Erlang record `{sluice_box, Ref, Sized}`; `Ref` is the
//! resource. A post locks the lane of its scheduler thread (see
//! `sluice_core::mailbox`); a take moves the lanes' messages out once per
//! stride of messages and copies them out while the box is unlocked. No
//! call holds a normal scheduler for long: a take hands out at most [`TAKE_CAP`] messages and
//! stops early once [`TAKE_BUDGET`] has elapsed (checked every
//! [`TAKE_STRIDE`] messages), and the Erlang side loops for more; a post
//! stores one message (copying it, like `ets:insert/2`); resize and close,
//! which may free a whole box, run on dirty schedulers.
//!
//! Large messages (over [`terms::WALK_BUDGET`] cells) are copied on dirty
//! CPU schedulers both ways: `box_post_dirty/2` stores them marked as large
//! (weight `LARGE`), and a copy-out on a normal scheduler (`box_take/2`,
//! `box_arm/2`, a post's delivery to an owner armed `active`) stops before
//! one; if it has copied nothing yet, the call goes on as a dirty job
//! (`take_job` and `deliver_job` in `box_take`, through
//! `enif_schedule_nif`), which
//! copies at most one large message per stride and reads the clock after
//! each, and answers what the NIF would have.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustler::sys::{
    c_int, enif_alloc_env, enif_clear_env, enif_free_env, enif_get_tuple, enif_get_uint64,
    enif_make_copy, ErlNifEnv, ErlNifTerm,
};
use rustler::{Atom, Encoder, Env, Error, LocalPid, NifResult, Term};
use sluice_core::buffer::{Buffer, Kind, Posted, Reason, Snapshot};
use sluice_core::chunks::Backend;
use sluice_core::mailbox::{Arm, Back, Layout, LARGE};

use crate::atoms;
use crate::box_take::{deliver, deliver_job, reschedule, take_answer, uint};
use crate::box_wire;
use crate::terms::{self, Size};
use crate::tool_ids::next_id;
use nif_glue::clock::{self, now};
use nif_glue::lane;
use nif_glue::map;
use nif_glue::raw::{Fail, RawResult};
use nif_glue::raw_nif;
use nif_glue::versioned::{Held, Payload, Versioned};

/// Live-object counter index of boxes.
pub const BOX_KIND: usize = 1;

/// Most messages one take hands out.
pub const TAKE_CAP: usize = 1000;
/// A take stops handing out messages once this much time has passed.
pub const TAKE_BUDGET: Duration = Duration::from_micros(500);
/// Messages handed out between two looks at the clock.
pub const TAKE_STRIDE: usize = 128;
/// How boxes are laid out: a lane per scheduler thread (up to 8; more
/// threads share), each owing at most 64 drops before it frees them, and
/// 128 messages per env.
pub(crate) const LAYOUT: Layout = Layout {
    lanes: 8,
    slack: 64,
    per_chunk: 128,
};

/// A box resource: its state behind the versioned wrapper, so boxes are
/// only taken over by a library built from the same sources by the same
/// compiler (see `docs/nif-upgrade.md`).
pub type SluiceBox = Versioned<State>;

/// What a box handle holds: a box of lanes or a buffer of time buckets.
pub(crate) type Store = dyn Buffer<Envs> + Send + Sync;

/// A box's state.
#[cfg(not(feature = "layout_b"))]
pub struct State {
    /// The box's number (see `tool_ids`), never reused.
    id: u64,
    store: Box<Store>,
    owner: Mutex<LocalPid>,
    /// The owner's pid term, read without locking by a take.
    owner_word: AtomicU64,
}

/// A box's state, laid out otherwise (the upgrade tests' build).
#[cfg(feature = "layout_b")]
pub struct State {
    owner_word: AtomicU64,
    store: Box<Store>,
    _marker: u64,
    owner: Mutex<LocalPid>,
    id: u64,
}

impl Drop for State {
    fn drop(&mut self) {
        // Nothing can be taking: a take holds a reference to the box.
        self.store.dispose(&mut Envs);
    }
}

// SAFETY: `box.v7` (`box.v7b` in the upgrade tests' build) names this
// layout of `State` and of the stores it holds; bumped with them. `WIRE`
// names the form of `box_wire::Wire`.
unsafe impl Payload for State {
    const NAME: &'static std::ffi::CStr = c"sluice_box.v1";
    const KIND: usize = BOX_KIND;
    #[cfg(not(feature = "layout_b"))]
    const LAYOUT: &'static str = "box.v7";
    #[cfg(feature = "layout_b")]
    const LAYOUT: &'static str = "box.v7b";
    const WIRE: u64 = box_wire::WIRE;
    type Wire = box_wire::Wire;
    fn export(&self) -> box_wire::Wire {
        box_wire::export(self)
    }
    fn import(wire: box_wire::Wire) -> Option<Self> {
        box_wire::import(wire)
    }
}

impl State {
    /// A box's state: its id, its store, its owner and the owner's pid term.
    pub(crate) fn new(id: u64, store: Box<Store>, owner: LocalPid, owner_word: u64) -> Self {
        State {
            #[cfg(feature = "layout_b")]
            _marker: 0xb0b0,
            id,
            store,
            owner: Mutex::new(owner),
            owner_word: AtomicU64::new(owner_word),
        }
    }

    /// The owner's pid term.
    pub(crate) fn owner_word(&self) -> u64 {
        self.owner_word.load(Ordering::Acquire)
    }

    /// Its id (see `tool_ids`).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn store(&self) -> &Store {
        &*self.store
    }

    pub(crate) fn owner(&self) -> LocalPid {
        *self.owner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn owned_by(&self, env: Env<'_>, pid: &LocalPid) -> bool {
        self.owner_word.load(Ordering::Acquire) == pid_word(env, pid)
    }

    fn set_owner(&self, env: Env<'_>, owner: LocalPid) {
        let mut slot = self.owner.lock().unwrap_or_else(PoisonError::into_inner);
        *slot = owner;
        self.owner_word
            .store(pid_word(env, &owner), Ordering::Release);
    }
}

/// A local pid's term: an immediate, the same word in every env.
fn pid_word(env: Env<'_>, pid: &LocalPid) -> u64 {
    let term = pid.encode(env).as_c_arg();
    // SAFETY: `ErlNifTerm` is a transparent wrapper of a machine word.
    unsafe { std::mem::transmute::<ErlNifTerm, usize>(term) as u64 }
}

/// Process-independent envs as chunk regions.
pub(crate) struct Envs;

/// One env holding up to `LAYOUT.per_chunk` copied terms. Never null:
/// `enif_alloc_env` initialises the env it allocates before returning it,
/// so it cannot hand back a failed allocation.
pub(crate) struct Region(*mut ErlNifEnv);

// SAFETY: a process-independent env may be used from any thread, one at a
// time: the box's locks see to that.
unsafe impl Send for Region {}

impl Backend for Envs {
    type Region = Region;
    type Item = ErlNifTerm;
    fn alloc(&mut self) -> Region {
        // SAFETY: allocating an env has no precondition.
        Region(unsafe { enif_alloc_env() })
    }
    fn copy_in(&mut self, region: &Region, item: ErlNifTerm) -> ErlNifTerm {
        // SAFETY: the region is a live env; `item` is a valid term of a live
        // env (the caller's, or another region's).
        unsafe { enif_make_copy(region.0, item) }
    }
    fn clear(&mut self, region: &Region) {
        // SAFETY: the region is a live env none of whose terms is used again.
        unsafe { enif_clear_env(region.0) }
    }
    fn free(&mut self, region: Region) {
        // SAFETY: as for `clear`; the region is not used after this.
        unsafe { enif_free_env(region.0) }
    }
}

/// The box behind a handle `{sluice_box, Ref, Sized}` of the calling env.
///
/// # Safety
/// `term` must belong to `env`; the reference must not outlive the call.
pub(crate) unsafe fn get<'a>(env: *mut ErlNifEnv, term: ErlNifTerm) -> Option<Held<'a, State>> {
    let mut arity: c_int = 0;
    let mut elems: *const ErlNifTerm = std::ptr::null();
    // SAFETY: `env` and `term` are the caller's (contract above).
    if unsafe { enif_get_tuple(env, term, &mut arity, &mut elems) } == 0 || arity != 3 {
        return None;
    }
    // SAFETY: the tuple has three elements.
    let (reference, sized) = unsafe { (*elems.add(1), *elems.add(2)) };
    // SAFETY: as above.
    let sbox = unsafe { SluiceBox::from_raw(env, reference) }?;
    // The handle's `Sized` must be the box's: a post passes sizes by it.
    let lifetime = ();
    // SAFETY: `env` is the caller's, valid while `lifetime` lives.
    let env = unsafe { Env::new(&lifetime, env) };
    let want = sbox.store().max_bytes().is_some().encode(env);
    // SAFETY: `sized` is a term of `env`.
    (unsafe { Term::new(env, sized) } == want).then_some(sbox)
}

fn handle<'a>(env: Env<'a>, term: Term<'a>) -> NifResult<Held<'a, State>> {
    // SAFETY: `term` is an argument of this call, valid while `env` is.
    unsafe { get(env.as_c_arg(), term.as_c_arg()) }.ok_or(Error::BadArg)
}

fn error(env: Env<'_>, why: Atom) -> Term<'_> {
    (atoms::error(), why).encode(env)
}

raw_nif!("box_post", 2, box_post2);
raw_nif!("box_post", 3, box_post3);

/// `box_post(Box, Msg)`: `ok`, `full` or `{error, closed}`; `large` for a
/// message over [`terms::WALK_BUDGET`] cells, not posted: the caller posts
/// it with `box_post_dirty/2`.
fn box_post2(env: *mut ErlNifEnv, args: &[ErlNifTerm]) -> RawResult {
    post(env, args, 0, false)
}

/// `box_post(Box, Msg, Bytes)`: as `box_post/2` for a box with a byte budget.
fn box_post3(env: *mut ErlNifEnv, args: &[ErlNifTerm]) -> RawResult {
    post(env, args, sized_arg(env, args)?, false)
}

fn sized_arg(env: *mut ErlNifEnv, args: &[ErlNifTerm]) -> Result<u64, Fail> {
    let [_, _, arg] = *args else {
        return Err(Fail::BadArg);
    };
    let mut bytes: u64 = 0;
    // SAFETY: `env` and the argument are this call's.
    if unsafe { enif_get_uint64(env, arg, &mut bytes) } == 0 {
        return Err(Fail::BadArg);
    }
    Ok(bytes)
}

/// `box_post_dirty(Box, Msg)`: `box_post/2` (or `box_post/3`) for a large
/// message, on a dirty scheduler: no size walk, and for a box with a byte
/// budget the message is measured here, by its encoded size (which
/// `erlang:external_size/1` would compute on the caller's scheduler).
#[rustler::nif(schedule = "DirtyCpu")]
fn box_post_dirty<'a>(env: Env<'a>, handle: Term<'a>, msg: Term<'a>) -> NifResult<Term<'a>> {
    let sbox = self::handle(env, handle)?;
    let bytes = if sbox.store().max_bytes().is_some() {
        // SAFETY: the message is this call's argument.
        unsafe { terms::encoded_size(env.as_c_arg(), msg.as_c_arg()) }.ok_or(Error::BadArg)?
    } else {
        0
    };
    let args = [handle.as_c_arg(), msg.as_c_arg()];
    let answer = post(env.as_c_arg(), &args, bytes, true).map_err(|_| Error::BadArg)?;
    // SAFETY: the answer is a term of this call's env.
    Ok(unsafe { Term::new(env, answer) })
}

/// `box_small(Msg)`: whether `Msg` is within [`terms::WALK_BUDGET`] cells,
/// so measuring and copying it holds the caller's scheduler only briefly.
#[rustler::nif]
fn box_small<'a>(env: Env<'a>, msg: Term<'a>) -> bool {
    // SAFETY: the message is this call's argument.
    let size = unsafe { terms::measure(env.as_c_arg(), msg.as_c_arg(), terms::WALK_BUDGET) };
    size != Size::Large
}

/// A post; `dirty`: on a dirty scheduler, where a large message may be
/// copied (it then settles the drops it causes at once, as a heavy message).
fn post(env: *mut ErlNifEnv, args: &[ErlNifTerm], bytes: u64, dirty: bool) -> RawResult {
    let [box_arg, msg, ..] = *args else {
        return Err(Fail::BadArg);
    };
    // SAFETY: the handle is this call's argument.
    let sbox = unsafe { get(env, box_arg) }.ok_or(Fail::BadArg)?;
    let weight = if dirty {
        LARGE
    } else {
        // SAFETY: the message is this call's argument.
        match unsafe { terms::measure(env, msg, terms::WALK_BUDGET) } {
            Size::Small { weight, .. } => weight,
            Size::Large => return Ok(atoms::large().as_c_arg()),
        }
    };
    let lifetime = ();
    // SAFETY: `env` is this call's env, valid while `lifetime` lives.
    let env = unsafe { Env::new(&lifetime, env) };
    let outcome = sbox
        .store()
        .post_weighed(&mut Envs, lane::current(), msg, bytes, weight, now());
    let (posted, wake) = match outcome {
        Ok(done) => done,
        Err(err) => {
            return Ok(error(env, atoms::buffer_error(err)).as_c_arg());
        }
    };
    let answer = match posted {
        Posted::Stored => atoms::ok(),
        Posted::Full => atoms::full(),
    }
    .as_c_arg();
    if wake != Arm::Off {
        // SAFETY: the handle is a term of this call's env.
        let handle = unsafe { Term::new(env, box_arg) };
        match wake {
            Arm::Active => {
                if let Err(dropped) = deliver(env, &sbox, handle, dirty, 0) {
                    // The first message is large: delivered on a dirty
                    // scheduler, which then answers the post.
                    let job = [box_arg, answer, uint(env, dropped)];
                    // SAFETY: `env` is this call's; the job's terms are of it.
                    return Ok(unsafe {
                        reschedule(env.as_c_arg(), c"box_post", deliver_job, &job)
                    });
                }
            }
            _ => {
                let mail = (atoms::mail(), handle, atoms::new_data()).encode(env);
                // A dead owner cannot be told; its heir is sent the box.
                let _ = env.send(&sbox.owner(), mail);
            }
        }
    }
    Ok(answer)
}

/// The box when it is open and the caller owns it.
fn owned<'b>(env: Env<'_>, sbox: &'b Held<'_, State>) -> Result<&'b Store, Atom> {
    if sbox.store().is_closed() {
        return Err(atoms::closed());
    }
    if !sbox.owned_by(env, &env.pid()) {
        return Err(atoms::not_owner());
    }
    Ok(sbox.store())
}

/// A new box of `store`, owned by `owner`, in the registry.
pub(crate) fn make(env: Env<'_>, store: Box<Store>, owner: LocalPid) -> Term<'_> {
    let id = next_id();
    let state = Arc::new(State::new(id, store, owner, pid_word(env, &owner)));
    SluiceBox::make(env, state)
}

/// Expires what is too old now (age limit, time buckets), as the next post
/// or take would: for the timer of drop notices. Bounded like a take: the
/// expired buckets are removed whole and freed a few pieces per call.
#[rustler::nif]
fn box_expire<'a>(env: Env<'a>, handle_term: Term<'a>) -> NifResult<Term<'a>> {
    let sbox = handle(env, handle_term)?;
    sbox.store().expire_now(&mut Envs, now());
    Ok(atoms::ok().encode(env))
}

/// Sets the manual clock of a box or a buffer of buckets, in ms (time
/// never goes back; a store on the system clock ignores it).
#[rustler::nif]
fn box_set_time<'a>(env: Env<'a>, handle_term: Term<'a>, ms: u64) -> NifResult<Term<'a>> {
    let sbox = handle(env, handle_term)?;
    sbox.store().set_time(ms.saturating_mul(clock::MS));
    Ok(atoms::ok().encode(env))
}

/// `{Msgs, Count, Dropped}`: up to `n` messages (at most [`TAKE_CAP`]), for the owner.
#[rustler::nif]
fn box_take<'a>(env: Env<'a>, handle_term: Term<'a>, n: u64) -> NifResult<Term<'a>> {
    let sbox = handle(env, handle_term)?;
    if n == 0 {
        return Err(Error::BadArg);
    }
    match owned(env, &sbox) {
        // An empty box is answered without locking it (nothing is reported
        // dropped either: the take that emptied it reported every drop).
        Ok(mailbox) if mailbox.is_empty() => {
            return Ok((Vec::<Term<'a>>::new(), 0, 0).encode(env));
        }
        Ok(_) => {}
        Err(why) => return Ok(error(env, why)),
    }
    let n = usize::try_from(n).unwrap_or(TAKE_CAP).min(TAKE_CAP);
    Ok(take_answer(env, handle_term, &sbox, n))
}

/// Arms the box for the owner (`notify` or `active`): `armed` when empty;
/// otherwise `new_data` (notify) or a batch `{Msgs, Count, Dropped}` (active).
#[rustler::nif]
fn box_arm<'a>(env: Env<'a>, handle_term: Term<'a>, mode: Atom) -> NifResult<Term<'a>> {
    let sbox = handle(env, handle_term)?;
    let arm = if mode == atoms::notify() {
        Arm::Notify
    } else if mode == atoms::active() {
        Arm::Active
    } else {
        return Err(Error::BadArg);
    };
    let mailbox = match owned(env, &sbox) {
        Ok(mailbox) => mailbox,
        Err(why) => return Ok(error(env, why)),
    };
    if mailbox.arm(arm) {
        return Ok(atoms::armed().encode(env));
    }
    Ok(match arm {
        Arm::Active => take_answer(env, handle_term, &sbox, TAKE_CAP),
        _ => atoms::new_data().encode(env),
    })
}

/// Puts back messages the owner's filter skipped (in delivery order), with
/// their sizes (`[]` for a box without a byte budget); `large` (nothing put
/// back) when one of them is over [`terms::WALK_BUDGET`] cells: the caller
/// puts them back with `box_restore_dirty/3`.
#[rustler::nif]
fn box_restore<'a>(
    env: Env<'a>,
    handle_term: Term<'a>,
    msgs: Vec<Term<'a>>,
    sizes: Vec<u64>,
) -> NifResult<Term<'a>> {
    restore(env, handle_term, msgs, sizes, false)
}

/// `box_restore/3` on a dirty scheduler, where large messages are copied.
#[rustler::nif(schedule = "DirtyCpu")]
fn box_restore_dirty<'a>(
    env: Env<'a>,
    handle_term: Term<'a>,
    msgs: Vec<Term<'a>>,
    sizes: Vec<u64>,
) -> NifResult<Term<'a>> {
    restore(env, handle_term, msgs, sizes, true)
}

fn restore<'a>(
    env: Env<'a>,
    handle_term: Term<'a>,
    msgs: Vec<Term<'a>>,
    sizes: Vec<u64>,
    dirty: bool,
) -> NifResult<Term<'a>> {
    let sbox = handle(env, handle_term)?;
    if !sizes.is_empty() && sizes.len() != msgs.len() {
        return Ok(error(env, atoms::sizes_mismatch()));
    }
    let mailbox = match owned(env, &sbox) {
        Ok(mailbox) => mailbox,
        Err(why) => return Ok(error(env, why)),
    };
    let mut items: Vec<Back<ErlNifTerm>> = Vec::with_capacity(msgs.len());
    for (i, m) in msgs.iter().enumerate() {
        // SAFETY: the message is a term of this call's argument.
        let size = unsafe { terms::measure(env.as_c_arg(), m.as_c_arg(), terms::WALK_BUDGET) };
        let large = size == Size::Large;
        if large && !dirty {
            return Ok(atoms::large().encode(env));
        }
        items.push((m.as_c_arg(), sizes.get(i).copied().unwrap_or(0), large));
    }
    match mailbox.restore(&mut Envs, items, now()) {
        Ok(()) => Ok(atoms::ok().encode(env)),
        Err(err) => Ok(error(env, atoms::buffer_error(err))),
    }
}

/// Counts `n` delivered messages as dropped by the owner's filter: `ok`,
/// or `{error, not_delivered}` when fewer were delivered.
#[rustler::nif]
fn box_filtered<'a>(env: Env<'a>, handle_term: Term<'a>, n: u64) -> NifResult<Term<'a>> {
    let sbox = handle(env, handle_term)?;
    let mailbox = match owned(env, &sbox) {
        Ok(mailbox) => mailbox,
        Err(why) => return Ok(error(env, why)),
    };
    match mailbox.filtered(n) {
        Ok(()) => Ok(atoms::ok().encode(env)),
        Err(err) => Ok(error(env, atoms::buffer_error(err))),
    }
}

/// Changes the bound (dropping per type when shrinking). Shrinking a large
/// box frees many messages: this runs on a dirty scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn box_resize<'a>(env: Env<'a>, handle_term: Term<'a>, max: u64) -> NifResult<Term<'a>> {
    let sbox = handle(env, handle_term)?;
    let max = usize::try_from(max).map_err(|_| Error::BadArg)?;
    match sbox.store().resize(&mut Envs, max) {
        Ok(()) => Ok(atoms::ok().encode(env)),
        Err(err) => Ok(error(env, atoms::buffer_error(err))),
    }
}

/// `{Size, Max}`.
#[rustler::nif]
fn box_usage<'a>(env: Env<'a>, handle_term: Term<'a>) -> NifResult<Term<'a>> {
    let sbox = handle(env, handle_term)?;
    let mailbox = sbox.store();
    Ok((mailbox.len(), mailbox.max()).encode(env))
}

/// `#{type, posted, delivered, dropped => #{overflow, resize, filter,
/// closed, expired, early}, size, max, peak, sojourn => #{p50, p99, max},
/// bytes, max_bytes, regions, owner, closed}`: sojourn times in
/// nanoseconds, `max_bytes` `infinity` when there is no byte budget.
#[rustler::nif]
fn box_info<'a>(env: Env<'a>, handle_term: Term<'a>) -> NifResult<Term<'a>> {
    let sbox = handle(env, handle_term)?;
    info(env, &sbox, &sbox.store().snapshot())
}

/// The map of [`box_info`] for `sbox`, from its `snap`shot.
pub(crate) fn info<'a>(env: Env<'a>, sbox: &State, snap: &Snapshot) -> NifResult<Term<'a>> {
    let m = sbox.store();
    let s = &snap.stats;
    let d = |r: Reason| s.dropped_by(r).encode(env);
    let dropped = map::of(
        env,
        &[
            (atoms::overflow(), d(Reason::Overflow)),
            (atoms::resize(), d(Reason::Resize)),
            (atoms::filter(), d(Reason::Filter)),
            (atoms::closed(), d(Reason::Closed)),
            (atoms::expired(), d(Reason::Expired)),
            (atoms::early(), d(Reason::Early)),
        ],
    )?;
    let h = &snap.sojourn;
    let sojourn = map::of(
        env,
        &[
            (atoms::p50(), h.percentile(50.0).encode(env)),
            (atoms::p99(), h.percentile(99.0).encode(env)),
            (atoms::max(), h.max().encode(env)),
        ],
    )?;
    let kind = match m.kind() {
        Some(Kind::Queue) => atoms::queue(),
        Some(Kind::Stack) => atoms::stack(),
        Some(Kind::KeepOld) => atoms::keep_old(),
        None => atoms::buckets(),
    };
    let max_bytes = match m.max_bytes() {
        Some(b) => b.encode(env),
        None => atoms::infinity().encode(env),
    };
    map::of(
        env,
        &[
            (atoms::type_(), kind.encode(env)),
            (atoms::posted(), s.posted.encode(env)),
            (atoms::delivered(), s.delivered.encode(env)),
            (atoms::dropped(), dropped),
            (atoms::size(), snap.len.encode(env)),
            (atoms::max(), snap.max.encode(env)),
            (atoms::peak(), s.peak.encode(env)),
            (atoms::sojourn(), sojourn),
            (atoms::bytes(), snap.bytes.encode(env)),
            (atoms::max_bytes(), max_bytes),
            (atoms::regions(), snap.regions.encode(env)),
            (atoms::owner(), sbox.owner().encode(env)),
            (atoms::closed(), m.is_closed().encode(env)),
        ],
    )
}

/// Makes `owner` the owner (the caller is trusted: the Erlang side checks).
/// Disarms the box: an arming belongs to the owner who asked.
#[rustler::nif]
fn box_set_owner<'a>(env: Env<'a>, handle_term: Term<'a>, owner: LocalPid) -> NifResult<Term<'a>> {
    let sbox = handle(env, handle_term)?;
    sbox.set_owner(env, owner);
    sbox.store().disarm();
    Ok(atoms::ok().encode(env))
}

/// Closes the box: held messages are dropped (`closed`) and freed, on a
/// dirty scheduler (a large box holds many storage regions).
#[rustler::nif(schedule = "DirtyCpu")]
fn box_close<'a>(env: Env<'a>, handle_term: Term<'a>) -> NifResult<Term<'a>> {
    let sbox = handle(env, handle_term)?;
    sbox.store().close(&mut Envs);
    Ok(atoms::ok().encode(env))
}

/// `box_id(Term)`: the box's id when `Term` is a box handle of this library
/// (open or closed) whose `Sized` flag is the box's, else `false`. Cheap:
/// the facade checks handles with it before any server sees them.
#[rustler::nif]
fn box_id<'a>(env: Env<'a>, term: Term<'a>) -> Term<'a> {
    // SAFETY: `term` is an argument of this call, valid while `env` is.
    match unsafe { get(env.as_c_arg(), term.as_c_arg()) } {
        Some(sbox) => sbox.id.encode(env),
        None => atoms::false_().encode(env),
    }
}

/// `box_close_id(Id)`: closes the box with id `Id` as `box_close/1` does:
/// `ok`, or `gone` when no such box is alive (nothing held a handle to it
/// any more, and it was freed). The kind's registry (`nif_glue::versioned`)
/// lists boxes without keeping them alive: this is how the warden closes
/// the box of a dead owner without holding a handle to it.
#[rustler::nif(schedule = "DirtyCpu")]
fn box_close_id(id: u64) -> Atom {
    let mut found = false;
    SluiceBox::each(|b| {
        if b.id == id {
            b.store.close(&mut Envs);
            found = true;
        }
        !found
    });
    if found {
        atoms::ok()
    } else {
        atoms::gone()
    }
}

/// `box_alive_ids(Ids)`: the ids of `Ids` whose box is still alive (held by
/// some handle), for the warden to forget the others. Bounded by the
/// caller (at most a few thousand ids a call).
#[rustler::nif]
fn box_alive_ids(ids: Vec<u64>) -> Vec<u64> {
    let mut live = std::collections::HashSet::with_capacity(ids.len());
    SluiceBox::each(|b| {
        live.insert(b.id);
        true
    });
    ids.into_iter().filter(|id| live.contains(id)).collect()
}
