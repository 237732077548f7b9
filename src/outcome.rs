//! What became of a row: the one type every stage after reading produces and the
//! reports and the state consume.

use serde::{Deserialize, Serialize};

use crate::problem::{Problem, Warning};

/// Where a failed row stopped (`ferry_stage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Validation,
    Dependency,
    Remote,
    Transport,
    Unknown,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Validation => "validation",
            Stage::Dependency => "dependency",
            Stage::Remote => "remote",
            Stage::Transport => "transport",
            Stage::Unknown => "unknown",
        }
    }
}

/// The requests made for a row, in attempt order; the last one decided it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trail {
    /// The `X-Request-Id`s ferry generated.
    pub request_ids: Vec<String>,
    /// Ids the server returned (Quanshi `requestId`, an `X-Request-Id` header).
    pub server_request_ids: Vec<String>,
}

impl Trail {
    pub fn attempts(&self) -> usize {
        self.request_ids.len()
    }
}

/// The fate of one row.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Sent and accepted (or, for `validate`, valid and ready to send).
    Succeeded {
        remote_id: Option<String>,
        warnings: Vec<Warning>,
    },
    Failed {
        stage: Stage,
        problems: Vec<Problem>,
        http_status: Option<u16>,
    },
    /// Already succeeded in an earlier run; nothing sent.
    Skipped { problem: Problem },
    /// Not attempted because the run stopped early.
    Unprocessed { problem: Problem },
}

/// A failed outcome as the state keeps it, for `ferry reconcile` to report later.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub stage: Stage,
    pub problems: Vec<Problem>,
    pub http_status: Option<u16>,
}

impl Failure {
    /// The failure of a failed outcome; `None` for any other.
    pub fn of(outcome: &Outcome) -> Option<Failure> {
        match outcome {
            Outcome::Failed {
                stage,
                problems,
                http_status,
            } => Some(Failure {
                stage: *stage,
                problems: problems.clone(),
                http_status: *http_status,
            }),
            _ => None,
        }
    }

    pub fn into_outcome(self) -> Outcome {
        Outcome::Failed {
            stage: self.stage,
            problems: self.problems,
            http_status: self.http_status,
        }
    }
}

/// A row's outcome with everything the reports need to find and explain it.
#[derive(Clone, Debug, PartialEq)]
pub struct RowOutcome {
    pub row: u64,
    pub key: String,
    pub outcome: Outcome,
    pub trail: Trail,
}
