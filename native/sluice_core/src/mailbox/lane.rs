//! A producer's lane: the messages one scheduler thread posted and the
//! owner has not moved out yet, in arrival-key order, with their storage
//! ([`Chunks`]) and the lane's counters. A post locks only its lane; the
//! owner's side moves a lane's queue out by swapping it (see `held`) and
//! gives the slots of messages gone back here.

use std::collections::VecDeque;

use super::{ALONE_WEIGHT, LARGE};
use crate::chunks::{Backend, Chunks, Slot};

pub(super) struct Entry<I> {
    pub(super) slot: Slot<I>,
    pub(super) key: u64,
    /// The message's size (as counted for the byte budget, below 2^63),
    /// with [`LARGE_BIT`] set for a large message: one word, so that a
    /// message held costs no more for the mark.
    sized: u64,
}

/// The bit of [`Entry::sized`] that marks a message posted with the
/// weight [`LARGE`], handed out only by a take that allows it.
const LARGE_BIT: u64 = 1 << 63;

impl<I> Entry<I> {
    pub(super) fn new(slot: Slot<I>, key: u64, bytes: u64, large: bool) -> Self {
        let mark = if large { LARGE_BIT } else { 0 };
        Self {
            slot,
            key,
            sized: bytes.min(LARGE_BIT - 1) | mark,
        }
    }

    /// The message's size, as counted for the byte budget.
    pub(super) fn bytes(&self) -> u64 {
        self.sized & !LARGE_BIT
    }

    /// Whether the message is large.
    pub(super) fn large(&self) -> bool {
        self.sized & LARGE_BIT != 0
    }
}

/// What a producer thread writes: messages not yet moved out, their storage
/// and its counters.
pub(super) struct Lane<B: Backend> {
    pub(super) q: VecDeque<Entry<B::Item>>,
    pub(super) chunks: Chunks<B::Region>,
    pub(super) last_key: u64,
    pub(super) owed: u64,
    /// Weight of the messages kept while owing drops.
    pub(super) owed_weight: u64,
    pub(super) posted: u64,
    pub(super) overflow: u64,
    pub(super) early: u64,
    pub(super) peak: u64,
}

/// The slots of chunk `id` in a queue whose chunk ids never decrease.
fn chunk_run<I>(q: &mut VecDeque<Entry<I>>, id: u64) -> impl Iterator<Item = &mut Slot<I>> {
    let start = q.partition_point(|e| e.slot.chunk < id);
    let end = q.partition_point(|e| e.slot.chunk <= id);
    q.range_mut(start..end).map(|e| &mut e.slot)
}

/// Gives back queue memory when the entries fill less than a quarter of it,
/// keeping room for twice what `q` holds or `floor` entries.
pub(super) fn trim<I>(q: &mut VecDeque<I>, floor: usize) {
    let keep = (q.len() * 2).max(floor).max(64);
    if q.capacity() > keep && q.len() * 4 < q.capacity() {
        q.shrink_to(keep);
    }
}

impl<B: Backend> Lane<B> {
    pub(super) fn new(per_chunk: u32) -> Self {
        Self {
            q: VecDeque::new(),
            chunks: Chunks::new(per_chunk),
            last_key: 0,
            owed: 0,
            owed_weight: 0,
            posted: 0,
            overflow: 0,
            early: 0,
            peak: 0,
        }
    }

    /// Copies `item` (of weight `weight`) in as the lane's newest message:
    /// a heavy one in a region of its own, freed as soon as it goes (and
    /// marked large if its weight is [`LARGE`]).
    pub(super) fn push(
        &mut self,
        backend: &mut B,
        item: B::Item,
        bytes: u64,
        weight: u64,
        key: u64,
    ) {
        let key = key.max(self.last_key + 1);
        self.last_key = key;
        let slot = if weight >= ALONE_WEIGHT {
            self.chunks.store_alone(backend, item)
        } else {
            self.chunks.store(backend, item)
        };
        self.q
            .push_back(Entry::new(slot, key, bytes, weight == LARGE));
    }

    /// Releases slots of this lane (their entries already removed), given
    /// as runs of (chunk id, count), and, unless `pinned`, compacts the
    /// chunks left sparse; `out` holds the lane's messages moved out (older
    /// than `q`'s, so chunk ids never decrease along `out` then `q`).
    pub(super) fn release(
        &mut self,
        backend: &mut B,
        runs: &[(u64, u32)],
        out: &mut VecDeque<Entry<B::Item>>,
        pinned: bool,
    ) {
        let mut pending: Vec<u64> = Vec::new();
        for &(id, n) in runs {
            if let Some(id) = self.chunks.release_many(backend, id, n) {
                if !pending.contains(&id) {
                    pending.push(id);
                }
            }
        }
        if pinned {
            return;
        }
        for id in pending {
            let run = chunk_run(out, id).chain(chunk_run(&mut self.q, id));
            self.chunks.compact(backend, id, run);
        }
    }
}
