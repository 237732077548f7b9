//! What stops a command outside the per-row flow, and the exit code it means.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::{limits::OutOfRange, ConfigError};
use crate::exit::Exit;
use crate::kinds::MappingError;
use crate::lock::LockError;
use crate::manifest::ManifestError;
use crate::report::ReportError;
use crate::state::StateError;

/// Anything that stops a command before or outside the per-row flow.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Usage(#[from] Usage),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{path}: {source}")]
    Mapping { path: String, source: MappingError },
    #[error(transparent)]
    Report(#[from] ReportError),
    /// Another run holds the state.
    #[error(transparent)]
    Locked(#[from] LockError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the sandbox: {0}")]
    SandboxStart(std::io::Error),
    #[error("sandbox on {addr}: {source}")]
    Sandbox {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// A thread or task of ferry's own ended without its result (a bug).
    #[error("{what}: {source}")]
    Stopped {
        what: &'static str,
        source: tokio::task::JoinError,
    },
    /// The recorder thread panicked: a bug, after requests may have left.
    #[error("internal error: the recorder thread panicked; the state holds what was done")]
    RecorderPanicked,
}

impl Error {
    /// The one place an error becomes an exit code. Only a bug can end a run with an
    /// error once sending began (every fault then stops the run and is reported, exit
    /// 3); that bug must not claim that nothing was sent.
    pub fn exit(&self) -> Exit {
        match self {
            Error::RecorderPanicked => Exit::Aborted,
            _ => Exit::NothingSent,
        }
    }
}

/// A command line that cannot be carried out as written.
#[derive(Debug, thiserror::Error)]
pub enum Usage {
    #[error("{flag}: {why}")]
    Flag { flag: &'static str, why: OutOfRange },
    #[error("--event-id {0}: a Quanshi event id is a positive whole number")]
    EventId(i64),
    #[error("reading standard input (-) needs --format (csv, tsv, json, jsonl or xlsx)")]
    StdinNeedsFormat,
    /// `reconcile` never creates a state: a mistyped path would report every row undone.
    #[error("state database {}: no such file; no run has recorded anything there. Give the state the runs used with --state (or --config)", .0.display())]
    NoState(PathBuf),
    #[error("ferry demo --report-dir {}: the folder holds files that are not an earlier demo's; give a new folder", .0.display())]
    DemoFolderTaken(PathBuf),
}

/// A command-line flag's value checked against its range (`config::limits`).
pub fn check_flag<T: PartialOrd + std::fmt::Display>(
    flag: &'static str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<(), Usage> {
    crate::config::limits::check(value, range).map_err(|why| Usage::Flag { flag, why })
}
