//! NIFs of `sluice_lock`: counter locks over `sluice_core::slots`, each slot
//! lending one resource term that its watcher process put there.
//!
//! A checkout is one call in the caller: a compare-and-swap claims a free
//! slot, and the slot's resource is copied into the caller's heap. The
//! lock monitors every process that ever held one of its loans, once (a
//! monitor costs microseconds, so it is kept, not made and dropped at every
//! loan; the set of such processes is sharded by pid). A checkin checks the
//! loan's generation and frees the slot. When a holder dies, the VM runs
//! the lock's `down` callback: the slots it held become empty (their
//! resources may be in a bad state) and their watchers get
//! `{sluice_lock, dead, Index}` to make them ready again.
//!
//! A death costs O(slots), whatever the number of processes ever
//! monitored: the dead pid names its shard of holders (one map removal),
//! and each slot keeps its holder's pid word in an atomic, so the slots it
//! held are found without taking a slot's lock (and none is taken when it
//! held none).
//!
//! A lock with no slot in use (`lock_resize(Lock, 0)`) is closed: a
//! checkout of it is answered `{error, closed}`; loans out still come back.
//!
//! `badarg` means a handle that is not a lock or an argument of the wrong
//! type; a slot index beyond the slots in use is `{error, no_slot}`, a size
//! beyond the capacity `{error, over_capacity}`.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rustler::sys::{
    enif_alloc_env, enif_binary_to_term, enif_clear_env, enif_compare_monitors, enif_free_env,
    enif_get_local_pid, enif_make_copy, enif_monitor_process, enif_release_binary, enif_self,
    enif_send, enif_term_to_binary, ErlNifBinary, ErlNifEnv, ErlNifMonitor, ErlNifPid, ErlNifTerm,
};
use rustler::{Encoder, Env, Error, NifResult, Term};
use serde::{Deserialize, Serialize};
use sluice_core::rng::thread_u64;
use sluice_core::slots::{Loan, Slots, SlotsImage, MAX_SLOTS};

use crate::atoms;
use crate::tool_ids::next_id;
use nif_glue::lane;
use nif_glue::map;
use nif_glue::versioned::{Held, Payload, Versioned};

/// Live-object counter index of locks.
pub const LOCK_KIND: usize = 2;

/// A lock resource: its state behind the versioned wrapper.
pub type SluiceLock = Versioned<LockState>;

/// Shards of the set of monitored holders.
const HOLDER_SHARDS: usize = 16;

/// Keeps what two cores write apart.
#[repr(align(128))]
struct Padded<T>(T);

/// A lock's state.
pub struct LockState {
    /// A field only the test build has, so its layout differs.
    #[cfg(feature = "layout_b")]
    _marker: [u64; 2],
    /// Its number (see `tool_ids`), never reused.
    id: u64,
    slots: Slots,
    data: Box<[Padded<Cell>]>,
    /// Processes this lock monitors (pid word to monitor), by shard.
    holders: [Padded<Mutex<HashMap<u64, ErlNifMonitor>>>; HOLDER_SHARDS],
}

/// One slot's data, and the pid word of its holder (0: none) readable
/// without the lock, for a holder's death.
struct Cell {
    holder: AtomicU64,
    data: Mutex<SlotData>,
}

/// What a slot lends and who looks after it.
struct SlotData {
    /// Holds the copy of the resource (null until first filled).
    env: *mut ErlNifEnv,
    resource: ErlNifTerm,
    watcher: Option<ErlNifPid>,
    /// The epoch of the watcher's incarnation (see `lock_fill`).
    epoch: u64,
    /// The loan out: its generation and its holder's pid word.
    loan: Option<(u64, u64)>,
    /// A resource put while the slot was lent (its watcher restarted): it
    /// replaces the slot's when the loan comes back.
    pending: Option<(*mut ErlNifEnv, ErlNifTerm)>,
}

impl SlotData {
    /// Drops the pending resource, if any.
    fn drop_pending(&mut self) {
        if let Some((env, _)) = self.pending.take() {
            // SAFETY: the env was allocated by `lock_fill`; nothing uses it.
            unsafe { enif_free_env(env) };
        }
    }

    /// Makes the pending resource the slot's, if any.
    fn take_pending(&mut self) {
        if let Some((env, term)) = self.pending.take() {
            if !self.env.is_null() {
                // SAFETY: the old env's resource is lent no more.
                unsafe { enif_free_env(self.env) };
            }
            self.env = env;
            self.resource = term;
        }
    }
}

// SAFETY: the env and terms are only used under the slot's mutex.
unsafe impl Send for SlotData {}

impl Drop for SlotData {
    fn drop(&mut self) {
        self.drop_pending();
        if !self.env.is_null() {
            // SAFETY: the env was allocated by `fill` and nothing uses it now.
            unsafe { enif_free_env(self.env) };
        }
    }
}

impl LockState {
    /// Its id (see `tool_ids`).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
    /// Whether it lends (a closed lock has no slot in use).
    pub(crate) fn is_open(&self) -> bool {
        self.slots.active() > 0
    }
}

// SAFETY: `lock.v4` names this layout of `LockState` (v3: held by an
// `Arc`; v4: with an id), `lock.v4b` the test build's; bumped with it.
// `LockWire` is version 1 of its interchange form.
unsafe impl Payload for LockState {
    const NAME: &'static std::ffi::CStr = c"sluice_lock.v1";
    const KIND: usize = LOCK_KIND;
    #[cfg(not(feature = "layout_b"))]
    const LAYOUT: &'static str = "lock.v4";
    #[cfg(feature = "layout_b")]
    const LAYOUT: &'static str = "lock.v4b";
    const MONITORS: bool = true;
    const WIRE: u64 = 1;
    type Wire = LockWire;

    fn export(&self) -> LockWire {
        let cells = self
            .data
            .iter()
            .map(|Padded(cell)| {
                let d = slot_data(&cell.data);
                CellWire {
                    holder: cell.holder.load(Ordering::Acquire),
                    resource: (!d.env.is_null())
                        .then(|| term_bytes(d.env, d.resource))
                        .flatten(),
                    watcher: d.watcher.map(pid_word),
                    epoch: d.epoch,
                    loan: d.loan,
                    pending: d.pending.and_then(|(env, term)| term_bytes(env, term)),
                }
            })
            .collect();
        let holders = self
            .holders
            .iter()
            .flat_map(|Padded(shard)| {
                let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
                shard
                    .iter()
                    .map(|(&word, m)| (word, monitor_words(m)))
                    .collect::<Vec<_>>()
            })
            .collect();
        let i = self.slots.image();
        LockWire {
            id: self.id,
            slots: SlotsWire {
                words: i.words,
                active: i.active as u64,
                checkouts: i.checkouts,
                busy: i.busy,
                deaths: i.deaths,
                in_use: i.in_use,
                peak: i.peak,
            },
            cells,
            holders,
        }
    }

    fn import(wire: LockWire) -> Option<Self> {
        let w = wire.slots;
        let slots = Slots::from_image(&SlotsImage {
            words: w.words,
            active: usize::try_from(w.active).ok()?,
            checkouts: w.checkouts,
            busy: w.busy,
            deaths: w.deaths,
            in_use: w.in_use,
            peak: w.peak,
        })?;
        if wire.cells.len() != slots.capacity() {
            return None;
        }
        let data = wire
            .cells
            .into_iter()
            .enumerate()
            .map(|(index, c)| {
                let resource = match &c.resource {
                    Some(bytes) => Some(env_term(bytes)?),
                    // a slot that may lend must have its resource
                    None if !slots.is_empty(index) => return None,
                    None => None,
                };
                let pending = match &c.pending {
                    Some(bytes) => Some(env_term(bytes)?),
                    None => None,
                };
                let (env, resource) = resource.unwrap_or((
                    std::ptr::null_mut(),
                    // SAFETY: a plain word, never read while the env is null.
                    unsafe { std::mem::zeroed() },
                ));
                Some(Padded(Cell {
                    holder: AtomicU64::new(c.holder),
                    data: Mutex::new(SlotData {
                        env,
                        resource,
                        watcher: c.watcher.map(word_pid),
                        epoch: c.epoch,
                        loan: c.loan,
                        pending,
                    }),
                }))
            })
            .collect::<Option<Box<[_]>>>()?;
        let state = LockState {
            #[cfg(feature = "layout_b")]
            _marker: [0; 2],
            id: wire.id,
            slots,
            data,
            holders: std::array::from_fn(|_| Padded(Mutex::new(HashMap::with_capacity(1)))),
        };
        for (word, m) in wire.holders {
            lock_shard(&state, word).insert(word, words_monitor(m));
        }
        Some(state)
    }

    /// A holder died: its loans end, their slots empty, their watchers are
    /// told. Costs one map removal and a look at each slot's holder word.
    fn down(&self, pid: &ErlNifPid, monitor: &ErlNifMonitor) {
        let word = pid_word(*pid);
        {
            let mut holders = lock_shard(self, word);
            match holders.get(&word) {
                // SAFETY: both are monitors the VM filled in.
                Some(m) if unsafe { enif_compare_monitors(m, monitor) } == 0 => {
                    holders.remove(&word);
                }
                _ => return,
            }
        }
        for (index, Padded(cell)) in self.data.iter().enumerate() {
            if cell.holder.load(Ordering::Acquire) != word {
                continue;
            }
            let mut d = slot_data(&cell.data);
            let Some((generation, holder)) = d.loan else {
                continue;
            };
            if holder != word {
                continue;
            }
            d.loan = None;
            cell.holder.store(0, Ordering::Release);
            d.drop_pending();
            if self.slots.fail(Loan { index, generation }) {
                match d.watcher {
                    Some(watcher) => tell_dead(&watcher, index),
                    // Nobody to make it ready: its resource is a plain
                    // token, lent again at once.
                    None => {
                        let _ = self.slots.fill(index);
                    }
                }
            }
        }
    }
}

/// A lock as one build hands it to another (version 1): every slot's word
/// and data, the counters, and the processes it monitors. Terms (the
/// resources lent) go in the external term format; pids and monitors as
/// the VM's words (they name the same processes and monitors in every
/// library of the VM; a monitor belongs to the resource object, not its
/// state, so it fires into whichever library serves the lock by then).
#[derive(Serialize, Deserialize)]
pub struct LockWire {
    id: u64,
    slots: SlotsWire,
    cells: Vec<CellWire>,
    /// Pid word and monitor of each process monitored.
    holders: Vec<(u64, [u64; 4])>,
}

/// The slots of a [`LockWire`] (see `sluice_core::slots::SlotsImage`).
#[derive(Serialize, Deserialize)]
struct SlotsWire {
    words: Vec<u64>,
    active: u64,
    checkouts: u64,
    busy: u64,
    deaths: u64,
    in_use: u64,
    peak: u64,
}

/// One slot's data in a [`LockWire`].
#[derive(Serialize, Deserialize)]
struct CellWire {
    holder: u64,
    /// The resource it lends (`None`: never filled).
    resource: Option<Vec<u8>>,
    /// The watcher's pid word.
    watcher: Option<u64>,
    epoch: u64,
    loan: Option<(u64, u64)>,
    pending: Option<Vec<u8>>,
}

/// `term` (of `env`) in the external term format, for another build.
pub(crate) fn term_bytes(env: *mut ErlNifEnv, term: ErlNifTerm) -> Option<Vec<u8>> {
    // SAFETY: a binary is plain data, filled in by the VM below.
    let mut bin: ErlNifBinary = unsafe { std::mem::zeroed() };
    // SAFETY: `term` is a live term of `env` (caller's contract).
    if unsafe { enif_term_to_binary(env, term, &mut bin) } == 0 {
        return None;
    }
    let bytes = if bin.data.is_null() {
        Vec::new()
    } else {
        // SAFETY: the VM filled `size` bytes at `data`.
        unsafe { std::slice::from_raw_parts(bin.data, bin.size) }.to_vec()
    };
    // SAFETY: made by `enif_term_to_binary`, released once.
    unsafe { enif_release_binary(&mut bin) };
    Some(bytes)
}

/// A new process-independent env holding the term of `bytes` (from
/// [`term_bytes`]); `None` when they are not a term.
pub(crate) fn env_term(bytes: &[u8]) -> Option<(*mut ErlNifEnv, ErlNifTerm)> {
    // SAFETY: a fresh env (freed below on failure, else by its owner); the
    // term word is filled in by the VM; `bytes` is a live slice.
    unsafe {
        let env = enif_alloc_env();
        let mut term: ErlNifTerm = std::mem::zeroed();
        if enif_binary_to_term(env, bytes.as_ptr(), bytes.len(), &mut term, 0) == 0 {
            enif_free_env(env);
            return None;
        }
        Some((env, term))
    }
}

/// A monitor's words.
fn monitor_words(m: &ErlNifMonitor) -> [u64; 4] {
    // SAFETY: `ErlNifMonitor` is `#[repr(C)]`, four machine words.
    unsafe { std::mem::transmute::<ErlNifMonitor, [u64; 4]>(*m) }
}

/// The monitor of [`monitor_words`].
fn words_monitor(words: [u64; 4]) -> ErlNifMonitor {
    // SAFETY: as in `monitor_words`: the words of a monitor the VM made.
    unsafe { std::mem::transmute::<[u64; 4], ErlNifMonitor>(words) }
}

fn slot_data(m: &Mutex<SlotData>) -> MutexGuard<'_, SlotData> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The pid's term word: it names the process (and its shard of holders).
fn pid_word(pid: ErlNifPid) -> u64 {
    // SAFETY: `ErlNifPid` is a transparent wrapper of the pid's term word.
    unsafe { std::mem::transmute::<ErlNifPid, u64>(pid) }
}

/// The pid of a term word from [`pid_word`].
fn word_pid(word: u64) -> ErlNifPid {
    // SAFETY: as in `pid_word`; the word is a local pid's.
    unsafe { std::mem::transmute::<u64, ErlNifPid>(word) }
}

/// The shard of holders of pid word `word`, locked.
fn lock_shard(state: &LockState, word: u64) -> MutexGuard<'_, HashMap<u64, ErlNifMonitor>> {
    let Some(Padded(shard)) = state.holders.get((word >> 4) as usize % HOLDER_SHARDS) else {
        unreachable!("an index modulo the number of shards")
    };
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sends `{sluice_lock, dead, Index}` to a watcher, from any thread.
fn tell_dead(watcher: &ErlNifPid, index: usize) {
    // SAFETY: a fresh process-independent env holds the message and is freed
    // after the send; a null caller env is allowed off a scheduler.
    unsafe {
        let env = enif_alloc_env();
        let lifetime = ();
        let e = Env::new(&lifetime, env);
        let msg = (atoms::sluice_lock(), atoms::dead(), index).encode(e);
        let _ = enif_send(std::ptr::null_mut(), watcher, env, msg.as_c_arg());
        enif_free_env(env);
    }
}

/// Monitors the calling process unless the lock already does; returns its
/// pid word.
fn watch_caller(raw: *mut ErlNifEnv, lock: &Held<'_, LockState>) -> u64 {
    // SAFETY: a pid is plain data, filled in by enif_self.
    let mut me: ErlNifPid = unsafe { std::mem::zeroed() };
    // SAFETY: `raw` is a NIF call's env, a process env: enif_self succeeds.
    unsafe { enif_self(raw, &mut me) };
    let word = pid_word(me);
    let mut holders = lock_shard(lock, word);
    if let Entry::Vacant(vacant) = holders.entry(word) {
        // SAFETY: a monitor is plain data, filled in by the VM.
        let mut mon: ErlNifMonitor = unsafe { std::mem::zeroed() };
        // SAFETY: the object is the lock's resource, alive while the call's
        // handle term is; `me` is the (live) caller.
        if unsafe { enif_monitor_process(raw, lock.object(), &me, &mut mon) } == 0 {
            vacant.insert(mon);
        }
    }
    word
}

fn get<'a>(term: Term<'a>) -> NifResult<Held<'a, LockState>> {
    SluiceLock::get(term)
}

/// A lock of `n` slots (room for `capacity`), all empty.
#[rustler::nif]
fn lock_new(env: Env<'_>, n: u64, capacity: u64) -> NifResult<Term<'_>> {
    let capacity = usize::try_from(capacity).map_err(|_| Error::BadArg)?;
    let n = usize::try_from(n).map_err(|_| Error::BadArg)?;
    if capacity == 0 || capacity > MAX_SLOTS || n > capacity {
        return Err(Error::BadArg);
    }
    let data = (0..capacity)
        .map(|_| {
            Padded(Cell {
                holder: AtomicU64::new(0),
                data: Mutex::new(SlotData {
                    env: std::ptr::null_mut(),
                    // SAFETY: a term is a plain word; this one is never read
                    // before `lock_fill` sets it.
                    resource: unsafe { std::mem::zeroed() },
                    watcher: None,
                    epoch: 0,
                    loan: None,
                    pending: None,
                }),
            })
        })
        .collect();
    let state = Arc::new(LockState {
        #[cfg(feature = "layout_b")]
        _marker: [0; 2],
        id: next_id(),
        slots: Slots::new(n, capacity),
        data,
        // Room for one holder from the start (a map never shrinks): an
        // empty `HashMap` points at a static of the library that made it,
        // which is gone once a newer library took the lock over and the
        // old one was unloaded (see `docs/nif-upgrade.md`).
        holders: std::array::from_fn(|_| Padded(Mutex::new(HashMap::with_capacity(1)))),
    });
    Ok(SluiceLock::make(env, state))
}

/// Puts `resource` in slot `index`, looked after by `watcher`, `{Pid,
/// Epoch}` (or `none`: a token lent again at once when its holder dies):
/// an empty or free slot lends it from now on; a lent one from when the
/// loan comes back. A watcher of an epoch older than the slot's last one
/// (an incarnation that is stopping) changes nothing. `{error, no_slot}`
/// when `index` is not a slot in use.
#[rustler::nif]
fn lock_fill<'a>(
    env: Env<'a>,
    handle: Term<'a>,
    index: u64,
    resource: Term<'a>,
    watcher: Term<'a>,
) -> NifResult<Term<'a>> {
    let lock = get(handle)?;
    let Some((index, Padded(cell))) = usize::try_from(index)
        .ok()
        .and_then(|i| Some((i, lock.data.get(i)?)))
    else {
        return Ok(atoms::error_of(env, atoms::no_slot()));
    };
    let data = &cell.data;
    // SAFETY: a pid is plain data, filled in below before any use.
    let mut pid: ErlNifPid = unsafe { std::mem::zeroed() };
    let (watcher, epoch) = if watcher == atoms::none().encode(env) {
        (None, 0)
    } else {
        let (who, epoch): (Term<'a>, u64) = watcher.decode()?;
        // SAFETY: `who` is a term of this call's env.
        if unsafe { enif_get_local_pid(env.as_c_arg(), who.as_c_arg(), &mut pid) } == 0 {
            return Err(Error::BadArg);
        }
        (Some(pid), epoch)
    };
    let slots = &lock.slots;
    let mut d = slot_data(data);
    if epoch < d.epoch {
        return Ok(atoms::ok().encode(env));
    }
    d.epoch = epoch;
    d.watcher = watcher;
    if !slots.is_empty(index) && !slots.reclaim(index) {
        d.drop_pending();
        // SAFETY: allocating an env has no precondition; `resource` is a
        // term of this call's env.
        let pending = unsafe {
            let pending = enif_alloc_env();
            (pending, enif_make_copy(pending, resource.as_c_arg()))
        };
        d.pending = Some(pending);
        return Ok(atoms::ok().encode(env));
    }
    if d.env.is_null() {
        // SAFETY: allocating an env has no precondition.
        d.env = unsafe { enif_alloc_env() };
    } else {
        // SAFETY: nobody holds a term of this env: the slot is empty.
        unsafe { enif_clear_env(d.env) };
    }
    // SAFETY: `d.env` is live; `resource` is a term of this call's env.
    d.resource = unsafe { enif_make_copy(d.env, resource.as_c_arg()) };
    if !slots.fill(index) {
        return Ok(atoms::error_of(env, atoms::no_slot()));
    }
    Ok(atoms::ok().encode(env))
}

/// `{ok, {Index, Generation}, Resource}`, `{error, busy}`, or `{error,
/// closed}` when no slot is in use; the caller is monitored until it
/// checks in.
#[rustler::nif]
fn lock_checkout<'a>(env: Env<'a>, handle: Term<'a>) -> NifResult<Term<'a>> {
    let lock = get(handle)?;
    let Some(loan) = lock.slots.checkout(thread_u64() as usize, lane::current()) else {
        if lock.slots.active() == 0 {
            return Ok(atoms::error_of(env, atoms::closed()));
        }
        return Ok((atoms::error(), atoms::busy()).encode(env));
    };
    let raw = env.as_c_arg();
    let holder = watch_caller(raw, &lock);
    let Some(Padded(cell)) = lock.data.get(loan.index) else {
        // Not reached: the slots and their data have the same capacity.
        let _ = lock.slots.checkin(loan);
        return Err(Error::BadArg);
    };
    let mut d = slot_data(&cell.data);
    d.loan = Some((loan.generation, holder));
    cell.holder.store(holder, Ordering::Release);
    // SAFETY: the slot's env is live and holds `resource` (it was filled
    // before it could be lent).
    let copy = unsafe { Term::new(env, enif_make_copy(raw, d.resource)) };
    let reference = (loan.index, loan.generation);
    Ok((atoms::ok(), reference, copy).encode(env))
}

/// Hands a loan back: `ok`, or `{error, not_lent}` when it is not out.
#[rustler::nif]
fn lock_checkin<'a>(env: Env<'a>, handle: Term<'a>, reference: (u64, u64)) -> NifResult<Term<'a>> {
    let lock = get(handle)?;
    let (index, generation) = reference;
    let index = usize::try_from(index).map_err(|_| Error::BadArg)?;
    let Some(Padded(cell)) = lock.data.get(index) else {
        return Ok((atoms::error(), atoms::not_lent()).encode(env));
    };
    let mut d = slot_data(&cell.data);
    match d.loan {
        Some((g, _)) if g == generation => {
            d.loan = None;
            cell.holder.store(0, Ordering::Relaxed);
            d.take_pending();
            let _ = lock.slots.checkin(Loan { index, generation });
            Ok(atoms::ok().encode(env))
        }
        _ => Ok((atoms::error(), atoms::not_lent()).encode(env)),
    }
}

/// `empty`, `free` or `lent`: the state of slot `index`; `{error,
/// no_slot}` beyond the capacity.
#[rustler::nif]
fn lock_slot<'a>(env: Env<'a>, handle: Term<'a>, index: u64) -> NifResult<Term<'a>> {
    let lock = get(handle)?;
    let Some((index, Padded(cell))) = usize::try_from(index)
        .ok()
        .and_then(|i| Some((i, lock.data.get(i)?)))
    else {
        return Ok(atoms::error_of(env, atoms::no_slot()));
    };
    let d = slot_data(&cell.data);
    Ok(if lock.slots.is_empty(index) {
        atoms::empty()
    } else if d.loan.is_some() {
        atoms::lent()
    } else {
        atoms::free()
    }
    .encode(env))
}

/// Uses the first `n` slots; returns `n`, or `{error, over_capacity}`
/// beyond the capacity.
#[rustler::nif]
fn lock_resize<'a>(env: Env<'a>, handle: Term<'a>, n: u64) -> NifResult<Term<'a>> {
    let lock = get(handle)?;
    match usize::try_from(n) {
        Ok(n) if n <= lock.slots.capacity() => Ok((lock.slots.resize(n) as u64).encode(env)),
        _ => Ok(atoms::error_of(env, atoms::over_capacity())),
    }
}

/// How many slots in use are empty (their resources not made yet).
#[rustler::nif]
fn lock_empty(handle: Term<'_>) -> NifResult<u64> {
    let lock = get(handle)?;
    let slots = &lock.slots;
    Ok((0..slots.active()).filter(|&i| slots.is_empty(i)).count() as u64)
}

/// `#{checkouts, busy, deaths, in_use, peak, slots, capacity}`: `slots`
/// the slots in use (0 once closed).
#[rustler::nif]
fn lock_info<'a>(env: Env<'a>, handle: Term<'a>) -> NifResult<Term<'a>> {
    let lock = get(handle)?;
    info(env, &lock)
}

/// The map of [`lock_info`] for `lock`.
pub(crate) fn info<'a>(env: Env<'a>, lock: &LockState) -> NifResult<Term<'a>> {
    let s = lock.slots.stats();
    let slots = &lock.slots;
    map::of(
        env,
        &[
            (atoms::checkouts(), s.checkouts.encode(env)),
            (atoms::busy(), s.busy.encode(env)),
            (atoms::deaths(), s.deaths.encode(env)),
            (atoms::in_use(), s.in_use.encode(env)),
            (atoms::peak(), s.peak.encode(env)),
            (atoms::slots(), (slots.active() as u64).encode(env)),
            (atoms::capacity(), (slots.capacity() as u64).encode(env)),
        ],
    )
}
