//! The vocabulary of bounded buffers with pobox's three policies: `queue`,
//! `stack` and `keep_old` (the buffers themselves are
//! [`crate::mailbox::Mailbox`]es).
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

use crate::chunks::Slot;
use crate::hist::Histogram;

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
/// only when asked to (see `Mailbox::take_limited`), so that the caller
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
#[derive(Debug, Clone, Default)]
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
