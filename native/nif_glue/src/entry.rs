//! A library's `nif_init` entry, with `load`, `upgrade` and `unload`
//! callbacks (rustler's `init!` has no upgrade callback, so a loaded module
//! could never be hot-reloaded with it).
//!
//! The functions are the ones every `#[rustler::nif]` and [`crate::raw_nif!`]
//! registers; the callbacks attach to the library-wide
//! [`crate::resource::Shared`] block and open every resource type with
//! takeover, so objects made by an older build keep working.

use std::ffi::CStr;
use std::panic::catch_unwind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use rustler::codegen_runtime::inventory;
use rustler::sys::{c_int, c_void, ErlNifEntry, ErlNifEnv, ErlNifFunc, ErlNifTerm};

use crate::resource;

/// Opens every resource type of a library (see [`resource::open`]); false
/// refuses the load or upgrade.
pub type OpenTypes = fn(*mut ErlNifEnv) -> bool;

struct Entry(ErlNifEntry);

// SAFETY: the entry only holds pointers to static, immutable data (names,
// the leaked function table); the VM reads it once while loading.
unsafe impl Sync for Entry {}
// SAFETY: as above.
unsafe impl Send for Entry {}

static ENTRY: OnceLock<Entry> = OnceLock::new();
static OPEN: OnceLock<OpenTypes> = OnceLock::new();

/// How many module instances use this library image now. `dlopen` of a
/// file already loaded hands back the same image, statics and all (a
/// module reloaded from the same path, as `l(Mod)` does): the VM calls
/// `upgrade` on it again. Such a reload attaches nothing and publishes
/// nothing (the image is already this instance), and only the last
/// `unload` of the image hands its objects over and detaches.
static USES: AtomicUsize = AtomicUsize::new(0);

fn attach_and_open(env: *mut ErlNifEnv, priv_data: *mut *mut c_void, old: *mut c_void) -> c_int {
    if USES.load(Ordering::Acquire) > 0 {
        let outcome = catch_unwind(|| {
            // SAFETY: the VM passes a valid slot for this instance's
            // priv_data; `old` is this image's own block.
            unsafe { *priv_data = old };
            OPEN.get().is_some_and(|open| open(env))
        });
        if let Ok(true) = outcome {
            USES.fetch_add(1, Ordering::AcqRel);
            return 0;
        }
        return 1;
    }
    let outcome = catch_unwind(|| {
        // SAFETY: `old` is null (first load) or the old instance's priv_data.
        let shared = unsafe { resource::attach(old) };
        // SAFETY: the VM passes a valid slot for this instance's priv_data.
        unsafe { *priv_data = shared };
        let opened = OPEN.get().is_some_and(|open| open(env));
        if opened {
            USES.fetch_add(1, Ordering::AcqRel);
            crate::versioned::publish();
        } else {
            // The VM drops a library whose load fails without unloading it.
            // SAFETY: `shared` is what `attach` just gave this instance.
            unsafe { resource::detach(shared) };
        }
        opened
    });
    match outcome {
        Ok(true) => 0,
        _ => 1,
    }
}

unsafe extern "C" fn load(
    env: *mut ErlNifEnv,
    priv_data: *mut *mut c_void,
    _info: ErlNifTerm,
) -> c_int {
    attach_and_open(env, priv_data, std::ptr::null_mut())
}

unsafe extern "C" fn upgrade(
    env: *mut ErlNifEnv,
    priv_data: *mut *mut c_void,
    old_priv_data: *mut *mut c_void,
    _info: ErlNifTerm,
) -> c_int {
    let old = if old_priv_data.is_null() {
        std::ptr::null_mut()
    } else {
        // SAFETY: the VM passes the old instance's priv_data slot, checked non-null.
        unsafe { *old_priv_data }
    };
    attach_and_open(env, priv_data, old)
}

unsafe extern "C" fn unload(_env: *mut ErlNifEnv, priv_data: *mut c_void) {
    if USES.fetch_sub(1, Ordering::AcqRel) > 1 {
        return; // the image stays loaded for another module instance
    }
    // Every object this instance made goes to the instance that replaced
    // it first (its code is about to be unmapped).
    let _ = catch_unwind(crate::versioned::retire);
    // SAFETY: `priv_data` is what `attach` gave this instance.
    let _ = catch_unwind(|| unsafe { resource::detach(priv_data) });
}

/// The entry of the library whose Erlang module is `module`; its callbacks
/// open the resource types with `open` (given the callback's env). Called by the `nif_init` that
/// [`crate::nif_entry!`] defines.
pub fn entry(module: &'static CStr, open: OpenTypes) -> *const ErlNifEntry {
    let entry = ENTRY.get_or_init(|| {
        let _ = OPEN.set(open);
        let funcs: Box<[ErlNifFunc]> = inventory::iter::<rustler::Nif>()
            .map(rustler::Nif::get_def)
            .collect();
        let funcs: &'static [ErlNifFunc] = Box::leak(funcs);
        let mut entry = ErlNifEntry::new(module, funcs, load);
        entry.upgrade = Some(upgrade);
        entry.unload = Some(unload);
        Entry(entry)
    });
    &entry.0
}

/// Defines the library's `nif_init` (the symbol the VM looks up after
/// `dlopen`): `nif_entry!(c"module", open_types)`.
#[macro_export]
macro_rules! nif_entry {
    ($module:expr, $open:path) => {
        /// The entry point the VM looks up after `dlopen`ing the library.
        #[no_mangle]
        pub extern "C" fn nif_init() -> *const rustler::sys::ErlNifEntry {
            $crate::entry::entry($module, $open)
        }
    };
}
