//! The crash-surviving file: a thread of its own that, each time it is
//! told to (a `flush` handed over a crossbeam channel), takes a
//! [`Snapshot`] of the recorder and writes it as MessagePack into a bounded
//! set of rotated files.
//!
//! Files are `<dir>/reckon_metrics.<seq>.mpk`, `seq` counting up (a new
//! writer continues after the highest one it finds); each is written to a
//! `.tmp` name, synced and renamed, so a file that exists is whole, even
//! after `kill -9` or a power cut in the middle of a write. Only the newest
//! `keep` files are kept. The worst-case loss is what came after the last
//! flush: one interval of the caller's.
//!
//! The snapshot is taken and encoded on this thread, so the thread that
//! asks for a flush (a scheduler) only sends a message; a flush asked while
//! one is being written is folded into the next (the channel holds one).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Sender, TrySendError};
use parking_lot::Mutex;

use crate::state::Snapshot;
use crate::Recorder;

const PREFIX: &str = "reckon_metrics.";
const SUFFIX: &str = ".mpk";
/// Most files a writer may be asked to keep.
pub const MAX_KEEP: usize = 100;

/// What the writer thread is told.
enum Command {
    Flush,
    Stop,
}

/// What the last write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Files written.
    pub written: u64,
    /// Writes that failed (the file system refused).
    pub failed: u64,
    /// The newest file written.
    pub last: Option<PathBuf>,
}

/// A running writer thread; dropping it stops the thread (after the write
/// in progress, if any).
pub struct Writer {
    dir: PathBuf,
    keep: usize,
    tx: Sender<Command>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<Mutex<WriterStats>>,
}

/// The sequence number of a file name written by a writer.
fn seq_of(name: &str) -> Option<u64> {
    name.strip_prefix(PREFIX)?
        .strip_suffix(SUFFIX)?
        .parse()
        .ok()
}

/// The writer files in `dir`, oldest first.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let seq = seq_of(e.file_name().to_str()?)?;
                    Some((seq, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

fn write_one(dir: &Path, seq: u64, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let path = dir.join(format!("{PREFIX}{seq}{SUFFIX}"));
    let tmp = dir.join(format!("{PREFIX}{seq}{SUFFIX}.tmp"));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, &path)?;
    Ok(path)
}

impl Writer {
    /// Starts a thread writing `recorder`'s snapshots into `dir` (made if
    /// missing), keeping the newest `keep` files (1 to [`MAX_KEEP`]).
    pub fn start(recorder: Arc<Recorder>, dir: PathBuf, keep: usize) -> std::io::Result<Self> {
        Writer::resume(recorder, dir, keep, WriterStats::default())
    }

    /// As [`Writer::start`], counting on from `stats` (a writer of an
    /// older build, stopped, that this one replaces).
    pub fn resume(
        recorder: Arc<Recorder>,
        dir: PathBuf,
        keep: usize,
        stats: WriterStats,
    ) -> std::io::Result<Self> {
        let keep = keep.clamp(1, MAX_KEEP);
        fs::create_dir_all(&dir)?;
        let mut seq = files(&dir)
            .last()
            .and_then(|p| seq_of(p.file_name()?.to_str()?))
            .map_or(0, |s| s + 1);
        let (tx, rx) = bounded::<Command>(1);
        let stats = Arc::new(Mutex::new(stats));
        let shared = Arc::clone(&stats);
        let thread_dir = dir.clone();
        let thread = std::thread::Builder::new()
            .name("reckon_metrics_file".into())
            .spawn(move || {
                while let Ok(Command::Flush) = rx.recv() {
                    let written = recorder
                        .snapshot()
                        .to_vec()
                        .map_err(std::io::Error::other)
                        .and_then(|bytes| write_one(&thread_dir, seq, &bytes));
                    let mut s = shared.lock();
                    match written {
                        Ok(path) => {
                            s.written += 1;
                            s.last = Some(path);
                            seq += 1;
                            let all = files(&thread_dir);
                            let excess = all.len().saturating_sub(keep);
                            for old in all.iter().take(excess) {
                                let _ = fs::remove_file(old);
                            }
                        }
                        Err(_) => s.failed += 1,
                    }
                }
            })?;
        Ok(Writer {
            dir,
            keep,
            tx,
            thread: Some(thread),
            stats,
        })
    }

    /// Asks for a write; never blocks (a write already asked for covers it).
    pub fn flush(&self) {
        match self.tx.try_send(Command::Flush) {
            Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Files written and failed, and the newest file.
    pub fn stats(&self) -> WriterStats {
        self.stats.lock().clone()
    }

    /// The directory it writes into.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many files it keeps.
    pub fn keep(&self) -> usize {
        self.keep
    }

    /// Stops the thread (after its write in progress, if any): what it
    /// wrote, once it has ended.
    pub fn stop(mut self) -> WriterStats {
        self.halt();
        self.stats()
    }

    fn halt(&mut self) {
        let _ = self.tx.send(Command::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Reads one file a writer wrote.
pub fn read(path: &Path) -> Result<Snapshot, String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    Snapshot::from_slice(&bytes).map_err(|e| format!("{e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{AnyClock, ManualClock};
    use crate::Config;

    fn wait_written(w: &Writer, n: u64) {
        for _ in 0..500 {
            if w.stats().written >= n {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("not written: {:?}", w.stats());
    }

    #[test]
    fn rotates_and_reads_back() {
        let dir = std::env::temp_dir().join(format!("reckon_metrics_file_{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let clock = Arc::new(ManualClock::new(1_700_000_000));
        let rec = Arc::new(Recorder::new(
            Config::default(),
            AnyClock::Manual(Arc::clone(&clock)),
        ));
        let w = Writer::start(Arc::clone(&rec), dir.clone(), 3).unwrap();
        for i in 0..6u64 {
            rec.tick([(&b"x"[..], i as f64)]);
            clock.advance(1);
            w.flush();
            wait_written(&w, i + 1);
        }
        let all = files(&dir);
        assert_eq!(all.len(), 3, "{all:?}");
        let last = w.stats().last.unwrap();
        assert_eq!(all.last(), Some(&last));
        let snap = read(&last).unwrap();
        let (_, s) = snap.series.iter().find(|(k, _)| k == b"x").unwrap();
        assert_eq!(s.last(), Some(5.0));
        drop(w);
        // A new writer continues the numbering.
        let w2 = Writer::start(Arc::clone(&rec), dir.clone(), 3).unwrap();
        w2.flush();
        wait_written(&w2, 1);
        assert!(w2.stats().last.unwrap().ends_with("reckon_metrics.6.mpk"));
        assert!(read(&dir.join("nothing.mpk")).is_err());
        let _ = fs::remove_dir_all(&dir);
    }
}
