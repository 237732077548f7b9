//! `ferry reconcile`: where every row of a manifest stands now, read from the state
//! alone. Nothing is sent. It answers the coordinator's question after several rounds of
//! fixing failed rows and feeding them back: which rows of the original sheet are done?
//!
//! A row is found by its record key, and also through the rows fed back from it: each
//! key sent from a fed-back report is recorded with the row of the original manifest it
//! came from (`state::Update::source`), so a row whose fix changed its key (a corrected
//! phone number) is still found. Of everything found, the best fate counts: done, then
//! in doubt, then failed.
//!
//! The state is read without the run lock: a reconcile never keeps a cron run from
//! starting. A row a live run is sending is reported in doubt, with its run named.

use std::path::PathBuf;

use crate::config::Config;
use crate::error::{Error, Usage};
use crate::exit::Exit;
use crate::manifest;
use crate::outcome::{Outcome, RowOutcome, Stage, Trail};
use crate::pipeline::{self, Input};
use crate::problem::{Code, Problem};
use crate::report::{Mode, ProblemTable, Reports, Summary};
use crate::state::{Entry, State, Status};

/// What `reconcile` needs, its flags already turned into settings.
pub struct Settings {
    pub input: Input,
    /// The target whose records are read (the state keeps each target apart).
    pub target: String,
    pub state_path: PathBuf,
}

/// What `reconcile` found, for the caller to print.
pub struct ReconcileReport {
    pub summary: Summary,
    pub dir: PathBuf,
    pub problems: ProblemTable,
    /// Rows in doubt (in the failed table, stage `unknown`).
    pub in_doubt: u64,
}

pub fn reconcile(settings: &Settings, config: &Config) -> Result<ReconcileReport, Error> {
    let started = chrono::Utc::now();
    let run_id = pipeline::run_id(started);
    let input = &settings.input;
    let dir = input.report_dir_or(&run_id);
    if !settings.state_path.exists() {
        // Never created here: a mistyped path would otherwise report every row undone.
        return Err(Usage::NoState(settings.state_path.clone()).into());
    }
    let state = State::open(&settings.state_path, &settings.target, input.kind.name())?;
    let _claim = crate::report::claim_folder(&dir, &input.source.path, input.overwrite)?;
    let opened = pipeline::open(input, config)?;
    pipeline::say_notice(&opened.manifest);
    let sha = pipeline::manifest_sha256(&input.source.path)
        .join()
        .unwrap_or_default();
    let id = manifest::manifest_id(&sha);
    let header = &opened.manifest.header;
    let mut reports = Reports::create(&dir, Mode::Run, header, id.clone())?;
    let (rows_read, in_doubt) = account(settings, &state, opened, &id, &mut reports)?;
    let counts = reports.counts().clone();
    let mut summary = Summary {
        run_id,
        command: "reconcile",
        kind: input.kind.name(),
        target: Some(settings.target.clone()),
        manifest: input.name.clone(),
        manifest_sha256: sha,
        state: Some(settings.state_path.display().to_string()),
        started_at: started.to_rfc3339(),
        finished_at: chrono::Utc::now().to_rfc3339(),
        exit_code: Exit::finished(counts.total() - counts.succeeded),
        duration_secs: crate::report::seconds_since(started),
        ..Summary::default()
    };
    let problems = reports.problems().clone();
    let dir = reports.finish(&mut summary, rows_read)?;
    Ok(ReconcileReport {
        summary,
        dir,
        problems,
        in_doubt,
    })
}

/// Reports where each row of the manifest stands; returns the rows read and those in
/// doubt.
fn account(
    settings: &Settings,
    state: &State,
    opened: pipeline::Opened,
    id: &str,
    reports: &mut Reports,
) -> Result<(u64, u64), Error> {
    let pipeline::Opened {
        manifest,
        mut validator,
        ..
    } = opened;
    let fed_back = state.has_sources_from(id)?;
    let (mut rows_read, mut in_doubt) = (0u64, 0u64);
    for raw in manifest.rows {
        let mut raw = raw?;
        rows_read += 1;
        let defects = std::mem::take(&mut raw.defects);
        let checked = validator.check(raw.row, &raw.cells, defects);
        let own_key = checked.as_ref().ok().map(|v| v.key.clone());
        let origin = fed_back.then_some((id, raw.row));
        let found = best_entry(state, own_key.iter().cloned(), origin)?;
        let outcome = match (found, checked) {
            (Some((key, entry)), _) => fate(raw.row, key, entry, &settings.target),
            (None, Ok(valid)) => RowOutcome {
                row: raw.row,
                key: valid.key,
                outcome: never_attempted(&settings.target),
                trail: Trail::default(),
            },
            (None, Err(rejected)) => pipeline::rejected_outcome(raw.row, rejected),
        };
        if let Outcome::Failed {
            stage: Stage::Unknown,
            ..
        } = outcome.outcome
        {
            in_doubt += 1;
        }
        reports.write(&outcome, &raw.carried())?;
    }
    Ok((rows_read, in_doubt))
}

/// The most telling record among the row's own key and the keys fed back from it.
/// `origin`: the manifest's id and the row's number, when keys were fed back from it.
fn best_entry(
    state: &State,
    own_key: impl Iterator<Item = String>,
    origin: Option<(&str, u64)>,
) -> Result<Option<(String, Entry)>, Error> {
    let mut keys: Vec<String> = own_key.collect();
    if let Some((manifest, row)) = origin {
        for key in state.keys_from(manifest, row)? {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    let mut best: Option<(String, Entry)> = None;
    for key in keys {
        let Some(entry) = state.get(&key)? else {
            continue;
        };
        if best
            .as_ref()
            .is_none_or(|(_, b)| rank(&entry.status) > rank(&b.status))
        {
            best = Some((key, entry));
        }
    }
    Ok(best)
}

/// Done beats in doubt beats failed: one fed-back fix that went through makes the row
/// done, whatever failed before it.
fn rank(status: &Status) -> u8 {
    match status {
        Status::Succeeded => 3,
        Status::InFlight | Status::Unknown => 2,
        Status::Failed => 1,
        Status::NotSent => 0,
    }
}

/// A recorded key's fate as the report line of row `row`.
fn fate(row: u64, key: String, entry: Entry, target: &str) -> RowOutcome {
    let trail = Trail {
        request_ids: entry
            .request_ids
            .split(';')
            .filter(|id| !id.is_empty())
            .map(String::from)
            .collect(),
        server_request_ids: Vec::new(),
    };
    let run = &entry.run_id;
    let at = &entry.updated_at;
    let outcome = match entry.status {
        Status::Succeeded => Outcome::Succeeded {
            warnings: vec![Problem::new(
                Code::AlreadySucceeded,
                "",
                format!("done: run {run} recorded it at {at}"),
            )],
            remote_id: entry.remote_id,
        },
        Status::InFlight => in_doubt(format!(
            "in doubt: run {run} marked it in flight at {at} and recorded no answer; \
             that run may be sending it now, or it stopped. Once no run is going, \
             `ferry run` of the same manifest reports it, and --retry-unknown sends \
             it again on purpose"
        )),
        Status::Unknown => match entry.error {
            Some(failure) if failure.stage == Stage::Unknown => failure.into_outcome(),
            _ => in_doubt(format!(
                "in doubt: run {run} sent it but never learned whether the vendor \
                 carried it out; check with the vendor, then --retry-unknown sends it \
                 again on purpose"
            )),
        },
        Status::NotSent => Outcome::Unprocessed {
            problem: Problem::new(
                Code::NotAttempted,
                "",
                format!(
                    "not attempted: run {run} stopped at {at} before sending it (its \
                     summary.json says why); fix the cause and run the manifest again"
                ),
            ),
        },
        Status::Failed => match entry.error {
            Some(failure) => failure.into_outcome(),
            // Recorded by a ferry that kept no error: say what is known.
            None => Outcome::Failed {
                stage: Stage::Remote,
                problems: vec![Problem::new(
                    Code::VendorError,
                    "",
                    format!(
                        "run {run} recorded it as failed at {at} (target {target}); its \
                         reports say why. Fix the row and feed it back"
                    ),
                )],
                http_status: None,
            },
        },
    };
    RowOutcome {
        row,
        key,
        outcome,
        trail,
    }
}

fn in_doubt(message: String) -> Outcome {
    Outcome::Failed {
        stage: Stage::Unknown,
        problems: vec![Problem::new(Code::OutcomeUnknown, "", message)],
        http_status: None,
    }
}

fn never_attempted(target: &str) -> Outcome {
    Outcome::Unprocessed {
        problem: Problem::new(
            Code::NotAttempted,
            "",
            format!(
                "never attempted: no run has recorded this row for target {target}; run the \
                 manifest (or a report holding the row) to send it"
            ),
        ),
    }
}
