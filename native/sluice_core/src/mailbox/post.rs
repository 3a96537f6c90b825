//! The producers' side of a box: a post into its lane (admission against
//! the bound by compare-and-swap on the count held, owed drops, random
//! early drop), and a post into a box with a byte budget, which has one
//! lane and is exact under the control block's lock (what it drops depends
//! on sizes).

use super::{
    lock, Arm, Backend, Buffer, BufferError, Held, Kind, Lane, Mailbox, Ordering, Posted, Reason,
    KEY_BASE, OWED_WEIGHT,
};
use crate::rng::{chance, thread_u64};

impl<B: Backend> Mailbox<B> {
    /// A post into a box without a byte budget: under its lane's lock
    /// alone, unless it owes enough drops to settle them (see
    /// [`Buffer::post_weighed`]).
    pub(super) fn post_lane(
        &self,
        backend: &mut B,
        lane: usize,
        item: B::Item,
        (bytes, weight): (u64, u64),
        now: u64,
    ) -> Result<(Posted, Arm), BufferError> {
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

    /// A post into a box with a byte budget (one lane), exact under the
    /// control block's lock.
    pub(super) fn post_sized(
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
}
