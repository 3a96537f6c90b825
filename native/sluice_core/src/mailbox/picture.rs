//! A box as a [`BoxPicture`] and back (see [`crate::picture`]): what
//! another build of the library makes the same box from.

use super::{lock, Backend, Buffer, BufferError, Layout, Mailbox, Ordering, ALONE_WEIGHT, LARGE};
use crate::picture::{BoxPicture, LanePicture, Message};

impl<B: Backend> Mailbox<B> {
    /// The box as plain data: the drops the lanes owe are carried out
    /// first, then every message held is listed with its lane, in arrival
    /// order. A closed box holds none.
    pub(super) fn take_picture(&self) -> BoxPicture<B::Item> {
        let mut held = self.hold();
        held.gather();
        let closed = self.is_closed();
        let lanes = self.lock_made_lanes();
        let ctl = &*held.ctl;
        let pictures = lanes.iter().flatten().enumerate().map(|(i, lane)| {
            let out = ctl.out.get(i).into_iter().flatten();
            let messages = out.chain(lane.q.iter()).filter(|_| !closed);
            let chunks = &lane.chunks;
            LanePicture {
                messages: messages
                    .map(|e| Message {
                        item: e.slot.item,
                        key: e.key,
                        bytes: e.bytes(),
                        large: e.large(),
                        alone: chunks.alone(e.slot.chunk),
                    })
                    .collect(),
                last_key: lane.last_key,
                posted: lane.posted,
                overflow: lane.overflow,
                early: lane.early,
                peak: lane.peak,
            }
        });
        BoxPicture {
            kind: self.kind,
            max: self.hot.0.max.load(Ordering::Acquire),
            max_bytes: self.max_bytes,
            policy: self.policy,
            codel: ctl.codel,
            lanes: pictures.collect(),
            floor: self.hot.0.floor.load(Ordering::Acquire),
            clock: self.clock.load(Ordering::Acquire),
            bytes: if closed { 0 } else { ctl.bytes },
            tally: ctl.tally.clone(),
            armed: self.armed(),
            closed,
        }
    }

    /// The box of `picture`, laid out by `layout`, its messages copied in
    /// through `backend`: each goes into its lane (modulo this layout's
    /// lanes) with its arrival key, so the order of delivery is kept.
    /// Fails, having stored nothing, on a bound or byte budget of 0.
    pub fn from_picture(
        picture: BoxPicture<B::Item>,
        backend: &mut B,
        layout: Layout,
    ) -> Result<Self, BufferError> {
        let max = usize::try_from(picture.max).unwrap_or(usize::MAX);
        let mb =
            Mailbox::new(picture.kind, max, picture.max_bytes, layout)?.with_policy(picture.policy);
        let mut total = 0u64;
        if !picture.lanes.is_empty() {
            let lanes = mb.lanes();
            let n = lanes.len();
            let mut messages: Vec<(usize, Message<B::Item>)> = Vec::new();
            for (i, lane) in picture.lanes.iter().enumerate() {
                messages.extend(lane.messages.iter().map(|m| (i % n, m.clone())));
            }
            // Arrival keys increase along each lane: merged lanes stay so.
            messages.sort_by_key(|(_, m)| m.key);
            total = messages.len() as u64;
            for (i, m) in messages {
                let weight = match (m.large, m.alone) {
                    (true, _) => LARGE,
                    (false, true) => ALONE_WEIGHT,
                    (false, false) => 0,
                };
                lock(&lanes[i].0).push(backend, m.item, m.bytes, weight, m.key);
            }
            for (i, lp) in picture.lanes.iter().enumerate() {
                let mut lane = lock(&lanes[i % n].0);
                lane.last_key = lane.last_key.max(lp.last_key);
                lane.posted += lp.posted;
                lane.overflow += lp.overflow;
                lane.early += lp.early;
                lane.peak = lane.peak.max(lp.peak);
            }
        }
        mb.len.0.store(total, Ordering::Release);
        mb.hot.0.floor.store(picture.floor, Ordering::Release);
        mb.clock.store(picture.clock, Ordering::Release);
        {
            let mut ctl = lock(&mb.control.0);
            ctl.tally = picture.tally;
            ctl.bytes = picture.bytes;
            ctl.codel = picture.codel;
        }
        let _ = mb.hot.0.flags.arm(picture.armed, false);
        if picture.closed {
            let _ = mb.hot.0.flags.close();
        }
        Ok(mb)
    }
}
