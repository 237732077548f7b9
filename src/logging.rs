//! Log set-up: human-readable or JSON lines on stderr, never stdout (stdout carries the
//! command's own output). Secrets never reach a log line: they live in `Secret`, which
//! prints `***`.

use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

static JSON: AtomicBool = AtomicBool::new(false);

/// Whether stderr carries JSON lines only (`--log-format json`): then fatal errors and
/// the end-of-run summary are log events too, so a log shipper needs one parser.
pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

pub fn init(verbose: u8, quiet: bool, format: LogFormat) {
    JSON.store(matches!(format, LogFormat::Json), Ordering::Relaxed);
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn,ferry=info",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = EnvFilter::new(level);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
    };
}
