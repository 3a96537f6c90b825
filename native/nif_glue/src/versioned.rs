//! One resource shape for every payload whose layout is the compiler's (a
//! box, a lock, a limiter, a breaker, a valve, a window, a recorder, a
//! metric, a trace): [`Versioned<T>`], a fixed `#[repr(C)]` [`Header`]
//! whose state pointer leads to the `T`, and a conversion of that state
//! from any build of the library to any other, done in place while the
//! object is in use.
//!
//! # The header
//! Every build reads and writes it alike:
//! - `build`: the fingerprint of the layout of the state
//!   ([`resource::fingerprint`] of [`Payload::LAYOUT`]);
//! - `maker`: the token of the loaded library instance whose code made the
//!   state (its attach [`resource::generation`]);
//! - `gate`: how many calls are using the state now, and two flags:
//!   `CONVERTING` (someone has the state to itself) and `DEAD` (the
//!   destructor has run);
//! - `state`: the `Arc<T>` of that build, as a raw pointer;
//! - `prev`, `next`: the kind's [`resource::Registry`], a list of every
//!   live object of the kind, shared by every instance.
//!
//! # Using an object
//! A call reaches the state only through a [`Held`] ([`Versioned::get`],
//! [`Versioned::from_raw`], [`Versioned::enter`]): it counts itself into
//! the gate, and if the state is another build's it first converts it
//! (below). While a `Held` lives, no one converts or frees the state.
//!
//! # Converting
//! Each loaded instance publishes, for each of its kinds, a table of three
//! functions in the shared block: export a state to the kind's interchange
//! form ([`Payload::Wire`], serialised with MessagePack), make a state from
//! that form, free a state. A conversion takes the object to itself (sets
//! `CONVERTING`, waits for the calls in it to leave), exports through the
//! maker's table, imports through the new owner's, frees the old state
//! through the maker's table, and stores the new state, build and maker.
//! Conversions happen:
//! - when a call of this build meets a state of another build (after an
//!   upgrade to a build that changed the layout, or a downgrade);
//! - when an instance unloads (its old code was purged): every object it
//!   made goes to the instance that replaced it, so no state outlives the
//!   code that laid it out (a box's buffer holds a pointer to its code:
//!   using it after that library is closed would crash the VM), and no
//!   object is dropped or leaked.
//!
//! A library refuses to load ([`Versioned::compatible`]) while an object
//! lives whose state it cannot convert: its maker has no table, or writes
//! another version of the interchange form ([`Payload::WIRE`]). The old
//! code then keeps running and `erlang:load_nif/2` fails.

use std::ffi::CStr;
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use rustler::sys::{
    c_int, c_void, enif_alloc, enif_free, enif_make_resource, ErlNifEnv, ErlNifMonitor, ErlNifPid,
    ErlNifResourceType, ErlNifTerm,
};
use rustler::{Decoder, Env, Error, NifResult, Term};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::resource::{self, NifResource, OpsSlot, Registry, KINDS};

/// A call has the state to itself (a conversion).
const CONVERTING: u64 = 1 << 62;
/// The destructor has run.
const DEAD: u64 = 1 << 63;
/// The count of calls in the gate.
const COUNT: u64 = CONVERTING - 1;

/// The state behind a [`Versioned`] resource.
///
/// # Safety
/// [`Payload::LAYOUT`] must change whenever the layout of `Self`, or of
/// anything it owns, changes (two builds with equal tags read each other's
/// state in place), and [`Payload::WIRE`] whenever [`Payload::Wire`]
/// changes.
pub unsafe trait Payload: Send + Sync + Sized + 'static {
    /// Resource type name (`"sluice_lock.v2"`), the same in every build
    /// that converts this kind.
    const NAME: &'static CStr;
    /// Index of this kind's live-object counter ([`resource::live`]), of
    /// its type slot and of its registry: unique among the versioned kinds
    /// of a library, the same in every build.
    const KIND: usize;
    /// The layout tag of `Self` (`"lock.v3"`), bumped with every change of
    /// its layout; part of the build fingerprint.
    const LAYOUT: &'static str;
    /// The version of [`Payload::Wire`]; a build converts the objects of
    /// another only when both write the same version.
    const WIRE: u64;
    /// Whether objects of this kind monitor processes ([`Payload::down`]).
    const MONITORS: bool = false;
    /// The interchange form of the state: what one build hands to another.
    type Wire: Serialize + DeserializeOwned;
    /// The state, for another build. Called with the object to itself;
    /// the state is freed right after, so what it owns (buffered terms)
    /// may be moved out.
    fn export(&self) -> Self::Wire;
    /// A state of this build from another build's; `None` refuses it.
    fn import(wire: Self::Wire) -> Option<Self>;
    /// A process this object monitors (`enif_monitor_process`) went down.
    fn down(&self, _pid: &ErlNifPid, _monitor: &ErlNifMonitor) {}
}

/// The fixed part of every versioned object; see the module documentation.
#[repr(C)]
pub struct Header {
    build: AtomicU64,
    maker: AtomicU64,
    gate: AtomicU64,
    state: AtomicPtr<c_void>,
    prev: AtomicPtr<Header>,
    next: AtomicPtr<Header>,
}

/// A resource of a payload laid out by the compiler; see the module
/// documentation.
#[repr(C)]
pub struct Versioned<T: Payload> {
    header: Header,
    kind: PhantomData<fn() -> T>,
}

/// A call's use of an object: the state cannot be converted or freed while
/// it lives.
pub struct Held<'a, T: Payload> {
    object: &'a Versioned<T>,
    state: &'a T,
}

/// An exported state: bytes from `enif_alloc`, freed by the receiver.
#[repr(C)]
struct WireBuf {
    ptr: *mut u8,
    len: usize,
}

type ExportFn = unsafe extern "C" fn(*const c_void, *mut WireBuf) -> c_int;
type ImportFn = unsafe extern "C" fn(*const u8, usize, *mut *const c_void) -> c_int;
type FreeFn = unsafe extern "C" fn(*const c_void);

/// One kind's conversions in an instance's table (all zero: none).
#[repr(C)]
struct KindOps {
    build: AtomicU64,
    wire: AtomicU64,
    export: AtomicUsize,
    import: AtomicUsize,
    free: AtomicUsize,
}

/// Tag of [`Table`]'s layout, its first field.
const TABLE_ABI: u64 = 0x736c_7674_0000_0001;

/// An instance's conversions, published in the shared block.
#[repr(C)]
struct Table {
    abi: u64,
    kinds: [KindOps; KINDS],
}

static TABLE: Table = Table {
    abi: TABLE_ABI,
    kinds: [const {
        KindOps {
            build: AtomicU64::new(0),
            wire: AtomicU64::new(0),
            export: AtomicUsize::new(0),
            import: AtomicUsize::new(0),
            free: AtomicUsize::new(0),
        }
    }; KINDS],
};

/// The opened resource type of each versioned kind, by [`Payload::KIND`].
static TYPES: [AtomicPtr<ErlNifResourceType>; KINDS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; KINDS];

/// This instance's token: its attach generation (unique in the VM's life).
fn me() -> u64 {
    resource::generation()
}

fn pause(spins: &mut u32) {
    if *spins < 64 {
        *spins += 1;
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

// ---------------------------------------------------------------------
// The registries

fn registry(kind: usize) -> Option<&'static Registry> {
    resource::shared().and_then(|s| s.registries.get(kind))
}

struct Locked(&'static Registry);

impl Locked {
    fn new(r: &'static Registry) -> Self {
        let mut spins = 0;
        while r
            .lock
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            pause(&mut spins);
        }
        Locked(r)
    }
    fn head(&self) -> *mut Header {
        self.0.head.load(Ordering::Relaxed).cast()
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        self.0.lock.store(false, Ordering::Release);
    }
}

/// Links `h` at the head of `kind`'s list.
fn link(kind: usize, h: &Header) {
    let Some(r) = registry(kind) else { return };
    let lock = Locked::new(r);
    let me = ptr::from_ref(h).cast_mut();
    let head = lock.head();
    h.prev.store(ptr::null_mut(), Ordering::Relaxed);
    h.next.store(head, Ordering::Relaxed);
    // SAFETY: a linked header belongs to a live object (the destructor
    // unlinks it, under this lock, before it is freed).
    if let Some(first) = unsafe { head.as_ref() } {
        first.prev.store(me, Ordering::Relaxed);
    }
    r.head.store(me.cast(), Ordering::Relaxed);
}

/// Unlinks `h` from `kind`'s list.
fn unlink(kind: usize, h: &Header) {
    let Some(r) = registry(kind) else { return };
    let lock = Locked::new(r);
    let prev = h.prev.load(Ordering::Relaxed);
    let next = h.next.load(Ordering::Relaxed);
    // SAFETY: neighbours in the list are live objects (as in `link`).
    match unsafe { prev.as_ref() } {
        Some(p) => p.next.store(next, Ordering::Relaxed),
        None => {
            if lock.head() == ptr::from_ref(h).cast_mut() {
                r.head.store(next.cast(), Ordering::Relaxed);
            }
        }
    }
    // SAFETY: as above.
    if let Some(n) = unsafe { next.as_ref() } {
        n.prev.store(prev, Ordering::Relaxed);
    }
    h.prev.store(ptr::null_mut(), Ordering::Relaxed);
    h.next.store(ptr::null_mut(), Ordering::Relaxed);
}

// ---------------------------------------------------------------------
// The published tables

/// A use of another instance's table: the instance does not unload while
/// one lives.
struct Using {
    slot: &'static OpsSlot,
    table: &'static Table,
}

impl Drop for Using {
    fn drop(&mut self) {
        self.slot.users.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The table of the instance with token `token`, while it is loaded.
fn using(token: u64) -> Option<Using> {
    let shared = resource::shared()?;
    for slot in &shared.ops {
        if slot.token.load(Ordering::SeqCst) != token {
            continue;
        }
        slot.users.fetch_add(1, Ordering::SeqCst);
        let table = slot.table.load(Ordering::SeqCst);
        if slot.token.load(Ordering::SeqCst) == token && !table.is_null() {
            // SAFETY: a published table is a static of a loaded instance,
            // which does not unload while `users` counts us; its first
            // field is the ABI tag in every build.
            if unsafe { table.cast::<u64>().read() } == TABLE_ABI {
                // SAFETY: same tag, same layout.
                let table = unsafe { &*table.cast::<Table>() };
                return Some(Using { slot, table });
            }
        }
        slot.users.fetch_sub(1, Ordering::SeqCst);
    }
    None
}

/// Publishes this instance's table (after every kind was opened).
pub(crate) fn publish() {
    let Some(shared) = resource::shared() else {
        return;
    };
    let token = me();
    for slot in &shared.ops {
        if slot
            .token
            .compare_exchange(0, token, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            slot.table
                .store(ptr::from_ref(&TABLE).cast_mut().cast(), Ordering::SeqCst);
            return;
        }
    }
}

/// The newest other instance that publishes a table: where this one's
/// objects go when it unloads.
fn successor() -> Option<u64> {
    let shared = resource::shared()?;
    let token = me();
    shared
        .ops
        .iter()
        .map(|s| s.token.load(Ordering::SeqCst))
        .filter(|&t| t != 0 && t != token)
        .max()
}

/// Before this instance unloads: every object it made, of every kind, is
/// converted into the state of the newest other instance, then the table
/// is withdrawn once no one uses it.
pub(crate) fn retire() {
    let Some(shared) = resource::shared() else {
        return;
    };
    if let Some(next) = successor().and_then(using) {
        for kind in 0..KINDS {
            hand_over(kind, &next);
        }
    }
    let token = me();
    for slot in &shared.ops {
        if slot.token.load(Ordering::SeqCst) == token {
            slot.table.store(ptr::null_mut(), Ordering::SeqCst);
            let mut spins = 0;
            while slot.users.load(Ordering::SeqCst) != 0 {
                pause(&mut spins);
            }
            slot.token.store(0, Ordering::SeqCst);
        }
    }
}

/// Converts every object of `kind` this instance made into `next`'s.
fn hand_over(kind: usize, next: &Using) {
    let Some(mine) = TABLE.kinds.get(kind) else {
        return;
    };
    if mine.build.load(Ordering::Acquire) == 0 {
        return;
    }
    let Some(theirs) = next.table.kinds.get(kind) else {
        return;
    };
    let Some(r) = registry(kind) else { return };
    let token = me();
    let to_token = next.slot.token.load(Ordering::SeqCst);
    let mut lock = Locked::new(r);
    let mut at = lock.head();
    // SAFETY: linked headers are live (see `link`); one claimed (CONVERTING
    // set, under the lock) or counted in stays linked: its destructor waits
    // for an empty gate.
    while let Some(h) = unsafe { at.as_ref() } {
        if h.maker.load(Ordering::Acquire) == token && claim(h) {
            drop(lock);
            drain(h);
            // Objects whose state cannot be converted stay as they are.
            let _ = convert(h, mine, theirs, to_token);
            // Counted in while the lock is taken again, so the object stays
            // linked (its destructor waits for an empty gate), without
            // keeping others out of it meanwhile.
            h.gate.fetch_add(1, Ordering::AcqRel);
            release(h);
            lock = Locked::new(r);
            at = h.next.load(Ordering::Relaxed);
            h.gate.fetch_sub(1, Ordering::AcqRel);
        } else {
            at = h.next.load(Ordering::Relaxed);
        }
    }
}

// ---------------------------------------------------------------------
// The gate

/// Sets `CONVERTING` on `h`: false when someone else has it, or it is dead.
fn claim(h: &Header) -> bool {
    let before = h.gate.fetch_or(CONVERTING, Ordering::AcqRel);
    before & (CONVERTING | DEAD) == 0
}

/// Waits until the calls that were in `h`'s gate when it was claimed left.
fn drain(h: &Header) {
    let mut spins = 0;
    while h.gate.load(Ordering::Acquire) & COUNT != 0 {
        pause(&mut spins);
    }
}

fn release(h: &Header) {
    h.gate.fetch_and(!CONVERTING, Ordering::AcqRel);
}

/// Converts `h`'s state (made with `from`'s code) into `to`'s, whose
/// instance token is `to_token`; the caller has claimed and drained `h`.
fn convert(h: &Header, from: &KindOps, to: &KindOps, to_token: u64) -> bool {
    let (export, import, free) = (
        from.export.load(Ordering::Acquire),
        to.import.load(Ordering::Acquire),
        from.free.load(Ordering::Acquire),
    );
    if export == 0 || import == 0 || free == 0 {
        return false;
    }
    if from.wire.load(Ordering::Acquire) != to.wire.load(Ordering::Acquire) {
        return false;
    }
    // SAFETY: the three are functions of these types, stored by
    // `register` of a loaded instance (the caller keeps it loaded).
    let (export, import, free) = unsafe {
        (
            std::mem::transmute::<usize, ExportFn>(export),
            std::mem::transmute::<usize, ImportFn>(import),
            std::mem::transmute::<usize, FreeFn>(free),
        )
    };
    let old = h.state.load(Ordering::Acquire);
    let mut buf = WireBuf {
        ptr: ptr::null_mut(),
        len: 0,
    };
    // SAFETY: `old` is a state of `from`'s layout; we have it to ourselves.
    if unsafe { export(old, &mut buf) } == 0 {
        return false;
    }
    let mut new: *const c_void = ptr::null();
    // SAFETY: `buf` holds `len` bytes written by `export`.
    let ok = unsafe { import(buf.ptr, buf.len, &mut new) } != 0;
    // SAFETY: allocated by `export` through `enif_alloc`.
    unsafe { enif_free(buf.ptr.cast()) };
    if !ok || new.is_null() {
        return false;
    }
    // SAFETY: exported, so the old state is ours to free, with its code.
    unsafe { free(old) };
    h.state.store(new.cast_mut(), Ordering::Release);
    h.build
        .store(to.build.load(Ordering::Acquire), Ordering::Release);
    h.maker.store(to_token, Ordering::Release);
    true
}

// ---------------------------------------------------------------------
// This build's functions of a kind

unsafe extern "C" fn export_state<T: Payload>(state: *const c_void, out: *mut WireBuf) -> c_int {
    let done = std::panic::catch_unwind(|| {
        // SAFETY: `state` is an `Arc<T>` of this build (caller's contract).
        let t = unsafe { &*state.cast::<T>() };
        rmp_serde::to_vec(&t.export()).ok()
    });
    let Ok(Some(bytes)) = done else { return 0 };
    // SAFETY: a fresh allocation of `len` bytes (at least one), filled
    // below; `out` is the caller's.
    unsafe {
        let p = enif_alloc(bytes.len().max(1)).cast::<u8>();
        if p.is_null() {
            return 0;
        }
        ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
        *out = WireBuf {
            ptr: p,
            len: bytes.len(),
        };
    }
    1
}

unsafe extern "C" fn import_state<T: Payload>(
    bytes: *const u8,
    len: usize,
    out: *mut *const c_void,
) -> c_int {
    let done = std::panic::catch_unwind(|| {
        // SAFETY: `len` bytes at `bytes` (caller's contract).
        let bytes = unsafe { std::slice::from_raw_parts(bytes, len) };
        let wire: T::Wire = rmp_serde::from_slice(bytes).ok()?;
        T::import(wire).map(|t| Arc::into_raw(Arc::new(t)).cast::<c_void>())
    });
    match done {
        Ok(Some(p)) => {
            // SAFETY: `out` is the caller's.
            unsafe { *out = p };
            1
        }
        _ => 0,
    }
}

unsafe extern "C" fn free_state<T: Payload>(state: *const c_void) {
    // SAFETY: `state` came from `Arc::into_raw` of an `Arc<T>` of this
    // build, and is given up by the caller.
    let _ = std::panic::catch_unwind(|| drop(unsafe { Arc::from_raw(state.cast::<T>()) }));
}

// SAFETY: `Versioned<T>` is `#[repr(C)]`, a `Header`, the same in every
// build; the state behind it is read only through `Held`, as `T` only when
// the header's build is this build's fingerprint. Alignment 8: at the start
// of its resource object.
unsafe impl<T: Payload> NifResource for Versioned<T> {
    const NAME: &'static CStr = T::NAME;
    const KIND: usize = T::KIND;
    const MONITORS: bool = T::MONITORS;
    fn slot() -> &'static AtomicPtr<ErlNifResourceType> {
        const { assert!(T::KIND < KINDS, "a versioned kind indexes its type slot") };
        match TYPES.get(T::KIND) {
            Some(slot) => slot,
            None => unreachable!("checked at compile time"),
        }
    }
    fn down(&self, pid: &ErlNifPid, monitor: &ErlNifMonitor) {
        if let Some(held) = self.enter() {
            held.down(pid, monitor);
        }
    }
    fn compatible() -> bool {
        Self::compatible()
    }
    fn made(&self) {
        link(T::KIND, &self.header);
    }
    unsafe fn destroy(this: *mut Self) {
        // SAFETY: the VM runs the destructor once, on a live object.
        let h = unsafe { &(*this).header };
        let mut spins = 0;
        while h
            .gate
            .compare_exchange(0, DEAD, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            pause(&mut spins);
        }
        unlink(T::KIND, h);
        let state = h.state.load(Ordering::Acquire);
        let maker = h.maker.load(Ordering::Acquire);
        if maker == me() && h.build.load(Ordering::Acquire) == Versioned::<T>::BUILD {
            // SAFETY: made by this instance's code: an `Arc<T>`.
            drop(unsafe { Arc::from_raw(state.cast::<T>()) });
        } else if let Some(theirs) = using(maker) {
            let free = theirs
                .table
                .kinds
                .get(T::KIND)
                .map_or(0, |k| k.free.load(Ordering::Acquire));
            if free != 0 {
                // SAFETY: a `FreeFn` of the maker, which stays loaded while
                // `theirs` lives; the state is its own.
                unsafe { std::mem::transmute::<usize, FreeFn>(free)(state) };
            }
        }
        // A maker that is gone left no state behind (it handed every object
        // over when it unloaded), except one that could not be converted:
        // that is leaked, never read with the wrong code.
    }
}

impl<T: Payload> Versioned<T> {
    /// The fingerprint of this build's layout of `T`.
    pub const BUILD: u64 = resource::fingerprint(T::LAYOUT);

    /// Whether this library may take over the live objects of `T`: every
    /// object of another build has a maker that is still loaded and writes
    /// the same version of the interchange form. Records this build's
    /// conversions, to publish once every kind is opened.
    pub fn compatible() -> bool {
        let Some(kind) = TABLE.kinds.get(T::KIND) else {
            return false;
        };
        if let Some(r) = registry(T::KIND) {
            let lock = Locked::new(r);
            let mut at = lock.head();
            // SAFETY: linked headers are live (see `link`).
            while let Some(h) = unsafe { at.as_ref() } {
                let build = h.build.load(Ordering::Acquire);
                if build != Self::BUILD {
                    let wire = using(h.maker.load(Ordering::Acquire)).and_then(|u| {
                        u.table
                            .kinds
                            .get(T::KIND)
                            .map(|k| k.wire.load(Ordering::Acquire))
                    });
                    if wire != Some(T::WIRE) {
                        return false;
                    }
                }
                at = h.next.load(Ordering::Relaxed);
            }
        }
        kind.wire.store(T::WIRE, Ordering::Release);
        kind.export
            .store(export_state::<T> as ExportFn as usize, Ordering::Release);
        kind.import
            .store(import_state::<T> as ImportFn as usize, Ordering::Release);
        kind.free
            .store(free_state::<T> as FreeFn as usize, Ordering::Release);
        kind.build.store(Self::BUILD, Ordering::Release);
        true
    }

    /// A new resource object holding `state`, as a term of `env`; counted
    /// live until its destructor runs, and listed in its kind's registry.
    pub fn make(env: Env<'_>, state: impl Into<Arc<T>>) -> Term<'_> {
        let state = Arc::into_raw(state.into());
        resource::make(
            env,
            Versioned::<T> {
                header: Header {
                    build: AtomicU64::new(Self::BUILD),
                    maker: AtomicU64::new(me()),
                    gate: AtomicU64::new(0),
                    state: AtomicPtr::new(state.cast::<c_void>().cast_mut()),
                    prev: AtomicPtr::new(ptr::null_mut()),
                    next: AtomicPtr::new(ptr::null_mut()),
                },
                kind: PhantomData,
            },
        )
    }

    /// The object behind `term`, held: `badarg` unless it is one of this
    /// kind whose state this build can use (converting it if need be).
    pub fn get<'a>(term: Term<'a>) -> NifResult<Held<'a, T>> {
        // SAFETY: `term` belongs to its env, which outlives the borrow.
        unsafe { Self::from_raw(term.get_env().as_c_arg(), term.as_c_arg()) }.ok_or(Error::BadArg)
    }

    /// As [`Versioned::get`], for a raw NIF.
    ///
    /// # Safety
    /// `term` must belong to `env`, and the returned value must not
    /// outlive that env.
    pub unsafe fn from_raw<'a>(env: *mut ErlNifEnv, term: ErlNifTerm) -> Option<Held<'a, T>> {
        // SAFETY: by the contract above.
        let object: &'a Self = unsafe { resource::get(env, term) }?;
        object.enter()
    }

    /// This object's resource memory (for `enif_keep_resource`).
    pub fn object(&self) -> *const c_void {
        resource::object(self)
    }

    /// Holds this object's state (converting it to this build first if
    /// another made it); `None` if it cannot be used by this build.
    pub fn enter(&self) -> Option<Held<'_, T>> {
        let h = &self.header;
        let mut spins = 0;
        loop {
            let before = h.gate.fetch_add(1, Ordering::AcqRel);
            if before & (CONVERTING | DEAD) != 0 {
                h.gate.fetch_sub(1, Ordering::AcqRel);
                if before & DEAD != 0 {
                    return None;
                }
                pause(&mut spins);
                continue;
            }
            if h.build.load(Ordering::Acquire) == Self::BUILD {
                let state = h.state.load(Ordering::Acquire).cast::<T>();
                // SAFETY: a state of this build's layout, not converted or
                // freed while the gate counts us.
                let state = unsafe { &*state };
                return Some(Held {
                    object: self,
                    state,
                });
            }
            h.gate.fetch_sub(1, Ordering::AcqRel);
            if !self.convert_here() {
                return None;
            }
        }
    }

    /// Converts this object's state, made by another build, into this
    /// build's. True when the caller should look again (converted, or
    /// someone else was converting it).
    fn convert_here(&self) -> bool {
        let h = &self.header;
        if !claim(h) {
            if h.gate.load(Ordering::Acquire) & DEAD != 0 {
                return false;
            }
            let mut spins = 0;
            while h.gate.load(Ordering::Acquire) & CONVERTING != 0 {
                pause(&mut spins);
            }
            return true;
        }
        drain(h);
        let done = h.build.load(Ordering::Acquire) == Self::BUILD
            || match (
                using(h.maker.load(Ordering::Acquire)),
                TABLE.kinds.get(T::KIND),
            ) {
                (Some(theirs), Some(mine)) => match theirs.table.kinds.get(T::KIND) {
                    Some(from) => convert(h, from, mine, me()),
                    None => false,
                },
                _ => false,
            };
        release(h);
        done
    }

    /// Calls `f` with every live object of this kind this build can use
    /// (converting those another build made), in no order, until it
    /// returns false. The kind's registry is locked meanwhile: `f` must
    /// not make or drop an object of this kind.
    pub fn each(mut f: impl FnMut(&Held<'_, T>) -> bool) {
        let Some(r) = registry(T::KIND) else { return };
        let lock = Locked::new(r);
        let mut at = lock.head();
        // SAFETY: linked headers belong to live objects, and stay linked
        // while the lock is held (see `link`); a held one's state is safe
        // to use (`enter`).
        while let Some(h) = unsafe { at.as_ref() } {
            // SAFETY: a `Header` is the first field of a `#[repr(C)]`
            // `Versioned<T>` of this kind's registry.
            let object = unsafe { &*ptr::from_ref(h).cast::<Self>() };
            if let Some(held) = object.enter() {
                if !f(&held) {
                    return;
                }
            }
            at = h.next.load(Ordering::Relaxed);
        }
    }
}

impl<'a, T: Payload> Held<'a, T> {
    /// The object, for `enif_monitor_process`, `enif_keep_resource` and
    /// `enif_release_resource`.
    pub fn object(&self) -> *const c_void {
        self.object.object()
    }

    /// The resource itself.
    pub fn resource(&self) -> &'a Versioned<T> {
        self.object
    }

    /// A new term for this object, in `env`.
    pub fn term<'b>(&self, env: Env<'b>) -> Term<'b> {
        // SAFETY: the object is live (held); the term takes its own
        // reference, valid in `env`.
        unsafe {
            Term::new(
                env,
                enif_make_resource(env.as_c_arg(), self.object().cast_mut()),
            )
        }
    }
}

impl<T: Payload> Deref for Held<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.state
    }
}

impl<T: Payload> Drop for Held<'_, T> {
    fn drop(&mut self) {
        self.object.header.gate.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<'a, T: Payload> Decoder<'a> for Held<'a, T> {
    fn decode(term: Term<'a>) -> NifResult<Self> {
        Versioned::get(term)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_six_words_in_every_build() {
        assert_eq!(std::mem::size_of::<Header>(), 48);
        assert_eq!(std::mem::align_of::<Header>(), 8);
        assert_eq!(COUNT & (CONVERTING | DEAD), 0);
    }
}
