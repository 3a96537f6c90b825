//! `reckon-dump`: reads an Erlang crash dump in bounded memory and prints
//! what it says and the likely cause of the crash.
//!
//! ```text
//! reckon-dump analyze [--format text|json|msgpack] [--top N] [--threshold N] DUMP
//! reckon-dump metrics FILE
//! ```
//! `DUMP` may be `-` for standard input. Exit status: 0 when a report was
//! printed (a truncated dump gives a partial report, with warnings), 1 when
//! the dump cannot be read or the report not written, 2 on a usage error
//! (and for `metrics`, which flight-recorder files have not brought yet).

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use reckon_dump::{analyze, analyze_path, limits, text, Options, Report};

const USAGE: &str =
    "usage: reckon-dump analyze [--format text|json|msgpack] [--top N] [--threshold N] DUMP
       reckon-dump metrics FILE
  analyze    report on an Erlang crash dump (DUMP may be - for standard input)
  --format   text (default), json (schema: docs/reckon-dump.schema.json) or msgpack
  --top      entries of each top list, 1 to 1000 (default 10)
  --threshold  smallest message queue counted in the queue-function section (default 100)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Json,
    Msgpack,
}

struct Args {
    format: Format,
    opts: Options,
    dump: String,
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("reckon-dump: {msg}\n{USAGE}");
    ExitCode::from(2)
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut format = Format::Text;
    let mut opts = Options::default();
    let mut dump = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (a.as_str(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or(format!("{name} needs a value"))
        };
        match flag {
            "--format" => {
                format = match value("--format")?.as_str() {
                    "text" => Format::Text,
                    "json" => Format::Json,
                    "msgpack" => Format::Msgpack,
                    other => return Err(format!("unknown format {other:?}")),
                }
            }
            "--top" => {
                let v = value("--top")?;
                opts.top = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=limits::MAX_TOP).contains(n))
                    .ok_or(format!("--top {v}: not an integer from 1 to 1000"))?;
            }
            "--threshold" => {
                let v = value("--threshold")?;
                opts.threshold = v
                    .parse()
                    .map_err(|_| format!("--threshold {v}: not a non-negative integer"))?;
            }
            _ if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ if dump.is_none() => dump = Some(a.clone()),
            _ => return Err(format!("unexpected argument {a:?}")),
        }
    }
    let dump = dump.ok_or("no DUMP given")?;
    Ok(Args { format, opts, dump })
}

fn write(report: &Report, format: Format) -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match format {
        Format::Text => out.write_all(text::render(report).as_bytes())?,
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, report).map_err(io::Error::other)?;
            out.write_all(b"\n")?;
        }
        Format::Msgpack => {
            let bytes = rmp_serde::to_vec_named(report).map_err(io::Error::other)?;
            out.write_all(&bytes)?;
        }
    }
    out.flush()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("analyze") => {}
        Some("metrics") => {
            eprintln!("reckon-dump metrics: not available yet: reading flight-recorder files comes with reckon_metrics");
            return ExitCode::from(2);
        }
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some("--version") => {
            println!("reckon-dump {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some(other) => return usage(&format!("unknown command {other:?}")),
        None => return usage("no command given"),
    }
    let args = match parse(args.get(1..).unwrap_or(&[])) {
        Ok(a) => a,
        Err(e) => return usage(&e),
    };
    let report = if args.dump == "-" {
        Ok(analyze(io::stdin().lock(), &args.opts))
    } else {
        analyze_path(Path::new(&args.dump), &args.opts)
    };
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("reckon-dump: cannot read {}: {e}", args.dump);
            return ExitCode::from(1);
        }
    };
    match write(&report, args.format) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reckon-dump: cannot write the report: {e}");
            ExitCode::from(1)
        }
    }
}
