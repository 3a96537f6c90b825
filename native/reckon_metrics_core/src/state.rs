//! The recorder's state as MessagePack (serde + rmp-serde), for the
//! crash-surviving file: every series with its tiers, each user metric's
//! value (histograms in HdrHistogram's encoded form), and the counts of
//! what was refused.

use serde::{Deserialize, Serialize};

use crate::series::Series;

/// Version of the [`Snapshot`] format.
pub const FORMAT: u32 = 1;

/// A user metric's value in a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MetricValue {
    /// A counter's sum.
    Counter(u64),
    /// A gauge's value.
    Gauge(f64),
    /// A histogram, compressed V2 base64 ([`crate::metric::encode`]).
    Histogram(String),
}

/// Everything the recorder holds at one moment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// [`FORMAT`] of the writer.
    pub format: u32,
    /// When it was taken, in seconds since the epoch.
    pub taken_at: u64,
    /// Every series by key.
    pub series: Vec<(Vec<u8>, Series)>,
    /// Every user metric by key.
    pub metrics: Vec<(Vec<u8>, MetricValue)>,
    /// New series refused because the store was full.
    pub series_refused: u64,
    /// New user metrics refused because the registry was full.
    pub metrics_refused: u64,
}

/// Why a snapshot could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// Not MessagePack of a snapshot.
    Decode(rmp_serde::decode::Error),
    /// A snapshot of a format this build does not read.
    Format(u32),
}

impl Snapshot {
    /// The snapshot as MessagePack (maps with field names, so a later
    /// format can add fields).
    pub fn to_vec(&self) -> Result<Vec<u8>, rmp_serde::encode::Error> {
        rmp_serde::to_vec_named(self)
    }

    /// Reads [`Snapshot::to_vec`]'s bytes; the tiers are cut to their
    /// lengths whatever the bytes say, so a file holds no more than the
    /// recorder did.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ReadError> {
        let mut snap: Snapshot = rmp_serde::from_slice(bytes).map_err(ReadError::Decode)?;
        if snap.format != FORMAT {
            return Err(ReadError::Format(snap.format));
        }
        for (_, s) in &mut snap.series {
            s.clamp();
        }
        Ok(snap)
    }
}
