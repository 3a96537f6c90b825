//! The states of the recorder and user-metric resources of
//! [`crate::metrics`], and their conversions between builds of this
//! library.
//!
//! Both resources are kept behind `nif_glue::versioned::Versioned`, and
//! converted when a library of another build first holds them:
//! - a recorder ([`RecorderWire`]) with every series, every user metric's
//!   value (a histogram's counts in HdrHistogram's V2 serialization), its
//!   bounds and refusals, and its file writer's directory, files kept and
//!   counts: the old writer thread (code of the old library) is stopped
//!   and joined, and a new one started from the new code, numbering its
//!   files on after the last;
//! - a user metric's handle ([`MetricWire`]) holds a reference to its
//!   recorder's resource object and its key, and is converted by finding
//!   its key in the recorder's converted registry (converting the
//!   recorder first if need be), so every handle of a metric and the
//!   recorder keep sharing one metric.
//!
//! Exporting a recorder freezes its user metrics, with their exact values
//! (`reckon_metrics_core::metric`): an update through a handle that is
//! still the old build's (a call of the old code in flight during the
//! upgrade) is refused, and the update NIFs answer `moved`; the caller
//! makes the same call again (`reckon_metrics_lib`), through the module
//! now loaded, which converts the handle and applies it. No update is lost
//! or counted twice.

use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use nif_glue::versioned::{Payload, Versioned};
use reckon_metrics_core::clock::{AnyClock, SystemClock};
use reckon_metrics_core::file::{Writer, WriterStats};
use reckon_metrics_core::metric::Metric;
use reckon_metrics_core::{Recorder, RecorderParts};
use rustler::sys::{c_void, enif_keep_resource, enif_release_resource};
use serde::{Deserialize, Serialize};

use crate::metrics::{METRIC_KIND, RECORDER_KIND};

/// A recorder resource: the recorder and its file writer behind the
/// versioned wrapper.
pub type ReckonRecorder = Versioned<RecorderState>;

/// A recorder's state: the recorder (shared with its writer thread) and
/// the writer, while one runs.
#[cfg(not(feature = "layout_b"))]
pub struct RecorderState {
    pub(crate) recorder: Arc<Recorder>,
    pub(crate) writer: Mutex<Option<Writer>>,
}

/// A recorder's state, laid out otherwise (the writer first, a marker
/// between), for the upgrade tests.
#[cfg(feature = "layout_b")]
pub struct RecorderState {
    pub(crate) writer: Mutex<Option<Writer>>,
    /// Only changes the layout.
    #[allow(dead_code)]
    marker: [u64; 2],
    pub(crate) recorder: Arc<Recorder>,
}

impl RecorderState {
    pub(crate) fn new(recorder: Arc<Recorder>, writer: Option<Writer>) -> Self {
        RecorderState {
            recorder,
            writer: Mutex::new(writer),
            #[cfg(feature = "layout_b")]
            marker: [0x6c61_796f_7574_5f62; 2],
        }
    }
}

/// A file writer's settings and counts, in the interchange form.
#[derive(Serialize, Deserialize)]
pub struct WriterWire {
    dir: Vec<u8>,
    keep: usize,
    written: u64,
    failed: u64,
    last: Option<Vec<u8>>,
}

/// A recorder as one build hands it to another.
#[derive(Serialize, Deserialize)]
pub struct RecorderWire {
    recorder: RecorderParts,
    writer: Option<WriterWire>,
}

// SAFETY: `recorder.v4` names this layout of `RecorderState` (v4: behind
// the header of `Versioned`, with conversions; `recorder.v4b` the layout
// of the `layout_b` build); bumped with it. The recorder holds no pointer
// into the library's statics (its clock is an enum, its maps are made
// with room). `WIRE` 1 is `RecorderWire`.
unsafe impl Payload for RecorderState {
    const NAME: &'static std::ffi::CStr = c"reckon_recorder.v3";
    const KIND: usize = RECORDER_KIND;
    #[cfg(not(feature = "layout_b"))]
    const LAYOUT: &'static str = "recorder.v4";
    #[cfg(feature = "layout_b")]
    const LAYOUT: &'static str = "recorder.v4b";
    const WIRE: u64 = 1;
    type Wire = RecorderWire;

    /// Stops the writer thread first (it runs this library's code, which
    /// may be unloaded once the state is converted), then exports the
    /// recorder, its user metrics frozen.
    fn export(&self) -> RecorderWire {
        let taken = self.writer.lock().ok().and_then(|mut w| w.take());
        let writer = taken.map(|w| {
            let dir = w.dir().as_os_str().as_bytes().to_vec();
            let keep = w.keep();
            let stats = w.stop();
            WriterWire {
                dir,
                keep,
                written: stats.written,
                failed: stats.failed,
                last: stats.last.map(|p| p.into_os_string().into_vec()),
            }
        });
        RecorderWire {
            recorder: self.recorder.export(),
            writer,
        }
    }

    /// The recorder on the system clock, and a writer thread of this
    /// build where the old one ran (none if it cannot start: then
    /// `metrics_flush` says `no_writer`, as after a stop).
    fn import(wire: RecorderWire) -> Option<Self> {
        let recorder = Arc::new(Recorder::from_parts(
            wire.recorder,
            AnyClock::System(SystemClock),
        )?);
        let writer = wire.writer.and_then(|w| {
            let stats = WriterStats {
                written: w.written,
                failed: w.failed,
                last: w
                    .last
                    .map(|p| PathBuf::from(std::ffi::OsString::from_vec(p))),
            };
            let dir = PathBuf::from(std::ffi::OsString::from_vec(w.dir));
            Writer::resume(Arc::clone(&recorder), dir, w.keep, stats).ok()
        });
        Some(RecorderState::new(recorder, writer))
    }
}

/// A user-metric handle resource: the metric (shared with the recorder's
/// registry) behind the versioned wrapper.
pub type ReckonMetric = Versioned<MetricState>;

/// A user metric's state: the metric, and its recorder's resource object
/// (a reference kept, released with the state) and key, by which a newer
/// build finds the metric again.
#[cfg(not(feature = "layout_b"))]
pub struct MetricState {
    pub(crate) metric: Metric,
    recorder: usize,
    key: Vec<u8>,
}

/// A user metric's state, laid out otherwise (the key first, a marker,
/// the key boxed), for the upgrade tests.
#[cfg(feature = "layout_b")]
pub struct MetricState {
    key: Box<[u8]>,
    /// Only changes the layout.
    #[allow(dead_code)]
    marker: u64,
    recorder: usize,
    pub(crate) metric: Metric,
}

impl MetricState {
    /// The handle state of `metric`, named `key` in the recorder whose
    /// resource object is `recorder`; keeps a reference to that object.
    ///
    /// # Safety
    /// `recorder` must be a live recorder resource object.
    pub(crate) unsafe fn new(metric: Metric, recorder: *const c_void, key: Vec<u8>) -> Self {
        // SAFETY: a live resource object (the contract above).
        unsafe { enif_keep_resource(recorder) };
        MetricState {
            metric,
            recorder: recorder as usize,
            #[cfg(not(feature = "layout_b"))]
            key,
            #[cfg(feature = "layout_b")]
            key: key.into_boxed_slice(),
            #[cfg(feature = "layout_b")]
            marker: 0x6c61_796f_7574_5f62,
        }
    }
}

impl Drop for MetricState {
    fn drop(&mut self) {
        // SAFETY: the reference `new` kept.
        unsafe { enif_release_resource(self.recorder as *const c_void) };
    }
}

/// A user metric's handle as one build hands it to another.
#[derive(Serialize, Deserialize)]
pub struct MetricWire {
    recorder: u64,
    key: Vec<u8>,
}

// SAFETY: `metric.v3` names this layout of `MetricState` (v3: behind the
// header of `Versioned`, with conversions, and the recorder's object and
// key; `metric.v3b` the layout of the `layout_b` build); bumped with it.
// `WIRE` 1 is `MetricWire`.
unsafe impl Payload for MetricState {
    const NAME: &'static std::ffi::CStr = c"reckon_metric.v3";
    const KIND: usize = METRIC_KIND;
    #[cfg(not(feature = "layout_b"))]
    const LAYOUT: &'static str = "metric.v3";
    #[cfg(feature = "layout_b")]
    const LAYOUT: &'static str = "metric.v3b";
    const WIRE: u64 = 1;
    type Wire = MetricWire;

    fn export(&self) -> MetricWire {
        MetricWire {
            recorder: self.recorder as u64,
            key: self.key.to_vec(),
        }
    }

    /// The metric named `key` in the recorder (converted to this build
    /// first if it is not yet): the one its registry and every other
    /// handle of this build share.
    fn import(wire: MetricWire) -> Option<Self> {
        let object = wire.recorder as usize as *const c_void;
        if object.is_null() {
            return None;
        }
        // SAFETY: the address of a recorder's resource object (a
        // `#[repr(C)]` `Versioned`, at the start of the object), kept
        // alive by the old state's reference until after this import.
        let recorder = unsafe { &*object.cast::<ReckonRecorder>() };
        let held = recorder.enter()?;
        let metric = held.recorder.registry().get(&wire.key)?;
        // SAFETY: live (as above).
        Some(unsafe { MetricState::new(metric, object, wire.key) })
    }
}
