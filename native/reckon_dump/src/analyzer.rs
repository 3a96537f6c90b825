//! The section state machine: one pass over the lines of a dump, keeping
//! only bounded counters and top lists (see [`crate::limits`]).
//!
//! A dump is a sequence of sections, each opened by a line `=tag` or
//! `=tag:id` and made of `Key: value` lines (the format of "How to
//! interpret the Erlang crash dumps", ERTS User's Guide). Sections may come
//! in any order, be missing, repeated or cut: every section is read on its
//! own, and nothing depends on what came before except the record in
//! progress, which the next header closes.

use std::collections::BTreeMap;

use reckon_core::topn::TopN;

use crate::bounded::{Distinct, Named};
use crate::limits::*;
use crate::reader::Line;
use crate::report::*;
use crate::text::{first_number, hex, number, owned};
use crate::Options;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sec {
    Start,
    Preamble,
    Memory,
    AtomTable,
    Areas,
    Allocator,
    Proc,
    Port,
    Ets,
    Binary,
    Loaded,
    Mod,
    Skip,
}

/// Port types, in report order.
const PORT_TYPES: [&str; 7] = ["tcp", "udp", "sctp", "file", "external", "fd", "other"];

/// One pass over a dump.
pub struct Analyzer {
    opts: Options,
    sec: Sec,
    header: String,
    complete: bool,
    seen_preamble: bool,
    seen_memory: bool,
    preamble: Preamble,
    memory: Vec<MemoryType>,
    atoms: Atoms,
    atom_entries: Option<u64>,
    process_table: Option<u64>,
    port_table: Option<u64>,
    // the record in progress
    proc: Option<ProcEntry>,
    port: Option<usize>,
    ets: Option<EtsTable>,
    module: Option<ModuleEntry>,
    alloc: Option<(String, u64, u64)>,
    binary_pending: Option<String>,
    // processes
    procs: u64,
    states: Named,
    queues: Distinct,
    heaps: Distinct,
    old_heaps: Distinct,
    loggers: Vec<ProcEntry>,
    top_memory: TopN<ProcEntry>,
    top_queue: TopN<ProcEntry>,
    queue_funs: Named,
    // ports
    ports: u64,
    port_types: [u64; 7],
    // ets
    tables: u64,
    ets_words: u64,
    top_ets: TopN<EtsTable>,
    ets_owners: Named,
    // binaries
    bins: u64,
    bin_bytes: u64,
    top_bins: TopN<BinaryEntry>,
    // allocators: name -> (instances, carriers, blocks)
    allocs: BTreeMap<String, (u64, u64, u64)>,
    // code
    modules: u64,
    current_code: Option<u64>,
    old_code: Option<u64>,
    top_mods: TopN<ModuleEntry>,
    warnings: Vec<String>,
    dropped_warnings: u64,
}

fn value_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `Key: value` split at the first `": "` (or a final `:`), `None` when
/// there is neither.
fn key_value(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut from = 0;
    while let Some(p) = memchr::memchr(b':', text.get(from..)?) {
        let at = from + p;
        match text.get(at + 1) {
            Some(b' ') => return Some((text.get(..at)?, text.get(at + 2..)?)),
            None => return Some((text.get(..at)?, &b""[..])),
            Some(_) => from = at + 1,
        }
    }
    None
}

/// The `m:f/a` inside the parentheses of a `Program counter` line.
fn function_of(value: &[u8]) -> &[u8] {
    let inner = match memchr::memchr(b'(', value) {
        Some(open) => value.get(open + 1..).unwrap_or(&[]),
        None => value,
    };
    let end = inner
        .iter()
        .position(|&c| c == b' ' || c == b')')
        .unwrap_or(inner.len());
    inner.get(..end).unwrap_or(&[])
}

impl Analyzer {
    /// A fresh pass with `opts` (its `top` capped to [`MAX_TOP`]).
    pub fn new(opts: Options) -> Self {
        let top = opts.top.min(MAX_TOP);
        let opts = Options { top, ..opts };
        Self {
            opts,
            sec: Sec::Start,
            header: String::new(),
            complete: false,
            seen_preamble: false,
            seen_memory: false,
            preamble: Preamble::default(),
            memory: Vec::new(),
            atoms: Atoms::default(),
            atom_entries: None,
            process_table: None,
            port_table: None,
            proc: None,
            port: None,
            ets: None,
            module: None,
            alloc: None,
            binary_pending: None,
            procs: 0,
            states: Named::new(MAX_NAMES, MAX_TEXT),
            queues: Distinct::new(MAX_DISTINCT),
            heaps: Distinct::new(MAX_DISTINCT),
            old_heaps: Distinct::new(MAX_DISTINCT),
            loggers: Vec::new(),
            top_memory: TopN::new(top),
            top_queue: TopN::new(top),
            queue_funs: Named::new(MAX_FUNCTIONS, MAX_TEXT),
            ports: 0,
            port_types: [0; 7],
            tables: 0,
            ets_words: 0,
            top_ets: TopN::new(top),
            ets_owners: Named::new(MAX_OWNERS, MAX_PID),
            bins: 0,
            bin_bytes: 0,
            top_bins: TopN::new(top),
            allocs: BTreeMap::new(),
            modules: 0,
            current_code: None,
            old_code: None,
            top_mods: TopN::new(top),
            warnings: Vec::new(),
            dropped_warnings: 0,
        }
    }

    /// Adds a warning (at most [`MAX_WARNINGS`] are kept, the rest counted).
    pub fn warn(&mut self, w: String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(w);
        } else {
            self.dropped_warnings += 1;
        }
    }

    /// Header of the section being read.
    pub fn section(&self) -> &str {
        &self.header
    }

    /// Whether `=end` was read.
    pub fn complete(&self) -> bool {
        self.complete
    }

    /// Upper bound of the bytes this pass holds (its structures and the
    /// strings in them; the reader's buffers are counted by the reader).
    pub fn footprint(&self) -> usize {
        let proc_entry = std::mem::size_of::<ProcEntry>() + 5 * MAX_TEXT + 32;
        let ets_entry = std::mem::size_of::<EtsTable>() + 4 * MAX_TEXT + 32;
        let small = std::mem::size_of::<ModuleEntry>() + MAX_TEXT + 32;
        self.states.footprint()
            + self.queues.footprint()
            + self.heaps.footprint()
            + self.old_heaps.footprint()
            + self.queue_funs.footprint()
            + self.ets_owners.footprint()
            + (self.top_memory.len() + self.top_queue.len() + self.loggers.len() + 1) * proc_entry
            + (self.top_ets.len() + 1) * ets_entry
            + (self.top_bins.len() + self.top_mods.len() + 2) * small
            + (self.allocs.len() + 1) * (64 + MAX_TEXT)
            + (self.memory.len() + 1) * (48 + MAX_TEXT)
            + (self.warnings.len() * (48 + MAX_WARNING_TEXT))
            + 4 * MAX_SLOGAN
            + self.header.capacity()
    }

    /// Reads one line.
    pub fn line(&mut self, l: &Line<'_>) {
        if l.text.first() == Some(&b'=') {
            self.open(l);
            return;
        }
        if l.truncated && !matches!(self.sec, Sec::Binary | Sec::Skip | Sec::Proc | Sec::Mod) {
            self.warn(format!(
                "line {} (byte {}) in {} is {} bytes long; only its first {} bytes were read",
                l.number,
                l.offset,
                self.section_name(),
                l.len,
                l.text.len()
            ));
        }
        match self.sec {
            Sec::Start => {
                self.warn(format!(
                    "line {} (byte {}) comes before any section: this does not start as a crash dump (=erl_crash_dump:<version>)",
                    l.number, l.offset
                ));
                self.sec = Sec::Skip;
            }
            Sec::Preamble => self.preamble_line(l.text),
            Sec::Binary => self.binary_line(l),
            Sec::Skip => {}
            _ => {
                if let Some((k, v)) = key_value(l.text) {
                    self.key_value(k, v, l);
                }
            }
        }
    }

    fn section_name(&self) -> String {
        if self.header.is_empty() {
            "the start of the file".to_owned()
        } else {
            format!("section {}", self.header)
        }
    }

    fn bad_number(&mut self, key: &[u8], l: &Line<'_>) {
        let key = owned(key, 64);
        self.warn(format!(
            "line {} (byte {}) in {}: `{key}` is not a number; ignored",
            l.number,
            l.offset,
            self.section_name()
        ));
    }

    fn num(&mut self, key: &[u8], v: &[u8], l: &Line<'_>) -> Option<u64> {
        let n = first_number(v);
        if n.is_none() {
            self.bad_number(key, l);
        }
        n
    }

    fn open(&mut self, l: &Line<'_>) {
        self.close();
        let body = l.text.get(1..).unwrap_or(&[]);
        let (tag, id) = match memchr::memchr(b':', body) {
            Some(p) => (
                body.get(..p).unwrap_or(&[]),
                body.get(p + 1..).unwrap_or(&[]),
            ),
            None => (body, &b""[..]),
        };
        self.header = owned(l.text, MAX_TEXT);
        if self.complete {
            self.warn(format!(
                "line {} (byte {}): section {} after =end; read anyway",
                l.number, l.offset, self.header
            ));
        }
        let first = l.number == 1;
        self.sec = match tag {
            b"erl_crash_dump" => {
                if self.seen_preamble {
                    self.warn(format!(
                        "line {} (byte {}): a second =erl_crash_dump header (two dumps in one file?); its preamble is ignored",
                        l.number, l.offset
                    ));
                    Sec::Skip
                } else {
                    self.seen_preamble = true;
                    self.preamble.version = owned(id, MAX_TEXT);
                    Sec::Preamble
                }
            }
            b"memory" => {
                if self.seen_memory {
                    self.warn(format!(
                        "line {}: repeated section =memory; the first one is kept",
                        l.number
                    ));
                    Sec::Skip
                } else {
                    self.seen_memory = true;
                    Sec::Memory
                }
            }
            b"index_table" if id == b"atom_tab" => Sec::AtomTable,
            b"allocated_areas" => Sec::Areas,
            b"allocator" => {
                let base = id.split(|&c| c == b'[').next().unwrap_or(id);
                self.alloc = Some((owned(base, MAX_TEXT), 0, 0));
                Sec::Allocator
            }
            b"proc" => {
                self.proc = Some(ProcEntry {
                    pid: owned(id, MAX_PID),
                    ..ProcEntry::default()
                });
                Sec::Proc
            }
            b"port" => {
                self.port = Some(PORT_TYPES.len() - 1);
                Sec::Port
            }
            b"ets" => {
                self.ets = Some(EtsTable {
                    owner: owned(id, MAX_PID),
                    ..EtsTable::default()
                });
                Sec::Ets
            }
            b"binary" => {
                self.binary_pending = Some(owned(id, MAX_PID));
                Sec::Binary
            }
            b"loaded_modules" => Sec::Loaded,
            b"mod" => {
                self.module = Some(ModuleEntry {
                    module: owned(id, MAX_TEXT),
                    bytes: 0,
                });
                Sec::Mod
            }
            b"end" => {
                self.complete = true;
                Sec::Skip
            }
            b"abort" => {
                let why = owned(id, MAX_TEXT);
                self.warn(format!(
                    "line {}: the dump was cut by the runtime (=abort:{why})",
                    l.number
                ));
                Sec::Skip
            }
            _ => Sec::Skip,
        };
        if first && self.sec != Sec::Preamble {
            self.warn(
                "line 1 is not =erl_crash_dump:<version>: not a crash dump, or its start is missing"
                    .to_owned(),
            );
        }
    }

    /// Closes the record in progress, if any.
    pub fn close(&mut self) {
        if let Some(p) = self.proc.take() {
            self.finish_proc(p);
        }
        if let Some(t) = self.port.take() {
            if let Some(c) = self.port_types.get_mut(t) {
                *c += 1;
            }
            self.ports += 1;
        }
        if let Some(t) = self.ets.take() {
            self.tables += 1;
            self.ets_words = self.ets_words.saturating_add(t.words);
            self.ets_owners.add(&t.owner, 1, t.words);
            let w = value_i64(t.words);
            self.top_ets.push(t, w);
        }
        if let Some(m) = self.module.take() {
            self.modules += 1;
            let b = value_i64(m.bytes);
            self.top_mods.push(m, b);
        }
        if let Some((name, carriers, blocks)) = self.alloc.take() {
            if let Some(e) = self.allocs.get_mut(&name) {
                e.0 += 1;
                e.1 = e.1.saturating_add(carriers);
                e.2 = e.2.saturating_add(blocks);
            } else if self.allocs.len() < MAX_NAMES {
                self.allocs.insert(name, (1, carriers, blocks));
            }
        }
        if let Some(addr) = self.binary_pending.take() {
            self.warn(format!("binary {addr} has no size line; not counted"));
        }
    }

    fn finish_proc(&mut self, p: ProcEntry) {
        self.procs += 1;
        self.states.add(&p.state, 1, 0);
        self.queues.add(p.message_queue);
        self.heaps.add(p.heap_words);
        self.old_heaps.add(p.old_heap_words);
        if p.message_queue >= self.opts.threshold {
            self.queue_funs.add(&p.current_function, 1, p.message_queue);
        }
        if LOGGER_NAMES.contains(&p.name.as_str()) && self.loggers.len() < LOGGER_NAMES.len() {
            self.loggers.push(p.clone());
        }
        if p.message_queue > 0 {
            self.top_queue.push(p.clone(), value_i64(p.message_queue));
        }
        let m = value_i64(p.memory);
        self.top_memory.push(p, m);
    }

    fn preamble_line(&mut self, text: &[u8]) {
        match key_value(text) {
            Some((b"Slogan", v)) => self.preamble.slogan = owned(v, MAX_SLOGAN),
            Some((b"System version", v)) => self.preamble.system_version = owned(v, MAX_TEXT),
            Some((b"Calling Thread", v)) => self.preamble.calling_thread = owned(v, MAX_TEXT),
            Some((b"Atoms", v)) => self.atoms.count = number(v),
            _ if self.preamble.time.is_empty() => self.preamble.time = owned(text, MAX_TEXT),
            _ => {}
        }
    }

    fn binary_line(&mut self, l: &Line<'_>) {
        let Some(addr) = self.binary_pending.take() else {
            return;
        };
        let size = memchr::memchr(b':', l.text).and_then(|p| hex(l.text.get(..p).unwrap_or(&[])));
        match size {
            Some(bytes) => {
                self.bins += 1;
                self.bin_bytes = self.bin_bytes.saturating_add(bytes);
                self.top_bins.push(
                    BinaryEntry {
                        address: addr,
                        bytes,
                    },
                    value_i64(bytes),
                );
            }
            None => self.warn(format!(
                "line {} (byte {}): binary {addr} has no hexadecimal size; not counted",
                l.number, l.offset
            )),
        }
    }

    fn key_value(&mut self, k: &[u8], v: &[u8], l: &Line<'_>) {
        match self.sec {
            Sec::Memory => {
                if let Some(n) = self.num(k, v, l) {
                    if self.memory.len() < MAX_NAMES {
                        self.memory.push(MemoryType {
                            kind: owned(k, MAX_TEXT),
                            bytes: n,
                        });
                    }
                }
            }
            Sec::AtomTable => match k {
                b"limit" => self.atoms.limit = self.num(k, v, l),
                b"entries" => self.atom_entries = self.num(k, v, l),
                _ => {}
            },
            Sec::Areas => match k {
                b"process_table" => self.process_table = self.num(k, v, l),
                b"port_table" => self.port_table = self.num(k, v, l),
                _ => {}
            },
            Sec::Allocator => {
                let carriers = k == b"mbcs carriers size" || k == b"sbcs carriers size";
                let blocks = (k.starts_with(b"mbcs blocks") || k.starts_with(b"sbcs blocks"))
                    && k.ends_with(b" size");
                if carriers || blocks {
                    let n = self.num(k, v, l).unwrap_or(0);
                    if let Some(a) = self.alloc.as_mut() {
                        if carriers {
                            a.1 = a.1.saturating_add(n);
                        } else {
                            a.2 = a.2.saturating_add(n);
                        }
                    }
                }
            }
            Sec::Proc => self.proc_line(k, v, l),
            Sec::Port => {
                let t = port_type(k, v);
                if let (Some(t), Some(cur)) = (t, self.port.as_mut()) {
                    *cur = t;
                }
            }
            Sec::Ets => {
                let n = match k {
                    b"Objects" | b"Words" => self.num(k, v, l),
                    _ => None,
                };
                if let Some(t) = self.ets.as_mut() {
                    match k {
                        b"Table" => t.table = owned(v, MAX_TEXT),
                        b"Name" => t.name = owned(v, MAX_TEXT),
                        b"Type" => t.kind = owned(v, MAX_TEXT),
                        b"Objects" => t.objects = n.unwrap_or(0),
                        b"Words" => t.words = n.unwrap_or(0),
                        _ => {}
                    }
                }
            }
            Sec::Loaded => match k {
                b"Current code" => self.current_code = self.num(k, v, l),
                b"Old code" => self.old_code = self.num(k, v, l),
                _ => {}
            },
            Sec::Mod => {
                if k == b"Current size" {
                    let n = self.num(k, v, l).unwrap_or(0);
                    if let Some(m) = self.module.as_mut() {
                        m.bytes = n;
                    }
                }
            }
            Sec::Start | Sec::Preamble | Sec::Binary | Sec::Skip => {}
        }
    }

    fn proc_line(&mut self, k: &[u8], v: &[u8], l: &Line<'_>) {
        let n = match k {
            b"Message queue length" | b"Stack+heap" | b"OldHeap" | b"Memory" | b"Reductions" => {
                self.num(k, v, l)
            }
            _ => None,
        };
        let Some(p) = self.proc.as_mut() else { return };
        match k {
            b"State" => p.state = owned(v, MAX_TEXT),
            b"Name" => p.name = owned(v, MAX_TEXT),
            b"Spawned as" => p.spawned_as = owned(v, MAX_TEXT),
            b"Message queue length" => p.message_queue = n.unwrap_or(0),
            b"Stack+heap" => p.heap_words = n.unwrap_or(0),
            b"OldHeap" => p.old_heap_words = n.unwrap_or(0),
            b"Memory" => p.memory = n.unwrap_or(0),
            b"Reductions" => p.reductions = n.unwrap_or(0),
            b"Program counter" | b"Current call" => {
                let f = function_of(v);
                if !f.is_empty() && (k == b"Program counter" || p.current_function.is_empty()) {
                    p.current_function = owned(f, MAX_TEXT);
                }
            }
            _ => {}
        }
    }

    /// The report of what was read, `bytes` and `lines` being the reader's counts.
    pub fn finish(mut self, bytes: u64, lines: u64) -> Report {
        let stopped_at = (!self.complete).then(|| Position {
            line: lines,
            byte: bytes,
            section: self.header.clone(),
        });
        self.close();
        if !self.complete {
            let w = if lines == 0 {
                "the input is empty: no crash dump to read".to_owned()
            } else {
                format!(
                    "the dump is incomplete: no =end section; it stops at line {lines} (byte {bytes}) in {}; the figures cover what comes before",
                    self.section_name()
                )
            };
            self.warn(w);
        }
        let top = self.opts.top;
        let dist = |d: &Distinct| Distribution {
            largest: d
                .largest(top)
                .into_iter()
                .map(|(value, count)| ValueCount { value, count })
                .collect(),
            overflow: d.overflow(),
        };
        let (queues, heaps, old_heaps) =
            (dist(&self.queues), dist(&self.heaps), dist(&self.old_heaps));
        for (what, d) in [
            ("message-queue lengths", &self.queues),
            ("heap sizes", &self.heaps),
            ("old-heap sizes", &self.old_heaps),
        ] {
            if d.overflow() > 0 {
                let w = format!("more than {MAX_DISTINCT} distinct {what}: {} processes with the smallest are counted in `overflow`", d.overflow());
                self.warnings.push(w);
            }
        }
        let mut states: Vec<NameCount> = self
            .states
            .iter()
            .map(|(n, c, _)| NameCount {
                name: n.to_owned(),
                count: c,
            })
            .collect();
        states.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
        let mut funs: Vec<QueueFunction> = self
            .queue_funs
            .iter()
            .map(|(f, c, m)| QueueFunction {
                function: f.to_owned(),
                processes: c,
                messages: m,
            })
            .collect();
        funs.sort_by(|a, b| {
            b.messages
                .cmp(&a.messages)
                .then_with(|| a.function.cmp(&b.function))
        });
        funs.truncate(top);
        let mut owners: Vec<EtsOwner> = self
            .ets_owners
            .iter()
            .map(|(o, t, w)| EtsOwner {
                owner: o.to_owned(),
                tables: t,
                words: w,
            })
            .collect();
        owners.sort_by(|a, b| b.words.cmp(&a.words).then_with(|| a.owner.cmp(&b.owner)));
        owners.truncate(top);
        let mut types: Vec<NameCount> = PORT_TYPES
            .iter()
            .zip(self.port_types.iter())
            .filter(|(_, &c)| c > 0)
            .map(|(n, &c)| NameCount {
                name: (*n).to_owned(),
                count: c,
            })
            .collect();
        types.sort_by_key(|t| std::cmp::Reverse(t.count));
        if self.atoms.count.is_none() {
            self.atoms.count = self.atom_entries;
        }
        if self.dropped_warnings > 0 {
            let w = format!("{} more warnings not shown", self.dropped_warnings);
            self.warnings.push(w);
        }
        let sorted = |t: TopN<ProcEntry>| {
            t.into_sorted()
                .into_iter()
                .map(|(p, _)| p)
                .collect::<Vec<_>>()
        };
        let mut report = Report {
            format: FORMAT.to_owned(),
            input: Input {
                bytes,
                lines,
                complete: self.complete,
                stopped_at,
            },
            dump: self.preamble,
            memory: self.memory,
            atoms: self.atoms,
            processes: Processes {
                count: self.procs,
                limit_estimate: self.process_table.map(|b| b / TABLE_SLOT_BYTES),
                states,
                message_queues: queues,
                heap_words: heaps,
                old_heap_words: old_heaps,
                loggers: self.loggers,
                top_memory: sorted(self.top_memory),
                top_message_queue: sorted(self.top_queue),
                queue_functions: QueueFunctions {
                    threshold: self.opts.threshold,
                    functions: funs,
                    overflow: self.queue_funs.overflow().0,
                },
            },
            ports: Ports {
                count: self.ports,
                limit_estimate: self.port_table.map(|b| b / TABLE_SLOT_BYTES),
                types,
            },
            ets: Ets {
                count: self.tables,
                words: self.ets_words,
                largest: self
                    .top_ets
                    .into_sorted()
                    .into_iter()
                    .map(|(t, _)| t)
                    .collect(),
                owners,
            },
            binaries: Binaries {
                count: self.bins,
                bytes: self.bin_bytes,
                largest: self
                    .top_bins
                    .into_sorted()
                    .into_iter()
                    .map(|(b, _)| b)
                    .collect(),
            },
            allocators: self
                .allocs
                .into_iter()
                .map(
                    |(name, (instances, carriers_bytes, blocks_bytes))| Allocator {
                        name,
                        instances,
                        carriers_bytes,
                        blocks_bytes,
                    },
                )
                .collect(),
            code: Code {
                modules: self.modules,
                current_bytes: self.current_code,
                old_bytes: self.old_code,
                largest: self
                    .top_mods
                    .into_sorted()
                    .into_iter()
                    .map(|(m, _)| m)
                    .collect(),
            },
            likely_causes: Vec::new(),
            warnings: self.warnings,
        };
        report.likely_causes = crate::cause::likely_causes(&report);
        report
    }
}

/// The port type a `=port` line names, if it names one.
fn port_type(k: &[u8], v: &[u8]) -> Option<usize> {
    let name = match k {
        b"Port controls linked-in driver" => match v.trim_ascii() {
            b"tcp_inet" => "tcp",
            b"udp_inet" => "udp",
            b"sctp_inet" => "sctp",
            b"efile" => "file",
            _ => "other",
        },
        b"Port controls external process" => "external",
        b"Port is UNIX fd not opened by emulator" | b"Port is a file" => "fd",
        _ => return None,
    };
    PORT_TYPES.iter().position(|&t| t == name)
}
