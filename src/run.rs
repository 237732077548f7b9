//! `ferry run`: the whole job. The manifest is read twice: a first pass validates every
//! row (so an unreadable file stops the run before anything is sent, and the progress
//! bar knows the total), the second streams rows through state checks and batching to
//! the senders, while one recorder thread makes each outcome durable in the state and
//! then writes it to the reports.
//!
//! ```text
//! reader thread ──batches──▶ sender tasks (rate limit, retries) ──outcomes──▶ recorder
//!      └──────────── rows that are not sent (invalid, skipped, ...) ──────────▶ thread
//! ```
//! Every channel is bounded, so reading waits when sending is behind and memory stays
//! flat whatever the size of the manifest.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::batch::{Batch, BatchRow, Batcher};
use crate::config::{limits, Config, Target, MAX_CONCURRENCY, SANDBOX_TARGET};
use crate::kinds::{Kind, TaskRef};
use crate::lock::{Holder, StateLock};
use crate::manifest::pin::Pin;
use crate::manifest::{Carried, Source};
use crate::outcome::{Outcome, RowOutcome, Stage, Trail};
use crate::pipeline::{self, Error};
use crate::problem::{Code, Problem};
use crate::report::{Mode, Reports, Summary};
use crate::send::{Abort, Backoff, Sender, Sent};
use crate::state::{self, State, Status};

/// Everything a run needs, checked.
#[derive(Clone, Debug)]
pub struct Settings {
    pub source: Source,
    /// The manifest as the user named it, for messages and the summary.
    pub manifest_name: String,
    pub kind: Kind,
    pub event_id: Option<i64>,
    pub target: Target,
    pub state_path: PathBuf,
    /// How long to wait for another run's lock on the state (`--wait-lock`).
    pub wait_lock: Option<Duration>,
    pub report_dir: Option<PathBuf>,
    /// `--overwrite`: an earlier run's reports in `report_dir` may be replaced.
    pub overwrite: bool,
    pub max_failed_rows: Option<u64>,
    pub force: bool,
    pub retry_unknown: bool,
    pub backoff: Backoff,
}

/// What a run did.
pub struct RunReport {
    pub summary: Summary,
    pub dir: PathBuf,
    /// Set when the report folder could not be finished (`summary.json` may be missing).
    pub report_error: Option<String>,
    /// The problem codes of the failed rows, for the table printed at the end.
    pub problems: crate::report::ProblemTable,
}

/// Why the run stopped early, if it did.
#[derive(Default)]
struct Stop {
    aborted: AtomicBool,
    interrupted: AtomicBool,
    reason: std::sync::Mutex<Option<String>>,
    /// Shared with the sender: once set, no new attempt leaves.
    halt: Arc<AtomicBool>,
    /// A second interrupt: the workers are stopped where they are.
    hurried: AtomicBool,
}

impl Stop {
    fn abort(&self, reason: String) {
        let mut r = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            *r = Some(reason);
        }
        self.aborted.store(true, Ordering::SeqCst);
        self.halt.store(true, Ordering::SeqCst);
    }

    fn interrupt(&self) {
        let mut r = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            *r = Some("interrupted (SIGINT/SIGTERM)".into());
        }
        self.interrupted.store(true, Ordering::SeqCst);
        self.halt.store(true, Ordering::SeqCst);
    }

    fn stopped(&self) -> bool {
        self.aborted.load(Ordering::SeqCst) || self.interrupted.load(Ordering::SeqCst)
    }

    fn reason(&self) -> Option<String> {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn unprocessed(&self) -> Outcome {
        let why = self.reason().unwrap_or_else(|| "the run stopped".into());
        Outcome::Unprocessed {
            problem: Problem::new(
                Code::NotAttempted,
                "",
                format!(
                    "not attempted: {why}; fix the cause and run again (done rows are skipped)"
                ),
            ),
        }
    }
}

/// A row on its way to the recorder: its outcome, its cells, and the state update
/// that must be durable before the outcome is reported.
struct Record {
    outcome: RowOutcome,
    cells: Carried,
    update: Option<state::Update>,
}

enum ToRecorder {
    InFlight(Vec<String>, oneshot::Sender<()>),
    Rows(Vec<Record>),
}

/// A batch with the manifest cells of its rows, for the reports.
struct Work {
    batch: Batch,
    cells: Vec<Carried>,
}

/// A row of a batch on the wire: its row number, key, whether it is a deliberate resend,
/// and its cells.
type WireRow = (u64, String, bool, Carried);

/// The batches on the wire: marked in flight, not yet handed to the recorder. A second
/// interrupt stops the workers at once; the rows they held are then reported in doubt,
/// so the reports still account for every row.
#[derive(Default)]
struct OnTheWire {
    next: AtomicU64,
    batches: std::sync::Mutex<std::collections::HashMap<u64, Vec<WireRow>>>,
}

impl OnTheWire {
    fn put(&self, batch: &Batch, cells: Vec<Carried>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let rows = batch
            .rows
            .iter()
            .zip(cells)
            .map(|(r, cells)| (r.row, r.key.clone(), r.resend, cells))
            .collect();
        self.lock().insert(id, rows);
        id
    }

    /// The cells of a batch back, in row order; `None` once drained.
    fn take(&self, id: u64) -> Option<Vec<Carried>> {
        let rows = self.lock().remove(&id)?;
        Some(rows.into_iter().map(|(_, _, _, cells)| cells).collect())
    }

    fn drain(&self) -> Vec<WireRow> {
        self.lock().drain().flat_map(|(_, rows)| rows).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<u64, Vec<WireRow>>> {
        self.batches.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Live counters for progress and the failure limit.
#[derive(Default)]
struct Progress {
    done: AtomicU64,
    failed: AtomicU64,
    succeeded: AtomicU64,
}

impl Progress {
    /// Counts failed rows (of any stage) and stops the run once more than
    /// `--max-failed-rows` have failed.
    fn add_failed(&self, n: u64, stop: &Stop, max: Option<u64>) {
        let failed = self.failed.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(max) = max.filter(|max| failed > *max) {
            stop.abort(format!(
                "{failed} rows failed, more than --max-failed-rows {max}"
            ));
        }
    }
}

/// Runs the job on the current tokio runtime.
///
/// Until the first request may leave, every failure is an `Err` (exit 2: nothing was
/// sent). From then on a fault — the state or the report folder failing, the manifest
/// changing — stops the run instead (exit 3): what was done is still recorded and
/// reported, and the rest is `unprocessed`.
pub async fn run(settings: Settings, config: &Config) -> Result<RunReport, Error> {
    let started = chrono::Utc::now();
    let run_id = pipeline::run_id(started);
    let kind = settings.kind;
    let stop = Arc::new(Stop::default());
    let sending = Arc::new(AtomicBool::new(false));
    let (hurry_tx, hurry_rx) = oneshot::channel();
    let signals = tokio::spawn(watch_signals(
        Arc::clone(&stop),
        Arc::clone(&sending),
        hurry_tx,
    ));

    // Held to the end: one run at a time per state, or rows are sent twice.
    let lock = {
        let (state, me, wait) = (
            settings.state_path.clone(),
            Holder::me(&settings.manifest_name),
            settings.wait_lock,
        );
        tokio::task::spawn_blocking(move || StateLock::acquire(&state, &me, wait))
            .await
            .map_err(|e| Error::Other(format!("state lock: {e}")))??
    };
    let lock = Arc::new(lock);
    let dir = settings
        .report_dir
        .clone()
        .unwrap_or_else(|| pipeline::default_report_dir(&run_id));
    let _claim = crate::report::claim_folder(&dir, &settings.source.path, settings.overwrite)?;
    let pin = Arc::new(Pin::take(&settings.source.path).map_err(|e| {
        Error::Manifest(crate::manifest::ManifestError::Unreadable {
            path: settings.manifest_name.clone(),
            message: e.to_string(),
        })
    })?);

    // Pass 1: the whole file must be readable and mappable before anything is sent.
    let FirstPass {
        total,
        invalid,
        repeats,
    } = {
        let (source, name, config, event_id) = (
            settings.source.clone(),
            settings.manifest_name.clone(),
            config.clone(),
            settings.event_id,
        );
        tokio::task::spawn_blocking(move || first_pass(&source, &name, kind, &config, event_id))
            .await
            .map_err(|e| Error::Other(format!("reader stopped: {e}")))??
    };

    if let Some(max) = settings.max_failed_rows {
        if invalid > max {
            stop.abort(format!(
                "{invalid} rows failed validation, more than --max-failed-rows {max}; nothing was sent"
            ));
        }
    }
    let sender = Arc::new(
        Sender::new(settings.target.clone(), kind, settings.backoff)?
            .halt_on(Arc::clone(&stop.halt)),
    );
    if !stop.stopped() {
        match sender.authenticate().await {
            Ok(()) => {}
            // A secret that cannot be read is a config error: exit 2, nothing sent.
            Err(Abort::Config(e)) => return Err(Error::Config(e)),
            Err(abort) => stop.abort(abort.reason()),
        }
    }

    let mut opened = pipeline::open(
        &settings.source,
        &settings.manifest_name,
        kind,
        config,
        settings.event_id,
    )?;
    opened.validator = opened.validator.with_known_repeats(repeats);
    let header = opened.manifest.header.clone();
    // The state first: a state that cannot be opened is exit 2, and must not leave a
    // report folder behind that the corrected rerun would find non-empty.
    let state_for_reader = open_state(&settings)?;
    let state_for_recorder = open_state(&settings)?;
    let reports = Reports::create(
        &dir,
        Mode::Run,
        &header,
        crate::manifest::manifest_id(pin.sha256()),
    )?;

    // From here on a request may leave: faults stop the run, they do not return.
    sending.store(true, Ordering::SeqCst);
    let progress = Arc::new(Progress::default());
    // A message can carry a whole batch with its cells: a short queue keeps memory flat.
    let (to_recorder, recorder_rx) = std::sync::mpsc::sync_channel::<ToRecorder>(64);
    let recorder = {
        let (run_id, progress, stop, lock) = (
            run_id.clone(),
            Arc::clone(&progress),
            Arc::clone(&stop),
            Arc::clone(&lock),
        );
        std::thread::spawn(move || {
            let cx = RecorderContext {
                run_id: &run_id,
                progress: &progress,
                stop: &stop,
                lock: &lock,
            };
            recorder(recorder_rx, state_for_recorder, reports, &cx)
        })
    };

    let concurrency = Arc::new(Concurrency::new(&settings.target));
    let (work_tx, work_rx) = mpsc::channel::<Work>(concurrency.cap * 2);
    let reader = {
        let (stop, to_recorder, settings, progress, pin) = (
            Arc::clone(&stop),
            to_recorder.clone(),
            settings.clone(),
            Arc::clone(&progress),
            Arc::clone(&pin),
        );
        tokio::task::spawn_blocking(move || {
            let context = ReaderContext {
                settings: &settings,
                stop: &stop,
                progress: &progress,
                pin: &pin,
                to_recorder: &to_recorder,
            };
            reader(opened, state_for_reader, &context, work_tx)
        })
    };

    let work_rx = Arc::new(tokio::sync::Mutex::new(work_rx));
    let send_started = Instant::now();
    let sizing = tokio::spawn(size_concurrency(
        Arc::clone(&concurrency),
        Arc::clone(&sender),
        settings.target.clone(),
    ));
    let wire = Arc::new(OnTheWire::default());
    let mut workers = Vec::new();
    for index in 0..concurrency.cap {
        let cx = WorkerContext {
            sender: Arc::clone(&sender),
            stop: Arc::clone(&stop),
            to_recorder: to_recorder.clone(),
            progress: Arc::clone(&progress),
            wire: Arc::clone(&wire),
            max_failed: settings.max_failed_rows,
        };
        let (work_rx, concurrency) = (Arc::clone(&work_rx), Arc::clone(&concurrency));
        workers.push(tokio::spawn(async move {
            while let Some(work) = concurrency.next(index, &work_rx).await {
                worker(&cx, work).await;
            }
        }));
    }
    let hurry = tokio::spawn(stop_at_once(
        hurry_rx,
        workers.iter().map(|w| w.abort_handle()).collect(),
        Arc::clone(&work_rx),
        Arc::clone(&wire),
        Arc::clone(&stop),
        to_recorder,
    ));

    let ticker = tokio::spawn(report_progress(
        Arc::clone(&progress),
        total,
        Arc::clone(&stop),
    ));

    let rows_read = match reader.await {
        Ok(rows) => rows,
        Err(e) => {
            stop.abort(format!("internal error: the reader stopped ({e})"));
            0
        }
    };
    for w in workers {
        let _ = w.await;
    }
    // The second-interrupt handler holds a way to the recorder: once the workers are
    // done it has nothing to stop, unless it is already draining.
    if !hurry.is_finished() && !stop.hurried.load(Ordering::SeqCst) {
        hurry.abort();
    }
    let _ = hurry.await;
    let send_secs = send_started.elapsed().as_secs_f64();
    sizing.abort();
    signals.abort();
    ticker.abort();
    let reports = recorder.join().map_err(|_| {
        Error::Other(
            "internal error: the recorder thread panicked; the state holds what was done".into(),
        )
    })?;
    if !stop.stopped() {
        if rows_read != total {
            stop.abort(format!(
                "the manifest {} changed while it was read ({total} rows, then {rows_read}); run again once the file is final (done rows are skipped)",
                settings.manifest_name
            ));
        } else if let Err(changed) = pin.verify() {
            stop.abort(changed.to_string());
        }
    }

    let counters = &sender.counters;
    let sent = counters.sent.load(Ordering::Relaxed);
    let failed = reports.counts().failed_total;
    let exit_code = if stop.interrupted.load(Ordering::SeqCst) {
        130
    } else if stop.aborted.load(Ordering::SeqCst) {
        3
    } else if failed > 0 {
        1
    } else {
        0
    };
    let mut summary = Summary {
        run_id,
        command: "run",
        kind: kind.name(),
        target: Some(settings.target.name.clone()),
        manifest: settings.manifest_name.clone(),
        manifest_sha256: pin.sha256().to_string(),
        state: Some(settings.state_path.display().to_string()),
        started_at: started.to_rfc3339(),
        finished_at: chrono::Utc::now().to_rfc3339(),
        requests: crate::report::summary_requests(
            sent,
            counters.retries.load(Ordering::Relaxed),
            counters.throttled.load(Ordering::Relaxed),
            send_secs,
        ),
        exit_code,
        aborted: stop.reason(),
        ..Summary::default()
    };
    let problems = reports.problems().clone();
    summary.duration_secs = crate::report::seconds_since(started);
    let report_error = match reports.finish(&mut summary, rows_read) {
        Ok(_) => None,
        // After sending, never exit 2: what was done is in the state, and the exit
        // code says the run did not end well.
        // (A workbook that failed is already in the summary.json that was written.)
        Err(e) => {
            summary.exit_code = if exit_code == 130 { 130 } else { 3 };
            let told = summary
                .aborted
                .as_deref()
                .is_some_and(|why| why.contains(&e.to_string()));
            if !told {
                summary.aborted = Some(match summary.aborted.take() {
                    Some(why) => format!("{why}; then the reports could not be finished: {e}"),
                    None => format!("the reports could not be finished: {e}"),
                });
            }
            Some(e.to_string())
        }
    };
    Ok(RunReport {
        summary,
        dir,
        report_error,
        problems,
    })
}

fn open_state(settings: &Settings) -> Result<State, Error> {
    State::open(
        &settings.state_path,
        &settings.target.name,
        settings.kind.name(),
    )
    .map_err(|e| Error::Other(e.to_string()))
}

/// Reads and validates every row once: returns (rows, invalid rows).
fn first_pass(
    source: &Source,
    name: &str,
    kind: Kind,
    config: &Config,
    event_id: Option<i64>,
) -> Result<FirstPass, Error> {
    let mut opened = pipeline::open(source, name, kind, config, event_id)?;
    pipeline::say_notice(&opened.manifest);
    let (mut total, mut invalid) = (0, 0);
    for raw in opened.manifest.rows {
        let raw = raw?;
        total += 1;
        if opened
            .validator
            .check(raw.row, &raw.cells, raw.defects)
            .is_err()
        {
            invalid += 1;
        }
    }
    Ok(FirstPass {
        total,
        invalid,
        repeats: opened.validator.into_repeats(),
    })
}

/// What the validation pass learnt about the whole manifest.
struct FirstPass {
    total: u64,
    invalid: u64,
    /// Rows whose key an earlier row already has (later row → first row).
    repeats: std::collections::HashMap<u64, u64>,
}

/// What the reader shares with the rest of the run.
struct ReaderContext<'a> {
    settings: &'a Settings,
    stop: &'a Stop,
    progress: &'a Progress,
    pin: &'a Pin,
    to_recorder: &'a std::sync::mpsc::SyncSender<ToRecorder>,
}

/// The reader: validation, state checks, task references and batching, in file order.
/// Returns the rows read. A fault (the manifest changing or becoming unreadable, the
/// state failing) stops the run; the rows after it are reported unprocessed.
fn reader(
    opened: pipeline::Opened,
    state: State,
    cx: &ReaderContext<'_>,
    work: mpsc::Sender<Work>,
) -> u64 {
    let (settings, stop, to_recorder) = (cx.settings, cx.stop, cx.to_recorder);
    let pipeline::Opened {
        manifest,
        mut validator,
        ..
    } = opened;
    let mut batcher = Batcher::new(settings.kind, settings.target.batch_size);
    let mut pending_cells: std::collections::HashMap<u64, Carried> =
        std::collections::HashMap::new();
    let mut rows_read = 0u64;
    let mut state_failed = false;
    let dispatch = |batches: Vec<Batch>, pending: &mut std::collections::HashMap<u64, Carried>| {
        for batch in batches {
            let cells = batch
                .rows
                .iter()
                .map(|r| pending.remove(&r.row).unwrap_or_default())
                .collect();
            if stop.stopped() {
                unprocessed(stop, Work { batch, cells }, to_recorder);
                continue;
            }
            if let Err(mpsc::error::SendError(work)) = work.blocking_send(Work { batch, cells }) {
                unprocessed(stop, work, to_recorder);
            }
        }
    };
    for raw in manifest.rows {
        let mut raw = match raw {
            Ok(raw) => raw,
            Err(e) => {
                // The first pass read this file whole: it changed, or cannot be read now.
                stop.abort(format!("the manifest cannot be read any more: {e}"));
                break;
            }
        };
        // The file must still be the one the first pass validated. Replaced or deleted
        // under its name, the open file still holds it: the rest is read and reported
        // unprocessed. Written to in place, a row may be torn: reading stops there.
        if let Err(changed) = cx.pin.check() {
            if !changed.still_readable() {
                stop.abort(format!(
                    "{changed}; the reports hold the {rows_read} rows read before it changed"
                ));
                break;
            }
            stop.abort(changed.to_string());
        }
        rows_read += 1;
        let row = raw.row;
        let defects = std::mem::take(&mut raw.defects);
        let valid = match validator.check(row, &raw.cells, defects) {
            Ok(valid) => valid,
            Err(rejected) => {
                let key = rejected.key.unwrap_or_default();
                fail_early(
                    cx,
                    row,
                    key,
                    Stage::Validation,
                    rejected.problems,
                    raw.carried(),
                    None,
                );
                continue;
            }
        };
        let finished = |outcome| RowOutcome {
            row,
            key: valid.key.clone(),
            outcome,
            trail: Trail::default(),
        };
        // Never guess without the state: the rows after a state fault are not sent.
        let planned = if state_failed {
            Err(None)
        } else {
            plan(&state, settings, &valid.key, valid.item.task_ref()).map_err(Some)
        };
        let (task_num, resend) = match planned {
            Err(fault) => {
                if let Some(e) = fault {
                    stop.abort(e.to_string());
                    state_failed = true;
                }
                record(
                    to_recorder,
                    finished(stop.unprocessed()),
                    raw.carried(),
                    None,
                );
                continue;
            }
            Ok(Plan::Send { task_num, resend }) => (task_num, resend),
            Ok(Plan::Skip(problem)) => {
                record(
                    to_recorder,
                    finished(Outcome::Skipped { problem }),
                    raw.carried(),
                    None,
                );
                continue;
            }
            Ok(Plan::Fail(stage, problem, update)) => {
                fail_early(
                    cx,
                    row,
                    valid.key,
                    stage,
                    vec![problem],
                    raw.carried(),
                    update,
                );
                continue;
            }
        };
        pending_cells.insert(row, raw.carried());
        let ready = batcher.push(BatchRow {
            row,
            key: valid.key,
            item: valid.item,
            warnings: valid.warnings,
            task_num,
            resend,
        });
        dispatch(ready, &mut pending_cells);
    }
    dispatch(batcher.finish(), &mut pending_cells);
    rows_read
}

/// A row that fails before any request: counted toward --max-failed-rows.
fn fail_early(
    cx: &ReaderContext<'_>,
    row: u64,
    key: String,
    stage: Stage,
    problems: Vec<Problem>,
    cells: Carried,
    update: Option<state::Update>,
) {
    cx.progress
        .add_failed(1, cx.stop, cx.settings.max_failed_rows);
    let outcome = RowOutcome {
        row,
        key,
        outcome: Outcome::Failed {
            stage,
            problems,
            http_status: None,
        },
        trail: Trail::default(),
    };
    record(cx.to_recorder, outcome, cells, update);
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

/// Decides a valid row against the state: skip what is done, hold back what is in
/// doubt, resolve `out_task_num`.
fn plan(
    state: &State,
    settings: &Settings,
    key: &str,
    task: Option<&TaskRef>,
) -> Result<Plan, state::StateError> {
    let entry = state.get(key)?;
    let idempotent = settings.kind == Kind::TaskStatus;
    let mut resend = false;
    match entry {
        Some(e) if e.status == Status::Succeeded && !settings.force => {
            return Ok(Plan::Skip(Problem::new(
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
            )));
        }
        Some(e) if matches!(e.status, Status::InFlight | Status::Unknown) && !idempotent => {
            if !settings.retry_unknown {
                let problem = Problem::new(
                    Code::OutcomeUnknown,
                    "",
                    format!(
                        "run {} sent this row but never learned whether the vendor carried it out; check the vendor, then rerun with --retry-unknown to send it again on purpose",
                        e.run_id
                    ),
                );
                let update =
                    state::Update::new(key.to_string(), Status::Unknown, None, e.request_ids);
                return Ok(Plan::Fail(Stage::Unknown, problem, Some(update)));
            }
            resend = true;
        }
        _ => {}
    }
    let task_num = match task {
        Some(TaskRef::OutTaskNum(out)) => match state.task_num(out)? {
            Some(t) => Some(t),
            None => {
                let problem = Problem::new(
                    Code::UnknownTask,
                    "out_task_num",
                    format!(
                        "no task_num is recorded for out_task_num {out:?} on target {}: run the appointments manifest first with the same --target and --state, or give task_num",
                        settings.target.name
                    ),
                );
                return Ok(Plan::Fail(Stage::Dependency, problem, None));
            }
        },
        Some(TaskRef::TaskNum(t)) => Some(t.clone()),
        None => None,
    };
    Ok(Plan::Send { task_num, resend })
}

fn record(
    to: &std::sync::mpsc::SyncSender<ToRecorder>,
    outcome: RowOutcome,
    cells: Carried,
    update: Option<state::Update>,
) {
    // The recorder outlives every sender of this channel; a send can fail only if it
    // died, and then the run fails with its error.
    let _ = to.send(ToRecorder::Rows(vec![Record {
        outcome,
        cells,
        update,
    }]));
}

fn unprocessed(stop: &Stop, work: Work, to: &std::sync::mpsc::SyncSender<ToRecorder>) {
    let outcome = stop.unprocessed();
    let rows = work
        .batch
        .rows
        .into_iter()
        .zip(work.cells)
        .map(|(r, cells)| Record {
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
    let _ = to.send(ToRecorder::Rows(rows));
}

/// Attempts in a row without any answer (refused, reset, timed out) before the run
/// stops: a dead or silent endpoint (a wrong `base_url`, the vendor down) is one abort,
/// not a failure — or an outcome in doubt — per row.
const UNANSWERED_LIMIT: u64 = 10;

/// How many requests may be in flight. Configured, it is fixed. Otherwise ferry sizes it
/// by Little's law — requests in flight = rate × the vendor's answer time — with room
/// for jitter, and follows the answer time as it changes; `cap` workers exist, and those
/// past the current limit wait.
struct Concurrency {
    limit: AtomicUsize,
    cap: usize,
    auto: bool,
    /// Set once the work queue is closed, so that waiting workers end too.
    finished: AtomicBool,
}

impl Concurrency {
    fn new(target: &Target) -> Concurrency {
        match target.concurrency {
            Some(fixed) => Concurrency {
                limit: AtomicUsize::new(fixed),
                cap: fixed,
                auto: false,
                finished: AtomicBool::new(false),
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
                    finished: AtomicBool::new(false),
                }
            }
        }
    }

    /// The next batch for worker `index`, once the limit lets it work; `None` at the end.
    async fn next(
        &self,
        index: usize,
        queue: &tokio::sync::Mutex<mpsc::Receiver<Work>>,
    ) -> Option<Work> {
        loop {
            if self.finished.load(Ordering::SeqCst) {
                return None;
            }
            if index < self.limit.load(Ordering::Relaxed) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let work = queue.lock().await.recv().await;
        if work.is_none() {
            self.finished.store(true, Ordering::SeqCst);
        }
        work
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
async fn size_concurrency(concurrency: Arc<Concurrency>, sender: Arc<Sender>, target: Target) {
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

/// What a worker shares with the rest of the run.
struct WorkerContext {
    sender: Arc<Sender>,
    stop: Arc<Stop>,
    to_recorder: std::sync::mpsc::SyncSender<ToRecorder>,
    progress: Arc<Progress>,
    wire: Arc<OnTheWire>,
    max_failed: Option<u64>,
}

/// Sends one batch: mark in flight (durably), send, hand the outcomes to the recorder.
async fn worker(cx: &WorkerContext, work: Work) {
    let (sender, stop, to_recorder) = (&*cx.sender, &*cx.stop, &cx.to_recorder);
    if stop.stopped() {
        return unprocessed(stop, work, to_recorder);
    }
    let Work { batch, cells } = work;
    // On the wire from the in-flight mark on; taken back (with no await in between)
    // just before the outcomes go to the recorder.
    let id = cx.wire.put(&batch, cells);
    let keys: Vec<String> = batch.rows.iter().map(|r| r.key.clone()).collect();
    let (ack, acked) = oneshot::channel();
    if to_recorder.send(ToRecorder::InFlight(keys, ack)).is_err() || acked.await.is_err() {
        // Without a durable in-flight mark, sending could duplicate after a crash.
        let cells = cx.wire.take(id).unwrap_or_default();
        return unprocessed(stop, Work { batch, cells }, to_recorder);
    }
    let work = Work {
        batch,
        cells: Vec::new(),
    };
    let sent = sender.send(&work.batch).await;
    let unanswered = sender.counters.unanswered_in_a_row.load(Ordering::Relaxed);
    if unanswered >= UNANSWERED_LIMIT {
        stop.abort(format!(
            "{} does not answer: {unanswered} attempts in a row got no answer (refused or timed out); check base_url, the network and the vendor, then run again (done rows are skipped)",
            sender.host()
        ));
    }
    if let Sent::Aborted { abort, .. } = &sent {
        stop.abort(abort.reason());
    }
    let (outcomes, trail) = match sent {
        Sent::Done { outcomes, trail } => (outcomes, trail),
        // Halted before an attempt, or refused by the vendor: nothing was carried out.
        Sent::Halted { trail } | Sent::Aborted { trail, .. } => {
            let outcome = stop.unprocessed();
            (
                work.batch.rows.iter().map(|_| outcome.clone()).collect(),
                trail,
            )
        }
    };
    let Some(cells) = cx.wire.take(id) else {
        return; // drained after a second interrupt: already reported in doubt
    };
    let request_ids = trail.request_ids.join(";");
    let mut records = Vec::with_capacity(outcomes.len());
    for ((row, outcome), cells) in work.batch.rows.into_iter().zip(outcomes).zip(cells) {
        let (status, remote_id) = match &outcome {
            Outcome::Succeeded { remote_id, .. } => (Status::Succeeded, remote_id.clone()),
            Outcome::Failed {
                stage: Stage::Unknown,
                ..
            } => (Status::Unknown, None),
            // Not carried out this time; a deliberate resend of a row in doubt stays
            // in doubt, so only --retry-unknown sends it again.
            Outcome::Unprocessed { .. } if row.resend => (Status::Unknown, None),
            Outcome::Unprocessed { .. } => (Status::NotSent, None),
            _ => (Status::Failed, None),
        };
        if matches!(outcome, Outcome::Failed { .. }) {
            cx.progress.add_failed(1, stop, cx.max_failed);
        }
        records.push(Record {
            update: Some(state::Update::new(
                row.key.clone(),
                status,
                remote_id,
                request_ids.clone(),
            )),
            outcome: RowOutcome {
                row: row.row,
                key: row.key,
                outcome,
                trail: trail.clone(),
            },
            cells,
        });
    }
    let _ = to_recorder.send(ToRecorder::Rows(records));
}

/// Most messages folded into one transaction.
const GROUP_COMMIT_MAX: usize = 512;

/// What the recorder shares with the rest of the run.
struct RecorderContext<'a> {
    run_id: &'a str,
    progress: &'a Progress,
    stop: &'a Stop,
    lock: &'a StateLock,
}

/// Makes outcomes durable, then reports them; one transaction for everything waiting.
///
/// A fault stops the run rather than ending the recorder: once the state cannot be
/// written (or its file is gone) no more in-flight marks are granted, so nothing more is
/// sent, while the outcomes of what was sent are still reported; once the report folder
/// cannot be written, the state still records every outcome.
fn recorder(
    rx: std::sync::mpsc::Receiver<ToRecorder>,
    mut state: State,
    mut reports: Reports,
    cx: &RecorderContext<'_>,
) -> Reports {
    let (progress, stop) = (cx.progress, cx.stop);
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
        // Once the state has failed it is not tried again (each try could wait out the
        // busy timeout): rows sent before stay marked in flight, so the next run
        // reports them unknown rather than sending them twice.
        if state_ok {
            let (updates, links) = updates_of(&messages);
            let committed = cx
                .lock
                .check()
                .and_then(|()| state.check_file().map_err(|e| e.to_string()))
                .and_then(|()| {
                    state
                        .apply(cx.run_id, &updates, &links)
                        .map_err(|e| e.to_string())
                });
            if let Err(e) = committed {
                stop.abort(format!("the state could not be written: {e}"));
                state_ok = false;
            }
        }
        for m in messages {
            match m {
                // Without a durable mark, sending could duplicate after a crash: a
                // dropped acknowledgement sends the batch to `unprocessed`.
                ToRecorder::InFlight(_, ack) => {
                    if state_ok {
                        let _ = ack.send(());
                    }
                }
                ToRecorder::Rows(rows) => {
                    for mut r in rows {
                        if !state_ok && r.update.is_some() {
                            // Never reported done unless durable: the state still
                            // holds it in flight, so the next run agrees it is in doubt.
                            r.outcome.outcome = not_recorded(&r.outcome.outcome);
                        }
                        if matches!(r.outcome.outcome, Outcome::Succeeded { .. }) {
                            progress.succeeded.fetch_add(1, Ordering::Relaxed);
                        }
                        if reports_ok {
                            if let Err(e) = reports.write(&r.outcome, &r.cells) {
                                stop.abort(format!("the reports could not be written: {e}"));
                                reports_ok = false;
                            }
                        }
                        progress.done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        if reports_ok && last_flush.elapsed() > Duration::from_millis(500) {
            if let Err(e) = reports.flush() {
                stop.abort(format!("the reports could not be written: {e}"));
                reports_ok = false;
            }
            last_flush = Instant::now();
        }
    }
    reports
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
            ToRecorder::Rows(rows) => {
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
fn link_of(r: &Record) -> Option<state::Link> {
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

/// SIGINT/SIGTERM at any stage. Before anything can be sent there is nothing to finish:
/// exit 130 at once. While sending, the first signal lets requests in flight finish and
/// the reports be written; a second stops at once (safe: every row sent is marked in
/// flight in the state, so the next run reports it unknown instead of sending it again).
async fn watch_signals(stop: Arc<Stop>, sending: Arc<AtomicBool>, hurry: oneshot::Sender<()>) {
    shutdown_signal().await;
    if !sending.load(Ordering::SeqCst) {
        tracing::warn!("interrupted before anything was sent");
        std::process::exit(130);
    }
    tracing::warn!("interrupted: finishing requests in flight, then writing the reports (interrupt again to stop at once)");
    stop.interrupt();
    shutdown_signal().await;
    tracing::warn!("stopping at once: requests in flight are reported in doubt (interrupt a third time to exit without reports)");
    stop.hurried.store(true, Ordering::SeqCst);
    let _ = hurry.send(());
    shutdown_signal().await;
    std::process::exit(130);
}

/// The second interrupt: stops the workers where they are, and reports the rows they
/// had on the wire in doubt (they are marked in flight in the state, so the next run
/// agrees) and the queued ones unprocessed — the reports still account for every row.
async fn stop_at_once(
    asked: oneshot::Receiver<()>,
    workers: Vec<tokio::task::AbortHandle>,
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Work>>>,
    wire: Arc<OnTheWire>,
    stop: Arc<Stop>,
    to_recorder: std::sync::mpsc::SyncSender<ToRecorder>,
) {
    if asked.await.is_err() {
        return;
    }
    for w in &workers {
        w.abort();
    }
    {
        let mut queue = queue.lock().await;
        queue.close();
        while let Ok(work) = queue.try_recv() {
            unprocessed(&stop, work, &to_recorder);
        }
    }
    let rows = wire
        .drain()
        .into_iter()
        .map(|(row, key, _resend, cells)| Record {
            update: Some(state::Update::new(
                key.clone(),
                Status::Unknown,
                None,
                String::new(),
            )),
            outcome: RowOutcome {
                row,
                key,
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
        .collect();
    let _ = to_recorder.send(ToRecorder::Rows(rows));
}

/// A progress bar on a terminal; a log line every ten seconds otherwise (cron).
async fn report_progress(progress: Arc<Progress>, total: u64, stop: Arc<Stop>) {
    use std::io::IsTerminal;
    let started = Instant::now();
    // Rows are counted failed when they fail and done when reported: a moment apart,
    // so what is shown never has more failures than rows done.
    let now = || {
        let done = progress.done.load(Ordering::Relaxed);
        let failed = progress.failed.load(Ordering::Relaxed).min(done);
        let per_sec = (done as f64 / started.elapsed().as_secs_f64().max(0.001)).round() as u64;
        (done, failed, per_sec)
    };
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows  {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        loop {
            let (done, failed, per_sec) = now();
            bar.set_position(done);
            let left = total.saturating_sub(done);
            let eta = match per_sec {
                0 => "?".to_string(),
                r => format!("{}s", left / r),
            };
            bar.set_message(if stop.stopped() {
                "stopping…".to_string()
            } else {
                format!("{per_sec}/s  ETA {eta}  {failed} failed")
            });
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    } else {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            let (done, failed, rows_per_sec) = now();
            tracing::info!(done, total, failed, rows_per_sec, "progress");
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Resolves `--target` (or the built-in sandbox) and the flag overrides.
pub fn settings(
    args: &crate::cli::RunArgs,
    manifest_name: &str,
    config: &Config,
    sandbox_url: Option<reqwest::Url>,
) -> Result<Settings, Error> {
    let kind = args.manifest.kind;
    let mut target = match (args.at.target.as_deref(), sandbox_url) {
        (Some(SANDBOX_TARGET), Some(url)) => Target::sandbox(kind, url),
        (name, _) => config.target_for(kind, name)?.clone(),
    };
    if let Some(rate) = args.rate {
        pipeline::check_flag("--rate", rate, limits::RATE)?;
        target.rate = rate;
        if args.rate.is_some() && target.burst as f64 > rate.ceil() {
            target.burst = rate.ceil() as u32;
        }
    }
    if let Some(c) = args.concurrency {
        pipeline::check_flag("--concurrency", c, limits::CONCURRENCY)?;
        target.concurrency = Some(c);
    }
    if let Some(b) = args.batch_size {
        pipeline::check_flag("--batch-size", b, limits::BATCH_SIZE)?;
        target.batch_size = b;
    }
    Ok(Settings {
        source: args.manifest.source(),
        manifest_name: manifest_name.to_string(),
        kind,
        event_id: args.manifest.event_id,
        target,
        state_path: config.state_path(args.at.state.as_deref()),
        wait_lock: args.wait_lock.map(Duration::from_secs),
        report_dir: args.manifest.report_dir.clone(),
        overwrite: args.manifest.overwrite,
        max_failed_rows: args.max_failed_rows,
        force: args.force,
        retry_unknown: args.retry_unknown,
        backoff: Backoff::default(),
    })
}

pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the async runtime: {e}")))
}
