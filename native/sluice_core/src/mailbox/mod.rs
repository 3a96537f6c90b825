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
//! ties broken by lane.
//!
//! The owner's side is the *control block*: per lane, the messages moved
//! out of that lane (all older than those still in it), and the counters of
//! what left the box. Operations on the whole box (take, restore, resize,
//! close, settling) lock the control block, then *gather*: lock every lane
//! at once, in index order, swap each lane's queue for an empty one, and
//! unlock; the lanes are moved out at one instant, and a producer waits at
//! most for a swap of queues, never for the owner's work on the messages.
//! Storage stays with its lane: the slots of messages gone are given back
//! to it afterwards, under that lane's lock alone. Arming locks every lane.
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
//! As [`crate::arming`]: arming locks every lane, so a post is never
//! between counting its message and reading the arming.
//!
//! # Storage
//! Each lane keeps its messages in [`Chunks`](crate::chunks::Chunks): a message leaving is released
//! from its chunk by the end of the call that removed it, and sparse chunks
//! are compacted. A take hands messages out to be copied while the box is
//! unlocked: until the caller gives them back ([`Buffer::take`]'s
//! `release`), the box is *pinned*: no chunk is compacted, and a closed
//! box's storage is not freed.
//!
//! # Where things are
//! This file holds the box's shape and its [`Buffer`] operations on the
//! owner's side (take, restore, resize, close, arming, info); `post` the
//! producers' side (a post into a lane, a post into a box with a byte
//! budget); `lane` a lane's queue and storage; `held` the control block
//! locked (gathering the lanes, removing, dropping, expiring, giving
//! storage back).

use std::collections::VecDeque;
use std::sync::OnceLock;

use crate::sync::{get_mut, lock, AtomicU64, Mutex, MutexGuard, Ordering, Padded};

pub use crate::arming::Arm;
use crate::arming::Flags;
pub use crate::buffer::{
    Back, Buffer, BufferError, Kind, Posted, Reason, Snapshot, Stats, Taken, Tally, LARGE, REASONS,
};
use crate::chunks::{Backend, Slot};
use crate::picture::Picture;
use crate::policy::{Codel, Policy};

mod held;
mod lane;
mod picture;
mod post;

use held::Held;
use lane::{trim, Entry, Lane};

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

/// Weight (bytes kept alive) of the messages a lane may keep beyond the
/// bound while it owes drops, before its post settles them.
pub const OWED_WEIGHT: u64 = 1 << 20;

/// Weight from which a message gets a storage region of its own.
pub const ALONE_WEIGHT: u64 = 64 * 1024;

/// Keys start here: restored messages get keys below every other.
const KEY_BASE: u64 = 1 << 62;

/// Most lanes a box has.
const MAX_LANES: usize = 16;

/// Words every post reads, and the owner seldom writes.
struct Hot {
    max: AtomicU64,
    flags: Flags,
    /// Keys of later posts are above this (raised by a stack's restore).
    floor: AtomicU64,
}

/// What the owner's side keeps: the messages moved out of the lanes, and
/// the counters of what left the box.
struct Control<I> {
    /// Per lane: messages moved out of it, all older than those still in
    /// it (the three per-lane vectors are made with the lanes, by the
    /// first gathering after).
    out: Vec<VecDeque<Entry<I>>>,
    /// Per lane: an empty queue to give the lane in exchange for its own.
    spare: Vec<VecDeque<Entry<I>>>,
    /// Per lane: slots of messages gone, to give back to the lane's storage.
    freed: Vec<Vec<Slot<I>>>,
    /// Takes whose messages are being copied out.
    in_flight: u32,
    /// The lanes' overflow and early drop counts, as of the last move.
    lane_dropped: u64,
    codel: Codel,
    tally: Tally,
    bytes: u64,
}

/// A bounded box of messages in lanes; see the module documentation.
pub struct Mailbox<B: Backend> {
    /// A field only the upgrade tests' build has, so that its layout
    /// differs from the default build's.
    #[cfg(feature = "layout_b")]
    _marker: u64,
    kind: Kind,
    max_bytes: Option<u64>,
    slack: u64,
    hot: Padded<Hot>,
    /// Messages held: written by posts while the box is not full, apart
    /// from the words they only read.
    len: Padded<AtomicU64>,
    control: Padded<Mutex<Control<B::Item>>>,
    /// The lanes, made by the first post (or arming, or restore): an idle
    /// box has none.
    lanes: OnceLock<Box<[LockedLane<B>]>>,
    lane_count: usize,
    per_chunk: u32,
    policy: Policy,
    /// The time of a box with a manual clock.
    clock: AtomicU64,
}

/// A lane under its lock, on cache lines of its own.
type LockedLane<B> = Padded<Mutex<Lane<B>>>;

type Lanes<'a, B> = [Option<MutexGuard<'a, Lane<B>>>; MAX_LANES];

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
            layout.lanes.clamp(1, MAX_LANES)
        };
        Ok(Self {
            #[cfg(feature = "layout_b")]
            _marker: 0xb0b0,
            kind,
            max_bytes,
            slack: layout.slack.max(1),
            len: Padded(AtomicU64::new(0)),
            hot: Padded(Hot {
                max: AtomicU64::new(max as u64),
                flags: Flags::new(),
                floor: AtomicU64::new(0),
            }),
            control: Padded(Mutex::new(Control {
                out: Vec::new(),
                spare: Vec::new(),
                freed: Vec::new(),
                in_flight: 0,
                lane_dropped: 0,
                codel: Codel::default(),
                tally: Tally::default(),
                bytes: 0,
            })),
            lanes: OnceLock::new(),
            lane_count: lanes,
            per_chunk: layout.per_chunk,
            policy: Policy::default(),
            clock: AtomicU64::new(0),
        })
    }

    /// The box with drop policies besides its bound (see [`crate::policy`]).
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The time to use: the caller's, or the manual clock's.
    fn time(&self, now: u64) -> u64 {
        if self.policy.manual_clock {
            self.clock.load(Ordering::Acquire)
        } else {
            now
        }
    }

    fn hold(&self) -> Held<'_, B> {
        Held {
            mb: self,
            ctl: lock(&self.control.0),
        }
    }

    /// The lanes, made now if they were not.
    fn lanes(&self) -> &[LockedLane<B>] {
        self.lanes.get_or_init(|| {
            (0..self.lane_count)
                .map(|_| Padded(Mutex::new(Lane::new(self.per_chunk))))
                .collect()
        })
    }

    /// The lanes made so far (none, or all).
    fn made_lanes(&self) -> &[LockedLane<B>] {
        self.lanes.get().map_or(&[], |lanes| &lanes[..])
    }

    /// Every lane, made if needed and locked in index order.
    fn lock_lanes(&self) -> Lanes<'_, B> {
        let lanes = self.lanes();
        std::array::from_fn(|i| lanes.get(i).map(|l| lock(&l.0)))
    }

    /// Every lane made so far, locked in index order (none for a box
    /// never posted into: it holds nothing).
    fn lock_made_lanes(&self) -> Lanes<'_, B> {
        let lanes = self.made_lanes();
        std::array::from_fn(|i| lanes.get(i).map(|l| lock(&l.0)))
    }

    /// The current arming.
    pub fn armed(&self) -> Arm {
        self.hot.0.flags.armed()
    }
}

impl<B: Backend> Buffer<B> for Mailbox<B> {
    /// As [`Buffer::post`], with the bytes the message's copy keeps alive
    /// (`weight`). A full box keeps the new message and owes the drop of
    /// the oldest, carried out when the lane owes `slack` drops, or as soon
    /// as the messages kept while owing weigh [`OWED_WEIGHT`] together (a
    /// heavy message settles at once): the memory beyond the bound stays
    /// under `lanes × (OWED_WEIGHT + one message)`. A box with a byte
    /// budget settles every post at once.
    fn post_weighed(
        &self,
        backend: &mut B,
        lane: usize,
        item: B::Item,
        bytes: u64,
        weight: u64,
        now: u64,
    ) -> Result<(Posted, Arm), BufferError> {
        let now = self.time(now);
        match self.max_bytes {
            Some(budget) => self.post_sized(backend, item, (bytes, weight), budget, now),
            None => self.post_lane(backend, lane, item, (bytes, weight), now),
        }
    }

    fn take_limited(
        &self,
        backend: &mut B,
        release: &[Taken<B::Item>],
        n: usize,
        large_max: usize,
        now: u64,
    ) -> (Vec<Taken<B::Item>>, u64, bool) {
        let now = self.time(now);
        let mut held = self.hold();
        if !release.is_empty() {
            held.ctl.in_flight = held.ctl.in_flight.saturating_sub(1);
            for t in release {
                if let Some(freed) = held.ctl.freed.get_mut(t.home as usize) {
                    freed.push(t.slot);
                }
            }
            held.flush(backend);
        }
        if n == 0 || held.closed() {
            return (Vec::new(), 0, false);
        }
        held.gather();
        if let Some(max_age) = self.policy.max_age {
            held.expire(now, max_age);
        }
        let front = self.kind != Kind::Stack;
        let mut out = Vec::with_capacity(n.min(held.len() as usize));
        let (mut large, mut stopped) = (0, false);
        while out.len() < n && held.len() > out.len() as u64 {
            let Some((i, next_large)) = held.end_large(front) else {
                break;
            };
            if next_large && large >= large_max {
                stopped = true;
                break;
            }
            let Some((lane, entry)) = held.remove_at(i, front) else {
                break;
            };
            let sojourn = now.saturating_sub(entry.key.saturating_sub(KEY_BASE));
            if let Some(cfg) = self.policy.codel {
                let last = held.len() == out.len() as u64 + 1;
                if held.ctl.codel.should_drop(&cfg, sojourn, now, last) {
                    held.ctl.freed[lane].push(entry.slot);
                    held.ctl.tally.dropped[Reason::Expired as usize] += 1;
                    held.sub_len(1);
                    continue;
                }
            }
            held.ctl.tally.record_sojourn(sojourn);
            large += usize::from(entry.large());
            out.push(Taken {
                slot: entry.slot,
                home: lane as u64,
                bytes: entry.bytes(),
                large: entry.large(),
            });
        }
        let got = out.len() as u64;
        held.sub_len(got);
        held.ctl.tally.delivered += got;
        if !out.is_empty() {
            held.ctl.in_flight += 1;
        }
        let dropped = held.unreported();
        held.flush(backend);
        (out, dropped, stopped)
    }

    /// Nothing without an age limit.
    fn expire_now(&self, backend: &mut B, now: u64) {
        let Some(max_age) = self.policy.max_age else {
            return;
        };
        let now = self.time(now);
        let mut held = self.hold();
        if held.closed() {
            return;
        }
        held.gather();
        held.expire(now, max_age);
        held.flush(backend);
    }

    /// Posts that filled the box meanwhile make room by the kind's rule
    /// (counted as overflow).
    fn restore(
        &self,
        backend: &mut B,
        items: Vec<Back<B::Item>>,
        now: u64,
    ) -> Result<(), BufferError> {
        let now = self.time(now);
        let mut held = self.hold();
        if held.closed() {
            return Err(BufferError::Closed);
        }
        let n = items.len() as u64;
        if n > held.ctl.tally.delivered {
            return Err(BufferError::NotDelivered);
        }
        // The lanes (and this side's queues of them) exist before the gathering.
        let _ = self.lanes();
        held.gather();
        held.ctl.tally.delivered -= n;
        {
            let mut lanes = self.lock_lanes();
            let ctl = &mut *held.ctl;
            match self.kind {
                // On top: the first delivered gets the highest key.
                Kind::Stack => {
                    let floor = self.hot.0.floor.load(Ordering::Acquire);
                    let tails = ctl.out.iter().map(|q| q.back());
                    let lane_tails = lanes.iter().flatten().map(|l| l.q.back());
                    let top = tails
                        .chain(lane_tails)
                        .flatten()
                        .map(|e| e.key)
                        .fold((KEY_BASE + now).max(floor), u64::max);
                    if let Some(lane) = lanes[0].as_mut() {
                        let top = top.max(lane.last_key);
                        for (j, &(item, bytes, large)) in items.iter().rev().enumerate() {
                            let weight = if large { LARGE } else { 0 };
                            lane.push(backend, item, bytes, weight, top + 1 + j as u64);
                        }
                        self.hot.0.floor.store(lane.last_key, Ordering::Release);
                    }
                }
                // In front: the first delivered gets the lowest key.
                Kind::Queue | Kind::KeepOld => {
                    let heads = ctl.out.iter().filter_map(|q| q.front().map(|e| e.key));
                    let bottom = heads.min().unwrap_or(KEY_BASE + now);
                    if let Some(lane) = lanes[0].as_mut() {
                        let slots = lane
                            .chunks
                            .store_front(backend, items.iter().map(|&(item, _, _)| item));
                        let entries = slots.into_iter().zip(&items).enumerate().rev();
                        for (j, (slot, &(_, bytes, large))) in entries {
                            let key = bottom - n + j as u64;
                            ctl.out[0].push_front(Entry::new(slot, key, bytes, large));
                        }
                    }
                }
            }
        }
        held.ctl.bytes += items.iter().map(|&(_, bytes, _)| bytes).sum::<u64>();
        let len = held.add_len(n);
        held.ctl.tally.peak = held.ctl.tally.peak.max(len);
        held.gather();
        let max = self.max() as u64;
        let front = self.kind != Kind::KeepOld;
        while (held.len() > max || self.max_bytes.is_some_and(|b| held.ctl.bytes > b))
            && held.drop_one(front, Reason::Overflow)
        {}
        held.flush(backend);
        Ok(())
    }

    fn filtered(&self, n: u64) -> Result<(), BufferError> {
        lock(&self.control.0).tally.filtered(n)
    }

    fn give_back(&self, backend: &mut B, items: Vec<Back<B::Item>>, dropped: u64, now: u64) {
        let n = items.len() as u64;
        match self.restore(backend, items, now) {
            Ok(()) => lock(&self.control.0).tally.unreport(dropped),
            Err(_) => lock(&self.control.0).tally.undeliver_closed(n, dropped),
        }
    }

    /// Shrinking drops per kind: the oldest for `Queue` and `Stack`, the
    /// newest for `KeepOld`.
    fn resize(&self, backend: &mut B, max: usize) -> Result<(), BufferError> {
        if max == 0 {
            return Err(BufferError::ZeroMax);
        }
        let mut held = self.hold();
        if held.closed() {
            return Err(BufferError::Closed);
        }
        held.gather();
        self.hot.0.max.store(max as u64, Ordering::Release);
        let front = self.kind != Kind::KeepOld;
        while held.len() > max as u64 && held.drop_one(front, Reason::Resize) {}
        held.flush(backend);
        Ok(())
    }

    fn close(&self, backend: &mut B) {
        let mut held = self.hold();
        if !self.hot.0.flags.close() {
            return;
        }
        // Posts that saw the box open finish before the lanes are moved out.
        held.gather();
        // No post can count a message any more.
        held.ctl.tally.dropped[Reason::Closed as usize] += self.len.0.swap(0, Ordering::AcqRel);
        held.ctl.bytes = 0;
        held.flush(backend);
    }

    fn dispose(&mut self, backend: &mut B) {
        for lane in self.lanes.get_mut().into_iter().flat_map(|l| l.iter_mut()) {
            let lane = get_mut(&mut lane.0);
            lane.q.clear();
            lane.chunks.free_all(backend);
        }
        let ctl = get_mut(&mut self.control.0);
        ctl.out.iter_mut().for_each(VecDeque::clear);
        ctl.freed.iter_mut().for_each(Vec::clear);
    }

    fn arm(&self, mode: Arm) -> bool {
        // No post is between counting its message and reading the arming.
        let _lanes = self.lock_lanes();
        self.hot.0.flags.arm(mode, !self.is_empty())
    }
    fn disarm(&self) {
        self.hot.0.flags.disarm();
    }

    fn set_time(&self, now: u64) {
        self.clock.fetch_max(now, Ordering::AcqRel);
    }

    fn len(&self) -> usize {
        self.len.0.load(Ordering::Acquire) as usize
    }

    fn max(&self) -> usize {
        self.hot.0.max.load(Ordering::Acquire) as usize
    }

    fn max_bytes(&self) -> Option<u64> {
        self.max_bytes
    }

    fn kind(&self) -> Option<Kind> {
        Some(self.kind)
    }

    fn is_closed(&self) -> bool {
        self.hot.0.flags.is_closed()
    }

    /// Read under every lock.
    fn snapshot(&self) -> Snapshot {
        let held = self.hold();
        let lanes = self.lock_made_lanes();
        let lanes = lanes.iter().flatten();
        let ctl = &*held.ctl;
        let mut dropped = ctl.tally.dropped;
        dropped[Reason::Overflow as usize] += lanes.clone().map(|l| l.overflow).sum::<u64>();
        dropped[Reason::Early as usize] += lanes.clone().map(|l| l.early).sum::<u64>();
        let stats = Stats {
            posted: lanes.clone().map(|l| l.posted).sum(),
            delivered: ctl.tally.delivered,
            dropped,
            peak: lanes.clone().map(|l| l.peak).fold(ctl.tally.peak, u64::max) as usize,
        };
        Snapshot {
            stats,
            len: held.len() as usize,
            max: self.max(),
            bytes: ctl.bytes,
            regions: lanes.map(|l| l.chunks.regions()).sum(),
            sojourn: ctl.tally.sojourn(),
        }
    }

    fn picture(&self) -> Picture<B::Item> {
        Picture::Box(self.take_picture())
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;
