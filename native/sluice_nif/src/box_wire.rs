//! The interchange form of a box or buffer of buckets ([`Wire`]): what one
//! build of this library hands another when it converts a box in place
//! (see `nif_glue::versioned` and `docs/nif-upgrade.md`).
//!
//! It carries the box's id, its owner, and the store's picture
//! (`sluice_core::picture`): every message held, each as its external
//! term format (`term_to_binary`) with its arrival key, size and large
//! mark; the counters, the sojourn histogram, the settings, the arming and
//! the closed flag. The messages of a take in progress are never carried
//! (a conversion has the box to itself, and a take gives back what it
//! handed out before it returns).

use std::convert::Infallible;
use std::fmt;

use rustler::sys::{
    enif_alloc_env, enif_binary_to_term, enif_free_env, enif_release_binary, enif_term_to_binary,
    ErlNifBinary, ErlNifEnv, ErlNifTerm,
};
use rustler::{Env, LocalPid, Term};
use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sluice_core::buckets::Buckets;
use sluice_core::mailbox::Mailbox;
use sluice_core::picture::Picture;

use crate::boxes::{Envs, State, Store, LAYOUT};

/// Version of [`Wire`]: bumped with any change of it, or of the types of
/// `sluice_core::picture` it holds.
pub(crate) const WIRE: u64 = 1;

/// The interchange form of a box.
#[derive(Serialize, Deserialize)]
pub struct Wire {
    /// The box's id.
    id: u64,
    /// The owner's pid term: an immediate, the same word in every env of
    /// the VM.
    owner: u64,
    /// The store, its messages in the external term format.
    store: Picture<Bytes>,
}

/// A message in the external term format, serialised as a byte string.
pub struct Bytes(Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Of;
        impl<'de> Visitor<'de> for Of {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(b) = seq.next_element::<u8>()? {
                    v.push(b);
                }
                Ok(Bytes(v))
            }
        }
        d.deserialize_bytes(Of)
    }
}

/// A process-independent env for the terms of one conversion, freed when
/// dropped.
struct Scratch(*mut ErlNifEnv);

impl Scratch {
    fn new() -> Self {
        // SAFETY: allocating an env has no precondition (and never fails).
        Scratch(unsafe { enif_alloc_env() })
    }

    /// `term` (of any live env) in the external term format; empty (which
    /// no build imports) if it cannot be encoded.
    fn encode(&self, term: ErlNifTerm) -> Bytes {
        let mut bin = std::mem::MaybeUninit::<ErlNifBinary>::uninit();
        // SAFETY: `term` is a live term (a stored message); on success the
        // binary is initialised, copied out, and released once.
        unsafe {
            if enif_term_to_binary(self.0, term, bin.as_mut_ptr()) == 0 {
                return Bytes(Vec::new());
            }
            let mut bin = bin.assume_init();
            let bytes = if bin.data.is_null() {
                Vec::new()
            } else {
                std::slice::from_raw_parts(bin.data, bin.size).to_vec()
            };
            enif_release_binary(&mut bin);
            Bytes(bytes)
        }
    }

    /// The term of `bytes`, in this env; `None` if they are not a term.
    fn decode(&self, bytes: &Bytes) -> Option<ErlNifTerm> {
        let mut term = std::mem::MaybeUninit::<ErlNifTerm>::uninit();
        let data = &bytes.0;
        // SAFETY: `data` holds `len` bytes; the term is initialised when
        // any byte was read.
        unsafe {
            let read = enif_binary_to_term(self.0, data.as_ptr(), data.len(), term.as_mut_ptr(), 0);
            (read != 0 && read == data.len()).then(|| term.assume_init())
        }
    }

    /// The local pid whose term is the word `word`.
    fn pid(&self, word: u64) -> Option<LocalPid> {
        let lifetime = ();
        // SAFETY: the env is live while `lifetime` is.
        let env = unsafe { Env::new(&lifetime, self.0) };
        // SAFETY: `ErlNifTerm` is a transparent wrapper of a machine word;
        // decoding checks that the word is a local pid.
        let term = unsafe { std::mem::transmute::<usize, ErlNifTerm>(word as usize) };
        // SAFETY: an immediate term is valid in every env.
        unsafe { Term::new(env, term) }.decode().ok()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // SAFETY: allocated by `new`; none of its terms is used after this.
        unsafe { enif_free_env(self.0) }
    }
}

/// The interchange form of `state`: the object is the caller's alone.
pub(crate) fn export(state: &State) -> Wire {
    let scratch = Scratch::new();
    let store = state
        .store()
        .picture()
        .try_map(|item| Ok::<_, Infallible>(scratch.encode(item)));
    let store = match store {
        Ok(store) => store,
        Err(never) => match never {},
    };
    Wire {
        id: state.id(),
        owner: state.owner_word(),
        store,
    }
}

/// A state of this build from `wire`; `None` when a message is not a
/// term, the owner not a pid, or the settings not a box's.
pub(crate) fn import(wire: Wire) -> Option<State> {
    let scratch = Scratch::new();
    let owner = scratch.pid(wire.owner)?;
    let picture = wire.store.try_map(|b| scratch.decode(&b).ok_or(()));
    let store: Box<Store> = match picture.ok()? {
        Picture::Box(p) => Box::new(Mailbox::from_picture(p, &mut Envs, LAYOUT).ok()?),
        Picture::Buckets(p) => {
            Box::new(Buckets::from_picture(p, &mut Envs, LAYOUT.per_chunk).ok()?)
        }
    };
    // The messages were copied into the store's own envs.
    drop(scratch);
    Some(State::new(wire.id, store, owner, wire.owner))
}
