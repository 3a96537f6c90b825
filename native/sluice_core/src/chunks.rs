//! Storage of many small items in a few large regions, freed as the items go.
//!
//! A buffered Erlang term must be copied out of the producer's heap into
//! memory the buffer owns. One region (a process-independent NIF env) per
//! message costs about a kilobyte each; this module packs up to
//! `per_chunk` items into one region and frees the region when its last item
//! is released, so the overhead per item is a fraction of a word.
//!
//! Regions are opaque here: a [`Backend`] allocates them, copies an item in
//! and frees them, so the bookkeeping is tested without a BEAM.
//!
//! Invariants:
//! - items are stored into the *open* chunk; a chunk closes after
//!   `per_chunk` stores and is never written again;
//! - a chunk's `live` counts its stored items not yet released; a closed
//!   chunk with `live == 0` is freed at once, an open one is reset for reuse;
//! - a closed chunk whose live items fill at most a quarter of what it holds
//!   is reported by [`Chunks::release`] for compaction: the caller gives back
//!   its live slots and [`Chunks::compact`] copies them into a fresh region
//!   of their own, so memory follows the live items, not the history;
//! - chunk ids grow with arrival, so a caller that keeps slots in arrival
//!   order finds a chunk's slots as one contiguous run; items put back in
//!   front of everything ([`Chunks::store_front`]) get a chunk of their own
//!   with an id below every other, which keeps that order.

use std::collections::VecDeque;

/// Allocates, fills and frees regions.
pub trait Backend {
    /// A region holding copied items.
    type Region;
    /// An item (a term): valid while its region lives.
    type Item: Copy;
    /// A new, empty region.
    fn alloc(&mut self) -> Self::Region;
    /// Copies `item` into `region` and returns the copy.
    fn copy_in(&mut self, region: &Self::Region, item: Self::Item) -> Self::Item;
    /// Empties `region` for reuse (every copy in it becomes invalid).
    fn clear(&mut self, region: &Self::Region);
    /// Frees `region` (every copy in it becomes invalid).
    fn free(&mut self, region: Self::Region);
}

/// A stored item and the chunk that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot<I> {
    /// The copy, valid until released.
    pub item: I,
    /// Id of the chunk holding it.
    pub chunk: u64,
}

#[derive(Debug)]
struct Chunk<R> {
    region: R,
    live: u32,
    held: u32,
    stores: u32,
}

/// The chunks of one buffer; see the module documentation.
#[derive(Debug)]
pub struct Chunks<R> {
    chunks: VecDeque<Option<Chunk<R>>>,
    base: u64,
    per_chunk: u32,
}

/// Chunks holding fewer items than this are never compacted.
const MIN_COMPACT: u32 = 16;

/// Id of the first chunk: ids below it are left for [`Chunks::store_front`].
const FIRST_ID: u64 = 1 << 40;

impl<R> Chunks<R> {
    /// Empty storage packing up to `per_chunk` (at least 1) items per region.
    pub fn new(per_chunk: u32) -> Self {
        Self {
            chunks: VecDeque::new(),
            base: FIRST_ID,
            per_chunk: per_chunk.max(1),
        }
    }

    /// Regions allocated now.
    pub fn regions(&self) -> usize {
        self.chunks.iter().filter(|c| c.is_some()).count()
    }

    /// Items stored and not released.
    pub fn live(&self) -> u64 {
        self.chunks
            .iter()
            .flatten()
            .map(|c| u64::from(c.live))
            .sum()
    }

    /// Whether chunk `id` holds one item stored on its own (as
    /// [`Chunks::store_alone`] stores one; also a chunk closed after its
    /// first item).
    pub fn alone(&self, id: u64) -> bool {
        let index = id
            .checked_sub(self.base)
            .and_then(|i| usize::try_from(i).ok());
        let chunk = index
            .and_then(|i| self.chunks.get(i))
            .and_then(Option::as_ref);
        chunk.is_some_and(|c| c.held == 1 && c.stores >= self.per_chunk && self.per_chunk > 1)
    }

    fn get(&mut self, id: u64) -> Option<&mut Chunk<R>> {
        let index = usize::try_from(id.checked_sub(self.base)?).ok()?;
        self.chunks.get_mut(index)?.as_mut()
    }

    /// Copies `item` into the open chunk (opening one when needed).
    pub fn store<B: Backend<Region = R>>(
        &mut self,
        backend: &mut B,
        item: B::Item,
    ) -> Slot<B::Item> {
        let per_chunk = self.per_chunk;
        let open = matches!(self.chunks.back(), Some(Some(c)) if c.stores < per_chunk);
        if !open {
            let region = backend.alloc();
            self.chunks.push_back(Some(Chunk {
                region,
                live: 0,
                held: 0,
                stores: 0,
            }));
        }
        let id = self.base + self.chunks.len() as u64 - 1;
        match self.chunks.back_mut() {
            Some(Some(chunk)) => {
                let copy = backend.copy_in(&chunk.region, item);
                chunk.live += 1;
                chunk.held += 1;
                chunk.stores += 1;
                Slot {
                    item: copy,
                    chunk: id,
                }
            }
            // unreachable: an open chunk was just ensured at the back
            _ => Slot {
                item,
                chunk: u64::MAX,
            },
        }
    }

    /// Copies `item` into a closed chunk of its own, after closing the open
    /// chunk: a heavy item, whose memory goes back to the VM as soon as it
    /// is released instead of when its neighbours are.
    pub fn store_alone<B: Backend<Region = R>>(
        &mut self,
        backend: &mut B,
        item: B::Item,
    ) -> Slot<B::Item> {
        let per_chunk = self.per_chunk;
        if let Some(back) = self.chunks.back_mut() {
            match back {
                Some(c) if c.live == 0 => {
                    if let Some(gone) = back.take() {
                        backend.free(gone.region);
                    }
                    self.trim();
                }
                Some(c) => c.stores = c.stores.max(per_chunk),
                None => {}
            }
        }
        let region = backend.alloc();
        let copy = backend.copy_in(&region, item);
        self.chunks.push_back(Some(Chunk {
            region,
            live: 1,
            held: 1,
            stores: per_chunk,
        }));
        Slot {
            item: copy,
            chunk: self.base + self.chunks.len() as u64 - 1,
        }
    }

    /// Copies `items` into a new, closed chunk placed before every other
    /// (its id is lower than any id handed out so far) and returns their
    /// slots, in order.
    pub fn store_front<B: Backend<Region = R>>(
        &mut self,
        backend: &mut B,
        items: impl IntoIterator<Item = B::Item>,
    ) -> Vec<Slot<B::Item>> {
        let region = backend.alloc();
        let id = self.base.saturating_sub(1);
        let slots: Vec<Slot<B::Item>> = items
            .into_iter()
            .map(|item| Slot {
                item: backend.copy_in(&region, item),
                chunk: id,
            })
            .collect();
        let n = u32::try_from(slots.len()).unwrap_or(u32::MAX);
        if n == 0 {
            backend.free(region);
            return slots;
        }
        let chunk = Chunk {
            region,
            live: n,
            held: n,
            stores: self.per_chunk.max(n),
        };
        self.base = id;
        self.chunks.push_front(Some(chunk));
        slots
    }

    /// Releases a slot. Frees (or, for the open chunk, resets) its chunk when
    /// it was the last live item; returns the chunk's id when it should be
    /// compacted (see [`Chunks::compact`]).
    pub fn release<B: Backend<Region = R>>(
        &mut self,
        backend: &mut B,
        slot: &Slot<B::Item>,
    ) -> Option<u64> {
        self.release_many(backend, slot.chunk, 1)
    }

    /// Releases `n` slots of chunk `id` at once; as [`Chunks::release`].
    pub fn release_many<B: Backend<Region = R>>(
        &mut self,
        backend: &mut B,
        id: u64,
        n: u32,
    ) -> Option<u64> {
        let per_chunk = self.per_chunk;
        let is_back = id + 1 == self.base + self.chunks.len() as u64;
        let chunk = self.get(id)?;
        chunk.live = chunk.live.saturating_sub(n);
        let closed = chunk.stores >= per_chunk;
        if chunk.live == 0 && is_back && !closed {
            backend.clear(&chunk.region);
            chunk.held = 0;
            return None;
        }
        if chunk.live == 0 {
            let index = (id - self.base) as usize;
            if let Some(Some(gone)) = self.chunks.get_mut(index).map(Option::take) {
                backend.free(gone.region);
            }
            self.trim();
            return None;
        }
        (closed && chunk.held >= MIN_COMPACT && chunk.live * 4 <= chunk.held).then_some(id)
    }

    fn trim(&mut self) {
        while let Some(None) = self.chunks.front() {
            self.chunks.pop_front();
            self.base += 1;
        }
        while let Some(None) = self.chunks.back() {
            self.chunks.pop_back();
        }
    }

    /// Moves the live slots of chunk `id` (all of them, as `slots`) into a
    /// fresh region holding nothing else, and frees the old one.
    pub fn compact<'s, B: Backend<Region = R>>(
        &mut self,
        backend: &mut B,
        id: u64,
        slots: impl IntoIterator<Item = &'s mut Slot<B::Item>>,
    ) where
        B::Item: 's,
    {
        let fresh = backend.alloc();
        let mut moved = 0u32;
        for slot in slots.into_iter().filter(|s| s.chunk == id) {
            slot.item = backend.copy_in(&fresh, slot.item);
            moved += 1;
        }
        match self.get(id) {
            Some(chunk) => {
                let old = std::mem::replace(&mut chunk.region, fresh);
                chunk.held = moved;
                chunk.live = moved;
                backend.free(old);
            }
            None => backend.free(fresh),
        }
    }

    /// Removes one region (the newest) and hands it over, to be freed: its
    /// slots become invalid once it is.
    pub fn pop_region(&mut self) -> Option<R> {
        while let Some(chunk) = self.chunks.pop_back() {
            if let Some(chunk) = chunk {
                return Some(chunk.region);
            }
        }
        None
    }

    /// Frees every region; every slot becomes invalid.
    pub fn free_all<B: Backend<Region = R>>(&mut self, backend: &mut B) {
        for chunk in self.chunks.drain(..).flatten() {
            backend.free(chunk.region);
        }
    }
}

/// A backend for tests: regions are numbers and an item is (region,
/// value), so a test sees which region a copy lives in and whether that
/// region still exists.
#[cfg(test)]
pub(crate) mod fake {
    use super::Backend;
    use std::collections::HashMap;

    #[derive(Default)]
    pub(crate) struct Fake {
        next: u32,
        /// Live regions and the copies made into each since it was cleared.
        pub(crate) regions: HashMap<u32, u32>,
        pub(crate) allocs: u32,
        pub(crate) frees: u32,
        pub(crate) copies: u32,
    }

    impl Backend for Fake {
        type Region = u32;
        type Item = (u32, u64);
        fn alloc(&mut self) -> u32 {
            self.next += 1;
            self.allocs += 1;
            self.regions.insert(self.next, 0);
            self.next
        }
        fn copy_in(&mut self, region: &u32, item: (u32, u64)) -> (u32, u64) {
            *self
                .regions
                .get_mut(region)
                .expect("copy into a freed region") += 1;
            self.copies += 1;
            (*region, item.1)
        }
        fn clear(&mut self, region: &u32) {
            self.regions.insert(*region, 0);
        }
        fn free(&mut self, region: u32) {
            self.frees += 1;
            self.regions.remove(&region).expect("double free");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::Fake;
    use super::*;

    fn valid(fake: &Fake, slot: &Slot<(u32, u64)>) -> bool {
        fake.regions.contains_key(&slot.item.0)
    }

    #[test]
    fn packs_items_and_frees_chunks_as_they_empty() {
        let mut fake = Fake::default();
        let mut chunks = Chunks::new(4);
        let slots: Vec<_> = (0..10).map(|v| chunks.store(&mut fake, (0, v))).collect();
        assert_eq!(fake.allocs, 3);
        assert_eq!(chunks.regions(), 3);
        assert_eq!(
            slots.iter().map(|s| s.chunk - FIRST_ID).collect::<Vec<_>>(),
            vec![0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
        );
        for s in &slots[..4] {
            assert!(valid(&fake, s));
            chunks.release(&mut fake, s);
        }
        assert_eq!(fake.frees, 1);
        assert_eq!(chunks.regions(), 2);
        assert!(slots[4..].iter().all(|s| valid(&fake, s)));
        assert_eq!(chunks.live(), 6);
    }

    #[test]
    fn an_item_stored_alone_is_freed_on_release() {
        let mut fake = Fake::default();
        let mut chunks = Chunks::new(4);
        let a = chunks.store(&mut fake, (0, 1));
        let heavy = chunks.store_alone(&mut fake, (0, 2));
        let b = chunks.store(&mut fake, (0, 3));
        assert!(a.chunk < heavy.chunk && heavy.chunk < b.chunk);
        assert_eq!(chunks.regions(), 3);
        chunks.release(&mut fake, &heavy);
        assert!(!valid(&fake, &heavy));
        assert!(valid(&fake, &a) && valid(&fake, &b));
        assert_eq!(chunks.regions(), 2);
        // an empty open chunk is freed, not closed, before a lone item
        chunks.release(&mut fake, &b);
        let lone = chunks.store_alone(&mut fake, (0, 4));
        assert_eq!(chunks.regions(), 2);
        assert_eq!(chunks.live(), 2);
        chunks.release(&mut fake, &lone);
        chunks.release(&mut fake, &a);
        assert_eq!(chunks.regions(), 0);
    }

    #[test]
    fn middle_chunk_freed_and_open_chunk_reused() {
        let mut fake = Fake::default();
        let mut chunks = Chunks::new(2);
        let slots: Vec<_> = (0..5).map(|v| chunks.store(&mut fake, (0, v))).collect();
        // empty the middle chunk (id 1) only, as a stack taking from the top would not, but a resize might
        chunks.release(&mut fake, &slots[2]);
        chunks.release(&mut fake, &slots[3]);
        assert_eq!(chunks.regions(), 2);
        // the open chunk (id 2) empties: it is reset, not freed, and reused
        chunks.release(&mut fake, &slots[4]);
        assert_eq!(chunks.regions(), 2);
        let again = chunks.store(&mut fake, (0, 9));
        assert_eq!(again.chunk, FIRST_ID + 2);
        assert_eq!(fake.allocs, 3);
        chunks.free_all(&mut fake);
        assert!(fake.regions.is_empty());
    }

    #[test]
    fn sparse_chunk_is_compacted() {
        let mut fake = Fake::default();
        let mut chunks = Chunks::new(32);
        let mut slots: Vec<_> = (0..40).map(|v| chunks.store(&mut fake, (0, v))).collect();
        // release 24 of chunk 0's 32: the 24th release leaves 8 live = a quarter
        let mut wanted = None;
        for s in &slots[8..32] {
            wanted = chunks.release(&mut fake, s);
        }
        assert_eq!(wanted, Some(FIRST_ID));
        let old_region = slots[0].item.0;
        chunks.compact(&mut fake, FIRST_ID, slots[..8].iter_mut());
        assert!(!fake.regions.contains_key(&old_region));
        assert!(slots[..8]
            .iter()
            .all(|s| valid(&fake, s) && s.item.0 != old_region));
        assert_eq!(fake.regions[&slots[0].item.0], 8);
        assert_eq!(
            slots[..8].iter().map(|s| s.item.1).collect::<Vec<_>>(),
            (0..8).collect::<Vec<_>>()
        );
        // after compaction the chunk is not reported again until it thins out once more
        assert_eq!(chunks.release(&mut fake, &slots[0]), None);
        slots.truncate(8);
        assert_eq!(chunks.live(), 7 + 8);
    }

    #[test]
    fn stack_pattern_keeps_memory_bounded() {
        // post 64, take the newest 63, repeat: without compaction every chunk
        // would stay pinned by its oldest item
        let mut fake = Fake::default();
        let mut chunks = Chunks::new(64);
        let mut kept: Vec<Slot<(u32, u64)>> = Vec::new();
        for round in 0..100u64 {
            let mut batch: Vec<_> = (0..64)
                .map(|v| chunks.store(&mut fake, (0, round * 64 + v)))
                .collect();
            for i in (1..64).rev() {
                if let Some(id) = chunks.release(&mut fake, &batch[i]) {
                    chunks.compact(&mut fake, id, batch[..i].iter_mut());
                }
            }
            kept.push(batch[0]);
        }
        // 6400 copies would stay pinned without compaction; with it, each old
        // chunk keeps at most MIN_COMPACT / 4 copies for its one live item
        let held: u32 = fake.regions.values().sum();
        assert!(
            held <= 100 * (MIN_COMPACT / 4) + 64,
            "items held in regions: {held}"
        );
        assert_eq!(chunks.live(), 100);
        assert!(kept.iter().all(|s| valid(&fake, s)));
    }

    #[test]
    fn items_put_back_in_front_get_a_lower_id() {
        let mut fake = Fake::default();
        let mut chunks = Chunks::new(4);
        let later = chunks.store(&mut fake, (0, 1));
        let front = chunks.store_front(&mut fake, [(0, 7), (0, 8)]);
        assert!(front
            .iter()
            .all(|s| s.chunk < later.chunk && valid(&fake, s)));
        assert_eq!(front.iter().map(|s| s.item.1).collect::<Vec<_>>(), [7, 8]);
        // the front chunk is closed: new items go to the open chunk
        assert_eq!(chunks.store(&mut fake, (0, 2)).chunk, later.chunk);
        assert!(chunks.store_front(&mut fake, []).is_empty());
        for s in &front {
            chunks.release(&mut fake, s);
        }
        assert!(!valid(&fake, &front[0]));
        assert_eq!(chunks.regions(), 1);
        assert_eq!(chunks.live(), 2);
    }
}
