//! Truncated and corrupted dumps: never a panic, a partial report with a
//! warning naming where reading stopped, and the parser's own buffers and
//! structures under the cap. 10 000 cases of each property.

// The helpers here run only inside tests, where a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use proptest::prelude::*;
use reckon_dump::{analyze_measured, limits, Options};

fn base() -> Vec<u8> {
    common::dump(80_000).into_bytes()
}

/// Section starts (offsets of each `\n=` + 1) of `d`.
fn sections(d: &[u8]) -> Vec<usize> {
    let mut out = vec![0];
    out.extend(
        d.windows(2)
            .enumerate()
            .filter(|(_, w)| w == b"\n=")
            .map(|(i, _)| i + 1),
    );
    out
}

fn check(d: &[u8], opts: &Options) -> reckon_dump::Report {
    let (r, peak) = analyze_measured(d, opts);
    assert!(peak <= limits::STRUCTURES_CAP, "peak {peak}");
    assert_eq!(r.input.bytes, d.len() as u64);
    let ends = d.windows(5).any(|w| w == b"\n=end") || d.starts_with(b"=end");
    if !ends {
        assert!(!r.input.complete);
        let at = r.input.stopped_at.as_ref().expect("a position");
        assert_eq!(at.byte, d.len() as u64);
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("stops at line") || w.contains("empty")),
            "{:?}",
            r.warnings
        );
    }
    // Every output format serializes.
    assert!(serde_json::to_vec(&r).is_ok());
    r
}

#[derive(Debug, Clone)]
enum Edit {
    /// Overwrites the byte at this fraction of the length.
    Mutate(u32, u8),
    /// Inserts a line of this many bytes of this byte.
    HugeLine(u32, u32, u8),
    /// Removes the section with this index (modulo the count).
    Drop(u32),
    /// Repeats the section with this index.
    Repeat(u32),
    /// Inserts these raw bytes.
    Insert(u32, Vec<u8>),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<u32>(), any::<u8>()).prop_map(|(a, b)| Edit::Mutate(a, b)),
        1 => (any::<u32>(), 60_000u32..300_000, prop_oneof![Just(b'A'), Just(b':'), Just(b'='), any::<u8>()])
            .prop_map(|(a, n, b)| Edit::HugeLine(a, n, b)),
        2 => any::<u32>().prop_map(Edit::Drop),
        2 => any::<u32>().prop_map(Edit::Repeat),
        2 => (any::<u32>(), proptest::collection::vec(
                prop_oneof![Just(b'\n'), Just(b'='), Just(b':'), Just(b' '), any::<u8>()], 0..64))
            .prop_map(|(a, v)| Edit::Insert(a, v)),
    ]
}

fn at(frac: u32, len: usize) -> usize {
    ((u64::from(frac) * len as u64) >> 32) as usize
}

fn apply(d: &mut Vec<u8>, e: &Edit) {
    match e {
        Edit::Mutate(a, b) => {
            if !d.is_empty() {
                let i = at(*a, d.len());
                d[i] = *b;
            }
        }
        Edit::HugeLine(a, n, b) => {
            let i = at(*a, d.len());
            let mut line = vec![*b; *n as usize];
            line.push(b'\n');
            d.splice(i..i, line);
        }
        Edit::Drop(k) | Edit::Repeat(k) => {
            let s = sections(d);
            let idx = (*k as usize) % s.len();
            let start = s[idx];
            let end = s.get(idx + 1).copied().unwrap_or(d.len());
            if matches!(e, Edit::Drop(_)) {
                d.drain(start..end);
            } else {
                let copy = d[start..end].to_vec();
                d.splice(end..end, copy);
            }
        }
        Edit::Insert(a, v) => {
            let i = at(*a, d.len());
            d.splice(i..i, v.iter().copied());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn truncated_anywhere(frac in any::<u32>(), top in 0usize..20) {
        let d = base();
        let cut = at(frac, d.len() + 1).min(d.len());
        let r = check(&d[..cut], &Options { top, threshold: 10 });
        if cut < d.len() - 5 {
            prop_assert!(!r.input.complete);
        }
    }

    #[test]
    fn corrupted(edits in proptest::collection::vec(edit(), 1..6), cut in any::<u32>(), truncate in any::<bool>()) {
        let mut d = base();
        for e in &edits {
            apply(&mut d, e);
        }
        if truncate {
            let c = at(cut, d.len() + 1).min(d.len());
            d.truncate(c);
        }
        check(&d, &Options::default());
    }
}
