//! Every bound the analyzer keeps, and the thresholds of its verdicts.
//!
//! Memory: the reader holds [`crate::reader::READ_BUF`] +
//! [`crate::reader::MAX_LINE`] bytes; every structure below is capped, so
//! the whole pass stays under [`MEMORY_CAP`] whatever the dump's size (the
//! analyzer's own accounting, [`crate::Analyzer::footprint`], stays under
//! [`STRUCTURES_CAP`], which the property tests check).

/// The stated cap of `reckon-dump analyze`'s peak memory (resident set).
pub const MEMORY_CAP: usize = 64 * 1024 * 1024;
/// Most bytes the reader's buffers and the analyzer's structures may hold.
pub const STRUCTURES_CAP: usize = 32 * 1024 * 1024;
/// Largest `top` (entries of every top list).
pub const MAX_TOP: usize = 1000;
/// Distinct values kept per process figure (queue length, heap, old heap);
/// beyond, the smallest are counted in `overflow`.
pub const MAX_DISTINCT: usize = 10_000;
/// Distinct functions kept for the queue-function section; a new function
/// arriving when full is counted in `overflow`.
pub const MAX_FUNCTIONS: usize = 10_000;
/// Distinct ETS owners kept; a new owner arriving when full is not listed.
pub const MAX_OWNERS: usize = 10_000;
/// Distinct process states, memory types and allocators kept.
pub const MAX_NAMES: usize = 256;
/// Bytes kept of any name or value taken from the dump.
pub const MAX_TEXT: usize = 256;
/// Bytes kept of a pid, port or address.
pub const MAX_PID: usize = 64;
/// Bytes kept of the slogan.
pub const MAX_SLOGAN: usize = 1024;
/// Warnings kept (the rest are counted).
pub const MAX_WARNINGS: usize = 100;
/// Upper bound of one warning's length.
pub const MAX_WARNING_TEXT: usize = 2 * MAX_TEXT + 256;
/// Processes known by these names are reported with their queues.
pub const LOGGER_NAMES: [&str; 4] = [
    "error_logger",
    "logger",
    "logger_proxy",
    "logger_std_h_default",
];
/// Bytes per slot of the process and port tables in `=allocated_areas`
/// (`process_table`, `port_table`): observed on 64-bit OTP 25 (the table of
/// `+P 1024` is 12288 bytes), used to estimate the limits.
pub const TABLE_SLOT_BYTES: u64 = 12;

/// One process with at least this many messages is a full mailbox.
pub const FULL_MAILBOX: u64 = 10_000;
/// A count at this share of its limit (percent) is "too many".
pub const NEAR_LIMIT_PERCENT: u64 = 90;
/// Binaries or ETS at this share (percent) of the total memory are named as a cause.
pub const MEMORY_SHARE_PERCENT: u64 = 25;
