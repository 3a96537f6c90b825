//! The parser on small hand-written dump fragments.

// The helpers here run only inside tests, where a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use reckon_dump::{analyze, analyze_measured, limits, Options};

fn run(d: &str) -> reckon_dump::Report {
    analyze(d.as_bytes(), &Options::default())
}

fn causes(r: &reckon_dump::Report) -> Vec<&str> {
    r.likely_causes.iter().map(|c| c.cause.as_str()).collect()
}

#[test]
fn reads_every_section_of_a_complete_dump() {
    let r = run(&common::dump(400_000));
    assert!(r.input.complete, "{:?}", r.warnings);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.dump.version, "0.5");
    assert_eq!(r.dump.slogan, "test slogan");
    assert_eq!(r.dump.time, "Tue Dec  1 23:38:16 2026");
    assert_eq!(r.dump.calling_thread, "scheduler:1");
    assert_eq!(
        r.memory.first().map(|m| (m.kind.as_str(), m.bytes)),
        Some(("total", 19_789_344))
    );
    assert_eq!(
        (r.atoms.count, r.atoms.limit),
        (Some(8638), Some(1_048_576))
    );
    let p = &r.processes;
    assert_eq!(p.count, 4);
    assert_eq!(p.limit_estimate, Some(262_144));
    assert_eq!(
        p.states.first().map(|s| (s.name.as_str(), s.count)),
        Some(("Waiting", 4))
    );
    assert_eq!(
        p.message_queues.largest.first().map(|v| (v.value, v.count)),
        Some((20_000, 1))
    );
    assert_eq!(
        p.top_memory.first().map(|t| t.name.as_str()),
        Some("bigbox")
    );
    assert_eq!(
        p.top_memory.first().map(|t| t.current_function.as_str()),
        Some("prim_eval:receive/2")
    );
    assert_eq!(p.top_message_queue.len(), 3, "only processes with messages");
    assert_eq!(
        p.loggers
            .iter()
            .map(|l| (l.name.as_str(), l.message_queue))
            .collect::<Vec<_>>(),
        vec![("logger", 3)]
    );
    let funs: Vec<_> = p
        .queue_functions
        .functions
        .iter()
        .map(|f| (f.function.as_str(), f.processes, f.messages))
        .collect();
    assert_eq!(
        funs,
        vec![
            ("prim_eval:receive/2", 1, 20_000),
            ("my_server:loop/1", 1, 150)
        ]
    );
    assert_eq!(r.ports.count, 3);
    assert_eq!(r.ports.limit_estimate, Some(65_536));
    let types: Vec<_> = r.ports.types.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(types, vec!["tcp", "udp", "fd"]);
    assert_eq!((r.ets.count, r.ets.words), (2, 84_400));
    assert_eq!(
        r.ets
            .largest
            .first()
            .map(|t| (t.name.as_str(), t.owner.as_str())),
        Some(("t", "<0.9.0>"))
    );
    assert_eq!((r.binaries.count, r.binaries.bytes), (2, 300_000 + 0x118));
    let eheap = r
        .allocators
        .iter()
        .find(|a| a.name == "eheap_alloc")
        .map(|a| (a.instances, a.carriers_bytes, a.blocks_bytes));
    assert_eq!(eheap, Some((2, 4096 + 8192 + 4096, 1000 + 500 + 10)));
    assert_eq!((r.code.modules, r.code.current_bytes), (2, Some(4_328_072)));
    assert_eq!(
        r.code.largest.first().map(|m| m.module.as_str()),
        Some("lists")
    );
    assert_eq!(causes(&r), vec!["full_mailbox"]);
}

#[test]
fn a_cut_dump_says_where_it_stopped() {
    let d = common::dump(1000);
    let cut = d.find("=proc:<0.79.0>").unwrap_or(0) + 30;
    let r = run(&d[..cut]);
    assert!(!r.input.complete);
    let at = r
        .input
        .stopped_at
        .clone()
        .unwrap_or_else(|| panic!("no position"));
    assert_eq!(at.section, "=proc:<0.79.0>");
    assert_eq!(at.byte, cut as u64);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("incomplete") && w.contains("=proc:<0.79.0>")),
        "{:?}",
        r.warnings
    );
    assert_eq!(
        r.processes.count, 3,
        "the cut record is counted with what it had"
    );
}

#[test]
fn names_the_slogan_causes() {
    let base = "=erl_crash_dump:0.5\nnow\nSlogan: eheap_alloc: Cannot allocate 1571344 bytes of memory (of type \"heap\").\n\
                =memory\ntotal: 1000\nprocesses: 900\nbinary: 10\n";
    let r =
        run(&(base.to_owned() + &common::proc("<0.5.0>", "hog", 5, 800, "hog:loop/0") + "=end\n"));
    assert_eq!(causes(&r), vec!["cannot_allocate"]);
    assert!(r.likely_causes[0]
        .evidence
        .iter()
        .any(|e| e.contains("processes") && e.contains("90%")));
    assert!(r.likely_causes[0]
        .evidence
        .iter()
        .any(|e| e.contains("hog")));

    let atoms = "=erl_crash_dump:0.5\nnow\nSlogan: no more index entries in atom_tab (max=20000)\nAtoms: 20000\n\
                 =index_table:atom_tab\nlimit: 20000\nentries: 20000\n=end\n";
    let r = run(atoms);
    assert_eq!(causes(&r), vec!["too_many_atoms"]);
    assert!(r.likely_causes[0].evidence[0].contains("20000 atoms of a limit of 20000"));
}

#[test]
fn names_counts_near_their_limits_and_memory_shares() {
    let mut d = String::from("=erl_crash_dump:0.5\nnow\nSlogan: x\n=memory\ntotal: 100000000\nbinary: 40000000\nets: 30000000\n\
                              =allocated_areas\nprocess_table: 120\nport_table: 24\n");
    for i in 0..9 {
        d += &common::proc(&format!("<0.{i}.0>"), "", 0, 100, "a:b/0");
    }
    d += "=port:#Port<0.1>\nPort controls linked-in driver: tcp_inet\n=port:#Port<0.2>\nPort controls linked-in driver: tcp_inet\n";
    d += "=binary:AB\n100:AAAA\n=ets:<0.1.0>\nName: big\nWords: 3000000\nObjects: 5\n=end\n";
    let r = run(&d);
    assert_eq!(
        causes(&r),
        vec![
            "too_many_processes",
            "too_many_ports",
            "binary_memory",
            "ets_memory"
        ]
    );
}

#[test]
fn corrupted_values_are_skipped_with_a_warning() {
    let d = "=erl_crash_dump:0.5\nnow\nSlogan: x\n=proc:<0.1.0>\nMessage queue length: lots\nMemory: 12\n\
             =binary:FF\nzz:AAAA\n=memory\ntotal: 5\n=memory\ntotal: 6\n=end\n";
    let r = run(d);
    assert!(r.input.complete);
    assert_eq!(r.processes.count, 1);
    assert_eq!(r.binaries.count, 0);
    assert_eq!(r.memory.len(), 1);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("Message queue length") && w.contains("line 5")),
        "{:?}",
        r.warnings
    );
    assert!(
        r.warnings.iter().any(|w| w.contains("binary FF")),
        "{:?}",
        r.warnings
    );
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("repeated section =memory")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn not_a_dump_and_empty_input_give_warnings() {
    let r = run("hello\nworld\n");
    assert!(!r.input.complete);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("does not start as a crash dump")),
        "{:?}",
        r.warnings
    );
    let r = run("");
    assert!(
        r.warnings.iter().any(|w| w.contains("empty")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn old_format_current_call_is_the_function() {
    let d = "=erl_crash_dump:0.1\nnow\nSlogan: x\n=proc:<0.1.0>\nState: Waiting\nCurrent call: gen:do_call/4\nMessage queue length: 500\n=end\n";
    let r = run(d);
    assert_eq!(
        r.processes
            .queue_functions
            .functions
            .first()
            .map(|f| f.function.as_str()),
        Some("gen:do_call/4")
    );
}

/// Generates a dump of `procs` processes, each with its own queue length,
/// function and ETS owner, without holding it.
struct Many {
    procs: u64,
    next: u64,
    pending: Vec<u8>,
    pos: usize,
}

impl std::io::Read for Many {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.pending.len() {
            self.pending.clear();
            self.pos = 0;
            if self.next == 0 {
                self.pending
                    .extend_from_slice(b"=erl_crash_dump:0.5\nnow\nSlogan: many\n");
            }
            while self.pending.len() < 65_536 && self.next < self.procs {
                let i = self.next;
                let p = common::proc(
                    &format!("<0.{i}.0>"),
                    "",
                    i,
                    i * 7,
                    &format!("mod{i}:f/{}", i % 250),
                );
                self.pending.extend_from_slice(p.as_bytes());
                self.pending.extend_from_slice(
                    format!("=ets:<0.{i}.0>\nName: t{i}\nWords: {i}\n").as_bytes(),
                );
                self.next += 1;
            }
            if self.next == self.procs && self.pending.is_empty() {
                return Ok(0);
            }
            if self.next == self.procs {
                self.pending.extend_from_slice(b"=end\n");
                self.next += 1;
            }
        }
        let n = out.len().min(self.pending.len() - self.pos);
        out[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn distinct_keys_are_capped_and_the_rest_counted() {
    let procs = 60_000;
    let opts = Options {
        top: 1000,
        threshold: 0,
    };
    let (r, peak) = analyze_measured(
        Many {
            procs,
            next: 0,
            pending: Vec::new(),
            pos: 0,
        },
        &opts,
    );
    assert!(r.input.complete, "{:?}", r.warnings);
    assert_eq!(r.processes.count, procs);
    let q = &r.processes.message_queues;
    assert_eq!(
        q.largest.first().map(|v| v.value),
        Some(procs - 1),
        "the largest are kept exactly"
    );
    assert_eq!(q.overflow, procs - limits::MAX_DISTINCT as u64);
    assert_eq!(
        r.processes.queue_functions.overflow,
        procs - limits::MAX_FUNCTIONS as u64
    );
    assert_eq!(r.processes.top_memory.len(), 1000);
    assert_eq!(r.ets.count, procs);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("distinct message-queue lengths")),
        "{:?}",
        r.warnings
    );
    assert!(peak <= limits::STRUCTURES_CAP, "peak {peak}");
}
