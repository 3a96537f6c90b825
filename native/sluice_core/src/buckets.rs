//! A buffer of time buckets (Erlang in Anger, 3.3.4): messages are kept in
//! buckets, each holding the arrivals of one slice of `width` ticks; when
//! the newest message of a bucket is older than `max_age`, the whole bucket
//! is dropped at once (counted as [`Reason::Expired`]), without looking at
//! its messages one by one.
//!
//! # Order
//! Buckets are delivered newest slice first ([`Order::NewestFirst`], for
//! consumers that want the freshest data) or oldest first; inside a bucket,
//! newest first ([`Within::Lifo`], a stack per slice) or oldest first.
//!
//! # Bound
//! At most `max` messages are held. A post into a full buffer drops the
//! oldest message held ([`WhenFull::DropOldest`]) or the new one
//! ([`WhenFull::DropNew`], not copied), counted as overflow; shrinking
//! drops the same way, counted as resize.
//!
//! # Expiry and storage
//! Each bucket stores its messages in [`Chunks`] of its own. Expiry happens
//! on the caller's path of a post or a take, before anything else: the
//! expired buckets are a prefix of the slices (a bucket's newest message is
//! older than the next bucket's), each removed in O(1) and queued for
//! freeing. Queued buckets are freed a few pieces (their index, a storage
//! region) per call ([`REAP_STEP`]) once no take is in flight, so no call
//! frees a large bucket in one go; [`Buckets::close`] and [`Buckets::dispose`] free the
//! rest. A bucket emptied by takes and drops goes the same way.
//!
//! # Clock
//! Every call takes the time from its caller, in ticks (the NIF uses
//! nanoseconds). A buffer made with a manual clock ignores it and uses the
//! time last given to [`Buckets::set_time`], so tests control time.
//!
//! Counters, after every call: `posted == delivered + dropped (all reasons)
//! + len`, and `peak >= len`. Arming works as for a box (see
//! [`crate::mailbox`]).

use std::collections::VecDeque;

use crate::sync::{get_mut, lock, AtomicU64, Mutex, Ordering};

use crate::arming::{Arm, Flags};
use crate::buffer::{BufferError, Posted, Reason, Stats, Taken, Tally};
use crate::chunks::{Backend, Chunks, Slot};
use crate::mailbox::Snapshot;

/// Pieces of removed buckets freed per call.
pub const REAP_STEP: usize = 8;

/// Which bucket is delivered first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// The newest slice first.
    NewestFirst,
    /// The oldest slice first.
    OldestFirst,
}

/// Which message of a bucket is delivered first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Within {
    /// The newest first (a stack per slice).
    Lifo,
    /// The oldest first.
    Fifo,
}

/// What a post into a full buffer drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// The oldest message held.
    DropOldest,
    /// The new message.
    DropNew,
}

/// How a buffer of buckets behaves.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Ticks of arrival time per bucket (at least 1).
    pub width: u64,
    /// A bucket whose newest message is older than this is dropped whole.
    pub max_age: Option<u64>,
    /// Order across buckets.
    pub order: Order,
    /// Order inside a bucket.
    pub within: Within,
    /// What a post into a full buffer drops.
    pub when_full: WhenFull,
    /// Ignore the callers' time; use [`Buckets::set_time`]'s.
    pub manual_clock: bool,
    /// Messages sharing one storage region.
    pub per_chunk: u32,
}

struct Entry<I> {
    slot: Slot<I>,
    at: u64,
    /// A large message (see [`crate::buffer::LARGE`]).
    large: bool,
}

struct Bucket<B: Backend> {
    id: u64,
    slice: u64,
    newest: u64,
    items: VecDeque<Entry<B::Item>>,
    chunks: Chunks<B::Region>,
}

struct Inner<B: Backend> {
    /// Oldest slice first; slices and ids strictly increase.
    buckets: VecDeque<Bucket<B>>,
    next_id: u64,
    /// Removed buckets whose storage is still to be freed.
    reap: Vec<Bucket<B>>,
    in_flight: u32,
    posted: u64,
    tally: Tally,
}

/// A bounded buffer of time buckets; see the module documentation.
pub struct Buckets<B: Backend> {
    cfg: Config,
    len: AtomicU64,
    max: AtomicU64,
    flags: Flags,
    clock: AtomicU64,
    inner: Mutex<Inner<B>>,
}

impl<B: Backend> Inner<B> {
    /// Removes bucket `i` (in O(1)), queueing it for freeing.
    fn remove_bucket(&mut self, i: usize) {
        if let Some(bucket) = self.buckets.remove(i) {
            self.reap.push(bucket);
        }
    }

    /// Frees up to `step` pieces (a bucket's index, a storage region) of
    /// removed buckets, unless a take is in flight.
    fn reap(&mut self, backend: &mut B, step: usize) {
        if self.in_flight > 0 {
            return;
        }
        let mut budget = step;
        while budget > 0 {
            let Some(bucket) = self.reap.last_mut() else {
                return;
            };
            budget -= 1;
            if bucket.items.capacity() > 0 {
                bucket.items = VecDeque::new();
            } else if let Some(region) = bucket.chunks.pop_region() {
                backend.free(region);
            } else {
                self.reap.pop();
            }
        }
    }

    /// Index of the bucket holding the oldest (`oldest`) or newest message.
    fn end(&self, oldest: bool) -> Option<usize> {
        if oldest {
            self.buckets.iter().position(|b| !b.items.is_empty())
        } else {
            self.buckets.iter().rposition(|b| !b.items.is_empty())
        }
    }

    /// Index of the bucket delivered first.
    fn head(&self, order: Order) -> Option<usize> {
        self.end(order == Order::OldestFirst)
    }

    /// Removes the message at one end of bucket `i` (`front`: its oldest),
    /// giving its slot back when `release` (a drop; a take gives it back
    /// later); removes the bucket when emptied, its storage then freed whole.
    fn pop(
        &mut self,
        backend: &mut B,
        i: usize,
        front: bool,
        release: bool,
    ) -> Option<Entry<B::Item>> {
        let bucket = self.buckets.get_mut(i)?;
        let entry = if front {
            bucket.items.pop_front()
        } else {
            bucket.items.pop_back()
        }?;
        if bucket.items.is_empty() {
            self.remove_bucket(i);
        } else if release {
            let _ = bucket.chunks.release(backend, &entry.slot);
        }
        Some(entry)
    }

    /// Drops the oldest (`oldest`) or newest message for `why`.
    fn drop_one(&mut self, backend: &mut B, oldest: bool, why: Reason) -> bool {
        let Some(i) = self.end(oldest) else {
            return false;
        };
        let dropped = self.pop(backend, i, oldest, true).is_some();
        if dropped {
            self.tally.dropped[why as usize] += 1;
        }
        dropped
    }
}

impl<B: Backend> Buckets<B> {
    /// An empty buffer of at most `max` messages.
    pub fn new(cfg: Config, max: usize) -> Result<Self, BufferError> {
        if max == 0 {
            return Err(BufferError::ZeroMax);
        }
        let cfg = Config {
            width: cfg.width.max(1),
            ..cfg
        };
        Ok(Self {
            cfg,
            len: AtomicU64::new(0),
            max: AtomicU64::new(max as u64),
            flags: Flags::new(),
            clock: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                buckets: VecDeque::new(),
                next_id: 0,
                reap: Vec::new(),
                in_flight: 0,
                posted: 0,
                tally: Tally::default(),
            }),
        })
    }

    /// The time to use: the caller's, or the manual clock's.
    fn time(&self, now: u64) -> u64 {
        if self.cfg.manual_clock {
            self.clock.load(Ordering::Acquire)
        } else {
            now
        }
    }

    /// Sets the manual clock (ignored unless the buffer has one); time
    /// never goes back.
    pub fn set_time(&self, now: u64) {
        self.clock.fetch_max(now, Ordering::AcqRel);
    }

    /// Drops the buckets too old at `now`, whole; returns how many messages.
    fn expire(&self, inner: &mut Inner<B>, now: u64) -> u64 {
        let Some(max_age) = self.cfg.max_age else {
            return 0;
        };
        let mut gone = 0;
        while let Some(front) = inner.buckets.front() {
            if now.saturating_sub(front.newest) <= max_age {
                break;
            }
            gone += front.items.len() as u64;
            inner.remove_bucket(0);
        }
        inner.tally.dropped[Reason::Expired as usize] += gone;
        self.sub_len(gone);
        gone
    }

    fn sub_len(&self, n: u64) {
        let _ = self
            .len
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| {
                Some(l.saturating_sub(n))
            });
    }

    /// Offers `item` arriving at `now`. Returns the outcome and the wake-up
    /// to perform.
    pub fn post(
        &self,
        backend: &mut B,
        item: B::Item,
        now: u64,
    ) -> Result<(Posted, Arm), BufferError> {
        self.post_marked(backend, item, false, now)
    }

    /// As [`Buckets::post`], marking the message large or not (see
    /// [`crate::buffer::LARGE`]): a large one is stored in a region of its
    /// own, and handed out only by a take that allows it.
    pub fn post_marked(
        &self,
        backend: &mut B,
        item: B::Item,
        large: bool,
        now: u64,
    ) -> Result<(Posted, Arm), BufferError> {
        let now = self.time(now);
        let mut inner = lock(&self.inner);
        if self.is_closed() {
            return Err(BufferError::Closed);
        }
        inner.reap(backend, REAP_STEP);
        inner.posted += 1;
        self.expire(&mut inner, now);
        let mut full = false;
        if self.len() >= self.max() {
            full = true;
            if self.cfg.when_full == WhenFull::DropNew {
                inner.tally.dropped[Reason::Overflow as usize] += 1;
                return Ok((Posted::Full, Arm::Off));
            }
            if inner.drop_one(backend, true, Reason::Overflow) {
                self.sub_len(1);
            }
        }
        let slice = now / self.cfg.width;
        let open = matches!(inner.buckets.back(), Some(b) if b.slice >= slice);
        if !open {
            let id = inner.next_id;
            inner.next_id += 1;
            inner.buckets.push_back(Bucket {
                id,
                slice,
                newest: now,
                items: VecDeque::new(),
                chunks: Chunks::new(self.cfg.per_chunk),
            });
        }
        if let Some(bucket) = inner.buckets.back_mut() {
            let slot = if large {
                bucket.chunks.store_alone(backend, item)
            } else {
                bucket.chunks.store(backend, item)
            };
            bucket.newest = bucket.newest.max(now);
            bucket.items.push_back(Entry {
                slot,
                at: now,
                large,
            });
        }
        let len = self.len.fetch_add(1, Ordering::AcqRel) + 1;
        inner.tally.peak = inner.tally.peak.max(len);
        drop(inner);
        let posted = if full { Posted::Full } else { Posted::Stored };
        Ok((posted, self.flags.take_arm()))
    }

    /// Drops the buckets too old at `now` and frees a few pieces of removed
    /// ones: what a post or take does first, for a timer to call when
    /// nobody posts or takes.
    pub fn expire_now(&self, backend: &mut B, now: u64) {
        let now = self.time(now);
        let mut inner = lock(&self.inner);
        if !self.is_closed() {
            self.expire(&mut inner, now);
            inner.reap(backend, REAP_STEP);
        }
    }

    /// Gives back the messages of the previous take and hands out at most
    /// `n` more in delivery order, after expiring what is too old at `now`.
    /// Returns them with the drops (overflow, resize, expired) since the
    /// previous take; they stay valid until given back.
    pub fn take(
        &self,
        backend: &mut B,
        release: &[Taken<B::Item>],
        n: usize,
        now: u64,
    ) -> (Vec<Taken<B::Item>>, u64) {
        let (out, dropped, _) = self.take_limited(backend, release, n, usize::MAX, now);
        (out, dropped)
    }

    /// As [`Buckets::take`], handing out at most `large_max` large messages
    /// (see [`crate::mailbox::Mailbox::take_limited`]); `true` besides when
    /// it stopped before a large message for that.
    pub fn take_limited(
        &self,
        backend: &mut B,
        release: &[Taken<B::Item>],
        n: usize,
        large_max: usize,
        now: u64,
    ) -> (Vec<Taken<B::Item>>, u64, bool) {
        let now = self.time(now);
        let mut inner = lock(&self.inner);
        if !release.is_empty() {
            inner.in_flight = inner.in_flight.saturating_sub(1);
            for t in release {
                let i = inner.buckets.binary_search_by_key(&t.home, |b| b.id);
                if let Ok(i) = i {
                    let _ = inner.buckets[i].chunks.release(backend, &t.slot);
                }
            }
        }
        if self.is_closed() {
            inner.reap(backend, usize::MAX);
            return (Vec::new(), 0, false);
        }
        inner.reap(backend, REAP_STEP);
        if n == 0 {
            return (Vec::new(), 0, false);
        }
        self.expire(&mut inner, now);
        let fifo = self.cfg.within == Within::Fifo;
        let mut out = Vec::new();
        let (mut large, mut stopped) = (0, false);
        while out.len() < n {
            let Some(i) = inner.head(self.cfg.order) else {
                break;
            };
            let items = &inner.buckets[i].items;
            let next = if fifo { items.front() } else { items.back() };
            if next.is_some_and(|e| e.large) && large >= large_max {
                stopped = true;
                break;
            }
            let home = inner.buckets[i].id;
            let Some(entry) = inner.pop(backend, i, fifo, false) else {
                break;
            };
            inner.tally.record_sojourn(now.saturating_sub(entry.at));
            large += usize::from(entry.large);
            out.push(Taken {
                slot: entry.slot,
                home,
                bytes: 0,
                large: entry.large,
            });
        }
        let got = out.len() as u64;
        self.sub_len(got);
        inner.tally.delivered += got;
        if got > 0 {
            inner.in_flight += 1;
        }
        let fresh = inner.tally.unreported(0);
        (out, fresh, stopped)
    }

    /// Puts back messages taken but not consumed, in the order they were
    /// delivered: they are the next to be delivered (at the delivery end of
    /// the first bucket). Posts that filled the buffer meanwhile make room
    /// by the overflow rule.
    pub fn restore(
        &self,
        backend: &mut B,
        items: Vec<(B::Item, bool)>,
        now: u64,
    ) -> Result<(), BufferError> {
        let now = self.time(now);
        let mut inner = lock(&self.inner);
        if self.is_closed() {
            return Err(BufferError::Closed);
        }
        let n = items.len() as u64;
        if n > inner.tally.delivered {
            return Err(BufferError::NotDelivered);
        }
        inner.tally.delivered -= n;
        let i = match inner.head(self.cfg.order) {
            Some(i) => i,
            None => {
                let id = inner.next_id;
                inner.next_id += 1;
                let bucket = Bucket {
                    id,
                    slice: now / self.cfg.width,
                    newest: now,
                    items: VecDeque::new(),
                    chunks: Chunks::new(self.cfg.per_chunk),
                };
                if self.cfg.order == Order::NewestFirst {
                    inner.buckets.push_back(bucket);
                    inner.buckets.len() - 1
                } else {
                    inner.buckets.push_front(bucket);
                    0
                }
            }
        };
        let fifo = self.cfg.within == Within::Fifo;
        let bucket = &mut inner.buckets[i];
        // The first delivered goes back last, at the end taken from.
        for &(item, large) in items.iter().rev() {
            let slot = bucket.chunks.store(backend, item);
            let at = bucket.newest;
            let entry = Entry { slot, at, large };
            if fifo {
                bucket.items.push_front(entry);
            } else {
                bucket.items.push_back(entry);
            }
        }
        let len = self.len.fetch_add(n, Ordering::AcqRel) + n;
        inner.tally.peak = inner.tally.peak.max(len);
        let oldest = self.cfg.when_full == WhenFull::DropOldest;
        while self.len() > self.max() && inner.drop_one(backend, oldest, Reason::Overflow) {
            self.sub_len(1);
        }
        Ok(())
    }

    /// Counts `n` delivered messages as dropped by the owner's filter.
    pub fn filtered(&self, n: u64) -> Result<(), BufferError> {
        lock(&self.inner).tally.filtered(n)
    }

    /// Puts back a delivery that reached nobody (see
    /// [`crate::mailbox::Mailbox::give_back`]).
    pub fn give_back(&self, backend: &mut B, items: Vec<(B::Item, bool)>, dropped: u64, now: u64) {
        let n = items.len() as u64;
        match self.restore(backend, items, now) {
            Ok(()) => lock(&self.inner).tally.unreport(dropped),
            Err(_) => lock(&self.inner).tally.undeliver_closed(n, dropped),
        }
    }

    /// Changes the bound; shrinking drops by the overflow rule, as resize.
    pub fn resize(&self, backend: &mut B, max: usize) -> Result<(), BufferError> {
        if max == 0 {
            return Err(BufferError::ZeroMax);
        }
        let mut inner = lock(&self.inner);
        if self.is_closed() {
            return Err(BufferError::Closed);
        }
        self.max.store(max as u64, Ordering::Release);
        let oldest = self.cfg.when_full == WhenFull::DropOldest;
        while self.len() > max as u64 && inner.drop_one(backend, oldest, Reason::Resize) {
            self.sub_len(1);
        }
        Ok(())
    }

    /// Closes the buffer: every message held is dropped (`Closed`) and its
    /// storage freed (once no take is in flight); later posts are refused.
    pub fn close(&self, backend: &mut B) {
        let mut inner = lock(&self.inner);
        if !self.flags.close() {
            return;
        }
        inner.tally.dropped[Reason::Closed as usize] += self.len.swap(0, Ordering::AcqRel);
        while !inner.buckets.is_empty() {
            inner.remove_bucket(0);
        }
        inner.reap(backend, usize::MAX);
    }

    /// Frees all storage now: for when nothing can use the buffer any more.
    pub fn dispose(&mut self, backend: &mut B) {
        let inner = get_mut(&mut self.inner);
        while !inner.buckets.is_empty() {
            inner.remove_bucket(0);
        }
        inner.in_flight = 0;
        inner.reap(backend, usize::MAX);
    }

    /// Arms the buffer; `false` (unarmed) when it holds data already.
    pub fn arm(&self, mode: Arm) -> bool {
        // Under the lock posts count under: no wake-up is lost.
        let _inner = lock(&self.inner);
        self.flags.arm(mode, !self.is_empty())
    }

    /// Disarms the buffer.
    pub fn disarm(&self) {
        self.flags.disarm();
    }

    /// Messages held now (expired buckets count until a call expires them).
    pub fn len(&self) -> u64 {
        self.len.load(Ordering::Acquire)
    }

    /// Whether no message is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound.
    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Acquire)
    }

    /// Whether the buffer was closed.
    pub fn is_closed(&self) -> bool {
        self.flags.is_closed()
    }

    /// The configuration.
    pub fn config(&self) -> Config {
        self.cfg
    }

    /// Buckets held now.
    pub fn buckets(&self) -> usize {
        lock(&self.inner).buckets.len()
    }

    /// Counters, size and storage.
    pub fn snapshot(&self) -> Snapshot {
        let inner = lock(&self.inner);
        let buckets = inner.buckets.iter().chain(&inner.reap);
        let regions = buckets.map(|b| b.chunks.regions()).sum::<usize>();
        Snapshot {
            stats: Stats {
                posted: inner.posted,
                delivered: inner.tally.delivered,
                dropped: inner.tally.dropped,
                peak: inner.tally.peak as usize,
            },
            len: self.len() as usize,
            max: self.max() as usize,
            bytes: 0,
            regions,
            sojourn: inner.tally.sojourn(),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::chunks::fake::Fake;

    fn cfg(order: Order, within: Within, when_full: WhenFull) -> Config {
        Config {
            width: 10,
            max_age: Some(25),
            order,
            within,
            when_full,
            manual_clock: false,
            per_chunk: 4,
        }
    }

    fn take(b: &Buckets<Fake>, fake: &mut Fake, n: usize, now: u64) -> (Vec<u64>, u64) {
        let (taken, dropped) = b.take(fake, &[], n, now);
        for t in &taken {
            assert!(
                fake.regions.contains_key(&t.item().0),
                "taken from a freed region"
            );
        }
        let values = taken.iter().map(|t| t.item().1).collect();
        let _ = b.take(fake, &taken, 0, now);
        (values, dropped)
    }

    fn check(b: &Buckets<Fake>) {
        let s = b.snapshot();
        assert_eq!(
            s.stats.posted,
            s.stats.delivered + s.stats.dropped_total() + s.len as u64
        );
        assert!(s.stats.peak >= s.len);
    }

    #[test]
    fn delivery_order_across_and_within_buckets() {
        // arrivals: 0,1 in slice 0; 2,3 in slice 1; 4 in slice 2
        let times = [0, 5, 10, 15, 20];
        for (order, within, want) in [
            (Order::NewestFirst, Within::Lifo, vec![4, 3, 2, 1, 0]),
            (Order::NewestFirst, Within::Fifo, vec![4, 2, 3, 0, 1]),
            (Order::OldestFirst, Within::Lifo, vec![1, 0, 3, 2, 4]),
            (Order::OldestFirst, Within::Fifo, vec![0, 1, 2, 3, 4]),
        ] {
            let mut fake = Fake::default();
            let b = Buckets::new(cfg(order, within, WhenFull::DropOldest), 10).expect("new");
            for (v, &t) in times.iter().enumerate() {
                b.post(&mut fake, (0, v as u64), t).expect("post");
            }
            assert_eq!(b.buckets(), 3);
            assert_eq!(take(&b, &mut fake, 10, 21).0, want, "{order:?} {within:?}");
            check(&b);
        }
    }

    #[test]
    fn whole_buckets_expire_and_storage_goes() {
        let mut fake = Fake::default();
        let b = Buckets::new(
            cfg(Order::NewestFirst, Within::Lifo, WhenFull::DropOldest),
            100,
        )
        .expect("new");
        for v in 0..10u64 {
            b.post(&mut fake, (0, v), v).expect("post"); // slice 0, newest at 9
        }
        for v in 10..20u64 {
            b.post(&mut fake, (0, v), 30 + v - 10).expect("post"); // slice 3, newest at 39
        }
        // at 35 the first bucket (newest 9) is 26 old: gone whole
        let (got, dropped) = take(&b, &mut fake, 3, 35);
        assert_eq!((got, dropped), (vec![19, 18, 17], 10));
        assert_eq!(b.snapshot().stats.dropped[Reason::Expired as usize], 10);
        // its regions are freed a few per call
        for _ in 0..4 {
            let _ = b.take(&mut fake, &[], 0, 35);
        }
        let held: u32 = fake.regions.values().sum();
        assert!(held <= 8, "copies held: {held}");
        check(&b);
    }

    #[test]
    fn full_buffer_drops_by_policy() {
        for (when_full, want, answers) in [
            (WhenFull::DropOldest, vec![4, 3, 2], 2),
            (WhenFull::DropNew, vec![2, 1, 0], 2),
        ] {
            let mut fake = Fake::default();
            let b = Buckets::new(cfg(Order::NewestFirst, Within::Lifo, when_full), 3).expect("new");
            let fulls = (0..5u64)
                .map(|v| b.post(&mut fake, (0, v), v).expect("post").0)
                .filter(|&p| p == Posted::Full)
                .count();
            assert_eq!(fulls, answers);
            assert_eq!(take(&b, &mut fake, 10, 5), (want, 2), "{when_full:?}");
            check(&b);
        }
    }

    #[test]
    fn a_limited_take_stops_before_large_messages() {
        let mut fake = Fake::default();
        let b = Buckets::new(
            cfg(Order::OldestFirst, Within::Fifo, WhenFull::DropOldest),
            10,
        )
        .expect("new");
        for v in 0..4u64 {
            b.post_marked(&mut fake, (0, v), v == 1, v).expect("post");
        }
        let mut step = |large_max| {
            let (taken, _, stopped) = b.take_limited(&mut fake, &[], 10, large_max, 5);
            let values: Vec<u64> = taken.iter().map(|t| t.item().1).collect();
            let marks: Vec<(u64, bool)> = taken.iter().map(|t| (t.item().1, t.large())).collect();
            let _ = b.take(&mut fake, &taken, 0, 5);
            (values, stopped, marks)
        };
        assert_eq!(step(0), (vec![0], true, vec![(0, false)]));
        assert_eq!(step(0), (vec![], true, vec![]));
        assert_eq!(
            step(1),
            (
                vec![1, 2, 3],
                false,
                vec![(1, true), (2, false), (3, false)]
            )
        );
        check(&b);
    }

    #[test]
    fn restore_puts_back_at_the_head() {
        let mut fake = Fake::default();
        let b = Buckets::new(
            cfg(Order::OldestFirst, Within::Fifo, WhenFull::DropOldest),
            10,
        )
        .expect("new");
        for v in 0..5u64 {
            b.post(&mut fake, (0, v), v * 5).expect("post");
        }
        let (taken, _) = b.take(&mut fake, &[], 3, 21);
        let skipped: Vec<_> = taken[1..].iter().map(|t| (t.item(), false)).collect();
        b.filtered(1).expect("filtered");
        b.restore(&mut fake, skipped, 21).expect("restore");
        let _ = b.take(&mut fake, &taken, 0, 21);
        assert_eq!(take(&b, &mut fake, 10, 21).0, vec![1, 2, 3, 4]);
        check(&b);
    }

    #[test]
    fn resize_close_and_manual_clock() {
        let mut fake = Fake::default();
        let mut c = cfg(Order::NewestFirst, Within::Lifo, WhenFull::DropOldest);
        c.manual_clock = true;
        let b = Buckets::new(c, 10).expect("new");
        b.set_time(100);
        for v in 0..6u64 {
            b.post(&mut fake, (0, v), 999_999).expect("post");
        }
        assert_eq!(b.buckets(), 1, "the callers' time is ignored");
        b.resize(&mut fake, 4).expect("resize");
        assert_eq!(b.snapshot().stats.dropped[Reason::Resize as usize], 2);
        b.set_time(50);
        b.set_time(126);
        assert_eq!(take(&b, &mut fake, 10, 0), (vec![], 6), "expired at 126");
        b.post(&mut fake, (0, 9), 0).expect("post");
        b.close(&mut fake);
        assert!(fake.regions.is_empty());
        assert_eq!(b.post(&mut fake, (0, 10), 0), Err(BufferError::Closed));
        check(&b);
    }
}
