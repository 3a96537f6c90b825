//! `top_merge/3`: one chunk into a top-N that the caller carries between
//! calls, so a scan of every process holds O(N + chunk) and no state lives
//! in the library.

use reckon_core::topn::TopN;
use rustler::{Encoder, Env, Error, ListIterator, NifResult, Term};

use crate::{MAX_CHUNK, MAX_N};

/// `top_merge(N, Top, Pairs)`: `Top` (the previous answer, at most `N`
/// `{Key, Value}` pairs, largest first) merged with the chunk `Pairs`
/// (`{Key, Value}`, any key, integer values, at most [`MAX_CHUNK`]); the
/// `N` largest, largest first, ties in the order offered (`Top` first).
#[rustler::nif]
fn top_merge<'a>(
    env: Env<'a>,
    n: usize,
    top: ListIterator<'a>,
    pairs: ListIterator<'a>,
) -> NifResult<Term<'a>> {
    if n > MAX_N {
        return Err(Error::BadArg);
    }
    let mut keys: Vec<Term<'a>> = Vec::with_capacity(n + 64);
    let mut best = TopN::new(n);
    for (i, item) in top.chain(pairs).enumerate() {
        if i >= n + MAX_CHUNK {
            return Err(Error::BadArg);
        }
        let (key, value): (Term<'a>, i64) = item.decode()?;
        best.push(keys.len(), value);
        keys.push(key);
    }
    let out = best
        .into_sorted()
        .into_iter()
        .map(|(k, v)| keys.get(k).map(|&key| (key, v)).ok_or(Error::BadArg))
        .collect::<NifResult<Vec<(Term<'a>, i64)>>>()?;
    Ok(out.encode(env))
}
