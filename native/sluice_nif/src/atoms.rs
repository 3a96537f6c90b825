//! Atoms used by the NIF answers.

rustler::atoms! {
    ok,
    drop,
    error,
    not_found,
    valve,
    generation,
    instances,
    instance,
    live,
    true_ = "true",
    false_ = "false",
}
