//! One resource shape for every payload whose layout is the compiler's (a
//! box, a lock, a limiter, a breaker, a window): [`Versioned<T>`], two
//! words, `#[repr(C)] { build, state: Arc<T> }`.
//!
//! The first word is the fingerprint of the build that laid `T` out
//! ([`resource::fingerprint`] of [`Payload::LAYOUT`]); the second points
//! to the state on the heap, where its alignment is honoured (resource
//! memory is only 8-byte aligned). The two words are the same in every
//! build, so any build can read the fingerprint of any object and decide
//! what to do with the rest. That decision is made here, once, for every
//! kind:
//! - [`resource::compatible`] (at load): a library refuses to load while
//!   objects of a kind made by another build are alive, unless
//!   [`Payload::migration`] has a way from that build (none today);
//! - [`Versioned::get`] (every call): a handle of another build's object is
//!   refused (`badarg`);
//! - the destructor: an object of another build (made by an older library
//!   after this one took its type over) is never dropped as a `T`; it is
//!   let go without freeing its state (a leak, never a misread);
//! - [`Versioned::make`]: the constructor, counting the object live
//!   ([`resource::live`]) until its destructor runs.
//!
//! # Migration across builds
//! Today an object is only ever read by a build of its own fingerprint.
//! A later build that changes a payload and wants to keep the objects of
//! the older build implements [`Payload::migration`] for that build's
//! fingerprint: a conversion from the old state, given the pointer the old
//! build stored. The load check asks that hook already (a kind with a
//! conversion no longer refuses the load); the handle check and the
//! destructor above are the two places, both here, that would apply it,
//! so the conversion is wired once for every kind, and the shape of the
//! two words (which every build must read alike) never changes.

use std::ffi::CStr;
use std::ops::Deref;
use std::ptr;
use std::sync::atomic::AtomicPtr;
use std::sync::Arc;

use rustler::sys::{
    c_void, enif_make_resource, ErlNifEnv, ErlNifMonitor, ErlNifPid, ErlNifResourceType, ErlNifTerm,
};
use rustler::{Decoder, Env, Error, NifResult, Term};

use crate::resource::{self, NifResource, KINDS};

/// A conversion of the state of an object laid out by another build into
/// this build's state: given the state pointer that build stored (the
/// second word of its [`Versioned`]), the new state, or `None` when this
/// object cannot be converted.
pub type Migrate<T> = unsafe fn(old_state: *const c_void) -> Option<Arc<T>>;

/// The state behind a [`Versioned`] resource.
///
/// # Safety
/// [`Payload::LAYOUT`] must change whenever the layout of `Self`, or of
/// anything it owns that another build may read or free, changes: two
/// builds of this crate by the same compiler with equal tags take over
/// each other's objects. And `Self` must hold no pointer into the statics
/// of the library that made it, since an object outlives that library
/// once a newer one took it over: an empty `HashMap` points at such a
/// static (make maps with room for one entry; they never shrink).
pub unsafe trait Payload: Send + Sync + Sized + 'static {
    /// Resource type name, carrying the version of the resource's own
    /// layout (`"sluice_lock.v1"`: the two words of [`Versioned`]).
    const NAME: &'static CStr;
    /// Index of this kind's live-object counter ([`resource::live`]), and
    /// of its type slot: unique among the versioned kinds of a library.
    const KIND: usize;
    /// The layout tag of `Self` (`"lock.v3"`), bumped with every change of
    /// its layout; part of the build fingerprint.
    const LAYOUT: &'static str;
    /// Whether objects of this kind monitor processes ([`Payload::down`]).
    const MONITORS: bool = false;
    /// A process this object monitors (`enif_monitor_process`) went down.
    fn down(&self, _pid: &ErlNifPid, _monitor: &ErlNifMonitor) {}
    /// How this build converts the state of objects made by the build with
    /// fingerprint `old_build`; `None` (the default, and every payload's
    /// answer today): it cannot, so a library of another fingerprint
    /// refuses to load while objects of this kind are alive, and refuses
    /// their handles.
    fn migration(_old_build: u64) -> Option<Migrate<Self>> {
        None
    }
}

/// A resource of a payload laid out by the compiler: the build fingerprint
/// first, then the state; see the module documentation.
#[repr(C)]
pub struct Versioned<T: Payload> {
    build: u64,
    state: Arc<T>,
}

/// The opened resource type of each versioned kind, by [`Payload::KIND`].
static TYPES: [AtomicPtr<ErlNifResourceType>; KINDS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; KINDS];

// SAFETY: `Versioned<T>` is `#[repr(C)]`, a `u64` fingerprint then one
// pointer, in every build; its `BUILD` is that fingerprint, which `get`
// checks before any use of the state, `compatible` before any takeover and
// the destructor before any drop, so only a build of the same fingerprint
// reads or frees the state, and that build lays `T` out alike (`Payload`'s
// contract). Alignment 8: at the start of its resource object.
unsafe impl<T: Payload> NifResource for Versioned<T> {
    const NAME: &'static CStr = T::NAME;
    const KIND: usize = T::KIND;
    const BUILD: u64 = resource::fingerprint(T::LAYOUT);
    const MONITORS: bool = T::MONITORS;
    fn slot() -> &'static AtomicPtr<ErlNifResourceType> {
        const { assert!(T::KIND < KINDS, "a versioned kind indexes its type slot") };
        match TYPES.get(T::KIND) {
            Some(slot) => slot,
            None => unreachable!("checked at compile time"),
        }
    }
    fn down(&self, pid: &ErlNifPid, monitor: &ErlNifMonitor) {
        self.state.down(pid, monitor);
    }
    fn migrates_from(build: u64) -> bool {
        T::migration(build).is_some()
    }
}

impl<T: Payload> Versioned<T> {
    /// The fingerprint of this build's layout of `T`.
    pub const BUILD: u64 = <Self as NifResource>::BUILD;

    /// A new resource object holding `state`, as a term of `env`; counted
    /// live until its destructor runs.
    pub fn make(env: Env<'_>, state: impl Into<Arc<T>>) -> Term<'_> {
        const {
            assert!(
                Self::BUILD != 0,
                "a fingerprint of 0 would mean a fixed layout"
            )
        };
        let state = state.into();
        resource::make(
            env,
            Versioned {
                build: Self::BUILD,
                state,
            },
        )
    }

    /// The object behind `term`: `badarg` unless it is one of this kind
    /// made by this build.
    pub fn get<'a>(term: Term<'a>) -> NifResult<&'a Self> {
        // SAFETY: `term` belongs to its env, which outlives the borrow.
        unsafe { Self::from_raw(term.get_env().as_c_arg(), term.as_c_arg()) }.ok_or(Error::BadArg)
    }

    /// As [`Versioned::get`], for a raw NIF.
    ///
    /// # Safety
    /// `term` must belong to `env`, and the returned reference must not
    /// outlive that env.
    pub unsafe fn from_raw<'a>(env: *mut ErlNifEnv, term: ErlNifTerm) -> Option<&'a Self> {
        // SAFETY: by the contract above; `resource::get` checks the
        // fingerprint (`BUILD`).
        unsafe { resource::get(env, term) }
    }

    /// The state, shared: for a registry that holds objects weakly.
    pub fn shared(&self) -> &Arc<T> {
        &self.state
    }

    /// This object's resource memory (for `enif_monitor_process`,
    /// `enif_keep_resource`, `enif_release_resource`).
    pub fn object(&self) -> *const c_void {
        resource::object(self)
    }

    /// A new term for this object, in `env`.
    pub fn term<'a>(&self, env: Env<'a>) -> Term<'a> {
        // SAFETY: `self` is a live resource object (it is only ever reached
        // through a term or a kept reference); the term takes its own
        // reference, valid in `env`.
        unsafe {
            Term::new(
                env,
                enif_make_resource(env.as_c_arg(), self.object().cast_mut()),
            )
        }
    }
}

impl<T: Payload> Deref for Versioned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.state
    }
}

impl<'a, T: Payload> Decoder<'a> for &'a Versioned<T> {
    fn decode(term: Term<'a>) -> NifResult<Self> {
        Versioned::get(term)
    }
}
