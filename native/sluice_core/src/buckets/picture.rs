//! A buffer of buckets as a [`BucketsPicture`] and back (see
//! [`crate::picture`]): what another build of the library makes the same
//! buffer from.

use std::collections::VecDeque;

use super::{lock, Backend, Bucket, Buckets, Buffer, BufferError, Chunks, Entry, Ordering};
use crate::picture::{BucketPicture, BucketsPicture, Message};

impl<B: Backend> Buckets<B> {
    /// The buffer as plain data: every bucket with its messages, oldest
    /// slice first (buckets removed and waiting to be freed are gone: their
    /// messages were counted). A closed buffer holds none.
    pub(super) fn take_picture(&self) -> BucketsPicture<B::Item> {
        let inner = lock(&self.inner);
        let buckets = inner.buckets.iter().map(|b| BucketPicture {
            id: b.id,
            slice: b.slice,
            newest: b.newest,
            messages: b
                .items
                .iter()
                .map(|e| Message {
                    item: e.slot.item,
                    key: e.at,
                    bytes: 0,
                    large: e.large,
                    alone: e.large,
                })
                .collect(),
        });
        BucketsPicture {
            config: self.cfg,
            max: self.max.load(Ordering::Acquire),
            buckets: buckets.collect(),
            next_id: inner.next_id,
            posted: inner.posted,
            clock: self.clock.load(Ordering::Acquire),
            tally: inner.tally.clone(),
            armed: self.flags.armed(),
            closed: self.is_closed(),
        }
    }

    /// The buffer of `picture`, its messages copied in through `backend`
    /// into chunks of `per_chunk`, each bucket as it was (id, slice,
    /// messages in order). Fails, having stored nothing, on a bound of 0.
    pub fn from_picture(
        picture: BucketsPicture<B::Item>,
        backend: &mut B,
        per_chunk: u32,
    ) -> Result<Self, BufferError> {
        let cfg = super::Config {
            per_chunk,
            ..picture.config
        };
        let max = usize::try_from(picture.max).unwrap_or(usize::MAX);
        let made = Buckets::new(cfg, max)?;
        let mut total = 0u64;
        {
            let mut inner = lock(&made.inner);
            for b in picture.buckets {
                if b.messages.is_empty() {
                    continue;
                }
                let mut chunks = Chunks::new(per_chunk);
                let mut items = VecDeque::with_capacity(b.messages.len());
                for m in b.messages {
                    let slot = if m.large || m.alone {
                        chunks.store_alone(backend, m.item)
                    } else {
                        chunks.store(backend, m.item)
                    };
                    items.push_back(Entry {
                        slot,
                        at: m.key,
                        large: m.large,
                    });
                }
                total += items.len() as u64;
                inner.buckets.push_back(Bucket {
                    id: b.id,
                    slice: b.slice,
                    newest: b.newest,
                    items,
                    chunks,
                });
            }
            inner.next_id = picture.next_id;
            inner.posted = picture.posted;
            inner.tally = picture.tally;
        }
        made.len.store(total, Ordering::Release);
        made.clock.store(picture.clock, Ordering::Release);
        let _ = made.flags.arm(picture.armed, false);
        if picture.closed {
            let _ = made.flags.close();
        }
        Ok(made)
    }
}
