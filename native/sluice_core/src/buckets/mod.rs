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

use serde::{Deserialize, Serialize};

use crate::sync::{get_mut, lock, AtomicU64, Mutex, Ordering};

use crate::arming::{Arm, Flags};
use crate::buffer::{
    Back, Buffer, BufferError, Kind, Posted, Reason, Snapshot, Stats, Taken, Tally, LARGE,
};
use crate::chunks::{Backend, Chunks, Slot};
use crate::picture::Picture;

mod picture;

/// Pieces of removed buckets freed per call.
pub const REAP_STEP: usize = 8;

/// Which bucket is delivered first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    /// The newest slice first.
    NewestFirst,
    /// The oldest slice first.
    OldestFirst,
}

/// Which message of a bucket is delivered first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Within {
    /// The newest first (a stack per slice).
    Lifo,
    /// The oldest first.
    Fifo,
}

/// What a post into a full buffer drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WhenFull {
    /// The oldest message held.
    DropOldest,
    /// The new message.
    DropNew,
}

/// How a buffer of buckets behaves.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
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
    /// A field only the upgrade tests' build has, so that its layout
    /// differs from the default build's.
    #[cfg(feature = "layout_b")]
    _marker: u64,
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
            #[cfg(feature = "layout_b")]
            _marker: 0xb0b0,
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

    /// The configuration.
    pub fn config(&self) -> Config {
        self.cfg
    }

    /// Buckets held now.
    pub fn buckets(&self) -> usize {
        lock(&self.inner).buckets.len()
    }
}

impl<B: Backend> Buffer<B> for Buckets<B> {
    /// One lane and no byte budget: `lane` and `bytes` are ignored; a
    /// message of weight [`LARGE`] is stored in a region of its own, and
    /// handed out only by a take that allows it.
    fn post_weighed(
        &self,
        backend: &mut B,
        _lane: usize,
        item: B::Item,
        _bytes: u64,
        weight: u64,
        now: u64,
    ) -> Result<(Posted, Arm), BufferError> {
        let large = weight == LARGE;
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

    /// Also frees a few pieces of removed buckets.
    fn expire_now(&self, backend: &mut B, now: u64) {
        let now = self.time(now);
        let mut inner = lock(&self.inner);
        if !self.is_closed() {
            self.expire(&mut inner, now);
            inner.reap(backend, REAP_STEP);
        }
    }

    /// Expires what is too old at `now` first; the drops reported include
    /// the expired ones.
    fn take_limited(
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

    /// At the delivery end of the first bucket; sizes are ignored.
    fn restore(
        &self,
        backend: &mut B,
        items: Vec<Back<B::Item>>,
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
        for &(item, _, large) in items.iter().rev() {
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

    fn filtered(&self, n: u64) -> Result<(), BufferError> {
        lock(&self.inner).tally.filtered(n)
    }

    fn give_back(&self, backend: &mut B, items: Vec<Back<B::Item>>, dropped: u64, now: u64) {
        let n = items.len() as u64;
        match self.restore(backend, items, now) {
            Ok(()) => lock(&self.inner).tally.unreport(dropped),
            Err(_) => lock(&self.inner).tally.undeliver_closed(n, dropped),
        }
    }

    /// Shrinking drops by the overflow rule.
    fn resize(&self, backend: &mut B, max: usize) -> Result<(), BufferError> {
        if max == 0 {
            return Err(BufferError::ZeroMax);
        }
        let mut inner = lock(&self.inner);
        if self.is_closed() {
            return Err(BufferError::Closed);
        }
        self.max.store(max as u64, Ordering::Release);
        let oldest = self.cfg.when_full == WhenFull::DropOldest;
        while self.len() > max && inner.drop_one(backend, oldest, Reason::Resize) {
            self.sub_len(1);
        }
        Ok(())
    }

    fn close(&self, backend: &mut B) {
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

    fn dispose(&mut self, backend: &mut B) {
        let inner = get_mut(&mut self.inner);
        while !inner.buckets.is_empty() {
            inner.remove_bucket(0);
        }
        inner.in_flight = 0;
        inner.reap(backend, usize::MAX);
    }

    fn arm(&self, mode: Arm) -> bool {
        // Under the lock posts count under: no wake-up is lost.
        let _inner = lock(&self.inner);
        self.flags.arm(mode, !self.is_empty())
    }

    fn disarm(&self) {
        self.flags.disarm();
    }

    fn set_time(&self, now: u64) {
        self.clock.fetch_max(now, Ordering::AcqRel);
    }

    /// Expired buckets count until a call expires them.
    fn len(&self) -> usize {
        self.len.load(Ordering::Acquire) as usize
    }

    fn max(&self) -> usize {
        self.max.load(Ordering::Acquire) as usize
    }

    fn is_closed(&self) -> bool {
        self.flags.is_closed()
    }
    fn snapshot(&self) -> Snapshot {
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
            len: self.len(),
            max: self.max(),
            bytes: 0,
            regions,
            sojourn: inner.tally.sojourn(),
        }
    }

    fn kind(&self) -> Option<Kind> {
        None
    }

    fn picture(&self) -> Picture<B::Item> {
        Picture::Buckets(self.take_picture())
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
