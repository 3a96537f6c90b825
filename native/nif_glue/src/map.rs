//! Named data at the NIF boundary: options maps with atom keys decoded
//! field by field, and answers encoded as maps with atom keys, so no
//! positional tuple of more than three fields crosses it.

use rustler::{Atom, Decoder, Env, NifResult, Term};

/// The value under `key` in the map `map`, decoded as a `T`: `badarg` when
/// `map` is not a map, has no such key, or holds a value of another type.
pub fn field<'a, T: Decoder<'a>>(map: Term<'a>, key: Atom) -> NifResult<T> {
    map.map_get(key)?.decode()
}

/// The map of `pairs` (each key once; a repeated key is `badarg`).
pub fn of<'a>(env: Env<'a>, pairs: &[(Atom, Term<'a>)]) -> NifResult<Term<'a>> {
    Term::map_from_pairs(env, pairs)
}
