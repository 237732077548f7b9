//! The plan stage: each valid row decided against the state (skip what is done, hold
//! back what is in doubt), its task resolved, and batched. Runs on the reader thread,
//! in file order; rows that are not sent go straight to the recorder.

use tokio::sync::mpsc;

use super::progress::Progress;
use super::record::{settle, Settled, ToRecorderTx};
use super::settings::Settings;
use super::stop::Stop;
use crate::batch::{BatchRow, Batcher, Ready};
use crate::kinds::{Kind, TaskRef, Valid, Validator};
use crate::manifest::pin::Pin;
use crate::manifest::{Carried, RawRow};
use crate::outcome::{Outcome, RowOutcome, Stage, Trail};
use crate::problem::{Code, Problem};
use crate::state::{self, Entry, State, StateError, Status};

/// A batch with the manifest cells of its rows, in the same order, for the reports.
pub type Work = Ready<Carried>;

/// How rows already in the state are treated (`--force`, `--retry-unknown`).
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    pub force: bool,
    pub retry_unknown: bool,
    /// Sending it twice does no harm (a task status set again): never held back.
    pub idempotent: bool,
}

/// What the state's record of a key means for this run.
#[derive(Debug, PartialEq)]
pub enum Decision {
    Send {
        resend: bool,
    },
    Skip(Problem),
    /// Sent before without a known outcome: held back, and recorded unknown.
    InDoubt(Problem, state::Update),
}

/// Decides a valid row against what the state knows of its key.
pub fn decide(key: &str, entry: Option<Entry>, rules: Rules) -> Decision {
    let Some(e) = entry else {
        return Decision::Send { resend: false };
    };
    match e.status {
        Status::Succeeded if !rules.force => Decision::Skip(Problem::new(
            Code::AlreadySucceeded,
            "",
            format!(
                "already succeeded in run {}{}; --force sends it again",
                e.run_id,
                e.remote_id
                    .as_deref()
                    .map(|id| format!(" (remote id {id})"))
                    .unwrap_or_default()
            ),
        )),
        Status::InFlight | Status::Unknown if !rules.idempotent && !rules.retry_unknown => {
            let problem = Problem::new(
                Code::OutcomeUnknown,
                "",
                format!(
                    "run {} may have sent this row (it stopped, or got no answer) and never learned whether the vendor carried it out; check the vendor, then rerun with --retry-unknown to send it again on purpose",
                    e.run_id
                ),
            );
            let update = state::Update::new(key.to_string(), Status::Unknown, None, e.request_ids);
            Decision::InDoubt(problem, update)
        }
        Status::InFlight | Status::Unknown if !rules.idempotent => Decision::Send { resend: true },
        _ => Decision::Send { resend: false },
    }
}

/// The arctos task a row refers to: `task_num` as given, or the one recorded for its
/// `out_task_num`. `Ok(Err(problem))` when none is recorded.
pub fn resolve_task(
    state: &State,
    task: Option<&TaskRef>,
    target: &str,
) -> Result<Result<Option<String>, Problem>, StateError> {
    Ok(match task {
        Some(TaskRef::OutTaskNum(out)) => match state.task_num(out)? {
            Some(t) => Ok(Some(t)),
            // Running the appointments again would only skip it: say what will help.
            None if state.task_done_without_num(out)? => Err(Problem::new(
                Code::UnknownTask,
                "out_task_num",
                format!(
                    "the appointment with out_task_num {out:?} on target {target} is done, but arctos never gave its task_num (it answered that the task already existed, when the row was sent again after an unknown outcome): find the task_num in arctos and give it in this row's task_num"
                ),
            )),
            None => Err(Problem::new(
                Code::UnknownTask,
                "out_task_num",
                format!(
                    "no task_num is recorded for out_task_num {out:?} on target {target}: run the appointments manifest first with the same --target and --state, or give task_num"
                ),
            )),
        },
        Some(TaskRef::TaskNum(t)) => Ok(Some(t.clone())),
        None => Ok(None),
    })
}

/// What the reader shares with the rest of the run.
pub struct Planner<'a> {
    pub settings: &'a Settings,
    pub stop: &'a Stop,
    pub progress: &'a Progress,
    pub pin: &'a Pin,
    pub to_recorder: &'a ToRecorderTx,
    pub state: State,
    pub work: mpsc::Sender<Work>,
}

/// The reader's running state.
struct Open {
    /// Rows waiting in open batches, with their cells.
    batcher: Batcher<Carried>,
    /// Never guess without the state: the rows after a state fault are not sent.
    state_failed: bool,
    /// The state held no key of this target and kind when reading began, so it holds
    /// none of a row's either: the only keys added since are this run's, and a key
    /// repeated in the manifest fails validation before it is looked up. A first run
    /// then skips a lookup per row.
    fresh: bool,
}

impl Planner<'_> {
    /// Validation, state checks, task references and batching, in file order. Returns
    /// the rows read. A fault (the manifest changing or becoming unreadable, the state
    /// failing) stops the run; the rows after it are reported unprocessed.
    pub fn plan_all(
        &self,
        rows: impl Iterator<Item = Result<RawRow, crate::manifest::ManifestError>>,
        mut validator: Validator,
    ) -> u64 {
        let settings = self.settings;
        let fresh = self.state.is_empty();
        let mut open = Open {
            batcher: Batcher::new(settings.input.kind, settings.target.batch_size),
            state_failed: fresh.is_err(),
            fresh: *fresh.as_ref().unwrap_or(&false),
        };
        if let Err(e) = fresh {
            self.stop.abort(e.to_string());
        }
        let mut rows_read = 0u64;
        for raw in rows {
            let Some(mut raw) = self.still_readable(raw, rows_read) else {
                break;
            };
            rows_read += 1;
            let defects = std::mem::take(&mut raw.defects);
            // Rows are validated here, while earlier rows are on the wire: a bug that
            // panics on a row stops the run with every row still accounted for.
            let rules = validator.rules();
            let Ok(result) = unpanicked(|| rules.check(&raw.cells)) else {
                self.stop.abort(format!(
                    "internal error: ferry failed while validating row {} (a bug; please report it with that row)",
                    raw.row
                ));
                let unprocessed = RowOutcome {
                    row: raw.row,
                    key: String::new(),
                    outcome: self.stop.unprocessed(),
                    trail: Trail::default(),
                };
                self.settle_one(unprocessed, raw.carried(), None);
                continue;
            };
            match validator.settle(raw.row, result, defects) {
                Ok(valid) => self.plan_row(raw, valid, &mut open),
                Err(rejected) => {
                    let key = rejected.key.unwrap_or_default();
                    let failed = failed(raw.row, key, Stage::Validation, rejected.problems);
                    self.fail_early(failed, raw.carried(), None);
                }
            }
        }
        let last = open.batcher.finish();
        self.dispatch(last);
        self.pin.reading_done();
        rows_read
    }

    /// The next row, unless the file can no longer be trusted: the first pass read it
    /// whole, so an error now means it changed or cannot be read any more.
    fn still_readable(
        &self,
        raw: Result<RawRow, crate::manifest::ManifestError>,
        rows_read: u64,
    ) -> Option<RawRow> {
        let raw = match raw {
            Ok(raw) => raw,
            Err(e) => {
                self.stop
                    .abort(format!("the manifest cannot be read any more: {e}"));
                return None;
            }
        };
        // The file must still be the one the first pass validated. Replaced or deleted
        // under its name, the open file still holds it: the rest is read and reported
        // unprocessed. Written to in place, a row may be torn: reading stops there.
        if let Err(changed) = self.pin.check_row() {
            if !changed.still_readable() {
                // Said even after an earlier reason (the file replaced, then the one
                // being read changed): it is why the reports end here.
                self.stop.abort_also(format!(
                    "{changed}; the reports hold the {rows_read} rows read before it changed"
                ));
                return None;
            }
            self.stop.abort(changed.to_string());
        }
        Some(raw)
    }

    /// A valid row: skipped, held back, failed, or batched to be sent.
    fn plan_row(&self, raw: RawRow, valid: Valid, open: &mut Open) {
        let row = raw.row;
        let settled = |outcome| RowOutcome {
            row,
            key: valid.key.clone(),
            outcome,
            trail: Trail::default(),
        };
        let planned = if open.state_failed {
            Err(None)
        } else {
            self.plan(&valid, open.fresh).map_err(Some)
        };
        let (task_num, resend) = match planned {
            Ok(Plan::Send { task_num, resend }) => (task_num, resend),
            Ok(Plan::Skip(problem)) => {
                let skipped = settled(Outcome::Skipped { problem });
                return self.settle_one(skipped, raw.carried(), None);
            }
            Ok(Plan::Fail(stage, problem, update)) => {
                let failed = failed(row, valid.key.clone(), stage, vec![problem]);
                return self.fail_early(failed, raw.carried(), update);
            }
            Err(fault) => {
                if let Some(e) = fault {
                    self.stop.abort(e.to_string());
                    open.state_failed = true;
                }
                let unprocessed = settled(self.stop.unprocessed());
                return self.settle_one(unprocessed, raw.carried(), None);
            }
        };
        let batch_row = BatchRow {
            row,
            key: valid.key,
            item: valid.item,
            warnings: valid.warnings,
            task_num,
            resend,
        };
        let ready = open.batcher.push(batch_row, raw.carried());
        self.dispatch(ready);
    }

    /// Decides a valid row against the state and resolves its task.
    fn plan(&self, valid: &Valid, fresh: bool) -> Result<Plan, StateError> {
        let settings = self.settings;
        let rules = Rules {
            force: settings.force,
            retry_unknown: settings.retry_unknown,
            idempotent: settings.input.kind == Kind::TaskStatus,
        };
        let entry = if fresh {
            None
        } else {
            self.state.get(&valid.key)?
        };
        let resend = match decide(&valid.key, entry, rules) {
            Decision::Send { resend } => resend,
            Decision::Skip(problem) => return Ok(Plan::Skip(problem)),
            Decision::InDoubt(problem, update) => {
                return Ok(Plan::Fail(Stage::Unknown, problem, Some(update)))
            }
        };
        let task = valid.item.task_ref();
        Ok(
            match resolve_task(&self.state, task, &settings.target.name)? {
                Ok(task_num) => Plan::Send { task_num, resend },
                Err(problem) => Plan::Fail(Stage::Dependency, problem, None),
            },
        )
    }

    /// Ready batches to the senders, with their rows' cells; after a stop, straight to
    /// the reports as unprocessed.
    fn dispatch(&self, ready: Vec<Work>) {
        for work in ready {
            if self.stop.stopped() {
                unprocessed(self.stop, work, self.to_recorder);
                continue;
            }
            if let Err(mpsc::error::SendError(work)) = self.work.blocking_send(work) {
                unprocessed(self.stop, work, self.to_recorder);
            }
        }
    }

    /// A row that fails before any request: counted toward --max-failed-rows.
    fn fail_early(&self, outcome: RowOutcome, cells: Carried, update: Option<state::Update>) {
        self.progress
            .add_failed(1, self.stop, self.settings.max_failed_rows);
        self.settle_one(outcome, cells, update);
    }

    fn settle_one(&self, outcome: RowOutcome, cells: Carried, update: Option<state::Update>) {
        let settled = Settled {
            outcome,
            cells,
            update,
        };
        settle(self.to_recorder, vec![settled]);
    }
}

/// `f`'s result, or `Err` when it panicked (the panic itself is printed by the hook).
/// What it may have left half-done must be its own: `Rules::check` changes nothing.
fn unpanicked<T>(f: impl FnOnce() -> T) -> Result<T, ()> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|_| ())
}

/// What to do with a valid row, given what the state knows.
enum Plan {
    Send {
        task_num: Option<String>,
        resend: bool,
    },
    Skip(Problem),
    Fail(Stage, Problem, Option<state::Update>),
}

fn failed(row: u64, key: String, stage: Stage, problems: Vec<Problem>) -> RowOutcome {
    RowOutcome {
        row,
        key,
        outcome: Outcome::Failed {
            stage,
            problems,
            http_status: None,
        },
        trail: Trail::default(),
    }
}

/// Every row of a batch that will not be sent, reported unprocessed.
pub fn unprocessed(stop: &Stop, work: Work, to: &ToRecorderTx) {
    let outcome = stop.unprocessed();
    let rows = work
        .batch
        .rows
        .into_iter()
        .zip(work.carried)
        .map(|(r, cells)| Settled {
            outcome: RowOutcome {
                row: r.row,
                key: r.key,
                outcome: outcome.clone(),
                trail: Trail::default(),
            },
            cells,
            update: None,
        })
        .collect();
    settle(to, rows);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(status: Status) -> Entry {
        Entry {
            status,
            remote_id: Some("R1".into()),
            request_ids: "q1".into(),
            run_id: "run-a".into(),
            updated_at: "2026-11-30T00:00:00Z".into(),
            error: None,
        }
    }

    const PLAIN: Rules = Rules {
        force: false,
        retry_unknown: false,
        idempotent: false,
    };

    #[test]
    fn a_panic_is_caught_and_a_result_passed_on() {
        assert_eq!(unpanicked(|| 7), Ok(7));
        assert_eq!(unpanicked(|| -> u8 { panic!("a bug") }), Err(()));
    }

    /// What `decide` makes of each record of the state, under each rule.
    #[test]
    fn each_record_of_the_state_decides_the_row() {
        let force = Rules {
            force: true,
            ..PLAIN
        };
        let retry = Rules {
            retry_unknown: true,
            ..PLAIN
        };
        let idempotent = Rules {
            idempotent: true,
            ..PLAIN
        };
        let cases: &[(Option<Status>, Rules, &str)] = &[
            (None, PLAIN, "send"),
            (Some(Status::Succeeded), PLAIN, "skip"),
            (Some(Status::Succeeded), force, "send"),
            (Some(Status::Failed), PLAIN, "send"),
            (Some(Status::NotSent), PLAIN, "send"),
            (Some(Status::InFlight), PLAIN, "in doubt"),
            (Some(Status::Unknown), PLAIN, "in doubt"),
            (Some(Status::InFlight), retry, "resend"),
            (Some(Status::Unknown), retry, "resend"),
            (Some(Status::Unknown), force, "in doubt"),
            (Some(Status::Unknown), idempotent, "send"),
            (Some(Status::Succeeded), idempotent, "skip"),
        ];
        for (status, rules, want) in cases {
            let decision = decide("k1", status.clone().map(entry), *rules);
            let got = match decision {
                Decision::Send { resend: false } => "send",
                Decision::Send { resend: true } => "resend",
                Decision::Skip(_) => "skip",
                Decision::InDoubt(..) => "in doubt",
            };
            assert_eq!(got, *want, "{status:?} under {rules:?}");
        }
    }

    #[test]
    fn a_skip_names_the_run_and_the_remote_id() {
        let Decision::Skip(problem) = decide("k1", Some(entry(Status::Succeeded)), PLAIN) else {
            panic!("a success is skipped");
        };
        assert_eq!(problem.code, Code::AlreadySucceeded);
        assert_eq!(
            problem.message,
            "already succeeded in run run-a (remote id R1); --force sends it again"
        );
    }

    #[test]
    fn a_row_in_doubt_is_recorded_unknown_with_its_request_ids() {
        let Decision::InDoubt(problem, update) = decide("k1", Some(entry(Status::InFlight)), PLAIN)
        else {
            panic!("a row in flight is held back");
        };
        assert_eq!(problem.code, Code::OutcomeUnknown);
        assert!(problem
            .message
            .starts_with("run run-a may have sent this row"));
        assert_eq!(
            update,
            state::Update::new("k1".into(), Status::Unknown, None, "q1".into())
        );
    }
}
