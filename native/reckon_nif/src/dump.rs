//! `dump_analyze/3`: `reckon:crashdump/1,2` through the same parser as the
//! `reckon-dump` binary, on a dirty IO scheduler (a dump of gigabytes takes
//! seconds; the parser holds a bounded amount of memory whatever its size).
//!
//! The report becomes the term of its JSON form: objects are maps whose keys
//! are the report's field names (atoms of a fixed schema: the dump's own
//! names are always values), strings are binaries, `null` is `undefined`.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use reckon_dump::{analyze_path, limits, Options};
use rustler::{Atom, Binary, Encoder, Env, Error, NifResult, Term};
use serde_json::Value;

mod atoms {
    rustler::atoms! { ok, error, undefined, enoent, eacces, eisdir, enotdir, eio }
}

/// `dump_analyze(Path, Top, Threshold)`: `{ok, Report}` or `{error, Posix}`
/// when the file cannot be opened. `Top` is 1 to [`limits::MAX_TOP`].
#[rustler::nif(schedule = "DirtyIo")]
fn dump_analyze<'a>(
    env: Env<'a>,
    path: Binary<'a>,
    top: usize,
    threshold: u64,
) -> NifResult<Term<'a>> {
    if top == 0 || top > limits::MAX_TOP {
        return Err(Error::BadArg);
    }
    let path = Path::new(OsStr::from_bytes(path.as_slice()));
    match analyze_path(path, &Options { top, threshold }) {
        Ok(report) => {
            let value = serde_json::to_value(&report).map_err(|_| Error::BadArg)?;
            Ok((atoms::ok(), to_term(env, &value)?).encode(env))
        }
        Err(e) => Ok((atoms::error(), posix(&e)).encode(env)),
    }
}

fn posix(e: &io::Error) -> Atom {
    match e.kind() {
        io::ErrorKind::NotFound => atoms::enoent(),
        io::ErrorKind::PermissionDenied => atoms::eacces(),
        io::ErrorKind::IsADirectory => atoms::eisdir(),
        io::ErrorKind::NotADirectory => atoms::enotdir(),
        _ => atoms::eio(),
    }
}

/// The term of one JSON value of the report (its depth is the schema's, a
/// handful of levels, whatever the dump holds).
fn to_term<'a>(env: Env<'a>, v: &Value) -> NifResult<Term<'a>> {
    Ok(match v {
        Value::Null => atoms::undefined().encode(env),
        Value::Bool(b) => b.encode(env),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u.encode(env),
            (None, Some(i)) => i.encode(env),
            _ => n.as_f64().unwrap_or(0.0).encode(env),
        },
        Value::String(s) => s.as_str().encode(env),
        Value::Array(items) => items
            .iter()
            .map(|i| to_term(env, i))
            .collect::<NifResult<Vec<Term<'a>>>>()?
            .encode(env),
        Value::Object(fields) => {
            let mut map = Term::map_new(env);
            for (key, value) in fields {
                map = map.map_put(Atom::from_str(env, key)?, to_term(env, value)?)?;
            }
            map
        }
    })
}
