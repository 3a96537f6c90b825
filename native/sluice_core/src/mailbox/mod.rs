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
//! Each lane keeps its messages in [`Chunks`]: a message leaving is released
//! from its chunk by the end of the call that removed it, and sparse chunks
//! are compacted. A take hands messages out to be copied while the box is
//! unlocked: until the caller gives them back ([`Mailbox::take`]'s
//! `release`), the box is *pinned*: no chunk is compacted, and a closed
//! box's storage is not freed.

use std::collections::VecDeque;
use std::sync::OnceLock;

use crate::sync::{get_mut, lock, AtomicU64, Mutex, MutexGuard, Ordering, Padded};

pub use crate::arming::Arm;
use crate::arming::Flags;
pub use crate::buffer::{
    Back, BufferError, Kind, Posted, Reason, Stats, Taken, Tally, LARGE, REASONS,
};
use crate::chunks::{Backend, Chunks, Slot};
use crate::hist::Histogram;
use crate::policy::{Codel, Policy};
use crate::rng::{chance, thread_u64};

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

/// Weight (bytes kept alive) of the messages a lane may keep beyond the
/// bound while it owes drops, before its post settles them.
pub const OWED_WEIGHT: u64 = 1 << 20;

/// Weight from which a message gets a storage region of its own.
pub const ALONE_WEIGHT: u64 = 64 * 1024;

/// Keys start here: restored messages get keys below every other.
const KEY_BASE: u64 = 1 << 62;

struct Entry<I> {
    slot: Slot<I>,
    key: u64,
    /// The message's size (as counted for the byte budget, below 2^63),
    /// with [`LARGE_BIT`] set for a large message: one word, so that a
    /// message held costs no more for the mark.
    sized: u64,
}

/// The bit of [`Entry::sized`] that marks a message posted with the
/// weight [`LARGE`], handed out only by a take that allows it.
const LARGE_BIT: u64 = 1 << 63;

impl<I> Entry<I> {
    fn new(slot: Slot<I>, key: u64, bytes: u64, large: bool) -> Self {
        let mark = if large { LARGE_BIT } else { 0 };
        Self {
            slot,
            key,
            sized: bytes.min(LARGE_BIT - 1) | mark,
        }
    }

    /// The message's size, as counted for the byte budget.
    fn bytes(&self) -> u64 {
        self.sized & !LARGE_BIT
    }

    /// Whether the message is large.
    fn large(&self) -> bool {
        self.sized & LARGE_BIT != 0
    }
}

/// Most lanes a box has.
const MAX_LANES: usize = 16;

/// What a producer thread writes: messages not yet moved out, their storage
/// and its counters.
struct Lane<B: Backend> {
    q: VecDeque<Entry<B::Item>>,
    chunks: Chunks<B::Region>,
    last_key: u64,
    owed: u64,
    /// Weight of the messages kept while owing drops.
    owed_weight: u64,
    posted: u64,
    overflow: u64,
    early: u64,
    peak: u64,
}

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

/// The slots of chunk `id` in a queue whose chunk ids never decrease.
fn chunk_run<I>(q: &mut VecDeque<Entry<I>>, id: u64) -> impl Iterator<Item = &mut Slot<I>> {
    let start = q.partition_point(|e| e.slot.chunk < id);
    let end = q.partition_point(|e| e.slot.chunk <= id);
    q.range_mut(start..end).map(|e| &mut e.slot)
}

/// Gives back queue memory when the entries fill less than a quarter of it,
/// keeping room for twice what `q` holds or `floor` entries.
fn trim<I>(q: &mut VecDeque<I>, floor: usize) {
    let keep = (q.len() * 2).max(floor).max(64);
    if q.capacity() > keep && q.len() * 4 < q.capacity() {
        q.shrink_to(keep);
    }
}

impl<B: Backend> Lane<B> {
    fn new(per_chunk: u32) -> Self {
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
    fn push(&mut self, backend: &mut B, item: B::Item, bytes: u64, weight: u64, key: u64) {
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
    fn release(
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

mod held;
use held::Held;

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

    /// Sets a manual clock (ignored unless the box has one); time never
    /// goes back.
    pub fn set_time(&self, now: u64) {
        self.clock.fetch_max(now, Ordering::AcqRel);
    }

    /// The time to use: the caller's, or the manual clock's.
    fn time(&self, now: u64) -> u64 {
        if self.policy.manual_clock {
            self.clock.load(Ordering::Acquire)
        } else {
            now
        }
    }

    /// Whether random early drop refuses a post now (the held count is only
    /// read when the box has it).
    fn early(&self) -> bool {
        match self.policy.red {
            Some(red) => {
                let len = self.len.0.load(Ordering::Acquire);
                len >= red.min && chance(red.chance(len), thread_u64())
            }
            None => false,
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
        self.post_weighed(backend, lane, item, bytes, 0, now)
    }

    /// As [`Mailbox::post`], with the bytes the message's copy keeps alive
    /// (`weight`). A full box keeps the new message and owes the drop of
    /// the oldest, carried out when the lane owes `slack` drops, or as soon
    /// as the messages kept while owing weigh [`OWED_WEIGHT`] together (a
    /// heavy message settles at once): the memory beyond the bound stays
    /// under `lanes × (OWED_WEIGHT + one message)`.
    pub fn post_weighed(
        &self,
        backend: &mut B,
        lane: usize,
        item: B::Item,
        bytes: u64,
        weight: u64,
        now: u64,
    ) -> Result<(Posted, Arm), BufferError> {
        let now = self.time(now);
        if let Some(budget) = self.max_bytes {
            return self.post_sized(backend, item, (bytes, weight), budget, now);
        }
        let lanes = self.lanes();
        let mut l = lock(&lanes[lane % lanes.len()].0);
        if self.is_closed() {
            return Err(BufferError::Closed);
        }
        l.posted += 1;
        if self.early() {
            l.early += 1;
            return Ok((Posted::Full, Arm::Off));
        }
        let full = !self.admit(&mut l);
        if full {
            l.overflow += 1;
            if self.kind == Kind::KeepOld {
                return Ok((Posted::Full, Arm::Off));
            }
            l.owed += 1;
            l.owed_weight = l.owed_weight.saturating_add(weight);
        }
        let key = (KEY_BASE + now).max(self.hot.0.floor.load(Ordering::Acquire) + 1);
        l.push(backend, item, bytes, weight, key);
        let settle = l.owed >= self.slack || l.owed_weight >= OWED_WEIGHT;
        drop(l);
        let wake = self.take_arm();
        if settle {
            let mut held = self.hold();
            held.gather();
            held.flush(backend);
        }
        Ok((if full { Posted::Full } else { Posted::Stored }, wake))
    }

    /// Counts one more message held unless the box is full.
    fn admit(&self, lane: &mut Lane<B>) -> bool {
        let max = self.hot.0.max.load(Ordering::Acquire);
        let count = &self.len.0;
        let mut len = count.load(Ordering::Acquire);
        while len < max {
            match count.compare_exchange_weak(len, len + 1, Ordering::AcqRel, Ordering::Acquire) {
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
        self.hot.0.flags.take_arm()
    }

    /// A post into a box with a byte budget (one lane), exact under the
    /// control block's lock.
    fn post_sized(
        &self,
        backend: &mut B,
        item: B::Item,
        (bytes, weight): (u64, u64),
        budget: u64,
        now: u64,
    ) -> Result<(Posted, Arm), BufferError> {
        let mut held = self.hold();
        if held.closed() {
            return Err(BufferError::Closed);
        }
        held.gather();
        if self.early() {
            let mut lane = lock(&self.lanes()[0].0);
            lane.posted += 1;
            lane.early += 1;
            return Ok((Posted::Full, Arm::Off));
        }
        let max = self.max() as u64;
        let fits = |h: &Held<'_, B>| h.len() < max && h.ctl.bytes + bytes <= budget;
        let refused = bytes > budget || (self.kind == Kind::KeepOld && !fits(&held));
        let mut full = refused;
        if !refused {
            while !fits(&held) && held.drop_one(true, Reason::Overflow) {
                full = true;
            }
        }
        {
            let mut lane = lock(&self.lanes()[0].0);
            lane.posted += 1;
            if refused {
                lane.overflow += 1;
            } else {
                lane.push(backend, item, bytes, weight, KEY_BASE + now);
            }
        }
        if !refused {
            held.ctl.bytes += bytes;
            let len = held.add_len(1);
            held.ctl.tally.peak = held.ctl.tally.peak.max(len);
        }
        held.flush(backend);
        drop(held);
        let wake = if refused { Arm::Off } else { self.take_arm() };
        Ok((if full { Posted::Full } else { Posted::Stored }, wake))
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
        let (out, dropped, _) = self.take_limited(backend, release, n, usize::MAX, now);
        (out, dropped)
    }

    /// As [`Mailbox::take`], handing out at most `large_max` large
    /// messages (see [`LARGE`]): the take stops before the next large
    /// message once it has handed out that many, and then answers `true`
    /// besides (`false` when it stopped for any other reason). With
    /// `large_max == 0` a take copied out on a normal scheduler stops
    /// before a message too large to copy there.
    pub fn take_limited(
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

    /// Drops, as expired, the messages older than `max_age` at `now` (what a
    /// take does first), for a timer to call when nobody takes; nothing
    /// without an age limit.
    pub fn expire_now(&self, backend: &mut B, now: u64) {
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

    /// Puts back messages taken but not consumed (a filter's `skip`), given
    /// in the order they were delivered, with their sizes and large marks:
    /// they are the next to be delivered. Posts that filled the box
    /// meanwhile make room by the kind's rule (counted as overflow).
    pub fn restore(
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

    /// Counts `n` delivered messages as dropped by the owner's filter.
    pub fn filtered(&self, n: u64) -> Result<(), BufferError> {
        lock(&self.control.0).tally.filtered(n)
    }

    /// Puts back a delivery that reached nobody (its owner was dead): as
    /// [`Mailbox::restore`], with the `dropped` it reported to be reported
    /// again; if the box closed meanwhile, its messages count as dropped
    /// `Closed` instead of delivered.
    pub fn give_back(&self, backend: &mut B, items: Vec<Back<B::Item>>, dropped: u64, now: u64) {
        let n = items.len() as u64;
        match self.restore(backend, items, now) {
            Ok(()) => lock(&self.control.0).tally.unreport(dropped),
            Err(_) => lock(&self.control.0).tally.undeliver_closed(n, dropped),
        }
    }

    /// Changes the bound (refused once closed); when shrinking, drops per
    /// kind (the oldest for `Queue` and `Stack`, the newest for `KeepOld`)
    /// as `Resize`.
    pub fn resize(&self, backend: &mut B, max: usize) -> Result<(), BufferError> {
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

    /// Closes the box: every message held is dropped (`Closed`), its storage
    /// freed (when the take in flight finishes, if any), and later posts are
    /// refused.
    pub fn close(&self, backend: &mut B) {
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

    /// Frees all storage now, takes in flight or not: for when nothing can
    /// use the box any more (its destructor).
    pub fn dispose(&mut self, backend: &mut B) {
        for lane in self.lanes.get_mut().into_iter().flat_map(|l| l.iter_mut()) {
            let lane = get_mut(&mut lane.0);
            lane.q.clear();
            lane.chunks.free_all(backend);
        }
        let ctl = get_mut(&mut self.control.0);
        ctl.out.iter_mut().for_each(VecDeque::clear);
        ctl.freed.iter_mut().for_each(Vec::clear);
    }

    /// Arms the box; returns `false` (and leaves it unarmed) when it holds
    /// data already, so the caller delivers at once.
    pub fn arm(&self, mode: Arm) -> bool {
        // No post is between counting its message and reading the arming.
        let _lanes = self.lock_lanes();
        self.hot.0.flags.arm(mode, !self.is_empty())
    }

    /// The current arming.
    pub fn armed(&self) -> Arm {
        self.hot.0.flags.armed()
    }

    /// Disarms the box.
    pub fn disarm(&self) {
        self.hot.0.flags.disarm();
    }

    /// Messages held now.
    pub fn len(&self) -> usize {
        self.len.0.load(Ordering::Acquire) as usize
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
        self.hot.0.flags.is_closed()
    }

    /// Counters, size and storage, read under every lock.
    pub fn snapshot(&self) -> Snapshot {
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
    fn a_delivery_given_back_is_delivered_again() {
        for kind in [Kind::Queue, Kind::Stack] {
            let mut fake = Fake::default();
            let m = mailbox(kind, 3);
            for v in 0..5 {
                post(&m, &mut fake, 0, v, v);
            }
            let (taken, dropped) = m.take(&mut fake, &[], 10, 0);
            assert_eq!(dropped, 2);
            let items = taken
                .iter()
                .map(|t| (t.item(), t.bytes(), t.large()))
                .collect();
            let _ = m.take(&mut fake, &taken, 0, 0);
            m.give_back(&mut fake, items, dropped, 0);
            assert_eq!(m.snapshot().stats.delivered, 0);
            let want = if kind == Kind::Stack {
                vec![4, 3, 2]
            } else {
                vec![2, 3, 4]
            };
            assert_eq!(take(&m, &mut fake, 10), (want, 2), "{kind:?}");
            check(&m, &fake);
        }
    }

    #[test]
    fn a_delivery_given_back_to_a_closed_box_counts_closed() {
        let mut fake = Fake::default();
        let m = mailbox(Kind::Queue, 3);
        post(&m, &mut fake, 0, 1, 1);
        let (taken, _) = m.take(&mut fake, &[], 10, 0);
        let items = taken
            .iter()
            .map(|t| (t.item(), t.bytes(), t.large()))
            .collect();
        let _ = m.take(&mut fake, &taken, 0, 0);
        m.close(&mut fake);
        m.give_back(&mut fake, items, 0, 0);
        let s = m.snapshot().stats;
        assert_eq!((s.delivered, s.dropped[Reason::Closed as usize]), (0, 1));
        check(&m, &fake);
    }

    #[test]
    fn heavy_messages_settle_their_drops_at_once() {
        let mut fake = Fake::default();
        let m = mailbox(Kind::Queue, 1);
        for v in 0..20 {
            m.post_weighed(&mut fake, 0, (0, v), 0, OWED_WEIGHT, v)
                .expect("post");
            // the bound plus the message just posted, each in its own region
            assert!(fake.regions.len() <= 2, "{} regions", fake.regions.len());
        }
        assert_eq!(take(&m, &mut fake, 10), (vec![19], 19));
        check(&m, &fake);
    }

    /// Takes with at most `large_max` large messages: their values, and
    /// whether the take stopped before a large message.
    fn take_limited(
        m: &Mailbox<Fake>,
        fake: &mut Fake,
        n: usize,
        large_max: usize,
    ) -> (Vec<u64>, bool) {
        let (taken, _, stopped) = m.take_limited(fake, &[], n, large_max, 0);
        let values = taken.iter().map(|t| t.item().1).collect();
        let _ = m.take(fake, &taken, 0, 0);
        (values, stopped)
    }

    #[test]
    fn a_limited_take_stops_before_large_messages() {
        for kind in [Kind::Queue, Kind::Stack] {
            let mut fake = Fake::default();
            let m = mailbox(kind, 10);
            for v in 0..6 {
                let weight = if v % 3 == 1 { LARGE } else { 0 };
                m.post_weighed(&mut fake, v as usize % 2, (0, v), 0, weight, v)
                    .expect("post");
            }
            // queue: 0 L1 2 3 L4 5; stack: 5 L4 3 2 L1 0
            let steps: Vec<(usize, Vec<u64>, bool)> = match kind {
                Kind::Stack => vec![
                    (0, vec![5], true),
                    (0, vec![], true),
                    (1, vec![4, 3, 2], true),
                    (1, vec![1, 0], false),
                ],
                _ => vec![
                    (0, vec![0], true),
                    (0, vec![], true),
                    (1, vec![1, 2, 3], true),
                    (1, vec![4, 5], false),
                ],
            };
            for (large_max, want, stopped) in steps {
                assert_eq!(
                    take_limited(&m, &mut fake, 10, large_max),
                    (want, stopped),
                    "{kind:?}"
                );
                check(&m, &fake);
            }
            assert!(m.is_empty());
            let s = m.snapshot().stats;
            assert_eq!((s.posted, s.delivered), (6, 6));
        }
    }

    #[test]
    fn large_marks_survive_a_give_back_and_a_restore() {
        for kind in [Kind::Queue, Kind::Stack] {
            let mut fake = Fake::default();
            let m = mailbox(kind, 10);
            m.post_weighed(&mut fake, 0, (0, 1), 0, LARGE, 1)
                .expect("post");
            let (taken, dropped, _) = m.take_limited(&mut fake, &[], 10, 1, 2);
            assert!(taken.iter().all(|t| t.large()));
            let items = taken
                .iter()
                .map(|t| (t.item(), t.bytes(), t.large()))
                .collect();
            let _ = m.take(&mut fake, &taken, 0, 3);
            m.give_back(&mut fake, items, dropped, 4);
            assert_eq!(
                take_limited(&m, &mut fake, 10, 0),
                (vec![], true),
                "{kind:?}"
            );
            let (taken, _, _) = m.take_limited(&mut fake, &[], 10, 1, 5);
            let items = taken.iter().map(|t| (t.item(), 0, t.large())).collect();
            m.restore(&mut fake, items, 6).expect("restore");
            let _ = m.take(&mut fake, &taken, 0, 7);
            assert_eq!(
                take_limited(&m, &mut fake, 10, 0),
                (vec![], true),
                "{kind:?}"
            );
            assert_eq!(
                take_limited(&m, &mut fake, 10, 1),
                (vec![1], false),
                "{kind:?}"
            );
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
            let skipped: Vec<_> = taken.iter().map(|t| (t.item(), 0, false)).collect();
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
        m.restore(&mut fake, vec![(taken[0].item(), 0, false)], 7)
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

    fn with(policy: Policy) -> Mailbox<Fake> {
        mailbox(Kind::Queue, 100).with_policy(Policy {
            manual_clock: true,
            ..policy
        })
    }

    #[test]
    fn max_age_drops_at_delivery_on_the_manual_clock() {
        let mut fake = Fake::default();
        let m = with(Policy {
            max_age: Some(10),
            ..Policy::default()
        });
        for v in 0..3 {
            m.set_time(v * 5);
            post(&m, &mut fake, 0, v, 999);
        }
        m.set_time(16); // ages 16, 11, 6
        m.expire_now(&mut fake, 0);
        assert_eq!(m.len(), 1, "expired without a take");
        assert_eq!(take(&m, &mut fake, 10), (vec![2], 2));
        assert_eq!(m.snapshot().stats.dropped[Reason::Expired as usize], 2);
        check(&m, &fake);
    }

    #[test]
    fn codel_drops_at_the_head_after_an_interval_above_target() {
        let mut fake = Fake::default();
        let m = with(Policy {
            codel: Some(crate::policy::CodelConfig {
                target: 5,
                interval: 100,
            }),
            ..Policy::default()
        });
        for v in 0..20 {
            post(&m, &mut fake, 0, v, 0);
        }
        m.set_time(50); // above target: the interval starts
        assert_eq!(take(&m, &mut fake, 1), (vec![0], 0));
        m.set_time(150); // above target for an interval: a drop, reported
        assert_eq!(take(&m, &mut fake, 1), (vec![2], 1));
        m.set_time(250); // the next drop is due
        let (got, _) = take(&m, &mut fake, 2);
        assert_eq!(got, vec![4, 5]);
        assert_eq!(m.snapshot().stats.dropped[Reason::Expired as usize], 2);
        check(&m, &fake);
    }

    #[test]
    fn red_refuses_posts_early_without_copying() {
        let mut fake = Fake::default();
        let m = with(Policy {
            red: Some(crate::policy::Red {
                min: 2,
                max: 2,
                prob: 1.0,
            }),
            ..Policy::default()
        });
        let answers: Vec<Posted> = (0..5).map(|v| post(&m, &mut fake, 0, v, 0)).collect();
        assert_eq!(answers[..2], [Posted::Stored, Posted::Stored]);
        assert!(answers[2..].iter().all(|&p| p == Posted::Full));
        assert_eq!(fake.copies, 2);
        assert_eq!(take(&m, &mut fake, 10), (vec![0, 1], 3));
        assert_eq!(m.snapshot().stats.dropped[Reason::Early as usize], 3);
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

    /// Explores the interleavings with at most three preemptions each: every
    /// race below needs at most two.
    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(f);
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
        model(|| {
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
        model(|| {
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
