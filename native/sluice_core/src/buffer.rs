//! The vocabulary of bounded buffers with pobox's three policies: `queue`,
//! `stack` and `keep_old`, and the interface every buffer an owner holds
//! behind a box handle implements ([`Buffer`]: a box of lanes,
//! [`crate::mailbox::Mailbox`], or a buffer of time buckets,
//! [`crate::buckets::Buckets`]).
//!
//! Every kind delivers and drops at one of the two ends of its messages in
//! arrival order (front = oldest, back = newest):
//!
//! | kind       | delivers          | when full, drops          | shrinking drops |
//! |------------|-------------------|---------------------------|-----------------|
//! | `Queue`    | oldest first      | the oldest message        | the oldest      |
//! | `Stack`    | newest first      | the oldest (bottom) one   | the oldest      |
//! | `KeepOld`  | oldest first      | the incoming message      | the newest      |
//!
//! A stack that drops its *bottom* keeps the newest messages, which is what a
//! latency-bound consumer wants; pobox's stack replaces its top instead.

use serde::{Deserialize, Serialize};

use crate::arming::Arm;
use crate::chunks::{Backend, Slot};
use crate::hist::Histogram;
use crate::picture::Picture;

/// The buffer's drop and delivery policy; see the module table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Too old: an expired bucket, or a message past its age limit.
    Expired = 4,
    /// Dropped early, before the buffer was full.
    Early = 5,
}

/// Number of [`Reason`]s.
pub const REASONS: usize = 6;

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

    /// Dropped messages for `reason`.
    pub fn dropped_by(&self, reason: Reason) -> u64 {
        self.dropped[reason as usize]
    }
}

/// A message handed out by a take, valid until given back.
#[derive(Debug, Clone, Copy)]
pub struct Taken<I> {
    pub(crate) slot: Slot<I>,
    /// Where the slot's storage lives (a lane, a bucket).
    pub(crate) home: u64,
    /// The message's size, as counted for the byte budget.
    pub(crate) bytes: u64,
    /// Whether the message is large (see [`LARGE`]).
    pub(crate) large: bool,
}

/// The weight of a *large* message: one too big to be copied on a normal
/// scheduler (the NIF decides, by walking it with a budget). A buffer
/// stores it on its own and marks it, and a take hands out large messages
/// only when asked to (see `Buffer::take_limited`), so that the caller
/// copies them out where a long copy holds nobody up.
pub const LARGE: u64 = u64::MAX;

/// A message put back into a buffer (a restore, a delivery given back):
/// the stored message, its size as counted for the byte budget, and
/// whether it is large.
pub type Back<I> = (I, u64, bool);

impl<I: Copy> Taken<I> {
    /// The stored message.
    pub fn item(&self) -> I {
        self.slot.item
    }

    /// The message's size, as counted for the byte budget (0 without one).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether the message is large (see [`LARGE`]).
    pub fn large(&self) -> bool {
        self.large
    }
}

/// What left a buffer, kept on its owner's side: the counters every buffer
/// keeps besides its messages.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tally {
    /// Messages handed out and not given back.
    pub delivered: u64,
    /// Dropped messages, indexed by [`Reason`].
    pub dropped: [u64; REASONS],
    /// Drops already reported with a delivery.
    pub reported: u64,
    /// Largest number of messages held at once (as far as this side saw).
    pub peak: u64,
    /// Sojourn times of delivered messages: made at the first delivery
    /// (a histogram is about 8 KB; an idle buffer has none).
    sojourn: Option<Box<Histogram>>,
}

impl Tally {
    /// Records the sojourn time of a delivered message.
    pub fn record_sojourn(&mut self, ns: u64) {
        self.sojourn.get_or_insert_with(Default::default).record(ns);
    }

    /// The sojourn times recorded so far.
    pub fn sojourn(&self) -> Histogram {
        self.sojourn.as_deref().cloned().unwrap_or_default()
    }

    /// Counts `n` delivered messages as dropped by the owner's filter.
    pub fn filtered(&mut self, n: u64) -> Result<(), BufferError> {
        if n > self.delivered {
            return Err(BufferError::NotDelivered);
        }
        self.delivered -= n;
        self.dropped[Reason::Filter as usize] += n;
        Ok(())
    }

    /// Counts `n` delivered messages, which could not be handed to anybody
    /// (the buffer closed before they went back), as dropped `Closed`, and
    /// `dropped` drops reported with them as not reported yet.
    pub fn undeliver_closed(&mut self, n: u64, dropped: u64) {
        let n = n.min(self.delivered);
        self.delivered -= n;
        self.dropped[Reason::Closed as usize] += n;
        self.unreport(dropped);
    }

    /// Marks `dropped` drops reported with a delivery that never reached
    /// anybody as not reported yet: the next delivery reports them.
    pub fn unreport(&mut self, dropped: u64) {
        self.reported = self.reported.saturating_sub(dropped);
    }

    /// Drops of every reason but filter and closed not yet reported (with
    /// `elsewhere` more counted outside this tally), and marks them
    /// reported.
    pub fn unreported(&mut self, elsewhere: u64) -> u64 {
        let reasons = [
            Reason::Overflow,
            Reason::Resize,
            Reason::Expired,
            Reason::Early,
        ];
        let total = elsewhere
            + reasons
                .iter()
                .map(|&r| self.dropped[r as usize])
                .sum::<u64>();
        let fresh = total.saturating_sub(self.reported);
        self.reported = total;
        fresh
    }
}

/// A picture of a buffer for `info`.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Counters since the buffer was made.
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

/// A bounded buffer of messages stored through a [`Backend`], with one
/// owner who takes them out: what a box handle holds, whatever the
/// buffer's layout. Implemented by [`crate::mailbox::Mailbox`] (lanes,
/// pobox's policies, a byte budget) and [`crate::buckets::Buckets`] (time
/// buckets: one lane, no byte budget, sizes ignored).
///
/// Times are in the caller's ticks (nanoseconds in the NIF); a buffer made
/// with a manual clock ignores them and uses [`Buffer::set_time`]'s.
/// Counters, after every call: `posted == delivered + dropped (all
/// reasons) + len`, and `peak >= len`.
pub trait Buffer<B: Backend> {
    /// Offers `item` (of size `bytes`, arriving at `now`) from lane `lane`
    /// (any number; a buffer with fewer lanes takes it modulo theirs). It
    /// is copied into the buffer's storage only when kept. Returns the
    /// outcome and the wake-up to perform ([`Arm::Off`] for none).
    fn post(
        &self,
        backend: &mut B,
        lane: usize,
        item: B::Item,
        bytes: u64,
        now: u64,
    ) -> Result<(Posted, Arm), BufferError> {
        self.post_weighed(backend, lane, item, bytes, 0, now)
    }

    /// As [`Buffer::post`], with the bytes the message's copy keeps alive
    /// (`weight`; [`LARGE`] marks a large message, stored on its own and
    /// handed out only by a take that allows it).
    fn post_weighed(
        &self,
        backend: &mut B,
        lane: usize,
        item: B::Item,
        bytes: u64,
        weight: u64,
        now: u64,
    ) -> Result<(Posted, Arm), BufferError>;

    /// Gives back the messages of the previous take (`release`, once
    /// copied) and hands out at most `n` more in delivery order, recording
    /// their sojourn times against `now`. Returns them with the drops not
    /// reported yet. Messages handed out stay valid until given back by the
    /// next call (with `n == 0` to only give back), whatever other calls
    /// (posts, resizes, a close) do meanwhile.
    fn take(
        &self,
        backend: &mut B,
        release: &[Taken<B::Item>],
        n: usize,
        now: u64,
    ) -> (Vec<Taken<B::Item>>, u64) {
        let (out, dropped, _) = self.take_limited(backend, release, n, usize::MAX, now);
        (out, dropped)
    }

    /// As [`Buffer::take`], handing out at most `large_max` large messages
    /// (see [`LARGE`]): the take stops before the next large message once
    /// it has handed out that many, and then answers `true` besides
    /// (`false` when it stopped for any other reason). With `large_max ==
    /// 0` a take copied out on a normal scheduler stops before a message
    /// too large to copy there.
    fn take_limited(
        &self,
        backend: &mut B,
        release: &[Taken<B::Item>],
        n: usize,
        large_max: usize,
        now: u64,
    ) -> (Vec<Taken<B::Item>>, u64, bool);

    /// Drops what is too old at `now` (what a post or take does first),
    /// for a timer to call when nobody posts or takes.
    fn expire_now(&self, backend: &mut B, now: u64);

    /// Puts back messages taken but not consumed (a filter's `skip`), given
    /// in the order they were delivered, with their sizes and large marks:
    /// they are the next to be delivered. Posts that filled the buffer
    /// meanwhile make room by its overflow rule.
    fn restore(
        &self,
        backend: &mut B,
        items: Vec<Back<B::Item>>,
        now: u64,
    ) -> Result<(), BufferError>;

    /// Puts back a delivery that reached nobody (its owner was dead): as
    /// [`Buffer::restore`], with the `dropped` it reported to be reported
    /// again; if the buffer closed meanwhile, its messages count as dropped
    /// `Closed` instead of delivered.
    fn give_back(&self, backend: &mut B, items: Vec<Back<B::Item>>, dropped: u64, now: u64);

    /// Counts `n` delivered messages as dropped by the owner's filter.
    fn filtered(&self, n: u64) -> Result<(), BufferError>;

    /// Changes the bound (refused once closed); shrinking drops by the
    /// buffer's rule, counted as `Resize`.
    fn resize(&self, backend: &mut B, max: usize) -> Result<(), BufferError>;

    /// Closes the buffer: every message held is dropped (`Closed`), its
    /// storage freed (once no take is in flight), and later posts are
    /// refused.
    fn close(&self, backend: &mut B);

    /// Frees all storage now, takes in flight or not: for when nothing can
    /// use the buffer any more (its destructor).
    fn dispose(&mut self, backend: &mut B);

    /// Arms the buffer; returns `false` (and leaves it unarmed) when it
    /// holds data already, so the caller delivers at once.
    fn arm(&self, mode: Arm) -> bool;

    /// Disarms the buffer.
    fn disarm(&self);

    /// Sets the manual clock (ignored unless the buffer has one); time
    /// never goes back.
    fn set_time(&self, now: u64);

    /// Messages held now.
    fn len(&self) -> usize;

    /// Whether no message is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound.
    fn max(&self) -> usize;

    /// The byte budget, if any.
    fn max_bytes(&self) -> Option<u64> {
        None
    }

    /// The box's policy, or `None` for a buffer of time buckets.
    fn kind(&self) -> Option<Kind>;

    /// Whether the buffer was closed.
    fn is_closed(&self) -> bool;

    /// Counters, size and storage.
    fn snapshot(&self) -> Snapshot;

    /// Everything observable of the buffer, with its messages, for another
    /// build to make the same buffer from (see [`crate::picture`]). Carries
    /// out the drops the buffer owes first; the messages stay held (valid
    /// until the buffer is disposed of), and the buffer stays usable.
    fn picture(&self) -> Picture<B::Item>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_by_reads_each_reasons_counter() {
        let stats = Stats {
            dropped: [1, 2, 3, 4, 5, 6],
            ..Stats::default()
        };
        let reasons = [
            Reason::Overflow,
            Reason::Resize,
            Reason::Filter,
            Reason::Closed,
            Reason::Expired,
            Reason::Early,
        ];
        let got: Vec<u64> = reasons.iter().map(|&r| stats.dropped_by(r)).collect();
        assert_eq!(got, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(stats.dropped_total(), 21);
    }
}
