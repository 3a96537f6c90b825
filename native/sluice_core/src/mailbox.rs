//! A box: a bounded buffer of messages shared by many producers and one
//! owner, with the time each message spent inside it and one-shot delivery
//! arming.
//!
//! # Lanes
//! Messages are kept in *lanes*: each producer thread posts into a lane of
//! its own (the caller picks it, typically one per scheduler thread), under
//! that lane's lock, into that lane's storage. A post touches nothing
//! another scheduler writes, except the count of messages held, and only
//! while the box is not full: two schedulers posting into one box do not
//! take cache lines from each other, where a single lock would be taken
//! from one core by the other at every post.
//!
//! Every message gets an arrival key (its arrival time, in nanoseconds,
//! strictly increasing within a lane); the box's order is the keys' order,
//! ties broken by lane. Operations on the whole box (take, restore, resize,
//! close, arming) lock every lane, in index order, then the control block.
//!
//! # Bound and drops
//! `len` counts the messages logically held; it never exceeds `max`. A post
//! into a box that is not full raises it (compare-and-swap). A post into a
//! full `queue` or `stack` box keeps the new message and drops the oldest
//! held: the drop is counted at once (the post answers `full`), and carried
//! out later, when the lane owes `slack` drops or before any operation that
//! removes messages (*settling*: the oldest messages over all lanes are
//! freed). Until then the lane holds the message to be dropped; memory stays
//! bounded by `max + lanes × slack` messages. Messages only ever enter a box
//! newer than every one held (or as the owner puts them back), so the
//! oldest at settling time are those the posts dropped. A `keep_old` box
//! refuses the new message without copying it. A box with a byte budget
//! has one lane and settles every post at once (the drops depend on sizes).
//!
//! Posts from one thread are delivered in the order made. Concurrent posts
//! that race for the last free places are answered by the order in which
//! they claimed them, while drops follow arrival keys: which of two racing
//! posts hears `full` may differ from which message was dropped; the
//! counts are exact either way.
//!
//! Counters, after every call: `posted == delivered + dropped (all reasons)
//! + len`, and `peak >= len`.
//!
//! # Arming
//! The owner asks to be told when data arrives ([`Arm::Notify`]) or to have
//! it sent ([`Arm::Active`]); the first post that finds the box armed
//! disarms it and reports which wake-up to perform:
//!
//! | state | event                      | next  | effect                    |
//! |-------|----------------------------|-------|---------------------------|
//! | Off   | `arm(m)`, box empty        | m     | none                      |
//! | Off   | `arm(m)`, box holds data   | Off   | caller delivers now       |
//! | m     | `post` stores a message    | Off   | `post` returns wake-up m  |
//! | m     | `disarm`, `close`          | Off   | none                      |
//!
//! # Storage
//! Each lane keeps its messages in [`Chunks`]: a message leaving is released
//! from its chunk at once, and sparse chunks are compacted. A take hands
//! messages out to be copied while the box is unlocked: until the caller
//! gives them back ([`Mailbox::take`]'s `release`), every lane is *pinned*:
//! no chunk is compacted, and a closed box's storage is not freed.

use std::collections::VecDeque;

#[cfg(loom)]
use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};
#[cfg(loom)]
use loom::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
#[cfg(not(loom))]
use std::sync::{Mutex, MutexGuard};

pub use crate::buffer::{BufferError, Kind, Posted, Reason, Stats, REASONS};
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

/// How a box is laid out.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Lanes (at least 1; a box with a byte budget uses 1).
    pub lanes: usize,
    /// Drops a lane may owe before its post settles them.
    pub slack: u64,
    /// Messages sharing one storage region.
    pub per_chunk: u32,
}

/// A message handed out by a take, valid until given back.
#[derive(Debug, Clone, Copy)]
pub struct Taken<I> {
    slot: Slot<I>,
    lane: usize,
}

impl<I: Copy> Taken<I> {
    /// The stored message.
    pub fn item(&self) -> I {
        self.slot.item
    }
}

/// A picture of the box for `info`.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Counters since the box was made.
    pub stats: Stats,
    /// Messages held.
    pub len: usize,
    /// The bound.
    pub max: usize,
    /// Bytes held, as counted for the byte budget.
    pub bytes: u64,
    /// Storage regions allocated.
    pub regions: usize,
    /// Sojourn times of delivered messages.
    pub sojourn: Histogram,
}

/// Keys start here: restored messages get keys below every other.
const KEY_BASE: u64 = 1 << 62;
const CLOSED: u32 = 1;
const NOTIFY: u32 = 2;
const ACTIVE: u32 = 4;
const ARMED: u32 = NOTIFY | ACTIVE;

struct Entry<I> {
    slot: Slot<I>,
    key: u64,
    bytes: u64,
}

struct Lane<B: Backend> {
    q: VecDeque<Entry<B::Item>>,
    chunks: Chunks<B::Region>,
    last_key: u64,
    owed: u64,
    posted: u64,
    overflow: u64,
    peak: u64,
    pinned: u32,
}

/// Keeps what two cores write apart.
#[repr(align(128))]
struct Padded<T>(T);

/// Words every post reads.
struct Hot {
    len: AtomicU64,
    max: AtomicU64,
    flags: AtomicU32,
    /// Keys of later posts are above this (raised by a stack's restore).
    floor: AtomicU64,
}

struct Control {
    delivered: u64,
    dropped: [u64; REASONS],
    reported: u64,
    peak: u64,
    bytes: u64,
    sojourn: Histogram,
}

/// A bounded box of messages in lanes; see the module documentation.
pub struct Mailbox<B: Backend> {
    kind: Kind,
    max_bytes: Option<u64>,
    slack: u64,
    hot: Padded<Hot>,
    control: Padded<Mutex<Control>>,
    lanes: Box<[Padded<Mutex<Lane<B>>>]>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn arm_of(flags: u32) -> Arm {
    if flags & ACTIVE != 0 {
        Arm::Active
    } else if flags & NOTIFY != 0 {
        Arm::Notify
    } else {
        Arm::Off
    }
}

impl<B: Backend> Lane<B> {
    fn new(per_chunk: u32) -> Self {
        Self {
            q: VecDeque::new(),
            chunks: Chunks::new(per_chunk),
            last_key: 0,
            owed: 0,
            posted: 0,
            overflow: 0,
            peak: 0,
            pinned: 0,
        }
    }

    /// Copies `item` in as the lane's newest message.
    fn push(&mut self, backend: &mut B, item: B::Item, bytes: u64, key: u64) {
        let key = key.max(self.last_key + 1);
        self.last_key = key;
        let slot = self.chunks.store(backend, item);
        self.q.push_back(Entry { slot, key, bytes });
    }

    /// Releases slots of this lane (their entries already removed), gives
    /// back queue memory the entries fill less than a quarter of, and
    /// compacts sparse chunks unless pinned.
    fn release(&mut self, backend: &mut B, slots: impl IntoIterator<Item = Slot<B::Item>>) {
        let capacity = self.q.capacity();
        if capacity > 64 && self.q.len() * 4 < capacity {
            self.q.shrink_to(capacity / 2);
        }
        let mut pending: Vec<u64> = Vec::new();
        for slot in slots {
            if let Some(id) = self.chunks.release(backend, &slot) {
                if !pending.contains(&id) {
                    pending.push(id);
                }
            }
        }
        if self.pinned > 0 {
            return;
        }
        for id in pending {
            // Entries are in arrival order, so a chunk's are one run.
            let start = self.q.partition_point(|e| e.slot.chunk < id);
            let end = self.q.partition_point(|e| e.slot.chunk <= id);
            let run = self.q.range_mut(start..end).map(|e| &mut e.slot);
            self.chunks.compact(backend, id, run);
        }
    }
}

/// Every lane and the control block, locked.
struct All<'a, B: Backend> {
    mb: &'a Mailbox<B>,
    lanes: Vec<MutexGuard<'a, Lane<B>>>,
    ctl: MutexGuard<'a, Control>,
}

impl<B: Backend> All<'_, B> {
    fn len(&self) -> u64 {
        self.mb.hot.0.len.load(Ordering::Acquire)
    }

    fn set_len(&self, len: u64) {
        self.mb.hot.0.len.store(len, Ordering::Release);
    }

    /// The lane holding the oldest message.
    fn oldest(&self) -> Option<usize> {
        let heads = self.lanes.iter().enumerate();
        let keyed = heads.filter_map(|(i, l)| l.q.front().map(|e| (e.key, i)));
        keyed.min().map(|(_, i)| i)
    }

    /// The lane holding the newest message.
    fn newest(&self) -> Option<usize> {
        let tails = self.lanes.iter().enumerate();
        let keyed = tails.filter_map(|(i, l)| l.q.back().map(|e| (e.key, i)));
        keyed.max().map(|(_, i)| i)
    }

    /// Removes the oldest (`front`) or newest message.
    fn remove(&mut self, front: bool) -> Option<(usize, Entry<B::Item>)> {
        let i = if front { self.oldest() } else { self.newest() }?;
        let lane = &mut self.lanes[i];
        let entry = if front {
            lane.q.pop_front()
        } else {
            lane.q.pop_back()
        }?;
        self.ctl.bytes = self.ctl.bytes.saturating_sub(entry.bytes);
        Some((i, entry))
    }

    /// Drops one held message per the kind's end for `why`, counted; returns
    /// whether there was one.
    fn drop_one(&mut self, backend: &mut B, front: bool, why: Reason) -> bool {
        match self.remove(front) {
            Some((i, entry)) => {
                self.lanes[i].release(backend, [entry.slot]);
                self.ctl.dropped[why as usize] += 1;
                self.set_len(self.len().saturating_sub(1));
                true
            }
            None => false,
        }
    }

    /// Carries out the drops posts owe: the oldest messages go.
    fn settle(&mut self, backend: &mut B) {
        let owed: u64 = self
            .lanes
            .iter_mut()
            .map(|l| std::mem::take(&mut l.owed))
            .sum();
        for _ in 0..owed {
            match self.remove(true) {
                Some((i, entry)) => self.lanes[i].release(backend, [entry.slot]),
                None => break,
            }
        }
    }

    fn closed(&self) -> bool {
        self.mb.is_closed()
    }

    fn stats(&self) -> Stats {
        let mut stats = Stats {
            posted: self.lanes.iter().map(|l| l.posted).sum(),
            delivered: self.ctl.delivered,
            dropped: self.ctl.dropped,
            peak: self
                .lanes
                .iter()
                .map(|l| l.peak)
                .fold(self.ctl.peak, u64::max) as usize,
        };
        stats.dropped[Reason::Overflow as usize] +=
            self.lanes.iter().map(|l| l.overflow).sum::<u64>();
        stats
    }

    /// Drops (overflow and resize) not yet reported, and marks them reported.
    fn unreported(&mut self) -> u64 {
        let s = self.stats();
        let total = s.dropped[Reason::Overflow as usize] + s.dropped[Reason::Resize as usize];
        let fresh = total - self.ctl.reported.min(total);
        self.ctl.reported = total;
        fresh
    }

    /// Frees every lane's storage once no take is in flight.
    fn free_if_closed(&mut self, backend: &mut B) {
        if self.closed() {
            for lane in self.lanes.iter_mut().filter(|l| l.pinned == 0) {
                lane.q.clear();
                lane.chunks.free_all(backend);
            }
        }
    }
}

impl<B: Backend> Mailbox<B> {
    /// An empty box.
    pub fn new(
        kind: Kind,
        max: usize,
        max_bytes: Option<u64>,
        layout: Layout,
    ) -> Result<Self, BufferError> {
        if max == 0 {
            return Err(BufferError::ZeroMax);
        }
        if max_bytes == Some(0) {
            return Err(BufferError::ZeroMaxBytes);
        }
        let lanes = if max_bytes.is_some() {
            1
        } else {
            layout.lanes.max(1)
        };
        Ok(Self {
            kind,
            max_bytes,
            slack: layout.slack.max(1),
            hot: Padded(Hot {
                len: AtomicU64::new(0),
                max: AtomicU64::new(max as u64),
                flags: AtomicU32::new(0),
                floor: AtomicU64::new(0),
            }),
            control: Padded(Mutex::new(Control {
                delivered: 0,
                dropped: [0; REASONS],
                reported: 0,
                peak: 0,
                bytes: 0,
                sojourn: Histogram::new(),
            })),
            lanes: (0..lanes)
                .map(|_| Padded(Mutex::new(Lane::new(layout.per_chunk))))
                .collect(),
        })
    }

    fn lock_all(&self) -> All<'_, B> {
        let lanes = self.lanes.iter().map(|l| lock(&l.0)).collect();
        All {
            mb: self,
            lanes,
            ctl: lock(&self.control.0),
        }
    }

    /// Offers `item` (of size `bytes`, arriving at `now` nanoseconds) from
    /// lane `lane` (any number; taken modulo the lanes). It is copied into
    /// the box's storage only when kept. Returns the outcome and the wake-up
    /// to perform ([`Arm::Off`] for none).
    pub fn post(
        &self,
        backend: &mut B,
        lane: usize,
        item: B::Item,
        bytes: u64,
        now: u64,
    ) -> Result<(Posted, Arm), BufferError> {
        if let Some(budget) = self.max_bytes {
            return self.post_sized(backend, item, bytes, budget, now);
        }
        let mut l = lock(&self.lanes[lane % self.lanes.len()].0);
        if self.is_closed() {
            return Err(BufferError::Closed);
        }
        l.posted += 1;
        let full = !self.admit(&mut l);
        if full {
            l.overflow += 1;
            if self.kind == Kind::KeepOld {
                return Ok((Posted::Full, Arm::Off));
            }
            l.owed += 1;
        }
        let key = (KEY_BASE + now).max(self.hot.0.floor.load(Ordering::Acquire) + 1);
        l.push(backend, item, bytes, key);
        let settle = l.owed >= self.slack;
        drop(l);
        let wake = self.take_arm();
        if settle {
            self.lock_all().settle(backend);
        }
        Ok((if full { Posted::Full } else { Posted::Stored }, wake))
    }

    /// Counts one more message held unless the box is full.
    fn admit(&self, lane: &mut Lane<B>) -> bool {
        let hot = &self.hot.0;
        let max = hot.max.load(Ordering::Acquire);
        let mut len = hot.len.load(Ordering::Acquire);
        while len < max {
            match hot
                .len
                .compare_exchange_weak(len, len + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    lane.peak = lane.peak.max(len + 1);
                    return true;
                }
                Err(now) => len = now,
            }
        }
        false
    }

    /// Disarms the box for a post that stored a message.
    fn take_arm(&self) -> Arm {
        let flags = &self.hot.0.flags;
        if flags.load(Ordering::Acquire) & ARMED == 0 {
            return Arm::Off;
        }
        arm_of(flags.fetch_and(!ARMED, Ordering::AcqRel))
    }

    /// A post into a box with a byte budget, exact under every lock.
    fn post_sized(
        &self,
        backend: &mut B,
        item: B::Item,
        bytes: u64,
        budget: u64,
        now: u64,
    ) -> Result<(Posted, Arm), BufferError> {
        let mut all = self.lock_all();
        if all.closed() {
            return Err(BufferError::Closed);
        }
        all.lanes[0].posted += 1;
        let max = self.max() as u64;
        let fits = |all: &All<'_, B>| all.len() < max && all.ctl.bytes + bytes <= budget;
        if bytes > budget || (self.kind == Kind::KeepOld && !fits(&all)) {
            all.lanes[0].overflow += 1;
            return Ok((Posted::Full, Arm::Off));
        }
        let mut full = false;
        while !fits(&all) && all.drop_one(backend, true, Reason::Overflow) {
            full = true;
        }
        all.lanes[0].push(backend, item, bytes, KEY_BASE + now);
        all.ctl.bytes += bytes;
        let len = all.len() + 1;
        all.set_len(len);
        all.ctl.peak = all.ctl.peak.max(len);
        drop(all);
        Ok((
            if full { Posted::Full } else { Posted::Stored },
            self.take_arm(),
        ))
    }

    /// Gives back the messages of the previous take (`release`, once
    /// copied) and hands out at most `n` more in delivery order, recording
    /// their sojourn times against `now`. Returns them with the drops
    /// (overflow, resize) since the previous take. Messages handed out stay
    /// valid until given back by the next call (with `n == 0` to only give
    /// back), whatever other calls (posts, resizes, a close) do meanwhile.
    pub fn take(
        &self,
        backend: &mut B,
        release: &[Taken<B::Item>],
        n: usize,
        now: u64,
    ) -> (Vec<Taken<B::Item>>, u64) {
        let mut all = self.lock_all();
        if !release.is_empty() {
            for lane in all.lanes.iter_mut() {
                lane.pinned = lane.pinned.saturating_sub(1);
            }
            for (i, lane) in all.lanes.iter_mut().enumerate() {
                lane.release(
                    backend,
                    release.iter().filter(|t| t.lane == i).map(|t| t.slot),
                );
            }
            all.free_if_closed(backend);
        }
        if n == 0 || all.closed() {
            return (Vec::new(), 0);
        }
        all.settle(backend);
        let k = n.min(all.len() as usize);
        let mut out = Vec::with_capacity(k);
        let front = self.kind != Kind::Stack;
        for _ in 0..k {
            let Some((lane, entry)) = all.remove(front) else {
                break;
            };
            all.ctl
                .sojourn
                .record(now.saturating_sub(entry.key.saturating_sub(KEY_BASE)));
            out.push(Taken {
                slot: entry.slot,
                lane,
            });
        }
        let got = out.len() as u64;
        all.set_len(all.len() - got);
        all.ctl.delivered += got;
        if !out.is_empty() {
            for lane in all.lanes.iter_mut() {
                lane.pinned += 1;
            }
        }
        let dropped = all.unreported();
        (out, dropped)
    }

    /// Puts back messages taken but not consumed (a filter's `skip`), given
    /// in the order they were delivered, with their sizes: they are the next
    /// to be delivered. Posts that filled the box meanwhile make room by the
    /// kind's rule (counted as overflow).
    pub fn restore(
        &self,
        backend: &mut B,
        items: Vec<(B::Item, u64)>,
        now: u64,
    ) -> Result<(), BufferError> {
        let mut all = self.lock_all();
        if all.closed() {
            return Err(BufferError::Closed);
        }
        let n = items.len() as u64;
        if n > all.ctl.delivered {
            return Err(BufferError::NotDelivered);
        }
        all.settle(backend);
        all.ctl.delivered -= n;
        let lane = &mut all.lanes[0];
        match self.kind {
            // On top: the first delivered gets the highest key.
            Kind::Stack => {
                let top = lane
                    .last_key
                    .max(KEY_BASE + now)
                    .max(self.hot.0.floor.load(Ordering::Acquire));
                let tails = all.lanes.iter().filter_map(|l| l.q.back().map(|e| e.key));
                let top = tails.fold(top, u64::max);
                let lane = &mut all.lanes[0];
                for (j, &(item, bytes)) in items.iter().rev().enumerate() {
                    lane.push(backend, item, bytes, top + 1 + j as u64);
                }
                self.hot.0.floor.store(lane.last_key, Ordering::Release);
            }
            // In front: the first delivered gets the lowest key.
            Kind::Queue | Kind::KeepOld => {
                let heads = all.lanes.iter().filter_map(|l| l.q.front().map(|e| e.key));
                let bottom = heads.min().unwrap_or(KEY_BASE + now);
                let lane = &mut all.lanes[0];
                let slots = lane
                    .chunks
                    .store_front(backend, items.iter().map(|&(item, _)| item));
                for (j, (slot, &(_, bytes))) in slots.into_iter().zip(&items).enumerate().rev() {
                    let key = bottom - n + j as u64;
                    lane.q.push_front(Entry { slot, key, bytes });
                }
            }
        }
        all.ctl.bytes += items.iter().map(|&(_, bytes)| bytes).sum::<u64>();
        let len = all.len() + n;
        all.set_len(len);
        all.ctl.peak = all.ctl.peak.max(len);
        let max = self.max() as u64;
        let front = self.kind != Kind::KeepOld;
        while (all.len() > max || self.max_bytes.is_some_and(|b| all.ctl.bytes > b))
            && all.drop_one(backend, front, Reason::Overflow)
        {}
        Ok(())
    }

    /// Counts `n` delivered messages as dropped by the owner's filter.
    pub fn filtered(&self, n: u64) -> Result<(), BufferError> {
        let mut ctl = lock(&self.control.0);
        if n > ctl.delivered {
            return Err(BufferError::NotDelivered);
        }
        ctl.delivered -= n;
        ctl.dropped[Reason::Filter as usize] += n;
        Ok(())
    }

    /// Changes the bound (refused once closed); when shrinking, drops per
    /// kind (the oldest for `Queue` and `Stack`, the newest for `KeepOld`)
    /// as `Resize`.
    pub fn resize(&self, backend: &mut B, max: usize) -> Result<(), BufferError> {
        if max == 0 {
            return Err(BufferError::ZeroMax);
        }
        let mut all = self.lock_all();
        if all.closed() {
            return Err(BufferError::Closed);
        }
        all.settle(backend);
        self.hot.0.max.store(max as u64, Ordering::Release);
        let front = self.kind != Kind::KeepOld;
        while all.len() > max as u64 && all.drop_one(backend, front, Reason::Resize) {}
        Ok(())
    }

    /// Closes the box: every message held is dropped (`Closed`), its storage
    /// freed (when the take in flight finishes, if any), and later posts are
    /// refused.
    pub fn close(&self, backend: &mut B) {
        let mut all = self.lock_all();
        if all.closed() {
            return;
        }
        all.settle(backend);
        all.ctl.dropped[Reason::Closed as usize] += all.len();
        all.set_len(0);
        all.ctl.bytes = 0;
        self.hot.0.flags.store(CLOSED, Ordering::Release);
        all.free_if_closed(backend);
    }

    /// Frees all storage now, takes in flight or not: for when nothing can
    /// use the box any more (its destructor).
    pub fn dispose(&mut self, backend: &mut B) {
        for lane in self.lanes.iter_mut() {
            let lane = lane
                .0
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            lane.q.clear();
            lane.chunks.free_all(backend);
        }
    }

    /// Arms the box; returns `false` (and leaves it unarmed) when it holds
    /// data already, so the caller delivers at once.
    pub fn arm(&self, mode: Arm) -> bool {
        let all = self.lock_all();
        let flags = &self.hot.0.flags;
        let closed = flags.load(Ordering::Acquire) & CLOSED;
        let (bits, armed) = match mode {
            _ if all.len() > 0 => (0, false),
            Arm::Off => (0, true),
            Arm::Notify => (NOTIFY, true),
            Arm::Active => (ACTIVE, true),
        };
        flags.store(closed | bits, Ordering::Release);
        armed
    }

    /// The current arming.
    pub fn armed(&self) -> Arm {
        arm_of(self.hot.0.flags.load(Ordering::Acquire))
    }

    /// Disarms the box.
    pub fn disarm(&self) {
        self.hot.0.flags.fetch_and(!ARMED, Ordering::AcqRel);
    }

    /// Messages held now.
    pub fn len(&self) -> usize {
        self.hot.0.len.load(Ordering::Acquire) as usize
    }

    /// Whether no message is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound.
    pub fn max(&self) -> usize {
        self.hot.0.max.load(Ordering::Acquire) as usize
    }

    /// The byte budget, if any.
    pub fn max_bytes(&self) -> Option<u64> {
        self.max_bytes
    }

    /// The box's kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Whether the box was closed.
    pub fn is_closed(&self) -> bool {
        self.hot.0.flags.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Counters, size and storage, read under every lock.
    pub fn snapshot(&self) -> Snapshot {
        let all = self.lock_all();
        Snapshot {
            stats: all.stats(),
            len: all.len() as usize,
            max: self.max(),
            bytes: all.ctl.bytes,
            regions: all.lanes.iter().map(|l| l.chunks.regions()).sum(),
            sojourn: all.ctl.sojourn.clone(),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::chunks::fake::Fake;

    fn layout(lanes: usize, slack: u64) -> Layout {
        Layout {
            lanes,
            slack,
            per_chunk: 4,
        }
    }

    fn mailbox(kind: Kind, max: usize) -> Mailbox<Fake> {
        Mailbox::new(kind, max, None, layout(3, 2)).expect("mailbox")
    }

    fn post(m: &Mailbox<Fake>, fake: &mut Fake, lane: usize, v: u64, now: u64) -> Posted {
        m.post(fake, lane, (0, v), 0, now).expect("post").0
    }

    fn take(m: &Mailbox<Fake>, fake: &mut Fake, n: usize) -> (Vec<u64>, u64) {
        let (taken, dropped) = m.take(fake, &[], n, 0);
        for t in &taken {
            assert!(
                fake.regions.contains_key(&t.item().0),
                "taken from a freed region"
            );
        }
        let values = taken.iter().map(|t| t.item().1).collect();
        let _ = m.take(fake, &taken, 0, 0);
        (values, dropped)
    }

    fn check(m: &Mailbox<Fake>, fake: &Fake) {
        let s = m.snapshot().stats;
        assert_eq!(s.posted, s.delivered + s.dropped_total() + m.len() as u64);
        assert!(s.peak >= m.len());
        let held: u32 = fake.regions.values().sum();
        assert!(held as usize >= m.len());
    }

    #[test]
    fn lanes_merge_in_arrival_order() {
        for kind in [Kind::Queue, Kind::Stack, Kind::KeepOld] {
            let mut fake = Fake::default();
            let m = mailbox(kind, 10);
            for v in 0..8 {
                post(&m, &mut fake, (v * 7 % 3) as usize, v, v * 10);
            }
            let mut want: Vec<u64> = (0..8).collect();
            if kind == Kind::Stack {
                want.reverse();
            }
            assert_eq!(take(&m, &mut fake, 100).0, want, "{kind:?}");
            check(&m, &fake);
        }
    }

    #[test]
    fn full_posts_drop_the_oldest_over_all_lanes() {
        for kind in [Kind::Queue, Kind::Stack] {
            let mut fake = Fake::default();
            let m = mailbox(kind, 3);
            let answers: Vec<Posted> = (0..9)
                .map(|v| post(&m, &mut fake, v as usize % 3, v, v))
                .collect();
            assert_eq!(answers.iter().filter(|&&p| p == Posted::Full).count(), 6);
            assert_eq!(m.len(), 3);
            let (got, dropped) = take(&m, &mut fake, 10);
            let want = if kind == Kind::Stack {
                vec![8, 7, 6]
            } else {
                vec![6, 7, 8]
            };
            assert_eq!((got, dropped), (want, 6), "{kind:?}");
            check(&m, &fake);
        }
    }

    #[test]
    fn keep_old_refuses_without_copying() {
        let mut fake = Fake::default();
        let m = mailbox(Kind::KeepOld, 2);
        for v in 0..5 {
            post(&m, &mut fake, v as usize, v, v);
        }
        assert_eq!(fake.copies, 2);
        assert_eq!(take(&m, &mut fake, 10), (vec![0, 1], 3));
        check(&m, &fake);
    }

    #[test]
    fn owed_drops_stay_within_the_slack() {
        let mut fake = Fake::default();
        let m = mailbox(Kind::Queue, 4);
        for v in 0..1000 {
            post(&m, &mut fake, v as usize % 2, v, v);
            let held: u32 = fake.regions.values().sum();
            // max + lanes × slack, plus chunks not yet compacted
            assert!(held <= 4 + 3 * 2 + 2 * 4, "held {held} after {v}");
        }
        assert_eq!(take(&m, &mut fake, 10).0, vec![996, 997, 998, 999]);
        check(&m, &fake);
    }

    #[test]
    fn storage_follows_messages() {
        let mut fake = Fake::default();
        let m = mailbox(Kind::Queue, 1000);
        for v in 0..400 {
            post(&m, &mut fake, v as usize % 3, v, v);
        }
        let (got, _) = take(&m, &mut fake, 400);
        assert_eq!(got.len(), 400);
        assert!(
            fake.regions.len() <= 3,
            "regions left: {}",
            fake.regions.len()
        );
        m.close(&mut fake);
        assert!(fake.regions.is_empty());
        check(&m, &fake);
    }

    #[test]
    fn arming_fires_once_on_the_first_post() {
        let mut fake = Fake::default();
        let m = mailbox(Kind::Queue, 10);
        assert!(m.arm(Arm::Active));
        assert_eq!(
            m.post(&mut fake, 0, (0, 1), 0, 1).expect("post").1,
            Arm::Active
        );
        assert_eq!(
            m.post(&mut fake, 1, (0, 2), 0, 2).expect("post").1,
            Arm::Off
        );
        assert!(!m.arm(Arm::Notify), "data held: deliver now");
        assert_eq!(m.armed(), Arm::Off);
        let _ = take(&m, &mut fake, 10);
        assert!(m.arm(Arm::Notify));
        m.disarm();
        assert_eq!(
            m.post(&mut fake, 0, (0, 3), 0, 3).expect("post").1,
            Arm::Off
        );
    }

    #[test]
    fn restore_puts_skipped_messages_first() {
        for kind in [Kind::Queue, Kind::Stack, Kind::KeepOld] {
            let mut fake = Fake::default();
            let m = mailbox(kind, 10);
            for v in 0..6 {
                post(&m, &mut fake, v as usize % 3, v, v);
            }
            let (taken, _) = m.take(&mut fake, &[], 3, 10);
            let skipped: Vec<_> = taken.iter().map(|t| (t.item(), 0)).collect();
            let first: Vec<u64> = taken.iter().map(|t| t.item().1).collect();
            m.restore(&mut fake, skipped, 11).expect("restore");
            let _ = m.take(&mut fake, &taken, 0, 12);
            post(&m, &mut fake, 1, 6, 13);
            let (got, _) = take(&m, &mut fake, 10);
            let want: Vec<u64> = match kind {
                Kind::Stack => [6]
                    .into_iter()
                    .chain(first.iter().copied())
                    .chain([2, 1, 0])
                    .collect(),
                _ => first.iter().copied().chain([3, 4, 5, 6]).collect(),
            };
            assert_eq!(got, want, "{kind:?}");
            check(&m, &fake);
        }
    }

    #[test]
    fn restore_into_a_full_box_drops_by_kind() {
        let mut fake = Fake::default();
        let m = mailbox(Kind::Queue, 3);
        for v in 0..3 {
            post(&m, &mut fake, 0, v, v);
        }
        let (taken, _) = m.take(&mut fake, &[], 1, 5);
        post(&m, &mut fake, 1, 3, 6);
        m.restore(&mut fake, vec![(taken[0].item(), 0)], 7)
            .expect("restore");
        let _ = m.take(&mut fake, &taken, 0, 8);
        // the restored message was the oldest: a queue drops it
        assert_eq!(take(&m, &mut fake, 10), (vec![1, 2, 3], 1));
        check(&m, &fake);
    }

    #[test]
    fn resize_drops_by_kind() {
        for (kind, want) in [
            (Kind::Queue, vec![3, 4]),
            (Kind::Stack, vec![4, 3]),
            (Kind::KeepOld, vec![0, 1]),
        ] {
            let mut fake = Fake::default();
            let m = mailbox(kind, 5);
            for v in 0..5 {
                post(&m, &mut fake, v as usize, v, v);
            }
            m.resize(&mut fake, 2).expect("resize");
            assert_eq!(take(&m, &mut fake, 10), (want, 3), "{kind:?}");
            check(&m, &fake);
        }
    }

    #[test]
    fn byte_budget_drops_by_size() {
        let mut fake = Fake::default();
        let m = Mailbox::new(Kind::Queue, 10, Some(100), layout(3, 2)).expect("mailbox");
        for (v, bytes) in [(0, 40), (1, 40), (2, 40), (3, 200)] {
            m.post(&mut fake, v as usize, (0, v), bytes, v)
                .expect("post");
        }
        assert_eq!(m.snapshot().bytes, 80);
        assert_eq!(take(&m, &mut fake, 10), (vec![1, 2], 2));
        check(&m, &fake);
    }

    #[test]
    fn byte_budget_keep_old_refuses_and_too_big_is_dropped_uncopied() {
        let mut fake = Fake::default();
        let m = Mailbox::new(Kind::KeepOld, 10, Some(100), layout(3, 2)).expect("mailbox");
        let mut post = |v: u64, bytes| m.post(&mut fake, 0, (0, v), bytes, v).expect("post").0;
        assert_eq!(post(0, 60), Posted::Stored);
        assert_eq!(post(1, 60), Posted::Full);
        assert_eq!(post(2, 40), Posted::Stored);
        assert_eq!(post(3, 101), Posted::Full);
        assert_eq!(fake.copies, 2);
        let snap = m.snapshot();
        assert_eq!(
            (
                snap.bytes,
                snap.len,
                snap.stats.dropped[Reason::Overflow as usize]
            ),
            (100, 2, 2)
        );
        assert_eq!(take(&m, &mut fake, 10), (vec![0, 2], 2));
        assert_eq!(m.snapshot().bytes, 0);
        check(&m, &fake);
    }

    #[test]
    fn storage_of_a_take_in_flight_outlives_drops_and_close() {
        let mut fake = Fake::default();
        let m = mailbox(Kind::Queue, 8);
        for v in 0..8 {
            post(&m, &mut fake, v as usize % 3, v, v);
        }
        let (taken, _) = m.take(&mut fake, &[], 4, 9);
        for v in 8..20 {
            post(&m, &mut fake, v as usize % 3, v, v);
        }
        m.close(&mut fake);
        for t in &taken {
            assert!(fake.regions.contains_key(&t.item().0), "freed while pinned");
        }
        assert_eq!(
            m.post(&mut fake, 0, (0, 99), 0, 30),
            Err(BufferError::Closed)
        );
        let _ = m.take(&mut fake, &taken, 0, 31);
        assert!(fake.regions.is_empty());
        check(&m, &fake);
    }

    #[test]
    fn stack_with_pinned_bottoms_stays_compact() {
        let mut fake = Fake::default();
        let m = Mailbox::new(
            Kind::Stack,
            1000,
            None,
            Layout {
                lanes: 1,
                slack: 8,
                per_chunk: 64,
            },
        )
        .expect("mailbox");
        for round in 0..200u64 {
            for v in 0..64 {
                post(&m, &mut fake, 0, round * 64 + v, round * 64 + v);
            }
            let _ = take(&m, &mut fake, 63);
        }
        // 200 bottoms left behind, one per round: compaction frees the
        // copies taken around them.
        assert_eq!(m.len(), 200);
        let held: u32 = fake.regions.values().sum();
        assert!(held <= 200 * 4 + 64, "copies held: {held}");
        let (all, dropped) = take(&m, &mut fake, 1000);
        assert_eq!((all.len(), dropped), (200, 0));
        assert!(all.windows(2).all(|w| w[0] > w[1]), "newest first");
        check(&m, &fake);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    /// Regions are numbers; freed ones are remembered so a copy out of a
    /// freed region is caught.
    #[derive(Default)]
    struct Fake;

    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    // Region numbers are never reused, so one set serves every execution.
    static FREED: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

    fn freed(region: u32) -> bool {
        FREED.lock().expect("freed").contains(&region)
    }

    impl Backend for Fake {
        type Region = u32;
        type Item = (u32, u64);
        fn alloc(&mut self) -> u32 {
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
        }
        fn copy_in(&mut self, region: &u32, item: (u32, u64)) -> (u32, u64) {
            (*region, item.1)
        }
        fn clear(&mut self, _region: &u32) {}
        fn free(&mut self, region: u32) {
            FREED.lock().expect("freed").push(region);
        }
    }

    fn boxed(kind: Kind, max: usize) -> Arc<Mailbox<Fake>> {
        let layout = Layout {
            lanes: 2,
            slack: 1,
            per_chunk: 1,
        };
        Arc::new(Mailbox::new(kind, max, None, layout).expect("mailbox"))
    }

    #[test]
    fn concurrent_posts_fire_one_wake_up_and_reconcile() {
        loom::model(|| {
            let b = boxed(Kind::Queue, 1);
            assert!(b.arm(Arm::Notify));
            let posters: Vec<_> = (0..2u64)
                .map(|v| {
                    let b = b.clone();
                    loom::thread::spawn(move || {
                        let (posted, wake) =
                            b.post(&mut Fake, v as usize, (0, v), 0, v).expect("post");
                        (posted == Posted::Full, wake == Arm::Notify)
                    })
                })
                .collect();
            let (taken, _) = b.take(&mut Fake, &[], 1, 5);
            let _ = b.take(&mut Fake, &taken, 0, 5);
            let results: Vec<(bool, bool)> = posters
                .into_iter()
                .map(|p| p.join().expect("poster"))
                .collect();
            let wakes = results.iter().filter(|r| r.1).count();
            assert_eq!(wakes, 1, "exactly one post wakes the owner");
            let s = b.snapshot();
            let fulls = results.iter().filter(|r| r.0).count() as u64;
            assert_eq!(s.stats.dropped[Reason::Overflow as usize], fulls);
            assert_eq!(s.stats.posted, 2);
            assert_eq!(
                s.stats.posted,
                s.stats.delivered + s.stats.dropped_total() + s.len as u64
            );
            assert!(s.len <= 1);
        });
    }

    #[test]
    fn copying_outside_the_lock_is_safe() {
        loom::model(|| {
            let b = boxed(Kind::Queue, 2);
            b.post(&mut Fake, 0, (0, 1), 0, 1).expect("post");
            let taker = {
                let b = b.clone();
                loom::thread::spawn(move || {
                    let (taken, _) = b.take(&mut Fake, &[], 1, 3);
                    // the copy-out happens here, unlocked
                    let freed = taken.iter().any(|t| freed(t.item().0));
                    let _ = b.take(&mut Fake, &taken, 0, 3);
                    (taken.len(), freed)
                })
            };
            let poster = {
                let b = b.clone();
                loom::thread::spawn(move || {
                    for v in 2..4 {
                        let _ = b.post(&mut Fake, 1, (0, v), 0, v);
                    }
                    b.close(&mut Fake);
                })
            };
            poster.join().expect("poster");
            let (n, freed) = taker.join().expect("taker");
            assert!(!freed, "a region was freed under a take in flight");
            let s = b.snapshot();
            assert_eq!(s.stats.posted, 3);
            assert_eq!(s.stats.delivered, n as u64);
            assert_eq!(s.stats.posted, s.stats.delivered + s.stats.dropped_total());
        });
    }
}
