//! The send stage: batches sent with at most the concurrency's limit in flight, each
//! marked in flight first (`mark.rs`), its outcomes settled and handed to the recorder.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::mark::{self, Drained, OnTheWire};
use super::plan::{unprocessed, Work};
use super::progress::Progress;
use super::record::{settle, Settled, ToRecorderTx};
use super::stop::Stop;
use crate::batch::{Batch, Row};
use crate::config::{Target, MAX_CONCURRENCY};
use crate::manifest::Carried;
use crate::outcome::{Outcome, RowOutcome, Stage, Trail};
use crate::problem::{Code, Problem};
use crate::send::{Sender, Sent};
use crate::state::{self, Status};

/// What every send shares with the rest of the run.
pub struct Sending {
    pub sender: Arc<Sender>,
    pub stop: Arc<Stop>,
    pub to_recorder: ToRecorderTx,
    pub progress: Arc<Progress>,
    pub wire: OnTheWire,
    pub max_failed: Option<u64>,
}

/// Sends every batch of the queue, at most `concurrency.limit()` at once, until the
/// queue ends. A second interrupt (`hurry`) stops them where they are.
///
/// Batches are marked in flight ahead, a group at a time (`Marked`): a request whose
/// turn comes leaves at once instead of waiting for a round trip to the state, and
/// one commit marks many.
pub async fn send_all(
    cx: Arc<Sending>,
    mut queue: mpsc::Receiver<Work>,
    concurrency: Arc<Concurrency>,
    hurry: oneshot::Receiver<()>,
) {
    let mut hurry = Some(hurry);
    let mut running = JoinSet::new();
    let mut marked = Marked::default();
    loop {
        let ahead = marked_ahead(concurrency.limit());
        if marked.wants_more(ahead) {
            let works = tokio::select! {
                works = next_works(&mut queue, &marked, ahead) => works,
                () = hurried(&mut hurry) => return stop_at_once(&cx, running, queue).await,
            };
            let Some(works) = works else {
                marked.ended = true;
                continue;
            };
            if !works.is_empty() {
                // On the wire (their cells held there) from before the mark on; a
                // second interrupt before it is granted reports them not sent.
                let on_wire = marked.put(&cx, works);
                tokio::select! {
                    () = marked.mark(&cx, on_wire) => {}
                    () = hurried(&mut hurry) => return stop_at_once(&cx, running, queue).await,
                }
            }
        }
        let Some((id, batch)) = marked.ready.pop_front() else {
            if marked.ended {
                break;
            }
            continue;
        };
        let free = async {
            while running.len() >= concurrency.limit() {
                running.join_next().await;
            }
        };
        tokio::select! {
            () = free => {}
            // The batch stays on the wire, never sent: `stop_at_once` reports it.
            () = hurried(&mut hurry) => return stop_at_once(&cx, running, queue).await,
        }
        running.spawn(send_batch(Arc::clone(&cx), id, batch));
    }
    tokio::select! {
        () = async { while running.join_next().await.is_some() {} } => {}
        () = hurried(&mut hurry) => stop_at_once(&cx, running, queue).await,
    }
}

/// Batches marked in flight and on the wire, not yet sent; and whether the queue ended.
#[derive(Default)]
struct Marked {
    ready: std::collections::VecDeque<(u64, Batch)>,
    ended: bool,
}

/// Most batches marked in flight ahead of sending: enough that sending never waits for
/// the state's commit, few enough that after `kill -9` (when they read as in doubt,
/// though never sent) they add little to those truly on the wire.
const MARKED_AHEAD_MAX: usize = 32;

/// Batches to keep marked ahead: the concurrency's worth, at most `MARKED_AHEAD_MAX`.
fn marked_ahead(limit: usize) -> usize {
    limit.clamp(1, MARKED_AHEAD_MAX)
}

impl Marked {
    /// Whether to mark more: refilled once half of what is marked ahead is used.
    fn wants_more(&self, ahead: usize) -> bool {
        !self.ended && self.ready.len() <= ahead / 2
    }

    fn put(&self, cx: &Sending, works: Vec<Work>) -> Vec<(u64, Batch)> {
        works
            .into_iter()
            .map(|Work { batch, carried }| (cx.wire.put(&batch, carried), batch))
            .collect()
    }

    /// Marks the batches in flight, then keeps them ready; if the state would not mark
    /// them (or the run stopped first), they are reported unprocessed.
    async fn mark(&mut self, cx: &Sending, on_wire: Vec<(u64, Batch)>) {
        let (stop, to_recorder) = (&*cx.stop, &cx.to_recorder);
        if !stop.stopped() && mark::in_flight(to_recorder, on_wire.iter().map(|(_, b)| b)).await {
            self.ready.extend(on_wire);
            return;
        }
        // Without a durable in-flight mark, sending could duplicate after a crash.
        for (id, batch) in on_wire {
            let carried = cx.wire.take(id).unwrap_or_default();
            unprocessed(stop, Work { batch, carried }, to_recorder);
        }
    }
}

/// The batches to mark next: one awaited when none is marked, then whatever is queued,
/// up to `ahead`; `None` once the queue has ended. Nothing is awaited after a batch
/// is taken, so a second interrupt never drops one.
async fn next_works(
    queue: &mut mpsc::Receiver<Work>,
    marked: &Marked,
    ahead: usize,
) -> Option<Vec<Work>> {
    let mut works = Vec::new();
    if marked.ready.is_empty() {
        works.push(queue.recv().await?);
    }
    while marked.ready.len() + works.len() < ahead {
        match queue.try_recv() {
            Ok(work) => works.push(work),
            Err(mpsc::error::TryRecvError::Disconnected) if works.is_empty() => return None,
            Err(_) => break,
        }
    }
    Some(works)
}

/// Resolves when a second interrupt asks to stop at once; never if none will.
async fn hurried(asked: &mut Option<oneshot::Receiver<()>>) {
    if let Some(rx) = asked {
        if rx.await.is_ok() {
            return;
        }
        *asked = None;
    }
    std::future::pending().await
}

/// Sends one batch, already marked in flight and on the wire; hands the outcomes to
/// the recorder. (Halted before it left — the run stopped — its rows are recorded not
/// sent after all.)
async fn send_batch(cx: Arc<Sending>, id: u64, batch: Batch) {
    let sent = if cx.stop.stopped() {
        Sent::Halted {
            trail: Trail::default(),
        }
    } else {
        cx.sender.send_noting(&batch, &cx.wire.left(id)).await
    };
    let unanswered = cx
        .sender
        .counters
        .unanswered_in_a_row
        .load(Ordering::Relaxed);
    let stop = &cx.stop;
    if unanswered >= UNANSWERED_LIMIT {
        stop.abort(format!(
            "{} does not answer: {unanswered} attempts in a row got no answer (refused or timed out); check base_url, the network and the vendor, then run again (done rows are skipped)",
            cx.sender.host()
        ));
    }
    if let Sent::Aborted { abort, .. } = &sent {
        stop.abort(abort.reason());
    }
    let Some(cells) = cx.wire.take(id) else {
        return; // drained after a second interrupt: already reported
    };
    let settled = settle_sent(&cx, batch.rows, cells, sent);
    settle(&cx.to_recorder, settled);
}

/// The outcome of each row of a batch sent, with the state update it makes.
fn settle_sent(cx: &Sending, rows: Vec<Row>, cells: Vec<Carried>, sent: Sent) -> Vec<Settled> {
    let (outcomes, trail) = match sent {
        Sent::Done { outcomes, trail } => (outcomes, trail),
        // Halted before an attempt, or refused by the vendor: nothing was carried out.
        Sent::Halted { trail } | Sent::Aborted { trail, .. } => {
            let outcome = match trail.attempts() {
                0 => cx.stop.unprocessed(),
                _ => cx.stop.refused(),
            };
            (rows.iter().map(|_| outcome.clone()).collect(), trail)
        }
    };
    let request_ids = trail.request_ids.join(";");
    let rows = rows.into_iter().zip(outcomes).zip(cells);
    rows.map(|((row, outcome), cells)| {
        let (status, remote_id) = match &outcome {
            Outcome::Succeeded { remote_id, .. } => (Status::Succeeded, remote_id.clone()),
            Outcome::Failed {
                stage: Stage::Unknown,
                ..
            } => (Status::Unknown, None),
            // Not carried out this time; a deliberate resend of a row in doubt stays in
            // doubt, so only --retry-unknown sends it again.
            Outcome::Unprocessed { .. } if row.resend => (Status::Unknown, None),
            Outcome::Unprocessed { .. } => (Status::NotSent, None),
            _ => (Status::Failed, None),
        };
        if matches!(outcome, Outcome::Failed { .. }) {
            cx.progress.add_failed(1, &cx.stop, cx.max_failed);
        }
        let update = state::Update::new(row.key.clone(), status, remote_id, request_ids.clone());
        Settled {
            update: Some(update),
            outcome: RowOutcome {
                row: row.row,
                key: row.key,
                outcome,
                trail: trail.clone(),
            },
            cells,
        }
    })
    .collect()
}

/// The second interrupt: stops the sends where they are, and reports the rows whose
/// request had left in doubt (they are marked in flight in the state, so the next run
/// agrees), those marked but not sent yet (or still waiting for their turn) not sent,
/// and the queued ones unprocessed — the reports still account for every row.
async fn stop_at_once(cx: &Sending, running: JoinSet<()>, mut queue: mpsc::Receiver<Work>) {
    drop(running); // aborts every send in flight
    queue.close();
    while let Ok(work) = queue.try_recv() {
        unprocessed(&cx.stop, work, &cx.to_recorder);
    }
    // Every batch on the wire: in doubt once a request of it left (a retry's pause
    // too); not sent if none did — still waiting for its mark, marked ahead, or its
    // first request waiting for its turn (the rate limit, a 429 pause). The recorder
    // takes messages in order, so a "not sent" follows any mark it commits.
    for drained in cx.wire.drain() {
        let settled = if drained.left {
            in_doubt(drained)
        } else {
            let halted = Sent::Halted {
                trail: Trail::default(),
            };
            settle_sent(cx, drained.rows, drained.cells, halted)
        };
        settle(&cx.to_recorder, settled);
    }
}

/// The rows of a batch whose request was on the wire at the second interrupt.
fn in_doubt(drained: Drained) -> Vec<Settled> {
    let rows = drained.rows.into_iter().zip(drained.cells);
    rows.map(|(row, cells)| Settled {
        update: Some(state::Update::new(
            row.key.clone(),
            Status::Unknown,
            None,
            String::new(),
        )),
        outcome: RowOutcome {
            row: row.row,
            key: row.key,
            outcome: Outcome::Failed {
                stage: Stage::Unknown,
                problems: vec![Problem::new(
                    Code::OutcomeUnknown,
                    "",
                    "interrupted twice while its request was on the wire: the vendor may have carried it out; check, then rerun with --retry-unknown to send it again on purpose",
                )],
                http_status: None,
            },
            trail: Trail::default(),
        },
        cells,
    })
    .collect()
}

/// Attempts in a row without any answer (refused, reset, timed out) before the run
/// stops: a dead or silent endpoint (a wrong `base_url`, the vendor down) is one abort,
/// not a failure — or an outcome in doubt — per row.
const UNANSWERED_LIMIT: u64 = 10;

/// How many requests may be in flight. Configured, it is fixed. Otherwise ferry sizes it
/// by Little's law — requests in flight = rate × the vendor's answer time — with room
/// for jitter, and follows the answer time as it changes, never past `cap`.
pub struct Concurrency {
    limit: AtomicUsize,
    pub cap: usize,
    auto: bool,
}

impl Concurrency {
    pub fn new(target: &Target) -> Concurrency {
        match target.concurrency {
            Some(fixed) => Concurrency {
                limit: AtomicUsize::new(fixed),
                cap: fixed,
                auto: false,
            },
            None => {
                // Never more in flight than the rate allows over a whole timeout.
                let most = (target.rate * target.timeout.as_secs_f64()).ceil();
                let cap = (most as usize).clamp(1, AUTO_CONCURRENCY_CAP);
                // Start small, as TCP does: a vendor that does not answer at all is
                // then not hit by hundreds of requests at once. The first answers
                // (within a quarter second) size it.
                let start = AUTO_CONCURRENCY_START.min(cap);
                Concurrency {
                    limit: AtomicUsize::new(start),
                    cap,
                    auto: true,
                }
            }
        }
    }

    /// Batches that may be in flight now.
    fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }
}

/// The most requests in flight ferry sizes itself to.
const AUTO_CONCURRENCY_CAP: usize = 256;
/// Requests in flight before the vendor's answer time is known.
const AUTO_CONCURRENCY_START: usize = 4;

/// Requests in flight that reach `rate` when each takes `latency`: Little's law, with
/// half again for jitter, plus one.
fn needed(rate: f64, latency: Duration) -> usize {
    (rate * latency.as_secs_f64() * 1.5).ceil() as usize + 1
}

/// Follows the vendor's answer time: re-sizes an automatic concurrency, and says once
/// when a configured one holds the rate below what was asked.
pub async fn size_concurrency(concurrency: Arc<Concurrency>, sender: Arc<Sender>, target: Target) {
    let mut warned = false;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Some(latency) = sender.counters.latency() else {
            continue;
        };
        if concurrency.auto {
            let limit = needed(target.rate, latency).clamp(1, concurrency.cap);
            concurrency.limit.store(limit, Ordering::Relaxed);
            continue;
        }
        let answers = sender.counters.sent.load(Ordering::Relaxed);
        let ceiling = concurrency.cap as f64 / latency.as_secs_f64();
        if !warned && answers >= 20 && ceiling < target.rate * 0.95 {
            warned = true;
            let want = needed(target.rate, latency).min(MAX_CONCURRENCY);
            tracing::warn!(
                "concurrency {} holds the rate to about {ceiling:.0} requests/s (the vendor answers in {} ms), below the {} asked: set concurrency = {want} in [targets.{}] or pass --concurrency {want}, or leave it out and ferry sizes it",
                concurrency.cap,
                latency.as_millis(),
                target.rate,
                target.name
            );
        }
    }
}
