//! The "likely cause" verdicts, after Erlang in Anger's chapter on crash
//! dumps: the slogan first (cannot allocate, atom table full), then counts
//! near their limits (processes, ports, atoms), then what holds the memory
//! (one full mailbox, binaries, ETS). Each verdict names its evidence.

use crate::limits::*;
use crate::report::{Cause, ProcEntry, Report};
use crate::text::human;

fn memory(r: &Report, kind: &str) -> Option<u64> {
    r.memory.iter().find(|m| m.kind == kind).map(|m| m.bytes)
}

fn near(count: u64, limit: Option<u64>) -> Option<u64> {
    limit.filter(|&l| l > 0 && count.saturating_mul(100) >= l.saturating_mul(NEAR_LIMIT_PERCENT))
}

fn percent(part: u64, whole: u64) -> u64 {
    part.saturating_mul(100).checked_div(whole).unwrap_or(0)
}

fn who(p: &ProcEntry) -> String {
    if p.name.is_empty() {
        p.pid.clone()
    } else {
        format!("{} ({})", p.pid, p.name)
    }
}

fn cause(name: &str, evidence: Vec<String>) -> Cause {
    Cause {
        cause: name.to_owned(),
        evidence,
    }
}

/// The verdicts on `r`, strongest first.
pub fn likely_causes(r: &Report) -> Vec<Cause> {
    let mut out = Vec::new();
    let slogan = r.dump.slogan.as_str();
    let total = memory(r, "total").unwrap_or(0);
    let p = &r.processes;

    if slogan.contains("Cannot allocate") || slogan.contains("Cannot reallocate") {
        let mut ev = vec![format!("slogan: {slogan}")];
        let biggest = ["processes", "binary", "ets", "code", "atom"]
            .iter()
            .filter_map(|k| memory(r, k).map(|b| (b, *k)))
            .max();
        if let Some((b, k)) = biggest {
            ev.push(format!(
                "largest memory type: {k}, {} of {} total ({}%)",
                human(b),
                human(total),
                percent(b, total)
            ));
        }
        if let Some(top) = p.top_memory.first() {
            ev.push(format!(
                "largest process: {} with {} and {} messages",
                who(top),
                human(top.memory),
                top.message_queue
            ));
        }
        out.push(cause("cannot_allocate", ev));
    }

    let atoms = r.atoms.count.unwrap_or(0);
    let atom_slogan = slogan.contains("atom_tab");
    if let Some(limit) = near(atoms, r.atoms.limit).or(if atom_slogan {
        r.atoms.limit.or(Some(0))
    } else {
        None
    }) {
        let mut ev = vec![format!("{atoms} atoms of a limit of {limit} (+t)")];
        if atom_slogan {
            ev.push(format!("slogan: {slogan}"));
        }
        out.push(cause("too_many_atoms", ev));
    }

    if let Some(limit) = near(p.count, p.limit_estimate) {
        let mut ev = vec![format!(
            "{} processes of an estimated limit of {limit} (+P)",
            p.count
        )];
        if slogan.starts_with("Kernel pid terminated") {
            ev.push(format!(
                "slogan: {slogan} (kernel processes die when no new process can be spawned)"
            ));
        }
        if let Some(s) = p.states.first() {
            ev.push(format!(
                "most processes are {}: {} of them",
                s.name, s.count
            ));
        }
        out.push(cause("too_many_processes", ev));
    }

    if let Some(limit) = near(r.ports.count, r.ports.limit_estimate) {
        let types: Vec<String> = r
            .ports
            .types
            .iter()
            .map(|t| format!("{} {}", t.name, t.count))
            .collect();
        out.push(cause(
            "too_many_ports",
            vec![
                format!(
                    "{} ports of an estimated limit of {limit} (+Q)",
                    r.ports.count
                ),
                format!("by type: {}", types.join(", ")),
            ],
        ));
    }

    if let Some(top) = p
        .top_message_queue
        .first()
        .filter(|t| t.message_queue >= FULL_MAILBOX)
    {
        let mut ev = vec![format!(
            "process {} has {} messages in its queue, in {}",
            who(top),
            top.message_queue,
            if top.current_function.is_empty() {
                "an unknown function"
            } else {
                &top.current_function
            }
        )];
        let procs_mem = memory(r, "processes").unwrap_or(0);
        ev.push(format!(
            "it holds {} of the {} all processes hold",
            human(top.memory),
            human(procs_mem)
        ));
        if let Some(f) = p.queue_functions.functions.first() {
            ev.push(format!(
                "{} processes with at least {} messages are in {}",
                f.processes, p.queue_functions.threshold, f.function
            ));
        }
        out.push(cause("full_mailbox", ev));
    }

    let share = |b: u64| total > 0 && b >= 1 << 20 && percent(b, total) >= MEMORY_SHARE_PERCENT;
    if let Some(bin) = memory(r, "binary").filter(|&b| share(b)) {
        let mut ev = vec![format!(
            "binaries hold {} of {} total ({}%)",
            human(bin),
            human(total),
            percent(bin, total)
        )];
        if let Some(b) = r.binaries.largest.first() {
            ev.push(format!(
                "{} binaries in the dump, {} in all; the largest is {} bytes ({})",
                r.binaries.count,
                human(r.binaries.bytes),
                b.bytes,
                b.address
            ));
        }
        out.push(cause("binary_memory", ev));
    }
    if let Some(ets) = memory(r, "ets").filter(|&b| share(b)) {
        let mut ev = vec![format!(
            "ETS tables hold {} of {} total ({}%)",
            human(ets),
            human(total),
            percent(ets, total)
        )];
        if let Some(t) = r.ets.largest.first() {
            ev.push(format!(
                "the largest table is {} (owner {}): {} objects, {} words",
                t.name, t.owner, t.objects, t.words
            ));
        }
        out.push(cause("ets_memory", ev));
    }
    out
}
