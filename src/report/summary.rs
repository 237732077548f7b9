//! `summary.json`: what a run did, in numbers a script or a person can check.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::outcome::Outcome;

/// Rows by fate. `total = succeeded + failed + skipped + unprocessed`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub total: u64,
    pub succeeded: u64,
    pub failed: BTreeMap<&'static str, u64>,
    pub failed_total: u64,
    pub skipped: u64,
    pub unprocessed: u64,
}

impl Counts {
    pub fn add(&mut self, outcome: &Outcome) {
        self.total += 1;
        match outcome {
            Outcome::Succeeded { .. } => self.succeeded += 1,
            Outcome::Failed { stage, .. } => {
                self.failed_total += 1;
                *self.failed.entry(stage.as_str()).or_default() += 1;
            }
            Outcome::Skipped { .. } => self.skipped += 1,
            Outcome::Unprocessed { .. } => self.unprocessed += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.succeeded + self.failed_total + self.skipped + self.unprocessed
    }
}

/// Request counters kept by the sender.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Requests {
    pub sent: u64,
    pub retries: u64,
    pub throttled_429: u64,
    /// Requests per second over the sending time.
    pub achieved_rate: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub run_id: String,
    pub command: &'static str,
    pub kind: &'static str,
    pub target: Option<String>,
    pub manifest: String,
    pub manifest_sha256: String,
    /// The state database a run used (`run` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    /// Wall time from start to the end of the reports, in seconds.
    pub duration_secs: f64,
    pub counts: Counts,
    pub requests: Requests,
    pub exit_code: crate::exit::Exit,
    /// Why the run stopped early, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
}

/// The time since `started`, in seconds to the millisecond: a summary's duration.
pub fn seconds_since(started: chrono::DateTime<chrono::Utc>) -> f64 {
    (chrono::Utc::now() - started).num_milliseconds() as f64 / 1000.0
}

/// The request counters with the achieved rate over the sending time.
pub fn requests(sent: u64, retries: u64, throttled_429: u64, seconds: f64) -> Requests {
    Requests {
        sent,
        retries,
        throttled_429,
        achieved_rate: if seconds > 0.0 {
            (sent as f64 / seconds * 100.0).round() / 100.0
        } else {
            0.0
        },
    }
}
