//! `ferry run`: the whole job, stage after stage. The manifest is read twice: the check
//! reads every row (so an unreadable file stops the run before anything is sent, and
//! the progress bar knows the total; it validates them too only for
//! `--max-failed-rows`); then the plan streams rows through validation, state checks
//! and batching to the senders, while one recorder thread makes each outcome durable
//! in the state and then writes it to the reports.
//!
//! ```text
//! reader thread: plan ──Work──▶ send tasks: mark in flight, send ──Settled──▶ recorder
//!      └──────────── rows that are not sent (invalid, skipped, ...) ─────────▶ thread
//! ```
//! Every channel is bounded, so reading waits when sending is behind and memory stays
//! flat whatever the size of the manifest.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::check;
use super::mark::OnTheWire;
use super::plan::Planner;
use super::progress::{self, Progress};
use super::record::{self, Recorder};
use super::send::{self, Concurrency, Sending};
use super::stop::{self, Stop};
use crate::config::Config;
use crate::error::Error;
use crate::exit::Exit;
use crate::lock::{Holder, StateLock};
use crate::manifest::pin::Pin;
use crate::report::{Mode, ProblemTable, ReportError, Reports, Summary};
use crate::send::{Abort, Sender};
use crate::state::State;

pub use super::settings::Settings;

/// What a run did.
pub struct RunReport {
    pub summary: Summary,
    pub dir: PathBuf,
    /// Set when the report folder could not be finished (`summary.json` may be missing).
    pub report_error: Option<ReportError>,
    /// The problem codes of the failed rows, for the table printed at the end.
    pub problems: ProblemTable,
}

/// Runs the job on the current tokio runtime.
///
/// Until the first request may leave, every failure is an `Err` (exit 2: nothing was
/// sent). From then on a fault — the state or the report folder failing, the manifest
/// changing — stops the run instead (exit 3): what was done is still recorded and
/// reported, and the rest is `unprocessed`.
pub async fn run(settings: Settings, config: &Config) -> Result<RunReport, Error> {
    let began = Began::now();
    let run_id = began.run_id.clone();
    let stop = Arc::new(Stop::default());
    let sending = Arc::new(AtomicBool::new(false));
    let (hurry_tx, hurry_rx) = oneshot::channel();
    let signals = tokio::spawn(stop::watch_signals(
        Arc::clone(&stop),
        Arc::clone(&sending),
        hurry_tx,
    ));
    // Held to the end: one run at a time per state, or rows are sent twice.
    let lock = Arc::new(lock_state(&settings).await?);
    let dir = settings.input.report_dir_or(&run_id);
    let input = &settings.input;
    let _claim = crate::report::claim_folder(&dir, &input.source.path, input.overwrite)?;
    let pin = Arc::new(Pin::take(&input.source.path).map_err(|e| {
        Error::Manifest(crate::manifest::ManifestError::Unreadable {
            path: input.name.clone(),
            why: crate::manifest::Unreadable::Pin(e),
        })
    })?);
    let limit = settings.max_failed_rows;
    let mut checked = check::whole_manifest(input, config, limit.is_some()).await?;
    if let (Some(max), Some(validated)) = (limit, &checked.validated) {
        if validated.invalid > max {
            stop.abort(format!(
                "{} rows failed validation, more than --max-failed-rows {max}; nothing was sent",
                validated.invalid
            ));
        }
    }
    let sender = Arc::new(
        Sender::new(settings.target.clone(), input.kind, settings.backoff)?
            .halt_on(Arc::clone(&stop.halt)),
    );
    log_in(&sender, &stop).await?;
    let repeats = checked.validated.take().map(|v| v.repeats);
    let ready = prepare(&settings, config, repeats, &dir, &pin)?;

    // From here on a request may leave: faults stop the run, they do not return.
    sending.store(true, Ordering::SeqCst);
    let send_started = Instant::now();
    let cx = Shared {
        settings: &settings,
        run_id: &run_id,
        stop: &stop,
        lock: &lock,
        pin: &pin,
        sender: &sender,
    };
    let (reports, state, rows_read) = send_everything(cx, ready, checked.total, hurry_rx).await?;
    // The state's merge runs beside the reports' finishing (the workbook's rows put
    // in order): both take seconds after a large run, and each has a core.
    let merging = std::thread::spawn(move || merge(state));
    let send_secs = send_started.elapsed().as_secs_f64();
    signals.abort();
    if !stop.stopped() {
        if rows_read != checked.total {
            stop.abort(format!(
                "the manifest {} changed while it was read ({} rows, then {rows_read}); run again once the file is final (done rows are skipped)",
                input.name, checked.total
            ));
        } else if let Err(changed) = pin.verify() {
            stop.abort(changed.to_string());
        }
    }
    let exit = stop.exit(reports.counts().failed_total);
    let summary = summary(&settings, &stop, &sender, &pin, began, send_secs, exit);
    let finished = finish(reports, summary, rows_read, dir);
    let _ = merging.join();
    Ok(finished)
}

/// Merges what the run recorded into the state's key table. Until then it is safe in
/// the state's `pending` table, which the next run merges first: a failure here loses
/// nothing, and is said, not made the run's outcome.
fn merge(state: Option<State>) {
    if let Some(Err(e)) = state.map(|mut state| state.merge()) {
        tracing::warn!("{e}; the next run merges what this one recorded");
    }
}

/// Takes the state's lock, waiting `--wait-lock` for another run to end.
async fn lock_state(settings: &Settings) -> Result<StateLock, Error> {
    let (state, me, wait) = (
        settings.state_path.clone(),
        Holder::me(&settings.input.name),
        settings.wait_lock,
    );
    let acquired = tokio::task::spawn_blocking(move || StateLock::acquire(&state, &me, wait))
        .await
        .map_err(|source| Error::Stopped {
            what: "state lock",
            source,
        })?;
    Ok(acquired?)
}

/// Logs in where the vendor needs it. Refused, the run stops before sending (exit 3);
/// a secret that cannot be read is a config error (exit 2, nothing sent).
async fn log_in(sender: &Sender, stop: &Stop) -> Result<(), Error> {
    if stop.stopped() {
        return Ok(());
    }
    match sender.authenticate().await {
        Ok(()) => Ok(()),
        Err(Abort::Config(e)) => Err(Error::Config(e)),
        Err(abort) => {
            stop.abort(abort.reason());
            Ok(())
        }
    }
}

/// What sending needs, opened before anything may leave so that a failure is still
/// exit 2: the manifest for its second pass, the state (twice: the reader's and the
/// recorder's connection) and the report folder.
struct Ready {
    opened: super::Opened,
    reader_state: State,
    recorder_state: State,
    reports: Reports,
}

fn prepare(
    settings: &Settings,
    config: &Config,
    repeats: Option<HashMap<u64, u64>>,
    dir: &std::path::Path,
    pin: &Pin,
) -> Result<Ready, Error> {
    // Read again for sending, every read noted for the pin (`Pin::check_row`).
    let input = &settings.input;
    let manifest = crate::manifest::open_pinned(&input.source, pin.watch())?;
    let mut opened = super::map_header(input, config, manifest)?;
    // Repeated keys already found by the check need no key table here; otherwise this
    // pass finds them (the table costs about 27 MB a million rows, but a second
    // validation of every row costs a second or more of waiting before the first send).
    if let Some(repeats) = repeats {
        opened.validator = opened.validator.with_known_repeats(repeats);
    }
    // The state first: a state that cannot be opened is exit 2, and must not leave a
    // report folder behind that the corrected rerun would find non-empty.
    let reader_state = open_state(settings)?;
    let recorder_state = open_state(settings)?;
    let manifest_id = crate::manifest::manifest_id(pin.sha256());
    let reports = Reports::create(dir, Mode::Run, &opened.manifest.header, manifest_id)?;
    Ok(Ready {
        opened,
        reader_state,
        recorder_state,
        reports,
    })
}

fn open_state(settings: &Settings) -> Result<State, Error> {
    let (target, kind) = (&settings.target.name, settings.input.kind.name());
    Ok(State::open(&settings.state_path, target, kind)?)
}

/// What the stages of a run share.
#[derive(Clone, Copy)]
struct Shared<'a> {
    settings: &'a Settings,
    run_id: &'a str,
    stop: &'a Arc<Stop>,
    lock: &'a Arc<StateLock>,
    pin: &'a Arc<Pin>,
    sender: &'a Arc<Sender>,
}

/// Plan, mark, send and record every row: the reader thread plans, the send tasks
/// send, the recorder thread records. Returns the reports to finish and the rows read.
async fn send_everything(
    cx: Shared<'_>,
    ready: Ready,
    total: u64,
    hurry: oneshot::Receiver<()>,
) -> Result<(Reports, Option<State>, u64), Error> {
    let progress = Arc::new(Progress::default());
    let (to_recorder, recorder_rx) = std::sync::mpsc::sync_channel(record::QUEUE);
    let recorder = spawn_recorder(
        cx,
        &progress,
        ready.recorder_state,
        ready.reports,
        recorder_rx,
    );
    let target = &cx.settings.target;
    let concurrency = Arc::new(Concurrency::new(target));
    let (work_tx, work_rx) = mpsc::channel(concurrency.cap * 2);
    let reader = spawn_planner(
        cx,
        &progress,
        ready.opened,
        ready.reader_state,
        (to_recorder.clone(), work_tx),
    );
    let sizing = tokio::spawn(send::size_concurrency(
        Arc::clone(&concurrency),
        Arc::clone(cx.sender),
        target.clone(),
    ));
    let ticker = tokio::spawn(progress::report_progress(
        Arc::clone(&progress),
        total,
        Arc::clone(cx.stop),
    ));
    let sending = Arc::new(Sending {
        sender: Arc::clone(cx.sender),
        stop: Arc::clone(cx.stop),
        to_recorder,
        progress,
        wire: OnTheWire::default(),
        max_failed: cx.settings.max_failed_rows,
    });
    send::send_all(sending, work_rx, concurrency, hurry).await;
    let rows_read = reader.await.unwrap_or_else(|e| {
        cx.stop
            .abort(format!("internal error: the reader stopped ({e})"));
        0
    });
    sizing.abort();
    ticker.abort();
    let (reports, state) = recorder.join().map_err(|_| Error::RecorderPanicked)?;
    Ok((reports, state, rows_read))
}

/// When a run began, and the id it goes by.
struct Began {
    run_id: String,
    at: chrono::DateTime<chrono::Utc>,
}

impl Began {
    fn now() -> Began {
        let at = chrono::Utc::now();
        Began {
            run_id: super::run_id(at),
            at,
        }
    }
}

/// The recorder thread: returns the reports once every sender of `rx` is gone.
fn spawn_recorder(
    cx: Shared<'_>,
    progress: &Arc<Progress>,
    state: State,
    reports: Reports,
    rx: std::sync::mpsc::Receiver<record::ToRecorder>,
) -> std::thread::JoinHandle<(Reports, Option<State>)> {
    let (run_id, progress, stop, lock) = (
        cx.run_id.to_string(),
        Arc::clone(progress),
        Arc::clone(cx.stop),
        Arc::clone(cx.lock),
    );
    std::thread::spawn(move || {
        let recorder = Recorder {
            run_id: &run_id,
            progress: &progress,
            stop: &stop,
            lock: &lock,
            state,
            reports,
        };
        recorder.record_all(rx)
    })
}

/// The reader thread: plans every row; returns the rows read.
fn spawn_planner(
    cx: Shared<'_>,
    progress: &Arc<Progress>,
    opened: super::Opened,
    state: State,
    (to_recorder, work): (record::ToRecorderTx, mpsc::Sender<super::plan::Work>),
) -> tokio::task::JoinHandle<u64> {
    let (stop, settings, progress, pin) = (
        Arc::clone(cx.stop),
        cx.settings.clone(),
        Arc::clone(progress),
        Arc::clone(cx.pin),
    );
    tokio::task::spawn_blocking(move || {
        let planner = Planner {
            settings: &settings,
            stop: &stop,
            progress: &progress,
            pin: &pin,
            to_recorder: &to_recorder,
            state,
            work,
        };
        planner.plan_all(opened.manifest.rows, opened.validator)
    })
}

/// The summary of a run that went to its end, or stopped early.
fn summary(
    settings: &Settings,
    stop: &Stop,
    sender: &Sender,
    pin: &Pin,
    began: Began,
    send_secs: f64,
    exit: Exit,
) -> Summary {
    let counters = &sender.counters;
    Summary {
        run_id: began.run_id,
        command: "run",
        kind: settings.input.kind.name(),
        target: Some(settings.target.name.clone()),
        manifest: settings.input.name.clone(),
        manifest_sha256: pin.sha256().to_string(),
        state: Some(settings.state_path.display().to_string()),
        started_at: began.at.to_rfc3339(),
        finished_at: chrono::Utc::now().to_rfc3339(),
        requests: crate::report::summary_requests(
            counters.sent.load(Ordering::Relaxed),
            counters.retries.load(Ordering::Relaxed),
            counters.throttled.load(Ordering::Relaxed),
            send_secs,
        ),
        aborted: stop.reason(),
        exit_code: exit,
        duration_secs: crate::report::seconds_since(began.at),
        ..Summary::default()
    }
}

/// Finishes the reports. After sending, never exit 2: what was done is in the state,
/// and the exit code says the run did not end well.
fn finish(reports: Reports, mut summary: Summary, rows_read: u64, dir: PathBuf) -> RunReport {
    let problems = reports.problems().clone();
    let report_error = match reports.finish(&mut summary, rows_read) {
        Ok(_) => None,
        // (A workbook that failed is already in the summary.json that was written.)
        Err(e) => {
            if summary.exit_code != Exit::Interrupted {
                summary.exit_code = Exit::Aborted;
            }
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
            Some(e)
        }
    };
    RunReport {
        summary,
        dir,
        report_error,
        problems,
    }
}

pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}
