//! NIF glue of the `sluice` OTP application: decodes terms, calls
//! `sluice_core`, encodes the answers. Loaded by the `@private` Erlang module
//! `sluice_nif`; see `docs/nif-upgrade.md` for how a newer build takes over.

mod atoms;
mod box_new;
mod box_take;
mod box_wire;
mod boxes;
mod breaker_names;
mod breakers;
mod drop;
mod limits;
mod locks;
mod terms;
mod tool_ids;
mod tools;

use rustler::sys::ErlNifEnv;

#[global_allocator]
static ALLOCATOR: nif_glue::alloc::VmAlloc = nif_glue::alloc::VmAlloc;
use nif_glue::resource;
use rustler::{Encoder, Env, NifResult, Term};

nif_glue::nif_entry!(c"sluice_nif", open_resource_types);

/// Opens every resource type of this library (creating or taking over),
/// unless live objects of some type were laid out by another build.
fn open_resource_types(env: *mut ErlNifEnv) -> bool {
    use boxes::SluiceBox;
    use breakers::SluiceBreaker;
    use drop::SluiceValve as Valve;
    use drop::SluiceValveV1 as ValveV1;
    use drop::SluiceValveV2 as ValveV2;
    use limits::SluiceLimiter;
    use locks::SluiceLock;
    resource::compatible::<Valve>()
        && resource::compatible::<ValveV2>()
        && resource::compatible::<ValveV1>()
        && resource::compatible::<SluiceBox>()
        && resource::compatible::<SluiceLock>()
        && resource::compatible::<SluiceLimiter>()
        && resource::compatible::<SluiceBreaker>()
        // SAFETY: called by the entry's load and upgrade callbacks with their env.
        && unsafe {
            resource::open::<Valve>(env)
                && resource::open::<ValveV2>(env)
                && resource::open::<ValveV1>(env)
                && resource::open::<SluiceBox>(env)
                && resource::open::<SluiceLock>(env)
                && resource::open::<SluiceLimiter>(env)
                && resource::open::<SluiceBreaker>(env)
        }
}

/// `[{generation, G}, {instances, N}, {instance, Id}, {live, [{Kind, Count}]}]`:
/// how many library instances attached to the shared block so far, how many
/// are loaded now, an identifier of this loaded copy (the address of its
/// entry point), and live objects per resource kind.
#[rustler::nif]
fn lib_info(env: Env<'_>) -> NifResult<Term<'_>> {
    let instance = nif_init as *const () as usize as u64;
    let live = vec![
        (atoms::valve(), resource::live(drop::VALVE_KIND)),
        (atoms::sluice_box(), resource::live(boxes::BOX_KIND)),
        (atoms::sluice_lock(), resource::live(locks::LOCK_KIND)),
        (
            atoms::sluice_limiter(),
            resource::live(limits::LIMITER_KIND),
        ),
        (
            atoms::sluice_breaker(),
            resource::live(breakers::BREAKER_KIND),
        ),
    ];
    Ok(vec![
        (atoms::generation(), resource::generation().encode(env)),
        (atoms::instances(), resource::instances().encode(env)),
        (atoms::instance(), instance.encode(env)),
        (atoms::live(), live.encode(env)),
    ]
    .encode(env))
}

/// Panics on purpose, so tests can see a panic become an exception.
#[rustler::nif]
fn induce_panic() -> NifResult<bool> {
    panic!("sluice_nif: panic requested by induce_panic/0")
}
