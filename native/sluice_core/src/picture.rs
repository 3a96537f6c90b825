//! A buffer's whole observable state as plain data, for another build of
//! the library to make the same buffer from ([`Buffer::picture`] and the
//! `from_picture` of [`crate::mailbox::Mailbox`] and
//! [`crate::buckets::Buckets`]).
//!
//! A picture carries every message held (its item, arrival key or time,
//! size and large mark, and where it is kept: a lane or a bucket), the
//! counters (posted, delivered, dropped per reason, drops reported, peak),
//! the sojourn histogram, the settings (kind, bound, byte budget, drop
//! policies and the sojourn controller's state, bucket settings, the manual
//! clock), the arming and the closed flag. It does not carry how storage
//! is laid out (lanes, regions, chunk sizes: the receiving build's own), nor
//! messages handed out by a take and not given back: they were delivered.
//!
//! Its serialised form (serde) is the interchange form between builds:
//! changing any type reachable from [`Picture`] changes that form.
//!
//! [`Buffer::picture`]: crate::buffer::Buffer::picture

use serde::{Deserialize, Serialize};

use crate::arming::Arm;
use crate::buckets::Config;
use crate::buffer::{Kind, Tally};
use crate::hist::{Histogram, HistogramParts, BUCKETS};
use crate::policy::{Codel, Policy};

/// A message held, with what its buffer keeps of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message<I> {
    /// The stored message.
    pub item: I,
    /// Its arrival key (a box) or arrival time (a bucket), in ticks.
    pub key: u64,
    /// Its size, as counted for the byte budget (0 without one).
    pub bytes: u64,
    /// Whether it is large (see [`crate::buffer::LARGE`]).
    pub large: bool,
    /// Whether it is stored in a region of its own (a heavy message, see
    /// [`crate::mailbox::ALONE_WEIGHT`]), freed as soon as it goes.
    pub alone: bool,
}

/// A box's lane: its messages in arrival-key order and its counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LanePicture<I> {
    /// Messages held, oldest first.
    pub messages: Vec<Message<I>>,
    /// The key of the lane's newest post.
    pub last_key: u64,
    /// Posts into the lane.
    pub posted: u64,
    /// Overflow drops counted by the lane's posts.
    pub overflow: u64,
    /// Early drops counted by the lane's posts.
    pub early: u64,
    /// Most messages held at once, as the lane's posts saw it.
    pub peak: u64,
}

/// A box of lanes ([`crate::mailbox::Mailbox`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BoxPicture<I> {
    /// Its policy.
    pub kind: Kind,
    /// Its bound.
    pub max: u64,
    /// Its byte budget.
    pub max_bytes: Option<u64>,
    /// Its drop policies and manual clock setting.
    pub policy: Policy,
    /// The sojourn controller's state.
    pub codel: Codel,
    /// Its lanes (none for a box never posted into).
    pub lanes: Vec<LanePicture<I>>,
    /// Keys of later posts are above this.
    pub floor: u64,
    /// The manual clock.
    pub clock: u64,
    /// Bytes held, as counted for the byte budget.
    pub bytes: u64,
    /// What left the box.
    pub tally: Tally,
    /// The arming.
    pub armed: Arm,
    /// Whether it was closed.
    pub closed: bool,
}

/// A bucket of a buffer of buckets: its slice and its messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketPicture<I> {
    /// Its id (what a take's hand-out names as its home).
    pub id: u64,
    /// The slice of time it holds.
    pub slice: u64,
    /// The arrival time of its newest message.
    pub newest: u64,
    /// Its messages, oldest first (the key is the arrival time).
    pub messages: Vec<Message<I>>,
}

/// A buffer of time buckets ([`crate::buckets::Buckets`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BucketsPicture<I> {
    /// Its settings (the receiving build uses its own chunk size).
    pub config: Config,
    /// Its bound.
    pub max: u64,
    /// Its buckets, oldest slice first.
    pub buckets: Vec<BucketPicture<I>>,
    /// The id of the next bucket.
    pub next_id: u64,
    /// Posts into it.
    pub posted: u64,
    /// The manual clock.
    pub clock: u64,
    /// What left the buffer.
    pub tally: Tally,
    /// The arming.
    pub armed: Arm,
    /// Whether it was closed.
    pub closed: bool,
}

/// Any buffer a box handle holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Picture<I> {
    /// A box of lanes.
    Box(BoxPicture<I>),
    /// A buffer of time buckets.
    Buckets(BucketsPicture<I>),
}

fn map_messages<I, J, E>(
    messages: Vec<Message<I>>,
    f: &mut impl FnMut(I) -> Result<J, E>,
) -> Result<Vec<Message<J>>, E> {
    messages
        .into_iter()
        .map(|m| {
            Ok(Message {
                item: f(m.item)?,
                key: m.key,
                bytes: m.bytes,
                large: m.large,
                alone: m.alone,
            })
        })
        .collect()
}

impl<I> Picture<I> {
    /// The same picture with every message's item passed through `f`, in
    /// delivery-independent order (lane by lane, bucket by bucket); the
    /// first error stops it.
    pub fn try_map<J, E>(self, mut f: impl FnMut(I) -> Result<J, E>) -> Result<Picture<J>, E> {
        Ok(match self {
            Picture::Box(p) => {
                let mut lanes = Vec::with_capacity(p.lanes.len());
                for l in p.lanes {
                    lanes.push(LanePicture {
                        messages: map_messages(l.messages, &mut f)?,
                        last_key: l.last_key,
                        posted: l.posted,
                        overflow: l.overflow,
                        early: l.early,
                        peak: l.peak,
                    });
                }
                Picture::Box(BoxPicture {
                    kind: p.kind,
                    max: p.max,
                    max_bytes: p.max_bytes,
                    policy: p.policy,
                    codel: p.codel,
                    lanes,
                    floor: p.floor,
                    clock: p.clock,
                    bytes: p.bytes,
                    tally: p.tally,
                    armed: p.armed,
                    closed: p.closed,
                })
            }
            Picture::Buckets(p) => {
                let mut buckets = Vec::with_capacity(p.buckets.len());
                for b in p.buckets {
                    buckets.push(BucketPicture {
                        id: b.id,
                        slice: b.slice,
                        newest: b.newest,
                        messages: map_messages(b.messages, &mut f)?,
                    });
                }
                Picture::Buckets(BucketsPicture {
                    config: p.config,
                    max: p.max,
                    buckets,
                    next_id: p.next_id,
                    posted: p.posted,
                    clock: p.clock,
                    tally: p.tally,
                    armed: p.armed,
                    closed: p.closed,
                })
            }
        })
    }

    /// Messages held.
    pub fn len(&self) -> usize {
        match self {
            Picture::Box(p) => p.lanes.iter().map(|l| l.messages.len()).sum(),
            Picture::Buckets(p) => p.buckets.iter().map(|b| b.messages.len()).sum(),
        }
    }

    /// Whether no message is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The interchange form of a [`Histogram`]: its non-empty buckets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistogramForm {
    /// (bucket index, count) of every non-empty bucket.
    buckets: Vec<(u32, u64)>,
    count: u64,
    min: u64,
    max: u64,
    /// The sum, high and low words.
    sum: (u64, u64),
}

impl From<Histogram> for HistogramForm {
    fn from(h: Histogram) -> Self {
        let p = h.parts();
        let buckets = p.buckets.iter().enumerate();
        let buckets = buckets
            .filter(|&(_, &n)| n > 0)
            .map(|(i, &n)| (i as u32, n));
        HistogramForm {
            buckets: buckets.collect(),
            count: p.count,
            min: p.min,
            max: p.max,
            sum: ((p.sum >> 64) as u64, p.sum as u64),
        }
    }
}

impl TryFrom<HistogramForm> for Histogram {
    type Error = String;
    fn try_from(f: HistogramForm) -> Result<Self, String> {
        let mut buckets = vec![0; BUCKETS];
        for (i, n) in f.buckets {
            match buckets.get_mut(i as usize) {
                Some(slot) => *slot = n,
                None => return Err("histogram bucket out of range".to_string()),
            }
        }
        let parts = HistogramParts {
            buckets,
            count: f.count,
            min: f.min,
            max: f.max,
            sum: (u128::from(f.sum.0) << 64) | u128::from(f.sum.1),
        };
        Histogram::from_parts(&parts).ok_or_else(|| "histogram of another size".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_survives_its_interchange_form() {
        let mut h = Histogram::new();
        for v in [0, 3, 64, 1000, 1000, 123_456_789, u64::MAX] {
            h.record(v);
        }
        let form = HistogramForm::from(h.clone());
        let back = Histogram::try_from(form).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.percentile(50.0), h.percentile(50.0));
        let bad = HistogramForm {
            buckets: vec![(BUCKETS as u32, 1)],
            count: 1,
            min: 0,
            max: 0,
            sum: (0, 0),
        };
        assert!(Histogram::try_from(bad).is_err());
    }

    #[test]
    fn try_map_keeps_everything_but_the_items() {
        let p: Picture<u32> = Picture::Buckets(BucketsPicture {
            config: Config {
                width: 10,
                max_age: Some(5),
                order: crate::buckets::Order::NewestFirst,
                within: crate::buckets::Within::Lifo,
                when_full: crate::buckets::WhenFull::DropNew,
                manual_clock: true,
                per_chunk: 4,
            },
            max: 9,
            buckets: vec![BucketPicture {
                id: 3,
                slice: 7,
                newest: 77,
                messages: vec![Message {
                    item: 5,
                    key: 71,
                    bytes: 0,
                    large: true,
                    alone: true,
                }],
            }],
            next_id: 4,
            posted: 12,
            clock: 77,
            tally: Tally::default(),
            armed: Arm::Notify,
            closed: false,
        });
        assert_eq!(p.len(), 1);
        let q = p.try_map(|i| Ok::<_, ()>(i * 2)).unwrap();
        match q {
            Picture::Buckets(b) => {
                assert_eq!(b.buckets[0].messages[0].item, 10);
                assert_eq!(b.buckets[0].messages[0].key, 71);
                assert!(b.buckets[0].messages[0].large);
                assert_eq!((b.next_id, b.posted, b.armed), (4, 12, Arm::Notify));
            }
            Picture::Box(_) => panic!("a picture of buckets stays one"),
        }
        assert_eq!(
            Picture::Box(BoxPicture::<u32> {
                kind: Kind::Queue,
                max: 1,
                max_bytes: None,
                policy: Policy::default(),
                codel: Codel::default(),
                lanes: Vec::new(),
                floor: 0,
                clock: 0,
                bytes: 0,
                tally: Tally::default(),
                armed: Arm::Off,
                closed: true,
            })
            .try_map(|_| Err::<u32, _>("never called"))
            .map(|p| p.len()),
            Ok(0)
        );
    }
}
