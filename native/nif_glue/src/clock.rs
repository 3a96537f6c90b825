//! The one clock of the NIF libraries: nanoseconds on the system's
//! monotonic clock (`CLOCK_MONOTONIC`).
//!
//! It is the kernel's clock, not a per-library origin (as
//! `std::time::Instant` would be, or a base taken at load), so every
//! instance of a library reads the same time: arrival keys, ids and
//! deadlines made by a library before an upgrade compare with those made
//! by the library after it.

use rustler::sys::c_int;

/// Nanoseconds in a millisecond: the Erlang side gives periods, ages and
/// manual clocks in milliseconds.
pub const MS: u64 = 1_000_000;

/// Nanoseconds on the system's monotonic clock (`CLOCK_MONOTONIC`): the
/// same clock for every instance of every library of this project.
pub fn now() -> u64 {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: c_int, ts: *mut Timespec) -> c_int;
    }
    const CLOCK_MONOTONIC: c_int = 1;
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid `struct timespec` (two 64-bit fields on the
    // 64-bit Linux targets this library is built for).
    unsafe { clock_gettime(CLOCK_MONOTONIC, &mut ts) };
    (ts.sec as u64).wrapping_mul(1_000_000_000) + ts.nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_goes_back_and_is_the_kernels_monotonic_clock() {
        let a = now();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = now();
        assert!(b >= a + 2 * MS, "{a} then {b}");
        // The same clock as std's `Instant` on Linux (CLOCK_MONOTONIC), read
        // from another thread: no per-thread or per-library origin.
        let other = std::thread::spawn(now).join().unwrap();
        assert!(other >= b);
    }
}
