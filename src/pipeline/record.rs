//! The record stage: one thread makes each outcome durable in the state, then writes it
//! to the reports. It also grants the in-flight marks (`mark.rs`): a batch leaves only
//! once the state holds it in flight, which is what makes `kill -9` safe.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::progress::Progress;
use super::stop::Stop;
use crate::lock::StateLock;
use crate::manifest::Carried;
use crate::outcome::{Outcome, RowOutcome, Stage};
use crate::problem::{Code, Problem};
use crate::report::Reports;
use crate::state::{self, State, Status};

/// A row whose outcome is settled, on its way to the state and then the reports: its
/// outcome, its cells, and the state update that must be durable before it is reported.
pub struct Settled {
    pub outcome: RowOutcome,
    pub cells: Carried,
    pub update: Option<state::Update>,
}

/// What the recorder is asked to do.
pub enum ToRecorder {
    /// Mark these keys in flight, durably, then acknowledge.
    InFlight(Vec<String>, oneshot::Sender<()>),
    Settled(Vec<Settled>),
}

/// The way to the recorder. Its thread outlives every sender of this channel: a send
/// fails only if it died, and then the run fails with its error.
pub type ToRecorderTx = SyncSender<ToRecorder>;

/// A message can carry a whole batch with its cells: a short queue keeps memory flat.
pub const QUEUE: usize = 64;

/// Most messages folded into one transaction.
const GROUP_COMMIT_MAX: usize = 512;

/// Hands settled rows to the recorder.
pub fn settle(to: &ToRecorderTx, rows: Vec<Settled>) {
    let _ = to.send(ToRecorder::Settled(rows));
}

/// What the recorder shares with the rest of the run.
pub struct Recorder<'a> {
    pub run_id: &'a str,
    pub progress: &'a Progress,
    pub stop: &'a Stop,
    pub lock: &'a StateLock,
    pub state: State,
    pub reports: Reports,
}

impl Recorder<'_> {
    /// Makes outcomes durable, then reports them; one transaction for everything
    /// waiting. Returns the reports to be finished and the state to be merged (none
    /// once it failed: each try could wait out the busy timeout again).
    ///
    /// A fault stops the run rather than ending the recorder: once the state cannot be
    /// written (or its file is gone) no more in-flight marks are granted, so nothing
    /// more is sent, while the outcomes of what was sent are still reported; once the
    /// report folder cannot be written, the state still records every outcome.
    pub fn record_all(mut self, rx: Receiver<ToRecorder>) -> (Reports, Option<State>) {
        let mut last_flush = Instant::now();
        let (mut state_ok, mut reports_ok) = (true, true);
        while let Ok(first) = rx.recv() {
            let mut messages = vec![first];
            // Everything already waiting goes into this commit: commits group themselves
            // under load, and nobody waits for a timer when the queue is short.
            while messages.len() < GROUP_COMMIT_MAX {
                match rx.try_recv() {
                    Ok(m) => messages.push(m),
                    Err(_) => break,
                }
            }
            // Once the state has failed it is not tried again (each try could wait out
            // the busy timeout): rows sent before stay marked in flight, so the next run
            // reports them unknown rather than sending them twice.
            if state_ok {
                state_ok = self.commit(&messages);
            }
            // The marks first: their batches wait to leave, the reports can wait.
            let (marks, settled): (Vec<_>, Vec<_>) = messages
                .into_iter()
                .partition(|m| matches!(m, ToRecorder::InFlight(..)));
            for m in marks.into_iter().chain(settled) {
                self.answer(m, state_ok, &mut reports_ok);
            }
            if reports_ok && last_flush.elapsed() > Duration::from_millis(500) {
                if let Err(e) = self.reports.flush() {
                    self.stop
                        .abort(format!("the reports could not be written: {e}"));
                    reports_ok = false;
                }
                last_flush = Instant::now();
            }
        }
        (self.reports, state_ok.then_some(self.state))
    }

    /// One transaction for a group of messages; `false` (and the run stopped) when the
    /// state could not take it.
    fn commit(&mut self, messages: &[ToRecorder]) -> bool {
        let (updates, links) = updates_of(messages);
        let committed = self
            .lock
            .check()
            .map_err(|e| e.to_string())
            .and_then(|()| self.state.check_file().map_err(|e| e.to_string()))
            .and_then(|()| {
                self.state
                    .apply(self.run_id, &updates, &links)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = committed {
            self.stop
                .abort(format!("the state could not be written: {e}"));
            return false;
        }
        true
    }

    /// Acknowledges an in-flight mark, or reports settled rows, once committed.
    fn answer(&mut self, message: ToRecorder, state_ok: bool, reports_ok: &mut bool) {
        match message {
            // Without a durable mark, sending could duplicate after a crash: a dropped
            // acknowledgement sends the batch to `unprocessed`.
            ToRecorder::InFlight(_, ack) => {
                if state_ok {
                    let _ = ack.send(());
                }
            }
            ToRecorder::Settled(rows) => {
                for mut r in rows {
                    if !state_ok && r.update.is_some() {
                        // Never reported done unless durable: the state still holds it in
                        // flight, so the next run agrees it is in doubt.
                        r.outcome.outcome = not_recorded(&r.outcome.outcome);
                    }
                    if matches!(r.outcome.outcome, Outcome::Succeeded { .. }) {
                        self.progress.succeeded.fetch_add(1, Ordering::Relaxed);
                    }
                    if *reports_ok {
                        if let Err(e) = self.reports.write(&r.outcome, &r.cells) {
                            self.stop
                                .abort(format!("the reports could not be written: {e}"));
                            *reports_ok = false;
                        }
                    }
                    self.progress.done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// What a row's outcome becomes when the state could not record it: in doubt, with what
/// the vendor said, so that the report and the next run agree.
fn not_recorded(outcome: &Outcome) -> Outcome {
    let said = match outcome {
        Outcome::Succeeded { remote_id, .. } => format!(
            "the vendor answered success{}",
            remote_id
                .as_deref()
                .map(|id| format!(" (remote id {id})"))
                .unwrap_or_default()
        ),
        Outcome::Failed { problems, .. } => format!(
            "the vendor's answer was: {}",
            problems
                .iter()
                .map(|p| p.message.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ),
        other => return other.clone(),
    };
    Outcome::Failed {
        stage: Stage::Unknown,
        problems: vec![Problem::new(
            Code::OutcomeUnknown,
            "",
            format!("sent, and {said}, but the state could not record it, so the next run will treat it as in doubt: check the vendor before sending it again (--retry-unknown)"),
        )],
        http_status: None,
    }
}

/// The state updates a group of messages asks for, in order, and the links of the rows
/// fed back from earlier manifests.
fn updates_of(messages: &[ToRecorder]) -> (Vec<state::Update>, Vec<state::Link>) {
    let mut updates = Vec::new();
    let mut links = Vec::new();
    for m in messages {
        match m {
            ToRecorder::InFlight(keys, _) => updates.extend(
                keys.iter()
                    .map(|k| state::Update::new(k.clone(), Status::InFlight, None, String::new())),
            ),
            ToRecorder::Settled(rows) => {
                for r in rows {
                    if let Some(update) = &r.update {
                        // What `ferry reconcile` reports of the key later.
                        updates.push(state::Update {
                            error: crate::outcome::Failure::of(&r.outcome.outcome),
                            ..update.clone()
                        });
                    }
                    links.extend(link_of(r));
                }
            }
        }
    }
    (updates, links)
}

/// The link of a row fed back from an earlier manifest whose key the vendor now knows
/// of, or knew of already (skipped as done): `ferry reconcile` of that manifest counts
/// the row through it. Rows never sent (invalid, not attempted) link nothing.
fn link_of(r: &Settled) -> Option<state::Link> {
    let manifest = r.cells.origin.earlier()?;
    let sent = match &r.outcome.outcome {
        Outcome::Succeeded { .. } | Outcome::Skipped { .. } => true,
        Outcome::Failed { stage, .. } => !matches!(stage, Stage::Validation | Stage::Dependency),
        Outcome::Unprocessed { .. } => false,
    };
    (sent && !r.outcome.key.is_empty()).then(|| state::Link {
        manifest: manifest.to_string(),
        row: r.cells.origin.row,
        key: r.outcome.key.clone(),
    })
}
