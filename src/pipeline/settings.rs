//! The flags turned into settings once (in `commands.rs`), shared by every command.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::Target;
use crate::kinds::Kind;
use crate::manifest::Source;
use crate::send::Backoff;

/// The manifest a command reads and where its reports go: what `validate`, `run` and
/// `reconcile` share.
#[derive(Clone, Debug)]
pub struct Input {
    pub source: Source,
    /// The manifest as the user named it (`<stdin>` for `-`), for messages and the
    /// summary.
    pub name: String,
    pub kind: Kind,
    /// `--event-id`: the Quanshi event of every call row.
    pub event_id: Option<i64>,
    pub report_dir: Option<PathBuf>,
    /// `--overwrite`: an earlier command's reports in `report_dir` may be replaced.
    pub overwrite: bool,
}

impl Input {
    /// `--report-dir`, or a new folder named after the run.
    pub fn report_dir_or(&self, run_id: &str) -> PathBuf {
        self.report_dir
            .clone()
            .unwrap_or_else(|| super::default_report_dir(run_id))
    }
}

/// Everything `run` needs beyond its input, checked.
#[derive(Clone, Debug)]
pub struct Settings {
    pub input: Input,
    pub target: Target,
    pub state_path: PathBuf,
    /// How long to wait for another run's lock on the state (`--wait-lock`).
    pub wait_lock: Option<Duration>,
    pub max_failed_rows: Option<u64>,
    /// `--force`: rows already done are sent again.
    pub force: bool,
    /// `--retry-unknown`: rows in doubt are sent again.
    pub retry_unknown: bool,
    pub backoff: Backoff,
}
