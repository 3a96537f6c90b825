//! The control block of a box, locked: the operations on the messages
//! moved out of the lanes (gathering, removing, dropping, expiring) and
//! giving their slots back to the lanes' storage.

use std::collections::VecDeque;

use super::{
    lock, trim, Backend, Buffer, Control, Entry, Mailbox, MutexGuard, Ordering, Reason, Slot,
    KEY_BASE,
};

/// Slots as runs of (chunk id, count) of consecutive slots sharing a chunk.
fn runs<I>(slots: &[Slot<I>]) -> Vec<(u64, u32)> {
    let mut runs: Vec<(u64, u32)> = Vec::new();
    for slot in slots {
        match runs.last_mut() {
            Some((id, n)) if *id == slot.chunk => *n += 1,
            _ => runs.push((slot.chunk, 1)),
        }
    }
    runs
}

/// The control block, locked.
pub(super) struct Held<'a, B: Backend> {
    pub(super) mb: &'a Mailbox<B>,
    pub(super) ctl: MutexGuard<'a, Control<B::Item>>,
}

impl<B: Backend> Held<'_, B> {
    pub(super) fn len(&self) -> u64 {
        self.mb.len.0.load(Ordering::Acquire)
    }

    /// Adds to the count of messages held (posts raise it concurrently);
    /// returns the new count.
    pub(super) fn add_len(&self, n: u64) -> u64 {
        self.mb.len.0.fetch_add(n, Ordering::AcqRel) + n
    }

    /// Takes from the count of messages held (at most what it is).
    pub(super) fn sub_len(&self, n: u64) {
        let len = &self.mb.len.0;
        let _ = len.fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| {
            Some(l.saturating_sub(n))
        });
    }

    pub(super) fn closed(&self) -> bool {
        self.mb.is_closed()
    }

    /// Moves every lane's messages out, every lane locked at once (so the
    /// move is one instant for the whole box) but each only for a swap of
    /// queues, then carries out the drops the lanes owe.
    pub(super) fn gather(&mut self) {
        let ctl = &mut *self.ctl;
        let mut owed = 0;
        let mut dropped = 0;
        {
            let mut lanes = self.mb.lock_made_lanes();
            // The per-lane queues of this side are made with the lanes.
            let made = lanes.iter().flatten().count();
            if ctl.out.len() < made {
                ctl.out.resize_with(made, VecDeque::new);
                ctl.spare.resize_with(made, VecDeque::new);
                ctl.freed.resize_with(made, Vec::new);
            }
            for (lane, spare) in lanes.iter_mut().flatten().zip(ctl.spare.iter_mut()) {
                owed += std::mem::take(&mut lane.owed);
                lane.owed_weight = 0;
                dropped += lane.overflow + lane.early;
                if !lane.q.is_empty() {
                    std::mem::swap(&mut lane.q, spare);
                }
            }
        }
        ctl.lane_dropped = dropped;
        for (out, spare) in ctl.out.iter_mut().zip(ctl.spare.iter_mut()) {
            let moved = spare.len();
            if moved == 0 {
                continue;
            }
            if out.is_empty() {
                std::mem::swap(out, spare);
            } else {
                out.extend(spare.drain(..));
            }
            // The lane's next queue: room for about as many posts again.
            trim(spare, moved * 2);
        }
        for _ in 0..owed {
            if !self.forget(true) {
                break;
            }
        }
    }

    /// The lane holding the oldest (`front`) or newest message moved out.
    pub(super) fn end(&self, front: bool) -> Option<usize> {
        let queues = self.ctl.out.iter().enumerate();
        if front {
            let keyed = queues.filter_map(|(i, q)| q.front().map(|e| (e.key, i)));
            keyed.min().map(|(_, i)| i)
        } else {
            let keyed = queues.filter_map(|(i, q)| q.back().map(|e| (e.key, i)));
            keyed.max().map(|(_, i)| i)
        }
    }

    /// As [`Held::end`], with whether that message is large.
    pub(super) fn end_large(&self, front: bool) -> Option<(usize, bool)> {
        let i = self.end(front)?;
        let q = &self.ctl.out[i];
        let entry = if front { q.front() } else { q.back() };
        Some((i, entry.is_some_and(|e| e.large())))
    }

    /// Removes the oldest (`front`) or newest message moved out.
    pub(super) fn remove(&mut self, front: bool) -> Option<(usize, Entry<B::Item>)> {
        let i = self.end(front)?;
        self.remove_at(i, front)
    }

    /// Removes the oldest (`front`) or newest message moved out of lane
    /// `i`, the lane [`Held::end`] named.
    pub(super) fn remove_at(&mut self, i: usize, front: bool) -> Option<(usize, Entry<B::Item>)> {
        let q = self.ctl.out.get_mut(i)?;
        let entry = if front { q.pop_front() } else { q.pop_back() }?;
        self.ctl.bytes = self.ctl.bytes.saturating_sub(entry.bytes());
        Some((i, entry))
    }

    /// Removes a message whose drop was already counted; returns whether
    /// there was one.
    pub(super) fn forget(&mut self, front: bool) -> bool {
        match self.remove(front) {
            Some((i, entry)) => {
                self.ctl.freed[i].push(entry.slot);
                true
            }
            None => false,
        }
    }

    /// Drops one held message per the kind's end for `why`, counted (moving
    /// the lanes' messages out first when none is); returns whether there
    /// was one.
    pub(super) fn drop_one(&mut self, front: bool, why: Reason) -> bool {
        if self.ctl.out.iter().all(VecDeque::is_empty) {
            self.gather();
        }
        if !self.forget(front) {
            return false;
        }
        self.ctl.tally.dropped[why as usize] += 1;
        self.sub_len(1);
        true
    }

    /// Drops, as expired, the oldest messages moved out while older than
    /// `max_age` at `now`.
    pub(super) fn expire(&mut self, now: u64, max_age: u64) {
        while let Some(i) = self.end(true) {
            let key = self.ctl.out[i].front().map_or(u64::MAX, |e| e.key);
            if now.saturating_sub(key.saturating_sub(KEY_BASE)) <= max_age {
                break;
            }
            if !self.drop_one(true, Reason::Expired) {
                break;
            }
        }
    }

    /// Drops (all but filter and closed) not yet reported, and marks them
    /// reported.
    pub(super) fn unreported(&mut self) -> u64 {
        let lanes = self.ctl.lane_dropped;
        self.ctl.tally.unreported(lanes)
    }

    /// Gives the slots of messages gone back to their lanes' storage, or
    /// frees all storage of a closed box once no take is in flight.
    pub(super) fn flush(&mut self, backend: &mut B) {
        let Control {
            out,
            freed,
            in_flight,
            ..
        } = &mut *self.ctl;
        if self.mb.is_closed() && *in_flight == 0 {
            for (i, lane) in self.mb.made_lanes().iter().enumerate() {
                let mut lane = lock(&lane.0);
                lane.q.clear();
                lane.chunks.free_all(backend);
                out.get_mut(i).map(VecDeque::clear);
                freed.get_mut(i).map(Vec::clear);
            }
            return;
        }
        for (i, slots) in freed.iter_mut().enumerate() {
            if slots.is_empty() {
                continue;
            }
            let runs = runs(slots);
            slots.clear();
            let Some(lane) = self.mb.made_lanes().get(i) else {
                continue;
            };
            let mut lane = lock(&lane.0);
            lane.release(backend, &runs, &mut out[i], *in_flight > 0);
            drop(lane);
            trim(&mut out[i], 0);
            if slots.capacity() > 1024 {
                slots.shrink_to(64);
            }
        }
    }
}
