//! Small text helpers and the plain-text rendering of a [`Report`].

use std::fmt::Write;

use crate::report::{Distribution, NameCount, ProcEntry, Report};

/// `s` cut to at most `max` bytes, at a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// `bytes` as text (invalid UTF-8 replaced), cut to `max` bytes.
pub fn owned(bytes: &[u8], max: usize) -> String {
    let b = bytes.get(..bytes.len().min(max + 4)).unwrap_or(bytes);
    let s = String::from_utf8_lossy(b);
    cut(&s, max).to_owned()
}

/// A decimal integer (surrounding blanks allowed), `None` otherwise.
pub fn number(bytes: &[u8]) -> Option<u64> {
    let t = bytes.trim_ascii();
    if t.is_empty() || t.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in t {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(n)
}

/// The first blank-separated decimal integer of `bytes`.
pub fn first_number(bytes: &[u8]) -> Option<u64> {
    number(
        bytes
            .trim_ascii()
            .split(|&c| c == b' ')
            .next()
            .unwrap_or(&[]),
    )
}

/// A hexadecimal integer, `None` otherwise.
pub fn hex(bytes: &[u8]) -> Option<u64> {
    let t = bytes.trim_ascii();
    if t.is_empty() || t.len() > 16 {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(t).ok()?, 16).ok()
}

/// Bytes in a human unit (`1.5 MiB`).
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    let name = UNITS.get(unit).copied().unwrap_or("B");
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {name}")
    }
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "?".to_owned(), |v| v.to_string())
}

fn distribution(out: &mut String, title: &str, unit: &str, d: &Distribution) {
    let _ = writeln!(out, "  {title}:");
    if d.largest.is_empty() {
        let _ = writeln!(out, "    (none)");
    }
    for vc in &d.largest {
        let _ = writeln!(out, "    {:>12} {unit}  x {}", vc.value, vc.count);
    }
    if d.overflow > 0 {
        let _ = writeln!(
            out,
            "    ({} more processes with smaller values)",
            d.overflow
        );
    }
}

fn names(out: &mut String, title: &str, list: &[NameCount]) {
    let joined: Vec<String> = list
        .iter()
        .map(|n| format!("{} {}", n.name, n.count))
        .collect();
    let _ = writeln!(
        out,
        "  {title}: {}",
        if joined.is_empty() {
            "(none)".to_owned()
        } else {
            joined.join(", ")
        }
    );
}

fn procs(out: &mut String, title: &str, list: &[ProcEntry]) {
    let _ = writeln!(out, "  {title}:");
    if list.is_empty() {
        let _ = writeln!(out, "    (none)");
    }
    for p in list {
        let name = if p.name.is_empty() {
            "-"
        } else {
            p.name.as_str()
        };
        let _ = writeln!(
            out,
            "    {:<14} {:<24} mem {:>10}  queue {:>8}  heap {:>9} w  in {}",
            p.pid,
            cut(name, 24),
            human(p.memory),
            p.message_queue,
            p.heap_words,
            if p.current_function.is_empty() {
                "?"
            } else {
                &p.current_function
            }
        );
    }
}

/// The report as text for a terminal.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let d = &r.dump;
    let _ = writeln!(
        out,
        "== Crash dump (format {}) written {}",
        d.version, d.time
    );
    let _ = writeln!(out, "Slogan: {}", d.slogan);
    let _ = writeln!(out, "System: {}", d.system_version);
    let complete = if r.input.complete {
        "complete"
    } else {
        "INCOMPLETE"
    };
    let _ = writeln!(
        out,
        "Read: {} in {} lines, {complete}",
        human(r.input.bytes),
        r.input.lines
    );

    let _ = writeln!(out, "\n== Likely cause");
    if r.likely_causes.is_empty() {
        let _ = writeln!(out, "  none of the known patterns (see the figures below)");
    }
    for c in &r.likely_causes {
        let _ = writeln!(out, "  {}", c.cause);
        for e in &c.evidence {
            let _ = writeln!(out, "    - {e}");
        }
    }

    let _ = writeln!(out, "\n== Memory");
    for m in &r.memory {
        let _ = writeln!(out, "  {:<16} {:>14}  {}", m.kind, m.bytes, human(m.bytes));
    }
    let _ = writeln!(
        out,
        "  atoms: {} of limit {}",
        opt(r.atoms.count),
        opt(r.atoms.limit)
    );

    let p = &r.processes;
    let _ = writeln!(
        out,
        "\n== Processes: {} (limit about {})",
        p.count,
        opt(p.limit_estimate)
    );
    names(&mut out, "states", &p.states);
    distribution(
        &mut out,
        "largest message queues",
        "messages",
        &p.message_queues,
    );
    distribution(&mut out, "largest heap+stack", "words", &p.heap_words);
    distribution(&mut out, "largest old heaps", "words", &p.old_heap_words);
    let loggers: Vec<String> = p
        .loggers
        .iter()
        .map(|l| format!("{} {} ({} messages)", l.name, l.pid, l.message_queue))
        .collect();
    let _ = writeln!(
        out,
        "  error logger queues: {}",
        if loggers.is_empty() {
            "(no logger process)".to_owned()
        } else {
            loggers.join(", ")
        }
    );
    let q = &p.queue_functions;
    let _ = writeln!(
        out,
        "  functions of processes with >= {} messages:",
        q.threshold
    );
    if q.functions.is_empty() {
        let _ = writeln!(out, "    (none)");
    }
    for f in &q.functions {
        let _ = writeln!(
            out,
            "    {:>8} messages in {:>5} processes  {}",
            f.messages,
            f.processes,
            if f.function.is_empty() {
                "?"
            } else {
                &f.function
            }
        );
    }
    procs(&mut out, "top by memory", &p.top_memory);
    procs(&mut out, "top by message queue", &p.top_message_queue);

    let _ = writeln!(
        out,
        "\n== Ports: {} (limit about {})",
        r.ports.count,
        opt(r.ports.limit_estimate)
    );
    names(&mut out, "by type", &r.ports.types);

    let e = &r.ets;
    let _ = writeln!(out, "\n== ETS: {} tables, {} words", e.count, e.words);
    for t in &e.largest {
        let _ = writeln!(
            out,
            "  {:<28} {:<10} owner {:<14} {:>10} objects {:>12} words",
            cut(&t.name, 28),
            t.kind,
            t.owner,
            t.objects,
            t.words
        );
    }
    for o in &e.owners {
        let _ = writeln!(
            out,
            "  owner {:<14} {:>4} tables {:>12} words",
            o.owner, o.tables, o.words
        );
    }

    let b = &r.binaries;
    let _ = writeln!(
        out,
        "\n== Binaries: {} in the dump, {}",
        b.count,
        human(b.bytes)
    );
    for x in &b.largest {
        let _ = writeln!(out, "  {:<18} {:>12} bytes", x.address, x.bytes);
    }

    let _ = writeln!(out, "\n== Allocators (carriers / blocks)");
    for a in r.allocators.iter().filter(|a| a.carriers_bytes > 0) {
        let _ = writeln!(
            out,
            "  {:<16} x{:<3} {:>12} / {:>12}",
            a.name,
            a.instances,
            human(a.carriers_bytes),
            human(a.blocks_bytes)
        );
    }

    let c = &r.code;
    let _ = writeln!(
        out,
        "\n== Code: {} modules, current {} bytes, old {} bytes",
        c.modules,
        opt(c.current_bytes),
        opt(c.old_bytes)
    );
    for m in &c.largest {
        let _ = writeln!(out, "  {:<28} {:>10} bytes", cut(&m.module, 28), m.bytes);
    }

    if !r.warnings.is_empty() {
        let _ = writeln!(out, "\n== Warnings");
        for w in &r.warnings {
            let _ = writeln!(out, "  {w}");
        }
    }
    out
}
