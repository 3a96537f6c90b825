//! Copying a batch of messages out of a [`Buffer`] under a budget: the
//! loop behind a take, an arming `active` and a post's delivery to an
//! owner armed `active`, none of which may hold the caller's thread for
//! long (a BEAM normal scheduler: well under a millisecond).
//!
//! A batch is taken in *strides*: each stride is one call into the buffer
//! (one lock) that gives back the previous stride's messages, once copied,
//! and hands out at most [`Budget::stride`] more; they are copied while the
//! buffer is unlocked, so producers are not held up by the copying. After
//! each stride the batch stops when
//! - it holds what was asked (at most [`Budget::cap`]),
//! - the buffer had no more to hand out,
//! - it stopped before a large message it may not copy (see below), or
//! - [`Budget::time`] has passed since it started (the clock is read once
//!   at the start, and after each stride that did not stop for the reasons
//!   above).
//!
//! A large message (posted with the weight [`crate::buffer::LARGE`]) is
//! too long to copy on a normal scheduler. A batch that may not copy one
//! ([`Request::large`] false) stops before it ([`Batch::stopped`]); if it
//! copied nothing at all, the caller goes on where large messages may be
//! copied (a dirty scheduler, [`Batch::wants_large`]), carrying the drops
//! already counted ([`Request::dropped`]). A batch that may copy them
//! copies at most one per stride, so the clock is read after each.

use crate::buffer::{Back, Buffer, Taken};
use crate::chunks::Backend;

/// How much one batch may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Most messages one batch hands out.
    pub cap: usize,
    /// Messages handed out between two looks at the clock (and under one
    /// lock of the buffer).
    pub stride: usize,
    /// Once this many clock ticks have passed since the batch started, it
    /// stops at the end of the stride.
    pub time: u64,
}

/// What one batch is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// At most this many messages (and at most [`Budget::cap`]).
    pub max: usize,
    /// Whether large messages may be copied (on a dirty scheduler): at
    /// most one per stride.
    pub large: bool,
    /// Whether to keep each message's size and large mark, for a delivery
    /// that may have to be given back ([`Batch::into_back`]).
    pub keep: bool,
    /// Drops counted by an earlier attempt at this batch that stopped
    /// before a large message: reported with this one.
    pub dropped: u64,
}

/// Messages copied out of a buffer, with the drops to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch<T> {
    /// The copies, in delivery order.
    pub copies: Vec<T>,
    /// Per copy, its size and large mark (only when [`Request::keep`]).
    marks: Vec<(u64, bool)>,
    /// Drops not reported before this batch (with [`Request::dropped`]).
    pub dropped: u64,
    /// Whether the batch stopped before a large message it may not copy.
    pub stopped: bool,
}

impl<T> Batch<T> {
    /// Whether the batch must be taken again where large messages may be
    /// copied: it copied nothing and stopped before a large message.
    pub fn wants_large(&self) -> bool {
        self.copies.is_empty() && self.stopped
    }

    /// The copies with their sizes and large marks, to give back to the
    /// buffer (see [`Buffer::give_back`]); sizes 0 and no marks unless
    /// the batch was asked to keep them.
    pub fn into_back(self) -> Vec<Back<T>> {
        let marks = self.marks.into_iter().chain(std::iter::repeat((0, false)));
        let items = self.copies.into_iter().zip(marks);
        items
            .map(|(copy, (bytes, large))| (copy, bytes, large))
            .collect()
    }
}

impl Budget {
    /// Takes a batch out of `buffer` as `req` asks, within this budget,
    /// reading the time from `clock` and copying each message with `copy`
    /// (called while the message's storage is pinned: between its hand-out
    /// and the next call into the buffer, which gives it back). Every
    /// message handed out is given back before this returns.
    pub fn take<B, T>(
        &self,
        buffer: &(impl Buffer<B> + ?Sized),
        backend: &mut B,
        req: Request,
        mut clock: impl FnMut() -> u64,
        mut copy: impl FnMut(B::Item) -> T,
    ) -> Batch<T>
    where
        B: Backend,
    {
        let max = req.max.min(self.cap);
        let start = clock();
        let mut batch = Batch {
            copies: Vec::with_capacity(max.min(buffer.len())),
            marks: Vec::new(),
            dropped: req.dropped,
            stopped: false,
        };
        let large_max = usize::from(req.large);
        let mut copied: Vec<Taken<B::Item>> = Vec::new();
        loop {
            let stride = (max - batch.copies.len()).min(self.stride);
            // One lock per stride: give back the previous stride, take this one.
            let (taken, fresh, before_large) =
                buffer.take_limited(backend, &copied, stride, large_max, start);
            batch.dropped += fresh;
            for t in &taken {
                batch.copies.push(copy(t.item()));
                if req.keep {
                    batch.marks.push((t.bytes(), t.large()));
                }
            }
            batch.stopped = before_large && !req.large;
            let empty = taken.len() < stride && !before_large;
            let last = empty
                || batch.stopped
                || batch.copies.len() >= max
                || clock().saturating_sub(start) >= self.time;
            copied = taken;
            if last {
                break;
            }
        }
        if !copied.is_empty() {
            let _ = buffer.take(backend, &copied, 0, start);
        }
        batch
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::cell::{Cell, RefCell};

    use super::*;
    use crate::buckets::{Buckets, Config, Order, WhenFull, Within};
    use crate::buffer::{Kind, LARGE};
    use crate::chunks::fake::Fake;
    use crate::mailbox::{Layout, Mailbox};

    /// What a batch did, in order: a look at the clock, a copy of a value.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Event {
        Clock,
        Copy(u64),
    }

    fn mailbox(max: usize, max_bytes: Option<u64>) -> Mailbox<Fake> {
        let layout = Layout {
            lanes: 2,
            slack: 2,
            per_chunk: 4,
        };
        Mailbox::new(Kind::Queue, max, max_bytes, layout).expect("mailbox")
    }

    /// Posts values `vs` (large where `large` says) from alternating lanes.
    fn fill(buffer: &dyn Buffer<Fake>, fake: &mut Fake, vs: &[u64], large: impl Fn(u64) -> bool) {
        for &v in vs {
            let weight = if large(v) { LARGE } else { 0 };
            let lane = v as usize % 2;
            let _ = buffer.post_weighed(fake, lane, (0, v), 10 * v, weight, v);
        }
    }

    fn budget(cap: usize, stride: usize, time: u64) -> Budget {
        Budget { cap, stride, time }
    }

    fn request(max: usize, large: bool) -> Request {
        Request {
            max,
            large,
            keep: false,
            dropped: 0,
        }
    }

    /// A batch whose clock ticks once per message copied: its values, the
    /// batch, and what it did.
    fn run(
        buffer: &dyn Buffer<Fake>,
        fake: &mut Fake,
        budget: Budget,
        req: Request,
    ) -> (Vec<u64>, Batch<(u32, u64)>, Vec<Event>) {
        let events = RefCell::new(Vec::new());
        let ticks = Cell::new(0);
        let clock = || {
            events.borrow_mut().push(Event::Clock);
            ticks.get()
        };
        let copy = |item: (u32, u64)| {
            events.borrow_mut().push(Event::Copy(item.1));
            ticks.set(ticks.get() + 1);
            item
        };
        let batch = budget.take(buffer, fake, req, clock, copy);
        let values = batch.copies.iter().map(|c| c.1).collect();
        (values, batch, events.into_inner())
    }

    fn clocks(events: &[Event]) -> usize {
        events.iter().filter(|&&e| e == Event::Clock).count()
    }

    #[test]
    fn a_batch_stops_at_what_was_asked_and_at_the_cap() {
        let mut fake = Fake::default();
        let m = mailbox(100, None);
        fill(&m, &mut fake, &(0..10).collect::<Vec<_>>(), |_| false);
        let (got, batch, events) = run(&m, &mut fake, budget(4, 3, 1000), request(100, false));
        assert_eq!((got, batch.stopped), (vec![0, 1, 2, 3], false));
        // strides of 3 then 1: the clock is read at the start and after
        // the first stride only (the second ends the batch at the cap)
        assert_eq!(clocks(&events), 2);
        let (got, _, _) = run(&m, &mut fake, budget(4, 3, 1000), request(2, false));
        assert_eq!(got, vec![4, 5]);
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn a_batch_stops_once_its_time_is_spent() {
        let mut fake = Fake::default();
        let m = mailbox(100, None);
        fill(&m, &mut fake, &(0..20).collect::<Vec<_>>(), |_| false);
        // one tick per copy: 2, 4, then 6 >= 5 ticks after three strides
        let (got, batch, events) = run(&m, &mut fake, budget(100, 2, 5), request(100, false));
        assert_eq!(got, (0..6).collect::<Vec<_>>());
        assert!(!batch.stopped && !batch.wants_large());
        assert_eq!(clocks(&events), 4);
        assert_eq!(m.len(), 14);
    }

    #[test]
    fn a_batch_stops_when_the_buffer_runs_dry() {
        let mut fake = Fake::default();
        let m = mailbox(100, None);
        fill(&m, &mut fake, &[0, 1, 2, 3, 4], |_| false);
        let (got, batch, events) = run(&m, &mut fake, budget(100, 2, 1000), request(100, false));
        assert_eq!((got, batch.stopped), (vec![0, 1, 2, 3, 4], false));
        // strides 2, 2, then 1 of 2: the buffer had no more
        assert_eq!(clocks(&events), 3);
        let (got, batch, _) = run(&m, &mut fake, budget(100, 2, 1000), request(100, false));
        assert_eq!((got, batch.wants_large()), (vec![], false));
    }

    #[test]
    fn every_message_is_given_back_before_the_batch_returns() {
        let mut fake = Fake::default();
        let m = mailbox(100, None);
        fill(&m, &mut fake, &(0..9).collect::<Vec<_>>(), |_| false);
        let (got, _, _) = run(&m, &mut fake, budget(100, 4, 1000), request(9, false));
        assert_eq!(got.len(), 9);
        // a take left in flight would keep the storage of a closed box
        m.close(&mut fake);
        assert!(fake.regions.is_empty(), "storage pinned after the batch");
    }

    #[test]
    fn a_normal_batch_stops_before_a_large_message_and_resumes_where_it_may_copy_it() {
        let mut fake = Fake::default();
        let m = mailbox(3, None);
        // 0 and 1 are dropped by the bound; 3 is large
        fill(&m, &mut fake, &[0, 1, 2, 3, 4], |v| v == 3);
        let (got, batch, _) = run(&m, &mut fake, budget(100, 10, 1000), request(100, false));
        assert_eq!((got, batch.dropped), (vec![2], 2));
        assert!(
            batch.stopped && !batch.wants_large(),
            "copied some: answers"
        );
        let (got, batch, _) = run(&m, &mut fake, budget(100, 10, 1000), request(100, false));
        assert_eq!((got, batch.dropped), (vec![], 0));
        assert!(
            batch.wants_large(),
            "copied none: goes on where it may copy"
        );
        let resumed = Request {
            dropped: 7,
            ..request(100, true)
        };
        let (got, batch, _) = run(&m, &mut fake, budget(100, 10, 1000), resumed);
        assert_eq!((got, batch.dropped, batch.stopped), (vec![3, 4], 7, false));
        assert!(m.is_empty());
    }

    #[test]
    fn a_large_batch_copies_one_large_message_per_stride_and_reads_the_clock_after_each() {
        let mut fake = Fake::default();
        let m = mailbox(100, None);
        fill(&m, &mut fake, &[0, 1, 2, 3, 4], |v| v <= 2);
        let (got, _, events) = run(&m, &mut fake, budget(100, 10, 1000), request(100, true));
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
        use Event::{Clock, Copy};
        let want = [
            Clock,
            Copy(0),
            Clock,
            Copy(1),
            Clock,
            Copy(2),
            Copy(3),
            Copy(4),
        ];
        assert_eq!(events, want);
    }

    #[test]
    fn a_large_batch_still_stops_once_its_time_is_spent() {
        let mut fake = Fake::default();
        let m = mailbox(100, None);
        fill(&m, &mut fake, &[0, 1, 2, 3], |_| true);
        let (got, _, _) = run(&m, &mut fake, budget(100, 10, 2), request(100, true));
        assert_eq!(got, vec![0, 1]);
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn kept_sizes_and_marks_give_the_batch_back_as_it_was() {
        let mut fake = Fake::default();
        let m = mailbox(10, Some(1000));
        fill(&m, &mut fake, &[1, 2, 3], |v| v == 2);
        let req = Request {
            keep: true,
            ..request(10, true)
        };
        let (got, batch, _) = run(&m, &mut fake, budget(100, 10, 1000), req);
        assert_eq!(got, vec![1, 2, 3]);
        assert_eq!(m.snapshot().bytes, 0);
        let dropped = batch.dropped;
        let back = batch.into_back();
        let marks: Vec<(u64, u64, bool)> = back.iter().map(|&(c, b, l)| (c.1, b, l)).collect();
        assert_eq!(marks, vec![(1, 10, false), (2, 20, true), (3, 30, false)]);
        m.give_back(&mut fake, back, dropped, 5);
        assert_eq!((m.len(), m.snapshot().bytes), (3, 60));
        let (got, _, _) = run(&m, &mut fake, budget(100, 10, 1000), request(10, false));
        assert_eq!(got, vec![1], "the large mark came back too");
    }

    #[test]
    fn without_keep_a_batch_gives_back_unsized_and_unmarked() {
        let mut fake = Fake::default();
        let m = mailbox(10, None);
        fill(&m, &mut fake, &[1, 2], |_| false);
        let (_, batch, _) = run(&m, &mut fake, budget(100, 10, 1000), request(10, false));
        let back: Vec<(u64, u64, bool)> = batch
            .into_back()
            .iter()
            .map(|&(c, b, l)| (c.1, b, l))
            .collect();
        assert_eq!(back, vec![(1, 0, false), (2, 0, false)]);
    }

    #[test]
    fn a_buffer_of_buckets_is_taken_the_same_way() {
        let mut fake = Fake::default();
        let cfg = Config {
            width: 10,
            max_age: None,
            order: Order::OldestFirst,
            within: Within::Fifo,
            when_full: WhenFull::DropOldest,
            manual_clock: false,
            per_chunk: 4,
        };
        let b = Buckets::new(cfg, 100).expect("buckets");
        fill(&b, &mut fake, &[0, 1, 2, 3, 4, 5], |v| v == 4);
        let (got, batch, _) = run(&b, &mut fake, budget(100, 2, 1000), request(100, false));
        assert_eq!((got, batch.stopped), (vec![0, 1, 2, 3], true));
        let (got, _, _) = run(&b, &mut fake, budget(100, 2, 1000), request(100, true));
        assert_eq!(got, vec![4, 5]);
        b.close(&mut fake);
        assert!(fake.regions.is_empty());
    }
}
