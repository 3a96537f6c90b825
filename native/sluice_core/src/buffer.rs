//! Bounded buffers with pobox's three policies: `queue`, `stack` and `keep_old`.
//!
//! A [`Buffer`] keeps its entries in arrival order (front = oldest, back =
//! newest) whatever its kind, so every removal happens at one of the two
//! ends; only the end differs:
//!
//! | kind       | delivers          | when full, drops          | shrinking drops |
//! |------------|-------------------|---------------------------|-----------------|
//! | `Queue`    | oldest first      | the oldest entry          | the oldest      |
//! | `Stack`    | newest first      | the oldest (bottom) entry | the oldest      |
//! | `KeepOld`  | oldest first      | the incoming message      | the newest      |
//!
//! A stack that drops its *bottom* keeps the newest messages, which is what a
//! latency-bound consumer wants; pobox's stack replaces its top instead.
//!
//! The buffer is generic over the stored message `M` and never frees one
//! itself: every message that leaves the buffer without being delivered is
//! handed to the caller's `dropped` callback, so the caller can release what
//! it holds (a term's storage, for instance).
//!
//! Invariants, after every call:
//! - `len() <= max()` and, when a byte budget is set, `bytes() <= max_bytes`;
//! - `posted == delivered + dropped (all reasons) + len()`;
//! - `peak >= len()`.
//!
//! Time is a `u64` the caller passes (nanoseconds of a monotonic clock); the
//! buffer only stores it with each entry.

use std::collections::VecDeque;

/// The buffer's drop and delivery policy; see the module table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// FIFO; when full the oldest entry is dropped.
    Queue,
    /// LIFO; when full the oldest (bottom) entry is dropped.
    Stack,
    /// FIFO; when full the incoming message is dropped.
    KeepOld,
}

/// Why a message left the buffer without being delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Dropped to respect the bound on a post.
    Overflow = 0,
    /// Dropped when the buffer was shrunk.
    Resize = 1,
    /// Dropped by the owner's filter after delivery.
    Filter = 2,
    /// Still buffered when the buffer was closed.
    Closed = 3,
}

/// Number of [`Reason`]s.
pub const REASONS: usize = 4;

/// What went wrong with a buffer operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferError {
    /// The bound must be at least 1.
    ZeroMax,
    /// The byte budget must be at least 1.
    ZeroMaxBytes,
    /// The buffer is closed.
    Closed,
    /// More entries were returned than were delivered.
    NotDelivered,
}

/// The answer to a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    /// Stored, nothing dropped.
    Stored,
    /// Something was dropped to respect the bound: an older entry, or (for
    /// `KeepOld`, or a message larger than the whole byte budget) this one.
    Full,
}

/// One buffered message with its size (as counted for the byte budget) and
/// the time it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<M> {
    /// The message.
    pub msg: M,
    /// Its size in the caller's unit (0 when no byte budget is used).
    pub bytes: u64,
    /// Arrival time, as passed to [`Buffer::post`].
    pub at: u64,
}

/// Counters of a buffer since it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Messages accepted by `post` (stored, or dropped on the spot as overflow).
    pub posted: u64,
    /// Messages handed out by `take` and not given back.
    pub delivered: u64,
    /// Dropped messages, indexed by [`Reason`].
    pub dropped: [u64; REASONS],
    /// Largest number of entries held at once.
    pub peak: usize,
}

impl Stats {
    /// Dropped messages over all reasons.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

/// A bounded buffer; see the module documentation.
#[derive(Debug)]
pub struct Buffer<M> {
    kind: Kind,
    max: usize,
    max_bytes: Option<u64>,
    entries: VecDeque<Entry<M>>,
    bytes: u64,
    stats: Stats,
    closed: bool,
}

impl<M> Buffer<M> {
    /// An empty buffer holding at most `max` entries and, if given, at most
    /// `max_bytes` bytes of them.
    pub fn new(kind: Kind, max: usize, max_bytes: Option<u64>) -> Result<Self, BufferError> {
        if max == 0 {
            return Err(BufferError::ZeroMax);
        }
        if max_bytes == Some(0) {
            return Err(BufferError::ZeroMaxBytes);
        }
        Ok(Self {
            kind,
            max,
            max_bytes,
            entries: VecDeque::new(),
            bytes: 0,
            stats: Stats::default(),
            closed: false,
        })
    }

    /// The buffer's kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The bound on entries.
    pub fn max(&self) -> usize {
        self.max
    }

    /// The byte budget, if any.
    pub fn max_bytes(&self) -> Option<u64> {
        self.max_bytes
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes held now (sum of the entries' sizes).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Whether [`Buffer::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Arrival time of the oldest entry.
    pub fn oldest(&self) -> Option<u64> {
        self.entries.front().map(|e| e.at)
    }

    fn fits(&self, extra_entries: usize, extra_bytes: u64) -> bool {
        self.entries.len() + extra_entries <= self.max
            && self
                .max_bytes
                .is_none_or(|mb| self.bytes.saturating_add(extra_bytes) <= mb)
    }

    fn drop_front(&mut self, reason: Reason, dropped: &mut impl FnMut(M)) -> bool {
        let entry = self.entries.pop_front();
        self.drop_entry(entry, reason, dropped)
    }

    fn drop_back(&mut self, reason: Reason, dropped: &mut impl FnMut(M)) -> bool {
        let entry = self.entries.pop_back();
        self.drop_entry(entry, reason, dropped)
    }

    fn drop_entry(
        &mut self,
        entry: Option<Entry<M>>,
        reason: Reason,
        dropped: &mut impl FnMut(M),
    ) -> bool {
        match entry {
            Some(e) => {
                self.bytes -= e.bytes;
                self.stats.dropped[reason as usize] += 1;
                dropped(e.msg);
                true
            }
            None => false,
        }
    }

    /// Offers `msg` (of size `bytes`, arriving at `now`). Whatever is dropped
    /// to respect the bound, this message or older ones, goes to `dropped`.
    pub fn post(
        &mut self,
        msg: M,
        bytes: u64,
        now: u64,
        dropped: &mut impl FnMut(M),
    ) -> Result<Posted, BufferError> {
        if self.refuse(bytes)? {
            dropped(msg);
            return Ok(Posted::Full);
        }
        Ok(self.store(msg, bytes, now, dropped))
    }

    /// Like [`Buffer::post`], but the message is made by `make` only when it
    /// is stored: a message refused outright (`KeepOld` when full, or larger
    /// than the whole byte budget) is counted as dropped and never made.
    pub fn post_with(
        &mut self,
        make: impl FnOnce() -> M,
        bytes: u64,
        now: u64,
        dropped: &mut impl FnMut(M),
    ) -> Result<Posted, BufferError> {
        if self.refuse(bytes)? {
            return Ok(Posted::Full);
        }
        Ok(self.store(make(), bytes, now, dropped))
    }

    /// Counts a post; `true` when the message is dropped on arrival.
    fn refuse(&mut self, bytes: u64) -> Result<bool, BufferError> {
        if self.closed {
            return Err(BufferError::Closed);
        }
        self.stats.posted += 1;
        let too_big = self.max_bytes.is_some_and(|mb| bytes > mb);
        let refused = too_big || (self.kind == Kind::KeepOld && !self.fits(1, bytes));
        if refused {
            self.stats.dropped[Reason::Overflow as usize] += 1;
        }
        Ok(refused)
    }

    fn store(&mut self, msg: M, bytes: u64, now: u64, dropped: &mut impl FnMut(M)) -> Posted {
        let mut outcome = Posted::Stored;
        while !self.fits(1, bytes) && self.drop_front(Reason::Overflow, dropped) {
            outcome = Posted::Full;
        }
        self.bytes += bytes;
        self.entries.push_back(Entry {
            msg,
            bytes,
            at: now,
        });
        self.stats.peak = self.stats.peak.max(self.entries.len());
        outcome
    }

    /// Hands at most `n` entries to `out`, in delivery order (oldest first,
    /// or newest first for a stack). Returns how many were handed out.
    pub fn take(&mut self, n: usize, out: &mut impl FnMut(Entry<M>)) -> usize {
        let n = n.min(self.entries.len());
        for _ in 0..n {
            let entry = match self.kind {
                Kind::Stack => self.entries.pop_back(),
                Kind::Queue | Kind::KeepOld => self.entries.pop_front(),
            };
            if let Some(e) = entry {
                self.bytes -= e.bytes;
                out(e);
            }
        }
        self.stats.delivered += n as u64;
        self.release_spare();
        n
    }

    /// Gives memory back once the entries fill less than a quarter of it.
    fn release_spare(&mut self) {
        let capacity = self.entries.capacity();
        if capacity > 64 && self.entries.len() * 4 < capacity {
            self.entries.shrink_to(capacity / 2);
        }
    }

    /// The messages whose `key` equals `key`, when the entries are sorted
    /// by `key` in arrival order (as chunk ids are): found by binary search.
    pub fn run_mut(&mut self, key: impl Fn(&M) -> u64, value: u64) -> impl Iterator<Item = &mut M> {
        let start = self.entries.partition_point(|e| key(&e.msg) < value);
        let end = self.entries.partition_point(|e| key(&e.msg) <= value);
        self.entries.range_mut(start..end).map(|e| &mut e.msg)
    }

    /// Puts back entries taken by [`Buffer::take`] but not consumed (a
    /// filter's `skip`), in the order they were delivered, so they are the
    /// next to be delivered again. Entries beyond the bound are dropped as
    /// `Overflow`.
    pub fn restore(
        &mut self,
        entries: Vec<Entry<M>>,
        dropped: &mut impl FnMut(M),
    ) -> Result<(), BufferError> {
        let n = entries.len() as u64;
        if n > self.stats.delivered {
            return Err(BufferError::NotDelivered);
        }
        self.stats.delivered -= n;
        for e in entries.into_iter().rev() {
            self.bytes += e.bytes;
            match self.kind {
                Kind::Stack => self.entries.push_back(e),
                Kind::Queue | Kind::KeepOld => self.entries.push_front(e),
            }
        }
        // Posts that arrived meanwhile may have filled the buffer: trim from
        // the end a post would trim, after the restored entries went back in.
        while !self.fits(0, 0) {
            let gone = match self.kind {
                Kind::Queue | Kind::Stack => self.drop_front(Reason::Overflow, dropped),
                Kind::KeepOld => self.drop_back(Reason::Overflow, dropped),
            };
            if !gone {
                break;
            }
        }
        self.stats.peak = self.stats.peak.max(self.entries.len());
        Ok(())
    }

    /// Counts `n` delivered messages as dropped by the owner's filter.
    pub fn filtered(&mut self, n: u64) -> Result<(), BufferError> {
        if n > self.stats.delivered {
            return Err(BufferError::NotDelivered);
        }
        self.stats.delivered -= n;
        self.stats.dropped[Reason::Filter as usize] += n;
        Ok(())
    }

    /// Changes the bound (refused once closed); when shrinking, drops per kind (the oldest for
    /// `Queue` and `Stack`, the newest for `KeepOld`) as `Resize`.
    pub fn resize(&mut self, max: usize, dropped: &mut impl FnMut(M)) -> Result<(), BufferError> {
        if max == 0 {
            return Err(BufferError::ZeroMax);
        }
        if self.closed {
            return Err(BufferError::Closed);
        }
        self.max = max;
        while self.entries.len() > max {
            match self.kind {
                Kind::Queue | Kind::Stack => self.drop_front(Reason::Resize, dropped),
                Kind::KeepOld => self.drop_back(Reason::Resize, dropped),
            };
        }
        self.release_spare();
        Ok(())
    }

    /// Closes the buffer: every entry still held is dropped as `Closed`, and
    /// later posts are refused.
    pub fn close(&mut self, dropped: &mut impl FnMut(M)) {
        self.closed = true;
        while self.drop_front(Reason::Closed, dropped) {}
        self.entries = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer(kind: Kind, max: usize) -> Buffer<u32> {
        Buffer::new(kind, max, None).expect("buffer")
    }

    fn post_all(b: &mut Buffer<u32>, msgs: impl IntoIterator<Item = u32>) -> Vec<u32> {
        let mut dropped = Vec::new();
        for m in msgs {
            b.post(m, 0, u64::from(m), &mut |d| dropped.push(d))
                .expect("post");
        }
        dropped
    }

    fn take_all(b: &mut Buffer<u32>) -> Vec<u32> {
        let mut out = Vec::new();
        b.take(usize::MAX, &mut |e| out.push(e.msg));
        out
    }

    fn check_invariants<M>(b: &Buffer<M>) {
        let s = b.stats();
        assert!(b.len() <= b.max());
        assert_eq!(s.posted, s.delivered + s.dropped_total() + b.len() as u64);
        assert!(s.peak >= b.len());
        if let Some(mb) = b.max_bytes() {
            assert!(b.bytes() <= mb);
        }
    }

    #[test]
    fn rejects_zero_bounds() {
        assert_eq!(
            Buffer::<u32>::new(Kind::Queue, 0, None).err(),
            Some(BufferError::ZeroMax)
        );
        assert_eq!(
            Buffer::<u32>::new(Kind::Queue, 1, Some(0)).err(),
            Some(BufferError::ZeroMaxBytes)
        );
        let mut b = buffer(Kind::Queue, 3);
        assert_eq!(b.resize(0, &mut |_| {}), Err(BufferError::ZeroMax));
    }

    #[test]
    fn queue_keeps_newest_and_delivers_oldest_first() {
        let mut b = buffer(Kind::Queue, 3);
        assert_eq!(post_all(&mut b, 1..=5), vec![1, 2]);
        assert_eq!(take_all(&mut b), vec![3, 4, 5]);
        assert_eq!(b.stats().dropped[Reason::Overflow as usize], 2);
        check_invariants(&b);
    }

    #[test]
    fn stack_drops_bottom_and_delivers_newest_first() {
        let mut b = buffer(Kind::Stack, 3);
        assert_eq!(post_all(&mut b, 1..=5), vec![1, 2]);
        assert_eq!(take_all(&mut b), vec![5, 4, 3]);
        check_invariants(&b);
    }

    #[test]
    fn keep_old_drops_incoming() {
        let mut b = buffer(Kind::KeepOld, 3);
        let mut dropped = Vec::new();
        for m in 1..=3 {
            assert_eq!(
                b.post(m, 0, 0, &mut |d| dropped.push(d)),
                Ok(Posted::Stored)
            );
        }
        assert_eq!(b.post(4, 0, 0, &mut |d| dropped.push(d)), Ok(Posted::Full));
        assert_eq!(dropped, vec![4]);
        assert_eq!(take_all(&mut b), vec![1, 2, 3]);
        check_invariants(&b);
    }

    #[test]
    fn partial_take_and_counters() {
        let mut b = buffer(Kind::Queue, 10);
        post_all(&mut b, 1..=6);
        let mut out = Vec::new();
        assert_eq!(b.take(4, &mut |e| out.push(e)), 4);
        assert_eq!(
            out.iter().map(|e| e.at).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        assert_eq!(b.len(), 2);
        assert_eq!(b.stats().delivered, 4);
        assert_eq!(b.stats().peak, 6);
        check_invariants(&b);
    }

    #[test]
    fn byte_budget_evicts_until_it_fits() {
        let mut b: Buffer<u32> = Buffer::new(Kind::Queue, 100, Some(10)).expect("buffer");
        let mut dropped = Vec::new();
        for (m, size) in [(1, 4), (2, 4), (3, 4)] {
            b.post(m, size, 0, &mut |d| dropped.push(d)).expect("post");
        }
        assert_eq!(dropped, vec![1]);
        assert_eq!(b.bytes(), 8);
        // larger than the whole budget: refused, nothing else dropped
        assert_eq!(b.post(9, 11, 0, &mut |d| dropped.push(d)), Ok(Posted::Full));
        assert_eq!(dropped, vec![1, 9]);
        assert_eq!(take_all(&mut b), vec![2, 3]);
        assert_eq!(b.bytes(), 0);
        check_invariants(&b);
    }

    #[test]
    fn resize_drops_per_kind() {
        for (kind, kept, gone) in [
            (Kind::Queue, vec![4, 5], vec![1, 2, 3]),
            (Kind::Stack, vec![5, 4], vec![1, 2, 3]),
            (Kind::KeepOld, vec![1, 2], vec![5, 4, 3]),
        ] {
            let mut b = buffer(kind, 5);
            post_all(&mut b, 1..=5);
            let mut dropped = Vec::new();
            b.resize(2, &mut |d| dropped.push(d)).expect("resize");
            assert_eq!(dropped, gone, "{kind:?}");
            assert_eq!(take_all(&mut b), kept, "{kind:?}");
            assert_eq!(b.stats().dropped[Reason::Resize as usize], 3);
            check_invariants(&b);
        }
    }

    #[test]
    fn restore_puts_entries_back_in_delivery_order() {
        for kind in [Kind::Queue, Kind::Stack, Kind::KeepOld] {
            let mut b = buffer(kind, 10);
            post_all(&mut b, 1..=4);
            let mut out = Vec::new();
            b.take(3, &mut |e| out.push(e));
            let first: Vec<u32> = out.iter().map(|e| e.msg).collect();
            let skipped = out.split_off(1);
            b.restore(skipped, &mut |_| panic!("nothing to drop"))
                .expect("restore");
            let again = take_all(&mut b);
            assert_eq!(&again[..2], &first[1..], "{kind:?}");
            check_invariants(&b);
        }
    }

    #[test]
    fn restore_respects_the_bound() {
        let mut b = buffer(Kind::Queue, 3);
        post_all(&mut b, 1..=3);
        let mut out = Vec::new();
        b.take(2, &mut |e| out.push(e));
        post_all(&mut b, 4..=5);
        let mut dropped = Vec::new();
        b.restore(out, &mut |d| dropped.push(d)).expect("restore");
        assert_eq!(dropped, vec![1, 2]);
        assert_eq!(take_all(&mut b), vec![3, 4, 5]);
        check_invariants(&b);
        let extra = vec![
            Entry {
                msg: 7,
                bytes: 0,
                at: 0
            };
            4
        ];
        assert_eq!(
            b.restore(extra, &mut |_| {}),
            Err(BufferError::NotDelivered)
        );
    }

    #[test]
    fn filtered_moves_delivered_to_dropped() {
        let mut b = buffer(Kind::Queue, 10);
        post_all(&mut b, 1..=5);
        take_all(&mut b);
        b.filtered(2).expect("filtered");
        assert_eq!(b.stats().delivered, 3);
        assert_eq!(b.stats().dropped[Reason::Filter as usize], 2);
        assert_eq!(b.filtered(4), Err(BufferError::NotDelivered));
        check_invariants(&b);
    }

    #[test]
    fn close_drops_everything_and_refuses_posts() {
        let mut b = buffer(Kind::Stack, 10);
        post_all(&mut b, 1..=3);
        let mut dropped = Vec::new();
        b.close(&mut |d| dropped.push(d));
        assert_eq!(dropped, vec![1, 2, 3]);
        assert_eq!(b.resize(5, &mut |_| {}), Err(BufferError::Closed));
        assert!(b.is_closed() && b.is_empty());
        assert_eq!(b.post(9, 0, 0, &mut |_| {}), Err(BufferError::Closed));
        assert_eq!(b.stats().dropped[Reason::Closed as usize], 3);
        check_invariants(&b);
    }

    #[test]
    fn random_operations_keep_invariants() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for kind in [Kind::Queue, Kind::Stack, Kind::KeepOld] {
            let mut b: Buffer<u64> = Buffer::new(kind, 50, Some(2_000)).expect("buffer");
            let mut live = 0i64;
            for i in 0..20_000u64 {
                match next() % 10 {
                    0..=5 => {
                        live += 1;
                        b.post(i, next() % 100, i, &mut |_| live -= 1)
                            .expect("post");
                    }
                    6..=7 => {
                        let n = (next() % 8) as usize;
                        live -= b.take(n, &mut |_| {}) as i64;
                    }
                    8 => b
                        .resize(1 + (next() % 60) as usize, &mut |_| live -= 1)
                        .expect("resize"),
                    _ => {
                        let mut out = Vec::new();
                        live -= b.take(3, &mut |e| out.push(e)) as i64;
                        live += out.len() as i64;
                        b.restore(out, &mut |_| live -= 1).expect("restore");
                    }
                }
                check_invariants(&b);
                assert_eq!(live, b.len() as i64);
            }
        }
    }
}
