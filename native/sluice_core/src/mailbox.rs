//! A box: a bounded [`Buffer`] whose messages are stored in [`Chunks`], with
//! the time each message spent inside it and one-shot delivery arming.
//!
//! The NIF keeps one `Mailbox` per `sluice_box` behind a mutex; every
//! operation here is one critical section. What the mailbox adds to the
//! buffer:
//! - messages are copied into chunked storage only when they are kept
//!   (a `keep_old` box that is full refuses a post without copying it), and
//!   every message that leaves is released from its chunk at once, so memory
//!   follows the messages held;
//! - sojourn times (delivery time minus arrival time) of delivered messages
//!   go into a [`Histogram`];
//! - `dropped since the last delivery` (overflow and resize drops not yet
//!   reported by a `take`), the third element of pobox's delivery shapes;
//! - arming: the owner asks to be told when data arrives ([`Arm::Notify`])
//!   or to have it sent ([`Arm::Active`]); the first post that finds the box
//!   armed disarms it and reports which wake-up to perform. The state table:
//!
//! | state | event                      | next  | effect                    |
//! |-------|----------------------------|-------|---------------------------|
//! | Off   | `arm(m)`, box empty        | m     | none                      |
//! | Off   | `arm(m)`, box holds data   | Off   | caller delivers now       |
//! | m     | `post` stores a message    | Off   | `post` returns wake-up m  |
//! | m     | `disarm`, `close`          | Off   | none                      |
//!
//! Invariants (after every call): those of [`Buffer`]; every stored
//! message's chunk is alive, and so is the chunk of every message handed out
//! by a take still in flight ([`Mailbox::start_take`] to
//! [`Mailbox::finish_take`]): chunks are never compacted, and a closed box's
//! storage never freed, while a take is in flight; chunk ids are sorted in
//! arrival order, so the messages of one chunk are found by binary search
//! when it is compacted.

use crate::buffer::{Buffer, BufferError, Kind, Posted, Stats};
use crate::chunks::{Backend, Chunks, Slot};
use crate::hist::Histogram;

/// What the owner asked for when data arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arm {
    /// Nothing.
    Off,
    /// A one-word notice (`{mail, Box, new_data}`).
    Notify,
    /// The messages themselves.
    Active,
}

/// A bounded box of messages held in chunked storage; see the module docs.
pub struct Mailbox<B: Backend> {
    buf: Buffer<Slot<B::Item>>,
    chunks: Chunks<B::Region>,
    sojourn: Histogram,
    arm: Arm,
    reported: u64,
    pinned: u32,
}

/// Chunk ids to compact after an operation (rarely more than one).
type Pending = Vec<u64>;

impl<B: Backend> Mailbox<B> {
    /// An empty box; `per_chunk` messages share one storage region.
    pub fn new(
        kind: Kind,
        max: usize,
        max_bytes: Option<u64>,
        per_chunk: u32,
    ) -> Result<Self, BufferError> {
        Ok(Self {
            buf: Buffer::new(kind, max, max_bytes)?,
            chunks: Chunks::new(per_chunk),
            sojourn: Histogram::new(),
            arm: Arm::Off,
            reported: 0,
            pinned: 0,
        })
    }

    /// Offers `item` (of size `bytes`, arriving at `now`); it is copied into
    /// the box's storage only when kept. Returns the outcome and the
    /// wake-up to perform ([`Arm::Off`] for none).
    pub fn post(
        &mut self,
        backend: &mut B,
        item: B::Item,
        bytes: u64,
        now: u64,
    ) -> Result<(Posted, Arm), BufferError> {
        let Self { buf, chunks, .. } = self;
        // Dropped slots are released after the post: `chunks` is borrowed by
        // the copy. One drop per post is the common case, kept off the heap.
        let mut first = None;
        let mut more = Vec::new();
        let posted =
            buf.post_with(
                || chunks.store(backend, item),
                bytes,
                now,
                &mut |slot| match first {
                    None => first = Some(slot),
                    Some(_) => more.push(slot),
                },
            )?;
        let mut pending = Pending::new();
        for slot in first.iter().chain(more.iter()) {
            pending.extend(self.chunks.release(backend, slot));
        }
        self.compact(backend, &pending);
        let wake = if self.buf.is_empty() {
            Arm::Off
        } else {
            std::mem::replace(&mut self.arm, Arm::Off)
        };
        Ok((posted, wake))
    }

    /// Hands at most `n` messages to `out` in delivery order (`out` must
    /// copy them), then releases them. Records their sojourn times against
    /// `now`. Returns how many were handed out and how many were dropped
    /// (overflow, resize) since the previous take.
    pub fn take(
        &mut self,
        backend: &mut B,
        n: usize,
        now: u64,
        out: &mut impl FnMut(B::Item),
    ) -> (usize, u64) {
        let (slots, dropped) = self.start_take(n, now);
        for slot in &slots {
            out(slot.item);
        }
        self.finish_take(backend, &slots);
        (slots.len(), dropped)
    }

    /// First half of a take that copies the messages out while the box is
    /// not locked: removes at most `n` messages (in delivery order), records
    /// their sojourn times against `now`, and returns their slots with the
    /// drops (overflow, resize) since the previous take. The slots stay
    /// valid until [`Mailbox::finish_take`] is called with them: until then
    /// their storage is pinned (never freed, cleared or compacted), whatever
    /// other calls (posts, resizes, a close) do meanwhile.
    pub fn start_take(&mut self, n: usize, now: u64) -> (Vec<Slot<B::Item>>, u64) {
        let Self { buf, sojourn, .. } = self;
        let mut slots = Vec::with_capacity(n.min(buf.len()));
        buf.take(n, &mut |entry| {
            sojourn.record(now.saturating_sub(entry.at));
            slots.push(entry.msg);
        });
        self.pinned += 1;
        (slots, self.take_unreported())
    }

    /// Second half of a take: releases the slots [`Mailbox::start_take`]
    /// returned, and frees the storage of a box closed meanwhile once no
    /// take is in flight.
    pub fn finish_take(&mut self, backend: &mut B, slots: &[Slot<B::Item>]) {
        self.pinned = self.pinned.saturating_sub(1);
        self.release_all(backend, slots);
        if self.buf.is_closed() && self.pinned == 0 {
            self.chunks.free_all(backend);
        }
    }

    /// Drops (overflow and resize) not yet reported, and marks them reported.
    fn take_unreported(&mut self) -> u64 {
        let s = self.buf.stats();
        let total = s.dropped[crate::buffer::Reason::Overflow as usize]
            + s.dropped[crate::buffer::Reason::Resize as usize];
        let fresh = total - self.reported.min(total);
        self.reported = total;
        fresh
    }

    /// Puts back messages taken but not consumed (a filter's `skip`), given
    /// in the order they were delivered, with their sizes: they are the next
    /// to be delivered. They count as arriving at `now`.
    pub fn restore(
        &mut self,
        backend: &mut B,
        items: Vec<(B::Item, u64)>,
        now: u64,
    ) -> Result<(), BufferError> {
        if items.len() as u64 > self.buf.stats().delivered {
            return Err(BufferError::NotDelivered);
        }
        if self.buf.is_closed() {
            return Err(BufferError::Closed);
        }
        let sizes: Vec<u64> = items.iter().map(|&(_, bytes)| bytes).collect();
        let slots = match self.buf.kind() {
            // Re-stacked on top: the last one pushed is delivered first, so
            // store from the last delivered to the first, keeping ids sorted.
            Kind::Stack => {
                let mut slots: Vec<_> = items
                    .iter()
                    .rev()
                    .map(|&(item, _)| self.chunks.store(backend, item))
                    .collect();
                slots.reverse();
                slots
            }
            Kind::Queue | Kind::KeepOld => self
                .chunks
                .store_front(backend, items.iter().map(|&(item, _)| item)),
        };
        let entries = slots
            .into_iter()
            .zip(sizes)
            .map(|(msg, bytes)| crate::buffer::Entry {
                msg,
                bytes,
                at: now,
            })
            .collect();
        let mut gone = Vec::new();
        self.buf.restore(entries, &mut |slot| gone.push(slot))?;
        self.release_all(backend, &gone);
        Ok(())
    }

    /// Counts `n` delivered messages as dropped by the owner's filter.
    pub fn filtered(&mut self, n: u64) -> Result<(), BufferError> {
        self.buf.filtered(n)
    }

    /// Changes the bound, dropping per kind when shrinking (counted as `Resize`).
    pub fn resize(&mut self, backend: &mut B, max: usize) -> Result<(), BufferError> {
        let mut gone = Vec::new();
        self.buf.resize(max, &mut |slot| gone.push(slot))?;
        self.release_all(backend, &gone);
        Ok(())
    }

    /// Closes the box: every message held is dropped (`Closed`), its storage
    /// freed (when the last take in flight finishes, if any), and later
    /// posts are refused.
    pub fn close(&mut self, backend: &mut B) {
        self.arm = Arm::Off;
        self.buf.close(&mut |_| {});
        if self.pinned == 0 {
            self.chunks.free_all(backend);
        }
    }

    /// Closes the box and frees all its storage now, takes in flight or
    /// not: for when nothing can use the box any more (its destructor).
    pub fn dispose(&mut self, backend: &mut B) {
        self.pinned = 0;
        self.close(backend);
    }

    /// Arms the box; returns `false` (and leaves it unarmed) when it holds
    /// data already, so the caller delivers at once.
    pub fn arm(&mut self, mode: Arm) -> bool {
        if self.buf.is_empty() {
            self.arm = mode;
            true
        } else {
            self.arm = Arm::Off;
            false
        }
    }

    /// The current arming.
    pub fn armed(&self) -> Arm {
        self.arm
    }

    /// Disarms the box.
    pub fn disarm(&mut self) {
        self.arm = Arm::Off;
    }

    /// Messages held now.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether no message is held.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bound.
    pub fn max(&self) -> usize {
        self.buf.max()
    }

    /// The byte budget, if any.
    pub fn max_bytes(&self) -> Option<u64> {
        self.buf.max_bytes()
    }

    /// Bytes held now, as counted for the byte budget.
    pub fn bytes(&self) -> u64 {
        self.buf.bytes()
    }

    /// The buffer's kind.
    pub fn kind(&self) -> Kind {
        self.buf.kind()
    }

    /// Whether the box was closed.
    pub fn is_closed(&self) -> bool {
        self.buf.is_closed()
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        self.buf.stats()
    }

    /// Sojourn times of delivered messages.
    pub fn sojourn(&self) -> &Histogram {
        &self.sojourn
    }

    /// Storage regions allocated now.
    pub fn regions(&self) -> usize {
        self.chunks.regions()
    }

    fn release_all(&mut self, backend: &mut B, slots: &[Slot<B::Item>]) {
        let mut pending = Pending::new();
        for slot in slots {
            pending.extend(self.chunks.release(backend, slot));
        }
        self.compact(backend, &pending);
    }

    /// Compacts the chunks `pending` names, unless a take is in flight (its
    /// slots may live in them): a chunk still sparse is named again by the
    /// next release of one of its messages.
    fn compact(&mut self, backend: &mut B, pending: &Pending) {
        if self.pinned > 0 {
            return;
        }
        for (i, &id) in pending.iter().enumerate() {
            if pending[..i].contains(&id) {
                continue;
            }
            let Self { buf, chunks, .. } = self;
            chunks.compact(backend, id, buf.run_mut(|slot| slot.chunk, id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::Reason;
    use std::collections::HashMap;

    /// Regions are numbers; a copy is (region, value), so a test sees which
    /// region a message lives in and whether that region still exists.
    #[derive(Default)]
    pub(super) struct Fake {
        next: u32,
        pub(super) regions: HashMap<u32, u32>,
        pub(super) copies: u32,
    }

    impl Backend for Fake {
        type Region = u32;
        type Item = (u32, u64);
        fn alloc(&mut self) -> u32 {
            self.next += 1;
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
            self.regions.remove(&region).expect("double free");
        }
    }

    fn mailbox(kind: Kind, max: usize) -> Mailbox<Fake> {
        Mailbox::new(kind, max, None, 4).expect("mailbox")
    }

    fn take_all(m: &mut Mailbox<Fake>, fake: &mut Fake) -> Vec<u64> {
        let mut out = Vec::new();
        m.take(fake, usize::MAX, 0, &mut |(_, v)| out.push(v));
        out
    }

    fn check(m: &Mailbox<Fake>, fake: &Fake) {
        let s = m.stats();
        assert_eq!(s.posted, s.delivered + s.dropped_total() + m.len() as u64);
        let held: u32 = fake.regions.values().sum();
        assert!(held as usize >= m.len());
    }

    #[test]
    fn keep_old_refuses_without_copying() {
        let mut fake = Fake::default();
        let mut m = mailbox(Kind::KeepOld, 2);
        for v in 0..5 {
            m.post(&mut fake, (0, v), 0, 0).expect("post");
        }
        assert_eq!(fake.copies, 2);
        assert_eq!(take_all(&mut m, &mut fake), vec![0, 1]);
        check(&m, &fake);
    }

    #[test]
    fn storage_follows_messages() {
        let mut fake = Fake::default();
        let mut m = mailbox(Kind::Queue, 100);
        for v in 0..100 {
            m.post(&mut fake, (0, v), 0, 0).expect("post");
        }
        assert_eq!(m.regions(), 25);
        let mut got = Vec::new();
        let (n, dropped) = m.take(&mut fake, 50, 10, &mut |(_, v)| got.push(v));
        assert_eq!((n, dropped), (50, 0));
        assert_eq!(got, (0..50).collect::<Vec<_>>());
        assert_eq!(m.regions(), 13);
        take_all(&mut m, &mut fake);
        assert!(m.regions() <= 1);
        assert_eq!(m.sojourn().count(), 100);
        assert_eq!(m.sojourn().max(), 10);
        check(&m, &fake);
    }

    #[test]
    fn dropped_since_last_take_is_reported_once() {
        let mut fake = Fake::default();
        let mut m = mailbox(Kind::Queue, 3);
        for v in 0..5 {
            m.post(&mut fake, (0, v), 0, 0).expect("post");
        }
        m.resize(&mut fake, 2).expect("resize");
        let (n, dropped) = m.take(&mut fake, 1, 0, &mut |_| {});
        assert_eq!((n, dropped), (1, 3));
        assert_eq!(m.take(&mut fake, 1, 0, &mut |_| {}), (1, 0));
        check(&m, &fake);
    }

    #[test]
    fn arming_fires_once_on_the_first_post() {
        let mut fake = Fake::default();
        let mut m = mailbox(Kind::Stack, 3);
        assert!(m.arm(Arm::Active));
        assert_eq!(
            m.post(&mut fake, (0, 1), 0, 0),
            Ok((Posted::Stored, Arm::Active))
        );
        assert_eq!(
            m.post(&mut fake, (0, 2), 0, 0),
            Ok((Posted::Stored, Arm::Off))
        );
        assert!(!m.arm(Arm::Notify));
        assert_eq!(m.armed(), Arm::Off);
        take_all(&mut m, &mut fake);
        assert!(m.arm(Arm::Notify));
        m.close(&mut fake);
        assert_eq!(m.armed(), Arm::Off);
        assert!(fake.regions.is_empty());
    }

    #[test]
    fn restore_puts_skipped_messages_first_and_keeps_ids_sorted() {
        for kind in [Kind::Queue, Kind::Stack, Kind::KeepOld] {
            let mut fake = Fake::default();
            let mut m = mailbox(kind, 10);
            for v in 0..6 {
                m.post(&mut fake, (0, v), 0, 0).expect("post");
            }
            let mut got = Vec::new();
            m.take(&mut fake, 3, 0, &mut |item| got.push(item));
            m.post(&mut fake, (0, 6), 0, 0).expect("post");
            // the owner consumed the first, skipped the other two
            let skipped: Vec<_> = got[1..].iter().map(|&item| (item, 0)).collect();
            m.restore(&mut fake, skipped, 5).expect("restore");
            let expected_next: Vec<u64> = got[1..].iter().map(|&(_, v)| v).collect();
            let all = take_all(&mut m, &mut fake);
            assert_eq!(all[..2], expected_next[..], "{kind:?}");
            assert_eq!(all.len(), 6, "{kind:?}");
            assert!(m.restore(&mut fake, vec![((0, 0), 0); 20], 0).is_err());
            check(&m, &fake);
        }
    }

    #[test]
    fn storage_of_a_take_in_flight_outlives_drops_and_close() {
        let mut fake = Fake::default();
        let mut m = Mailbox::new(Kind::Stack, 64, None, 16).expect("mailbox");
        for v in 0..64 {
            m.post(&mut fake, (0, v), 0, 0).expect("post");
        }
        // take the newest 60: the oldest 4 pin chunk 0, which is now sparse
        let (slots, _) = m.start_take(60, 0);
        assert_eq!(slots.len(), 60);
        let before = fake.regions.clone();
        // meanwhile: more posts, drops of the old ones, a resize, a close
        for v in 64..200 {
            m.post(&mut fake, (0, v), 0, 0).expect("post");
        }
        m.resize(&mut fake, 2).expect("resize");
        m.close(&mut fake);
        for slot in &slots {
            assert!(before.contains_key(&slot.item.0));
            assert!(
                fake.regions.contains_key(&slot.item.0),
                "region of {slot:?} freed"
            );
        }
        m.finish_take(&mut fake, &slots);
        assert!(fake.regions.is_empty(), "storage of a closed box freed");
        check(&m, &fake);
    }

    #[test]
    fn stack_with_pinned_bottoms_stays_compact() {
        let mut fake = Fake::default();
        let mut m = Mailbox::new(Kind::Stack, 10_000, None, 64).expect("mailbox");
        for round in 0..100 {
            for v in 0..64 {
                m.post(&mut fake, (0, round * 64 + v), 0, 0).expect("post");
            }
            m.take(&mut fake, 63, 0, &mut |_| {});
        }
        assert_eq!(m.len(), 100);
        let held: u32 = fake.regions.values().sum();
        assert!(held <= 100 * 4 + 64, "copies held: {held}");
        let all = take_all(&mut m, &mut fake);
        assert_eq!(all.len(), 100);
        assert!(all.windows(2).all(|w| w[0] > w[1]), "newest first");
        assert_eq!(m.stats().dropped[Reason::Overflow as usize], 0);
        check(&m, &fake);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::{Arc, Mutex};
    use std::collections::HashSet;

    /// A backend whose live regions are visible outside the box's lock, so
    /// a reader copying outside it can check that what it reads still exists.
    struct Shared {
        next: u32,
        live: Arc<Mutex<HashSet<u32>>>,
    }

    impl Backend for Shared {
        type Region = u32;
        type Item = (u32, u64);
        fn alloc(&mut self) -> u32 {
            self.next += 1;
            self.live.lock().expect("live").insert(self.next);
            self.next
        }
        fn copy_in(&mut self, region: &u32, item: (u32, u64)) -> (u32, u64) {
            assert!(self.live.lock().expect("live").contains(region));
            (*region, item.1)
        }
        fn clear(&mut self, _region: &u32) {}
        fn free(&mut self, region: u32) {
            assert!(
                self.live.lock().expect("live").remove(&region),
                "double free"
            );
        }
    }

    type Boxed = Arc<Mutex<(Mailbox<Shared>, Shared)>>;

    fn boxed(kind: Kind, max: usize) -> (Boxed, Arc<Mutex<HashSet<u32>>>) {
        let live = Arc::new(Mutex::new(HashSet::new()));
        let backend = Shared {
            next: 0,
            live: live.clone(),
        };
        let m = Mailbox::new(kind, max, None, 1).expect("mailbox");
        (Arc::new(Mutex::new((m, backend))), live)
    }

    fn post(b: &Boxed, v: u64) -> Arm {
        let mut guard = b.lock().expect("lock");
        let (m, backend) = &mut *guard;
        m.post(backend, (0, v), 0, 0)
            .map(|(_, wake)| wake)
            .unwrap_or(Arm::Off)
    }

    /// Two producers post into an armed, empty box while the owner takes:
    /// in every interleaving exactly one post performs the wake-up, and the
    /// counters reconcile.
    #[test]
    fn concurrent_posts_fire_one_wake_up_and_reconcile() {
        loom::model(|| {
            let (b, _) = boxed(Kind::Queue, 1);
            assert!(b.lock().expect("lock").0.arm(Arm::Notify));
            let producers: Vec<_> = (0..2u64)
                .map(|v| {
                    let b = b.clone();
                    loom::thread::spawn(move || u32::from(post(&b, v) == Arm::Notify))
                })
                .collect();
            {
                let mut guard = b.lock().expect("lock");
                let (m, backend) = &mut *guard;
                m.take(backend, 1, 0, &mut |_| {});
            }
            let wakes: u32 = producers
                .into_iter()
                .map(|p| p.join().expect("producer"))
                .sum();
            assert_eq!(wakes, 1);
            let guard = b.lock().expect("lock");
            let s = guard.0.stats();
            assert_eq!(s.posted, 2);
            assert_eq!(
                s.posted,
                s.delivered + s.dropped_total() + guard.0.len() as u64
            );
        });
    }

    /// The owner copies taken messages outside the lock while a producer
    /// overflows the box and another process closes it: the storage the
    /// owner reads is alive in every interleaving, and none is left behind.
    #[test]
    fn copying_outside_the_lock_is_safe() {
        loom::model(|| {
            let (b, live) = boxed(Kind::Queue, 1);
            post(&b, 0);
            let producer = {
                let b = b.clone();
                loom::thread::spawn(move || {
                    post(&b, 1);
                    post(&b, 2);
                })
            };
            let closer = {
                let b = b.clone();
                loom::thread::spawn(move || {
                    let mut guard = b.lock().expect("lock");
                    let (m, backend) = &mut *guard;
                    m.close(backend);
                })
            };
            let (slots, _) = b.lock().expect("lock").0.start_take(1, 0);
            for slot in &slots {
                assert!(live.lock().expect("live").contains(&slot.item.0));
            }
            {
                let mut guard = b.lock().expect("lock");
                let (m, backend) = &mut *guard;
                m.finish_take(backend, &slots);
            }
            producer.join().expect("producer");
            closer.join().expect("closer");
            assert!(live.lock().expect("live").is_empty());
            let guard = b.lock().expect("lock");
            let s = guard.0.stats();
            assert_eq!(
                s.posted,
                s.delivered + s.dropped_total() + guard.0.len() as u64
            );
        });
    }
}
