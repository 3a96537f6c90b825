//! A streaming analyzer of Erlang crash dumps (`erl_crash.dump`) that reads
//! any size of dump in bounded memory, for the `reckon-dump` command and
//! `reckon:crashdump/1`.
//!
//! One pass over the lines ([`reader::LineReader`], which never holds more
//! than [`reader::MAX_LINE`] bytes of a line) feeds an [`Analyzer`] whose
//! every structure is capped ([`limits`]); the result is a [`Report`]. A
//! truncated or corrupted dump gives a partial report whose `warnings` say
//! where reading stopped and what was skipped; nothing here panics on input
//! and nothing recurses.
//!
//! ```
//! let dump = b"=erl_crash_dump:0.5\nMon Jan  1 00:00:00 2024\nSlogan: boom\n=end\n";
//! let report = reckon_dump::analyze(&dump[..], &reckon_dump::Options::default());
//! assert_eq!(report.dump.slogan, "boom");
//! assert!(report.input.complete);
//! ```

mod analyzer;
pub mod bounded;
pub mod cause;
pub mod limits;
pub mod reader;
pub mod report;
pub mod text;

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

pub use analyzer::Analyzer;
pub use report::Report;

/// What to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Entries of every top list (capped to [`limits::MAX_TOP`]).
    pub top: usize,
    /// Smallest message queue counted in the queue-function section.
    pub threshold: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            top: 10,
            threshold: 100,
        }
    }
}

/// Analyzes the dump read from `input`; a read error ends the pass with a
/// partial report and a warning. Also returns the peak bytes held by the
/// reader and the analyzer (their own accounting).
pub fn analyze_measured<R: Read>(input: R, opts: &Options) -> (Report, usize) {
    let mut reader = reader::LineReader::new(input);
    let mut a = Analyzer::new(*opts);
    let mut lines = 0u64;
    let mut peak = 0usize;
    loop {
        match reader.next_line() {
            Ok(Some(line)) => {
                lines = line.number;
                a.line(&line);
                if lines & 0xFFFF == 0 {
                    peak = peak.max(a.footprint() + reader.footprint());
                }
            }
            Ok(None) => break,
            Err(e) => {
                let at = reader.offset();
                let section = a.section().to_owned();
                a.warn(format!(
                    "read error at byte {at} (line {}) in {section}: {e}; stopped there",
                    lines + 1
                ));
                break;
            }
        }
    }
    peak = peak.max(a.footprint() + reader.footprint());
    (a.finish(reader.offset(), lines), peak)
}

/// Analyzes the dump read from `input` (see [`analyze_measured`]).
pub fn analyze<R: Read>(input: R, opts: &Options) -> Report {
    analyze_measured(input, opts).0
}

/// Analyzes the dump in the file at `path`; an error only when it cannot be opened.
pub fn analyze_path(path: &Path, opts: &Options) -> io::Result<Report> {
    let file = File::open(path)?;
    if file.metadata()?.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "is a directory",
        ));
    }
    Ok(analyze(file, opts))
}
