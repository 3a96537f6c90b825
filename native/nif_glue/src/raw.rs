//! Hand-written NIF functions for the hottest calls.
//!
//! `#[rustler::nif]` collects its arguments into a `Vec` on every call; a
//! raw function reads them straight from `argv`. Raw functions are
//! registered with [`raw_nif!`] through the same function table as the
//! others, and [`run`] gives them the same panic guard: a panic becomes the
//! exception `nif_panicked`, never an abort.

use std::panic::{catch_unwind, UnwindSafe};

use rustler::sys::{enif_make_badarg, enif_raise_exception, ErlNifEnv, ErlNifTerm};

/// Why a raw NIF refuses its arguments.
#[derive(Debug)]
pub enum Fail {
    /// Wrong argument: raise `badarg`.
    BadArg,
}

/// What a raw NIF body returns.
pub type RawResult = Result<ErlNifTerm, Fail>;

/// Runs a raw NIF body, turning refusals into `badarg` and panics into `nif_panicked`.
///
/// # Safety
/// `env` must be the env the VM passed to the NIF being run.
pub unsafe fn run(
    env: *mut ErlNifEnv,
    body: impl FnOnce() -> RawResult + UnwindSafe,
) -> ErlNifTerm {
    match catch_unwind(body) {
        Ok(Ok(term)) => term,
        // SAFETY: `env` is the calling NIF's env (contract above).
        Ok(Err(Fail::BadArg)) => unsafe { enif_make_badarg(env) },
        // SAFETY: as above; atoms are valid in every env.
        Err(_) => unsafe {
            enif_raise_exception(env, rustler::types::atom::nif_panicked().as_c_arg())
        },
    }
}

/// Registers `$fun(env, args) -> RawResult` as the NIF `$name/$arity`.
#[macro_export]
macro_rules! raw_nif {
    ($name:literal, $arity:literal, $fun:path) => {
        rustler::codegen_runtime::inventory::submit!(rustler::Nif {
            name: concat!($name, "\0").as_ptr() as *const rustler::codegen_runtime::c_char,
            arity: $arity,
            flags: 0,
            raw_func: {
                unsafe extern "C" fn nif(
                    env: *mut rustler::sys::ErlNifEnv,
                    argc: rustler::codegen_runtime::c_int,
                    argv: *const rustler::sys::ErlNifTerm,
                ) -> rustler::sys::ErlNifTerm {
                    // SAFETY: the VM passes `argc` valid terms at `argv`.
                    let args = unsafe { std::slice::from_raw_parts(argv, argc as usize) };
                    // SAFETY: `env` is this call's env.
                    unsafe { $crate::raw::run(env, || $fun(env, args)) }
                }
                nif
            },
        });
    };
}
