//! The retry policy of one batch, as a small state machine after cargo's `Retry`: the
//! verdict on each attempt becomes one [`Step`], and the sender only follows steps.
//! Everything that decides whether to try again lives here, free of I/O, so it is
//! tested with plain tables.

use std::time::Duration;

use super::Abort;
use crate::batch::Batch;
use crate::outcome::{Outcome, Stage};
use crate::problem::{Code, Problem};
use crate::targets::{RowResult, Verdict};

/// What follows an attempt.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Step {
    /// Final: one outcome per row of the batch, in order.
    Done(Vec<Outcome>),
    /// Try again, after the server's wait when it named one (else after backoff).
    Retry(Option<Duration>),
    /// The credentials were refused: log in again, then try again.
    Relogin,
    /// Nothing more should be sent.
    Abort(Abort),
}

/// The attempts at one request so far, and what they may still do.
#[derive(Debug)]
pub(super) struct Course {
    retries: u32,
    max_retries: u32,
    /// The request may be repeated safely (task-status): an outcome in doubt is retried.
    idempotent: bool,
    /// A refused token may still be replaced by logging in again (once per batch).
    may_relogin: bool,
}

impl Course {
    pub fn new(max_retries: u32, idempotent: bool, can_log_in: bool) -> Course {
        Course {
            retries: 0,
            max_retries,
            idempotent,
            may_relogin: can_log_in,
        }
    }

    /// Retries taken so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Takes a retry if one is left: its number, 1 for the first.
    pub fn take_retry(&mut self) -> Option<u32> {
        (self.retries < self.max_retries).then(|| {
            self.retries += 1;
            self.retries
        })
    }

    /// The step that follows an attempt with this verdict.
    pub fn next(&mut self, batch: &Batch, verdict: Verdict) -> Step {
        match verdict {
            Verdict::Rows(results) => {
                let in_doubt = results
                    .iter()
                    .any(|r| matches!(r, RowResult::Unknown { .. }));
                if in_doubt && self.idempotent && self.take_retry().is_some() {
                    return Step::Retry(None);
                }
                Step::Done(outcomes(batch, results))
            }
            Verdict::Retry {
                status,
                after,
                message,
            } => match self.take_retry() {
                Some(_) => Step::Retry(after),
                None => Step::Done(self.gave_up(batch, status, &message)),
            },
            Verdict::AuthRefused(refused) => {
                if std::mem::take(&mut self.may_relogin) {
                    Step::Relogin
                } else {
                    Step::Abort(Abort::AuthRefused(refused))
                }
            }
            Verdict::EndpointMissing(missing) => Step::Abort(Abort::EndpointMissing(missing)),
        }
    }

    /// Every row failed: the last attempt was still worth trying again, but none is left.
    /// No HTTP answer (`status` `None`) is a transport failure; an HTTP status the
    /// vendor's.
    fn gave_up(&self, batch: &Batch, status: Option<u16>, message: &str) -> Vec<Outcome> {
        let (stage, code) = match status {
            None => (Stage::Transport, Code::Transport),
            Some(_) => (Stage::Remote, Code::HttpError),
        };
        let attempts = self.retries + 1;
        let outcome = Outcome::Failed {
            stage,
            problems: vec![Problem::new(
                code,
                "",
                format!("gave up after {attempts} attempts: {message}; rerun later to try again"),
            )],
            http_status: status,
        };
        batch.rows.iter().map(|_| outcome.clone()).collect()
    }
}

/// The rows' outcomes from the vendor's results, the rows' own warnings first.
fn outcomes(batch: &Batch, results: Vec<RowResult>) -> Vec<Outcome> {
    let rows = batch.rows.iter().zip(results);
    rows.map(|(row, result)| to_outcome(result, &row.warnings))
        .collect()
}

fn to_outcome(result: RowResult, row_warnings: &[Problem]) -> Outcome {
    match result {
        RowResult::Succeeded { remote_id, warning } => Outcome::Succeeded {
            remote_id,
            warnings: row_warnings.iter().cloned().chain(warning).collect(),
        },
        RowResult::Failed {
            problem,
            http_status,
        } => Outcome::Failed {
            stage: Stage::Remote,
            problems: vec![problem],
            http_status,
        },
        RowResult::Unknown {
            problem,
            http_status,
        } => Outcome::Failed {
            stage: Stage::Unknown,
            problems: vec![problem],
            http_status,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{Payload, Row};
    use crate::kinds::{AgentSetting, Kind};
    use crate::targets::{AuthRefused, EndpointMissing};

    fn batch() -> Batch {
        Batch {
            kind: Kind::AgentSettings,
            rows: vec![Row {
                row: 2,
                key: "u".into(),
                warnings: vec![],
                resend: false,
            }],
            payload: Payload::Aicc(AgentSetting {
                user_id: "u".into(),
                ..AgentSetting::default()
            }),
        }
    }

    fn retry(status: Option<u16>, after: Option<u64>) -> Verdict {
        Verdict::Retry {
            status,
            after: after.map(Duration::from_secs),
            message: "m".into(),
        }
    }

    fn unknown() -> Verdict {
        Verdict::Rows(vec![RowResult::Unknown {
            problem: Problem::new(Code::OutcomeUnknown, "", "?"),
            http_status: None,
        }])
    }

    fn refused() -> AuthRefused {
        AuthRefused {
            status: Some(401),
            message: "HTTP 401".into(),
        }
    }

    /// The last step's outcome as (stage, code, status, message), when it is `Done`.
    fn gave_up(step: &Step) -> Option<(Stage, Code, Option<u16>, String)> {
        match step {
            Step::Done(outcomes) => match &outcomes[0] {
                Outcome::Failed {
                    stage,
                    problems,
                    http_status,
                } => Some((
                    *stage,
                    problems[0].code,
                    *http_status,
                    problems[0].message.clone(),
                )),
                _ => None,
            },
            _ => None,
        }
    }

    #[test]
    fn a_retryable_verdict_is_retried_until_max_retries_then_every_row_gives_up() {
        // (max_retries, idempotent, verdict, steps before the last, last stage/code/status)
        let table = [
            (
                2,
                false,
                retry(Some(503), Some(3)),
                vec![Step::Retry(Some(Duration::from_secs(3))); 2],
                (Stage::Remote, Code::HttpError, Some(503)),
            ),
            (
                0,
                false,
                retry(Some(429), None),
                vec![],
                (Stage::Remote, Code::HttpError, Some(429)),
            ),
            (
                1,
                true,
                retry(None, None),
                vec![Step::Retry(None)],
                (Stage::Transport, Code::Transport, None),
            ),
        ];
        for (max, idempotent, verdict, before, (stage, code, status)) in table {
            let mut course = Course::new(max, idempotent, false);
            for want in before {
                assert_eq!(course.next(&batch(), verdict.clone()), want);
            }
            let last = course.next(&batch(), verdict.clone());
            let (s, c, h, message) = gave_up(&last).expect("a final failure");
            assert_eq!((s, c, h), (stage, code, status), "{verdict:?}");
            let attempts = max + 1;
            assert_eq!(
                message,
                format!("gave up after {attempts} attempts: m; rerun later to try again")
            );
        }
    }

    #[test]
    fn an_outcome_in_doubt_is_retried_only_when_the_request_may_be_repeated() {
        let mut create = Course::new(3, false, false);
        assert!(matches!(create.next(&batch(), unknown()), Step::Done(_)));
        let mut update = Course::new(1, true, false);
        assert_eq!(update.next(&batch(), unknown()), Step::Retry(None));
        let last = update.next(&batch(), unknown());
        assert!(
            matches!(&last, Step::Done(o) if matches!(o[0], Outcome::Failed { stage: Stage::Unknown, .. }))
        );
    }

    #[test]
    fn a_refused_token_is_replaced_once_where_ferry_can_log_in_then_aborts() {
        let mut login = Course::new(3, false, true);
        let verdict = Verdict::AuthRefused(refused());
        assert_eq!(login.next(&batch(), verdict.clone()), Step::Relogin);
        assert_eq!(
            login.next(&batch(), verdict.clone()),
            Step::Abort(Abort::AuthRefused(refused()))
        );
        assert_eq!(login.retries(), 0, "a login again is not a retry");
        let mut token = Course::new(3, false, false);
        assert_eq!(
            token.next(&batch(), verdict),
            Step::Abort(Abort::AuthRefused(refused()))
        );
        let missing = EndpointMissing {
            status: 404,
            message: "HTTP 404".into(),
        };
        assert_eq!(
            token.next(&batch(), Verdict::EndpointMissing(missing.clone())),
            Step::Abort(Abort::EndpointMissing(missing))
        );
    }

    #[test]
    fn results_keep_the_rows_own_warnings_first() {
        let warning = Problem::new(Code::VendorWarning, "", "w");
        let mut b = batch();
        b.rows[0].warnings = vec![Problem::new(Code::VendorWarning, "", "row")];
        let verdict = Verdict::Rows(vec![RowResult::Succeeded {
            remote_id: Some("7".into()),
            warning: Some(warning.clone()),
        }]);
        let step = Course::new(0, false, false).next(&b, verdict);
        let Step::Done(outcomes) = step else {
            panic!("{step:?}")
        };
        assert_eq!(
            outcomes,
            vec![Outcome::Succeeded {
                remote_id: Some("7".into()),
                warnings: vec![b.rows[0].warnings[0].clone(), warning],
            }]
        );
    }
}
