//! A resource layer over `rustler::sys`, built so that a newer build of a
//! library can take over the objects of an older one.
//!
//! rustler's resource registration always creates types and cannot take them
//! over, so a module whose library was reloaded would see every existing
//! handle turn into `badarg`. Here every resource type is opened with
//! `ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER`, in `load` and in `upgrade`
//! alike: on first load the type is created, on upgrade the new library
//! becomes the owner of every live object and its destructor is the one run.
//!
//! Two rules make the takeover sound:
//! 1. a resource payload has a stable, `#[repr(C)]` layout, and the type name
//!    carries a layout version (`sluice_valve.v1`); a build that changes a
//!    layout registers a new name and keeps opening the old one, converting.
//!    A payload whose layout is the compiler's (a box: a mutex around Rust
//!    collections) is kept behind a [`crate::versioned::Versioned`], a
//!    fixed header that says which build laid the state out, and whose
//!    state a newer build converts ([`crate::versioned`]);
//! 2. library-wide bookkeeping ([`Shared`]) is a `#[repr(C)]` block passed from
//!    the old instance to the new one through `priv_data`, reference-counted
//!    so whichever instance is unloaded last frees it.

use std::ffi::CStr;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use rustler::sys::{
    c_char, c_int, c_void, enif_alloc_resource, enif_get_resource, enif_make_resource,
    enif_release_resource, ErlNifEnv, ErlNifMonitor, ErlNifPid, ErlNifResourceDown,
    ErlNifResourceDtor, ErlNifResourceStop, ErlNifResourceType, ErlNifResourceTypeInit, ErlNifTerm,
};
use rustler::{Env, Term};

/// Version tag of [`Shared`]'s layout; an instance adopts an older
/// instance's block only when the tags are equal.
pub const SHARED_ABI: u64 = 0x736c_7368_0000_0004;

/// Number of resource kinds with a live-object counter.
pub const KINDS: usize = 8;

/// Number of library-wide object slots ([`ext`]).
pub const EXTS: usize = 4;

/// Number of library instances that can publish their conversions
/// ([`crate::versioned`]) at once: the loaded one and the one it replaces,
/// with room to spare.
pub const INSTANCES: usize = 8;

/// The live objects of one versioned kind: an intrusive list through
/// their headers, under a spin lock (the same code in every build, so no
/// lock whose waiters park in one library's statics).
#[repr(C)]
pub struct Registry {
    pub(crate) lock: AtomicBool,
    pub(crate) head: AtomicPtr<c_void>,
}

/// Where a loaded instance publishes its conversions: its token (see
/// [`generation`]), its table, and how many callers are using the table
/// now (the instance waits for none before it unloads).
#[repr(C)]
pub struct OpsSlot {
    pub(crate) token: AtomicU64,
    pub(crate) table: AtomicPtr<c_void>,
    pub(crate) users: AtomicU64,
}

/// Library-wide state that outlives any one loaded instance of the library.
#[repr(C)]
pub struct Shared {
    abi: u64,
    instances: AtomicUsize,
    attached: AtomicU64,
    live: [AtomicI64; KINDS],
    ext: [AtomicPtr<c_void>; EXTS],
    pub(crate) registries: [Registry; KINDS],
    pub(crate) ops: [OpsSlot; INSTANCES],
}

static SHARED: AtomicPtr<Shared> = AtomicPtr::new(ptr::null_mut());
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Attaches this instance to the block of the instance it replaces, or to a
/// new block when there is none (or it has another layout). Returns the
/// pointer to store as this instance's `priv_data`.
///
/// # Safety
/// `old` must be null or a `priv_data` pointer set by some build of this library.
pub unsafe fn attach(old: *mut c_void) -> *mut c_void {
    let old = old.cast::<Shared>();
    // SAFETY: by the contract above `old` is null or points to a block some
    // build of this library allocated; its first field is the ABI tag in every build.
    let adopt = !old.is_null() && unsafe { (*old).abi } == SHARED_ABI;
    let shared = if adopt {
        old
    } else {
        Box::into_raw(Box::new(Shared {
            abi: SHARED_ABI,
            instances: AtomicUsize::new(0),
            attached: AtomicU64::new(0),
            live: std::array::from_fn(|_| AtomicI64::new(0)),
            ext: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            registries: std::array::from_fn(|_| Registry {
                lock: AtomicBool::new(false),
                head: AtomicPtr::new(ptr::null_mut()),
            }),
            ops: std::array::from_fn(|_| OpsSlot {
                token: AtomicU64::new(0),
                table: AtomicPtr::new(ptr::null_mut()),
                users: AtomicU64::new(0),
            }),
        }))
    };
    // SAFETY: `shared` is a valid block (adopted or just allocated).
    let block = unsafe { &*shared };
    block.instances.fetch_add(1, Ordering::AcqRel);
    GENERATION.store(
        block.attached.fetch_add(1, Ordering::AcqRel) + 1,
        Ordering::Release,
    );
    SHARED.store(shared, Ordering::Release);
    shared.cast()
}

/// Detaches one instance; the last one out frees the block.
///
/// # Safety
/// `priv_data` must be the pointer [`attach`] returned to this instance.
pub unsafe fn detach(priv_data: *mut c_void) {
    let shared = priv_data.cast::<Shared>();
    if shared.is_null() {
        return;
    }
    // SAFETY: `shared` came from `attach` and is still counted by this instance.
    let block = unsafe { &*shared };
    let last = block.instances.fetch_sub(1, Ordering::AcqRel) == 1;
    // Objects still alive (the VM keeps a library whose types are in use
    // loaded) unlink themselves from the block's registries when they go:
    // the block is then left in place.
    let idle = block.live.iter().all(|n| n.load(Ordering::Acquire) <= 0);
    if last && idle {
        // SAFETY: no instance uses the block any more, no object refers to
        // it; it was made by `Box::new`.
        drop(unsafe { Box::from_raw(shared) });
    }
}

pub(crate) fn shared() -> Option<&'static Shared> {
    // SAFETY: the pointer is set by `attach` before any NIF can run and stays
    // valid while this instance is loaded (this instance holds a count on it).
    unsafe { SHARED.load(Ordering::Acquire).as_ref() }
}

/// Slot `i` of the library-wide objects: a pointer a library stores once
/// (a name map, say) so that the instances that replace it find the same
/// object. The block never frees what a slot points to; the object's own
/// first field should say which build laid it out (a [`fingerprint`]), so
/// a build of another layout leaves it alone. `None` before the first load.
pub fn ext(i: usize) -> Option<&'static AtomicPtr<c_void>> {
    shared().and_then(|s| s.ext.get(i % EXTS))
}

/// How many library instances attached to the shared block so far; 1 for the
/// first load, 2 after one upgrade, and so on.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// Library instances attached to the shared block now.
pub fn instances() -> u64 {
    shared().map_or(0, |s| s.instances.load(Ordering::Acquire) as u64)
}

/// Objects of resource kind `kind` alive now, across every instance.
pub fn live(kind: usize) -> i64 {
    let counter = shared().and_then(|s| s.live.get(kind % KINDS));
    counter.map_or(0, |c| c.load(Ordering::Relaxed))
}

pub(crate) fn count(kind: usize, delta: i64) {
    if let Some(c) = shared().and_then(|s| s.live.get(kind % KINDS)) {
        c.fetch_add(delta, Ordering::Relaxed);
    }
}

/// FNV-1a of `bytes`, continuing from `hash`.
const fn fnv1a(mut hash: u64, mut bytes: &[u8]) -> u64 {
    while let [byte, rest @ ..] = bytes {
        hash ^= *byte as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        bytes = rest;
    }
    hash
}

/// The fingerprint of a payload whose layout is the compiler's choice
/// (see [`crate::versioned`]): a hash of the crate version, the compiler's
/// version and `layout` (a tag the payload's crate bumps when it changes
/// the payload, as `"box.v4"`). Objects are then only taken over by a
/// library built from the same sources by the same compiler.
pub const fn fingerprint(layout: &str) -> u64 {
    let mut hash = fnv1a(0xcbf2_9ce4_8422_2325, env!("CARGO_PKG_VERSION").as_bytes());
    hash = fnv1a(hash, b"/");
    hash = fnv1a(hash, env!("NIF_GLUE_RUSTC_VERSION").as_bytes());
    hash = fnv1a(hash, b"/");
    fnv1a(hash, layout.as_bytes())
}

/// A type stored in a NIF resource.
///
/// # Safety
/// `Self` must be `#[repr(C)]` with a layout that stays the same for a given
/// [`NifResource::NAME`] in every build of this library, because an object
/// made by one build is used and destroyed by the next one after a takeover.
pub unsafe trait NifResource: Sized + Send + Sync + 'static {
    /// Resource type name, carrying the layout version (`"sluice_valve.v1"`).
    const NAME: &'static CStr;
    /// Index of this kind's live-object counter.
    const KIND: usize;
    /// Whether objects of this type monitor processes ([`NifResource::down`]).
    const MONITORS: bool = false;
    /// Where this instance keeps its handle of the opened resource type.
    fn slot() -> &'static AtomicPtr<ErlNifResourceType>;
    /// A process this object monitors (`enif_monitor_process`) went down.
    fn down(&self, _pid: &ErlNifPid, _monitor: &ErlNifMonitor) {}
    /// Whether this library may take over the live objects of this type
    /// (asked at load and upgrade, before any type is opened); a fixed
    /// layout always may.
    fn compatible() -> bool {
        true
    }
    /// The object was just written at its final address, before any term
    /// refers to it.
    fn made(&self) {}
    /// Drops the object in place; its last reference is gone.
    ///
    /// # Safety
    /// `this` points to a live object, never used again.
    unsafe fn destroy(this: *mut Self) {
        // SAFETY: by the contract above.
        unsafe { ptr::drop_in_place(this) }
    }
}

unsafe extern "C" fn down<T: NifResource>(
    _env: *mut ErlNifEnv,
    obj: *mut c_void,
    pid: *const ErlNifPid,
    monitor: *const ErlNifMonitor,
) {
    // SAFETY: the VM calls this with a live object of type T (initialised by
    // `make`) and valid pid and monitor pointers for the duration of the call.
    let _ = std::panic::catch_unwind(|| unsafe {
        (*payload::<T>(obj)).down(&*pid, &*monitor);
    });
}

/// The resource object of a monitoring type's payload, for
/// `enif_monitor_process`: such a payload is 8-byte aligned, so it sits at
/// the start of the object (see `payload`).
pub fn object<T: NifResource>(value: &T) -> *const c_void {
    const { assert!(!T::MONITORS || std::mem::align_of::<T>() <= 8) };
    (value as *const T).cast()
}

unsafe extern "C" fn destroy<T: NifResource>(_env: *mut ErlNifEnv, obj: *mut c_void) {
    // SAFETY: the VM calls this once per object of type T, after the last
    // reference is gone; the object was initialised by some build's `make`.
    let _ = std::panic::catch_unwind(|| unsafe { T::destroy(payload::<T>(obj)) });
    count(T::KIND, -1);
}

type Destructor = unsafe extern "C" fn(*mut ErlNifEnv, *mut c_void);

const ERL_NIF_RT_CREATE: c_int = 1;
const ERL_NIF_RT_TAKEOVER: c_int = 2;

extern "C" {
    // The VM's own entry point, declared with the flags as a plain int:
    // rustler's binding types them as an enum with no variant for
    // CREATE | TAKEOVER, and such a value must never exist in Rust.
    #[link_name = "enif_open_resource_type"]
    fn open_resource_type(
        env: *mut ErlNifEnv,
        module: *const c_char,
        name: *const c_char,
        dtor: Option<Destructor>,
        flags: c_int,
        tried: *mut c_int,
    ) -> *const ErlNifResourceType;
    #[link_name = "enif_open_resource_type_x"]
    fn open_resource_type_x(
        env: *mut ErlNifEnv,
        name: *const c_char,
        init: *const ErlNifResourceTypeInit,
        flags: c_int,
        tried: *mut c_int,
    ) -> *const ErlNifResourceType;
}

/// Whether this library may take over the live objects of `T`
/// ([`NifResource::compatible`]).
pub fn compatible<T: NifResource>() -> bool {
    T::compatible()
}

/// Opens (creates, or takes over) the resource type of `T`, after
/// [`compatible`] agreed for every type.
///
/// # Safety
/// `env` must be the env of a `load` or `upgrade` callback, during it.
pub unsafe fn open<T: NifResource>(env: *mut ErlNifEnv) -> bool {
    let mut tried: c_int = 0;
    let flags = ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER;
    let ty = if T::MONITORS {
        let init = ErlNifResourceTypeInit {
            dtor: destroy::<T> as *const ErlNifResourceDtor,
            stop: ptr::null::<ErlNifResourceStop>(),
            down: down::<T> as *const ErlNifResourceDown,
            members: 3,
            dyncall: ptr::null(),
        };
        // SAFETY: as below; `init` lists the destructor and the down
        // callback of payload T and lives through the call (the VM copies it).
        unsafe { open_resource_type_x(env, T::NAME.as_ptr(), &init, flags, &mut tried) }
    } else {
        // SAFETY: called from a load/upgrade callback with its env; the name
        // is a NUL-terminated static string and the destructor matches the
        // payload type.
        unsafe {
            open_resource_type(
                env,
                ptr::null(),
                T::NAME.as_ptr(),
                Some(destroy::<T>),
                flags,
                &mut tried,
            )
        }
    };
    T::slot().store(ty.cast_mut(), Ordering::Release);
    !ty.is_null()
}

/// Bytes to allocate for a `T`: the VM only promises 8-byte alignment for
/// resource memory, so a more aligned `T` gets room to be placed at the
/// first suitable address (see [`payload`]).
const fn alloc_size<T>() -> usize {
    std::mem::size_of::<T>() + std::mem::align_of::<T>().saturating_sub(8)
}

/// Where the `T` of the resource memory at `obj` lives: `obj` rounded up to
/// `T`'s alignment. The same for every build, as it depends on `obj` only.
fn payload<T>(obj: *mut c_void) -> *mut T {
    let align = std::mem::align_of::<T>();
    let offset = (obj as usize).wrapping_neg() & (align - 1);
    obj.cast::<u8>().wrapping_add(offset).cast::<T>()
}

/// Moves `value` into a new resource object and returns a term for it.
pub fn make<'a, T: NifResource>(env: Env<'a>, value: T) -> Term<'a> {
    let ty = T::slot().load(Ordering::Acquire);
    // SAFETY: `ty` was opened in load/upgrade for payload T; the allocation
    // (8-byte aligned, with room to align T: `payload` stays within
    // `alloc_size`) is written before the term is made; our reference is released
    // after, so the term holds the only one.
    unsafe {
        let obj = enif_alloc_resource(ty, alloc_size::<T>());
        let at = payload::<T>(obj);
        ptr::write(at, value);
        (*at).made();
        count(T::KIND, 1);
        let term = enif_make_resource(env.as_c_arg(), obj);
        enif_release_resource(obj);
        Term::new(env, term)
    }
}

/// The object of type `T` behind `term`, if it is one.
///
/// # Safety
/// `term` must belong to `env`, and the returned reference must not outlive
/// that env (the term keeps the object alive while the env lives).
pub unsafe fn get<'a, T: NifResource>(env: *mut ErlNifEnv, term: ErlNifTerm) -> Option<&'a T> {
    let ty = T::slot().load(Ordering::Acquire);
    let mut obj: *const c_void = ptr::null();
    // SAFETY: `ty` is T's type, opened at load; `env` and `term` are valid (contract).
    let ok = unsafe { enif_get_resource(env, term, ty, &mut obj) };
    if ok == 0 || obj.is_null() {
        None
    } else {
        let value = payload::<T>(obj.cast_mut());
        // SAFETY: the object was initialised as a T by `make` and lives as
        // long as the env (contract above).
        Some(unsafe { &*value })
    }
}
