//! A bounded look at the size of a term before a box copies it.
//!
//! A post copies its message into the box's storage (`enif_make_copy`),
//! which costs time and memory in proportion to the message's heap cells.
//! [`measure`] walks the message with a budget of [`WALK_BUDGET`] cells:
//! a message within it is copied on the caller's scheduler (well under a
//! millisecond); a larger one is answered with a marker, and the Erlang side
//! posts it again through the dirty-CPU variant of the post NIF, so no copy
//! holds a normal scheduler for long; the box marks it large, and copies it
//! out on a dirty scheduler too (see `boxes`). The walk also adds up the bytes of
//! the binaries met, so that a box can tell a heavy message from a light
//! one (see `Mailbox::post_weighed`).

use std::mem::MaybeUninit;

use rustler::sys::{
    c_int, enif_get_list_cell, enif_get_map_size, enif_get_tuple, enif_inspect_binary,
    enif_map_iterator_create, enif_map_iterator_destroy, enif_map_iterator_get_pair,
    enif_map_iterator_next, enif_release_binary, enif_term_to_binary, ErlNifBinary, ErlNifEnv,
    ErlNifMapIterator, ErlNifMapIteratorEntry, ErlNifTerm,
};

/// Heap cells a message may have to be copied on a normal scheduler: about
/// 8 192 words (64 KB) copy in well under a millisecond, and the walk that
/// counts them costs a fraction of the copy.
pub const WALK_BUDGET: u64 = 8192;

/// What [`measure`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// Within the budget: the message's cells (about its heap words) and
    /// weight (bytes the copy keeps alive: its words and its binaries).
    Small {
        /// Heap cells counted.
        cells: u64,
        /// Bytes: 8 per cell, plus the bytes of every binary.
        weight: u64,
    },
    /// Over the budget: to be copied on a dirty scheduler.
    Large,
}

/// Walks `term` with a budget of `budget` cells.
///
/// # Safety
/// `term` must be a valid term of `env`, during the call that owns `env`.
pub unsafe fn measure(env: *mut ErlNifEnv, term: ErlNifTerm, budget: u64) -> Size {
    if is_immediate(term) {
        return Size::Small {
            cells: 1,
            weight: 8,
        };
    }
    let mut cells: u64 = 0;
    let mut bytes: u64 = 0;
    let mut stack = Stack::new(term);
    while let Some(t) = stack.pop() {
        cells += 1;
        if cells > budget {
            return Size::Large;
        }
        if is_immediate(t) {
            continue;
        }
        if is_list_cell(t) {
            let mut head = MaybeUninit::<ErlNifTerm>::uninit();
            let mut tail = MaybeUninit::<ErlNifTerm>::uninit();
            // SAFETY: `t` is a term of `env` (contract; elements of its terms too).
            if unsafe { enif_get_list_cell(env, t, head.as_mut_ptr(), tail.as_mut_ptr()) } != 0 {
                // SAFETY: both were written: `t` is a list cell.
                unsafe {
                    stack.push(tail.assume_init());
                    stack.push(head.assume_init());
                }
            }
            continue;
        }
        let mut arity: c_int = 0;
        let mut elems: *const ErlNifTerm = std::ptr::null();
        // SAFETY: as above.
        if unsafe { enif_get_tuple(env, t, &mut arity, &mut elems) } != 0 {
            let n = usize::try_from(arity).unwrap_or(0);
            if cells + n as u64 > budget {
                return Size::Large;
            }
            // SAFETY: a tuple of `arity` elements at `elems`, valid while `env` is.
            for &e in unsafe { std::slice::from_raw_parts(elems, n) } {
                stack.push(e);
            }
            continue;
        }
        let mut bin = MaybeUninit::<ErlNifBinary>::uninit();
        // SAFETY: as above; `bin` is written when the answer is true.
        if unsafe { enif_inspect_binary(env, t, bin.as_mut_ptr()) } != 0 {
            // SAFETY: written, as `t` is a binary.
            bytes += unsafe { bin.assume_init() }.size as u64;
            continue;
        }
        let mut size: usize = 0;
        // SAFETY: as above.
        if unsafe { enif_get_map_size(env, t, &mut size) } != 0 {
            if cells + 2 * size as u64 > budget {
                return Size::Large;
            }
            // SAFETY: `t` is a map of `env`.
            unsafe { push_map(env, t, &mut stack) };
        }
    }
    Size::Small {
        cells,
        weight: cells.saturating_mul(8).saturating_add(bytes),
    }
}

/// Terms still to look at: a few inline (a normal message needs no
/// allocation), more on the heap.
struct Stack {
    inline: [MaybeUninit<ErlNifTerm>; INLINE],
    len: usize,
    more: Vec<ErlNifTerm>,
}

/// Terms a [`Stack`] holds without allocating.
const INLINE: usize = 32;

impl Stack {
    fn new(first: ErlNifTerm) -> Self {
        let mut stack = Self {
            inline: [MaybeUninit::uninit(); INLINE],
            len: 0,
            more: Vec::new(),
        };
        stack.push(first);
        stack
    }

    fn push(&mut self, t: ErlNifTerm) {
        match self.inline.get_mut(self.len) {
            Some(slot) if self.more.is_empty() => {
                *slot = MaybeUninit::new(t);
                self.len += 1;
            }
            _ => self.more.push(t),
        }
    }

    fn pop(&mut self) -> Option<ErlNifTerm> {
        if let Some(t) = self.more.pop() {
            return Some(t);
        }
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        let slot = self.inline.get(self.len)?;
        // SAFETY: the first `len + 1` inline slots were written by `push`.
        Some(unsafe { slot.assume_init() })
    }
}

/// Whether `t` is a list cell (primary tag 1).
fn is_list_cell(t: ErlNifTerm) -> bool {
    // SAFETY: `ErlNifTerm` is a transparent wrapper of a machine word.
    let word = unsafe { std::mem::transmute::<ErlNifTerm, usize>(t) };
    word & 3 == 1
}

/// The size of `term` in the external term format (encoded, then freed):
/// for a large message on a dirty scheduler; `None` if it cannot be
/// encoded.
///
/// # Safety
/// As for [`measure`].
pub unsafe fn encoded_size(env: *mut ErlNifEnv, term: ErlNifTerm) -> Option<u64> {
    let mut bin = MaybeUninit::<ErlNifBinary>::uninit();
    // SAFETY: `term` is a term of `env` (contract); `bin` is written on success.
    if unsafe { enif_term_to_binary(env, term, bin.as_mut_ptr()) } == 0 {
        return None;
    }
    // SAFETY: written by the successful call above.
    let mut bin = unsafe { bin.assume_init() };
    let size = bin.size as u64;
    // SAFETY: the binary was allocated by `enif_term_to_binary` and is released once.
    unsafe { enif_release_binary(&mut bin) };
    Some(size)
}

/// Whether `t` is an immediate (an atom, a small integer, a local pid or
/// port, `[]`): its primary tag, the two low bits of the word, is 3 in
/// every BEAM (the same representation `boxes::pid_word` relies on).
fn is_immediate(t: ErlNifTerm) -> bool {
    // SAFETY: `ErlNifTerm` is a transparent wrapper of a machine word.
    let word = unsafe { std::mem::transmute::<ErlNifTerm, usize>(t) };
    word & 3 == 3
}

/// Pushes the keys and values of `map` onto `stack`.
///
/// # Safety
/// `map` must be a map term of `env`, during the call that owns `env`.
unsafe fn push_map(env: *mut ErlNifEnv, map: ErlNifTerm, stack: &mut Stack) {
    let mut iter = MaybeUninit::<ErlNifMapIterator>::uninit();
    let first = ErlNifMapIteratorEntry::ERL_NIF_MAP_ITERATOR_HEAD;
    // SAFETY: `map` is a map of `env` (contract); `iter` is written on success.
    if unsafe { enif_map_iterator_create(env, map, iter.as_mut_ptr(), first) } == 0 {
        return;
    }
    let iter = iter.as_mut_ptr();
    let mut key = MaybeUninit::<ErlNifTerm>::uninit();
    let mut value = MaybeUninit::<ErlNifTerm>::uninit();
    // SAFETY: `iter` was created above and is destroyed once, below.
    while unsafe { enif_map_iterator_get_pair(env, iter, key.as_mut_ptr(), value.as_mut_ptr()) }
        != 0
    {
        // SAFETY: both were written by the call that answered true.
        unsafe {
            stack.push(key.assume_init());
            stack.push(value.assume_init());
        }
        // SAFETY: as above.
        unsafe { enif_map_iterator_next(env, iter) };
    }
    // SAFETY: as above.
    unsafe { enif_map_iterator_destroy(env, iter) };
}
