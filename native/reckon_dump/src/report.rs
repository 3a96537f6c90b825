//! The report of one dump: plain data, serialized as JSON (the schema is
//! `docs/reckon-dump.schema.json`) or MessagePack with the same field
//! names, and rendered as text by [`crate::text`]. Field names are the only
//! map keys: everything named by the dump (process names, functions,
//! tables, allocators) is a string value, so a reader that turns keys into
//! atoms creates only the atoms of this schema.

use serde::Serialize;

/// Version tag of the report's layout, the value of [`Report::format`].
pub const FORMAT: &str = "reckon-dump/1";

/// Everything found in one dump.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Report {
    /// [`FORMAT`].
    pub format: String,
    /// How much of the input was read.
    pub input: Input,
    /// The dump's preamble.
    pub dump: Preamble,
    /// The `=memory` section: bytes by type, in the dump's order.
    pub memory: Vec<MemoryType>,
    /// Atom count and the atom table's limit.
    pub atoms: Atoms,
    /// Process figures.
    pub processes: Processes,
    /// Port figures.
    pub ports: Ports,
    /// ETS tables.
    pub ets: Ets,
    /// Off-heap (refc) binaries written in the dump.
    pub binaries: Binaries,
    /// Allocator totals, all instances of one allocator added up.
    pub allocators: Vec<Allocator>,
    /// Loaded code.
    pub code: Code,
    /// Verdicts, strongest first, each with its evidence.
    pub likely_causes: Vec<Cause>,
    /// What could not be read as expected (truncation, corruption, caps hit).
    pub warnings: Vec<String>,
}

/// How much of the input was read.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct Input {
    /// Bytes read.
    pub bytes: u64,
    /// Lines read.
    pub lines: u64,
    /// Whether the `=end` section was reached (false: truncated dump).
    pub complete: bool,
    /// Where reading stopped when the dump is incomplete.
    pub stopped_at: Option<Position>,
}

/// A place in the dump.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Position {
    /// Line number, from 1.
    pub line: u64,
    /// Byte offset.
    pub byte: u64,
    /// Header of the section it is in (`=proc:<0.42.0>`), empty before the first.
    pub section: String,
}

/// The dump's first lines.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct Preamble {
    /// Dump format version (`0.5`).
    pub version: String,
    /// When it was written, as the dump says it.
    pub time: String,
    /// Why the node stopped.
    pub slogan: String,
    /// The runtime's version line.
    pub system_version: String,
    /// The thread that wrote the dump.
    pub calling_thread: String,
}

/// One line of `=memory`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MemoryType {
    /// `total`, `processes`, `binary`, `ets`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Bytes.
    pub bytes: u64,
}

/// Atom count against the limit.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct Atoms {
    /// Atoms in the table (`Atoms:` of the preamble, else the atom table's entries).
    pub count: Option<u64>,
    /// The atom table's limit (`+t`).
    pub limit: Option<u64>,
}

/// A value seen in `count` processes.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ValueCount {
    /// The value (messages, words).
    pub value: u64,
    /// Processes with this value.
    pub count: u64,
}

/// The largest distinct values of one process figure.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct Distribution {
    /// Largest first.
    pub largest: Vec<ValueCount>,
    /// Processes whose value was not kept (more distinct values than the cap).
    pub overflow: u64,
}

/// A name seen in `count` processes.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NameCount {
    /// The name (a process state, a port type).
    pub name: String,
    /// How many.
    pub count: u64,
}

/// One process in a top list.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct ProcEntry {
    /// `<0.42.0>`.
    pub pid: String,
    /// Registered name, empty when none.
    pub name: String,
    /// `Memory:` in bytes.
    pub memory: u64,
    /// Messages in its queue.
    pub message_queue: u64,
    /// `Stack+heap:` in words.
    pub heap_words: u64,
    /// `OldHeap:` in words.
    pub old_heap_words: u64,
    /// Reductions.
    pub reductions: u64,
    /// The function it was in (`Program counter`, or `Current call`), `m:f/a`.
    pub current_function: String,
    /// `Spawned as:` (initial call).
    pub spawned_as: String,
    /// `State:`.
    pub state: String,
}

/// A function that processes with large queues were in.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct QueueFunction {
    /// `m:f/a`, or empty when the dump does not say.
    pub function: String,
    /// Processes in it with at least `threshold` messages.
    pub processes: u64,
    /// Their messages added up.
    pub messages: u64,
}

/// The queue-function section.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct QueueFunctions {
    /// Smallest queue counted.
    pub threshold: u64,
    /// By messages, largest first.
    pub functions: Vec<QueueFunction>,
    /// Processes whose function was not kept (more distinct functions than the cap).
    pub overflow: u64,
}

/// Process figures.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct Processes {
    /// `=proc` sections read.
    pub count: u64,
    /// The process limit (`+P`), estimated from the process table's size.
    pub limit_estimate: Option<u64>,
    /// Processes by state, most first.
    pub states: Vec<NameCount>,
    /// Largest distinct message-queue lengths.
    pub message_queues: Distribution,
    /// Largest distinct `Stack+heap` sizes (words).
    pub heap_words: Distribution,
    /// Largest distinct `OldHeap` sizes (words).
    pub old_heap_words: Distribution,
    /// The error logger's and logger's processes, with their queues.
    pub loggers: Vec<ProcEntry>,
    /// Top processes by memory.
    pub top_memory: Vec<ProcEntry>,
    /// Top processes by message queue.
    pub top_message_queue: Vec<ProcEntry>,
    /// Functions of the processes with large queues.
    pub queue_functions: QueueFunctions,
}

/// Port figures.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct Ports {
    /// `=port` sections read.
    pub count: u64,
    /// The port limit (`+Q`), estimated from the port table's size.
    pub limit_estimate: Option<u64>,
    /// By type (`tcp`, `udp`, `sctp`, `file`, `external`, `fd`, `other`), most first.
    pub types: Vec<NameCount>,
}

/// One ETS table.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct EtsTable {
    /// `Name:`.
    pub name: String,
    /// `Table:` (its identifier).
    pub table: String,
    /// Owner pid.
    pub owner: String,
    /// Objects.
    pub objects: u64,
    /// Words.
    pub words: u64,
    /// `set`, `bag`, ...
    #[serde(rename = "type")]
    pub kind: String,
}

/// Total words of the tables one process owns.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EtsOwner {
    /// Owner pid.
    pub owner: String,
    /// Tables.
    pub tables: u64,
    /// Words of all its tables.
    pub words: u64,
}

/// ETS tables.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct Ets {
    /// Tables.
    pub count: u64,
    /// Words of all tables.
    pub words: u64,
    /// Largest tables by words.
    pub largest: Vec<EtsTable>,
    /// Owners by words, largest first.
    pub owners: Vec<EtsOwner>,
}

/// One binary.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct BinaryEntry {
    /// Its address, the section's name.
    pub address: String,
    /// Bytes.
    pub bytes: u64,
}

/// Off-heap binaries.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct Binaries {
    /// `=binary` sections.
    pub count: u64,
    /// Their bytes added up.
    pub bytes: u64,
    /// Largest first.
    pub largest: Vec<BinaryEntry>,
}

/// One allocator, its instances added up.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Allocator {
    /// `eheap_alloc`, `binary_alloc`, ...
    pub name: String,
    /// Instances (`[0]`, `[1]`, ...).
    pub instances: u64,
    /// Multiblock and single-block carriers, bytes (current).
    pub carriers_bytes: u64,
    /// Blocks in them, bytes (current).
    pub blocks_bytes: u64,
}

/// One module.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct ModuleEntry {
    /// Module name.
    pub module: String,
    /// Current code size, bytes.
    pub bytes: u64,
}

/// Loaded code.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct Code {
    /// Modules (`=mod` sections).
    pub modules: u64,
    /// `Current code:` of `=loaded_modules`, bytes.
    pub current_bytes: Option<u64>,
    /// `Old code:`, bytes.
    pub old_bytes: Option<u64>,
    /// Largest modules.
    pub largest: Vec<ModuleEntry>,
}

/// One verdict.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Cause {
    /// `cannot_allocate`, `full_mailbox`, `too_many_processes`,
    /// `too_many_ports`, `too_many_atoms`, `binary_memory`, `ets_memory`.
    pub cause: String,
    /// What in the dump shows it.
    pub evidence: Vec<String>,
}
