//! One interface over the two buffers an owner can hold behind the same
//! handle and delivery model: a box of lanes ([`Mailbox`]) or a buffer of
//! time buckets ([`Buckets`]).

use crate::buckets::Buckets;
use crate::buffer::{Back, BufferError, Posted, Taken, LARGE};
use crate::chunks::Backend;
use crate::mailbox::{Arm, Mailbox, Snapshot};

/// A box or a buffer of buckets. (The variants differ in size; a store
/// lives on the heap once per handle, so the difference costs nothing.)
#[allow(clippy::large_enum_variant)]
pub enum Store<B: Backend> {
    /// A box with pobox's policies.
    Box(Mailbox<B>),
    /// A buffer of time buckets.
    Buckets(Buckets<B>),
}

impl<B: Backend> Store<B> {
    /// Offers `item` (see [`Mailbox::post`]; a buffer of buckets has one
    /// lane and no byte budget).
    pub fn post(
        &self,
        backend: &mut B,
        lane: usize,
        item: B::Item,
        bytes: u64,
        now: u64,
    ) -> Result<(Posted, Arm), BufferError> {
        match self {
            Store::Box(m) => m.post(backend, lane, item, bytes, now),
            Store::Buckets(b) => b.post(backend, item, now),
        }
    }

    /// As [`Store::post`], with the message's `weight` (bytes its copy
    /// keeps alive; see [`Mailbox::post_weighed`]).
    pub fn post_weighed(
        &self,
        backend: &mut B,
        lane: usize,
        item: B::Item,
        bytes: u64,
        weight: u64,
        now: u64,
    ) -> Result<(Posted, Arm), BufferError> {
        match self {
            Store::Box(m) => m.post_weighed(backend, lane, item, bytes, weight, now),
            Store::Buckets(b) => b.post_marked(backend, item, weight == LARGE, now),
        }
    }

    /// Gives back the previous take's messages and hands out at most `n`.
    pub fn take(
        &self,
        backend: &mut B,
        release: &[Taken<B::Item>],
        n: usize,
        now: u64,
    ) -> (Vec<Taken<B::Item>>, u64) {
        match self {
            Store::Box(m) => m.take(backend, release, n, now),
            Store::Buckets(b) => b.take(backend, release, n, now),
        }
    }

    /// As [`Store::take`], handing out at most `large_max` large messages
    /// (see [`Mailbox::take_limited`]).
    pub fn take_limited(
        &self,
        backend: &mut B,
        release: &[Taken<B::Item>],
        n: usize,
        large_max: usize,
        now: u64,
    ) -> (Vec<Taken<B::Item>>, u64, bool) {
        match self {
            Store::Box(m) => m.take_limited(backend, release, n, large_max, now),
            Store::Buckets(b) => b.take_limited(backend, release, n, large_max, now),
        }
    }

    /// Expires what is too old at `now`, as a post or take would first.
    pub fn expire_now(&self, backend: &mut B, now: u64) {
        match self {
            Store::Box(m) => m.expire_now(backend, now),
            Store::Buckets(b) => b.expire_now(backend, now),
        }
    }

    /// Puts back messages taken but not consumed, with their sizes and
    /// large marks.
    pub fn restore(
        &self,
        backend: &mut B,
        items: Vec<Back<B::Item>>,
        now: u64,
    ) -> Result<(), BufferError> {
        match self {
            Store::Box(m) => m.restore(backend, items, now),
            Store::Buckets(b) => b.restore(backend, unsized_items(items), now),
        }
    }

    /// Puts back a delivery that reached nobody (its owner was dead), with
    /// the drops it reported; counted `Closed` if the store closed meanwhile.
    pub fn give_back(&self, backend: &mut B, items: Vec<Back<B::Item>>, dropped: u64, now: u64) {
        match self {
            Store::Box(m) => m.give_back(backend, items, dropped, now),
            Store::Buckets(b) => b.give_back(backend, unsized_items(items), dropped, now),
        }
    }

    /// Counts `n` delivered messages as dropped by the owner's filter.
    pub fn filtered(&self, n: u64) -> Result<(), BufferError> {
        match self {
            Store::Box(m) => m.filtered(n),
            Store::Buckets(b) => b.filtered(n),
        }
    }

    /// Changes the bound.
    pub fn resize(&self, backend: &mut B, max: usize) -> Result<(), BufferError> {
        match self {
            Store::Box(m) => m.resize(backend, max),
            Store::Buckets(b) => b.resize(backend, max),
        }
    }

    /// Closes it.
    pub fn close(&self, backend: &mut B) {
        match self {
            Store::Box(m) => m.close(backend),
            Store::Buckets(b) => b.close(backend),
        }
    }

    /// Frees all storage now.
    pub fn dispose(&mut self, backend: &mut B) {
        match self {
            Store::Box(m) => m.dispose(backend),
            Store::Buckets(b) => b.dispose(backend),
        }
    }

    /// Arms it; `false` when it holds data already.
    pub fn arm(&self, mode: Arm) -> bool {
        match self {
            Store::Box(m) => m.arm(mode),
            Store::Buckets(b) => b.arm(mode),
        }
    }

    /// Disarms it.
    pub fn disarm(&self) {
        match self {
            Store::Box(m) => m.disarm(),
            Store::Buckets(b) => b.disarm(),
        }
    }

    /// Messages held.
    pub fn len(&self) -> usize {
        match self {
            Store::Box(m) => m.len(),
            Store::Buckets(b) => b.len() as usize,
        }
    }

    /// Whether no message is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound.
    pub fn max(&self) -> usize {
        match self {
            Store::Box(m) => m.max(),
            Store::Buckets(b) => b.max() as usize,
        }
    }

    /// The byte budget, if any.
    pub fn max_bytes(&self) -> Option<u64> {
        match self {
            Store::Box(m) => m.max_bytes(),
            Store::Buckets(_) => None,
        }
    }

    /// Whether it was closed.
    pub fn is_closed(&self) -> bool {
        match self {
            Store::Box(m) => m.is_closed(),
            Store::Buckets(b) => b.is_closed(),
        }
    }

    /// Counters, size and storage.
    pub fn snapshot(&self) -> Snapshot {
        match self {
            Store::Box(m) => m.snapshot(),
            Store::Buckets(b) => b.snapshot(),
        }
    }
}

/// Messages put back into a buffer of buckets (which has no byte budget).
fn unsized_items<I>(items: Vec<Back<I>>) -> Vec<(I, bool)> {
    items
        .into_iter()
        .map(|(item, _, large)| (item, large))
        .collect()
}
