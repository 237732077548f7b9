//! How a command ends: SPEC §1's table of exit codes, in one place.

use serde::{Serialize, Serializer};

/// The way a command ended, as its process exit code tells it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Exit {
    /// Every row succeeded, or was skipped as already done.
    #[default]
    Done,
    /// The command finished, and some rows failed (validation or remote).
    RowsFailed,
    /// Usage, config or unreadable-manifest error, or another run holds the state:
    /// nothing was sent.
    NothingSent,
    /// Stopped early after it began: authentication refused, a failure limit reached, a
    /// fault after sending began. The rows not attempted are `unprocessed`.
    Aborted,
    /// SIGINT/SIGTERM.
    Interrupted,
}

impl Exit {
    pub const fn code(self) -> i32 {
        match self {
            Exit::Done => 0,
            Exit::RowsFailed => 1,
            Exit::NothingSent => 2,
            Exit::Aborted => 3,
            Exit::Interrupted => 130,
        }
    }

    /// A command that went to the end: did every row make it?
    pub fn finished(failed_rows: u64) -> Exit {
        if failed_rows > 0 {
            Exit::RowsFailed
        } else {
            Exit::Done
        }
    }

    /// Stopped early: the command that finishes the job is worth printing.
    pub fn stopped_early(self) -> bool {
        matches!(self, Exit::Aborted | Exit::Interrupted)
    }
}

/// `summary.json` holds the number, as the process returns it.
impl Serialize for Exit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i32(self.code())
    }
}
