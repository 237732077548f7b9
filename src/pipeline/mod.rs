//! The stages, wired in the order data flows through them.
//!
//! `validate`: read → check (each row's rules on worker threads, repeated keys in file
//! order: `kinds::InOrder`) → report.
//! `run` (in `run.rs`) goes on after the check:
//!
//! ```text
//! read (check.rs, whole file first) → validate+plan (plan.rs: state, task, batch)
//!   → mark in flight (mark.rs) → send (send.rs) → record (record.rs: state, then report)
//! ```

pub mod check;
pub mod mark;
pub mod plan;
pub mod progress;
pub mod record;
pub mod run;
pub mod send;
pub mod settings;
pub mod stop;

pub use settings::Input;

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::error::Error;
use crate::exit::Exit;
use crate::kinds::{Columns, Ctx, Validator};
use crate::manifest::{self, Manifest};
use crate::outcome::{Outcome, RowOutcome, Stage, Trail};
use crate::report::ProblemTable;
use crate::report::{Mode, Reports, Summary};

/// Says how the manifest was read when a person would not guess it (a ferry report's
/// `failed` sheet chosen): once per command, by the pass that reads it first.
pub fn say_notice(manifest: &Manifest) {
    if let Some(notice) = &manifest.notice {
        tracing::info!("{notice}");
    }
}

/// A manifest opened and mapped onto a kind, ready to be validated row by row.
pub struct Opened {
    pub manifest: Manifest,
    pub validator: Validator,
    pub display_path: String,
}

/// Opens the manifest and maps its header; the checks that need only the header.
pub fn open(input: &Input, config: &Config) -> Result<Opened, Error> {
    map_header(input, config, manifest::open(&input.source)?)
}

/// The header checks of `open`, for a manifest opened either way.
fn map_header(input: &Input, config: &Config, manifest: Manifest) -> Result<Opened, Error> {
    let display_path = input.name.clone();
    let aliases = config.columns.get(&input.kind).cloned().unwrap_or_default();
    let supplied: &[&str] = if input.event_id.is_some() {
        &["eventId"]
    } else {
        &[]
    };
    let columns =
        Columns::map(input.kind, &manifest.header, &aliases, supplied).map_err(|source| {
            Error::Mapping {
                path: display_path.clone(),
                source,
            }
        })?;
    let ctx = Ctx {
        timezone: config.timezone,
        country_code: config.country_code,
        event_id: input.event_id,
    };
    Ok(Opened {
        manifest,
        validator: Validator::new(columns, ctx),
        display_path,
    })
}

/// What `validate` found, for the caller to print.
pub struct ValidateReport {
    pub summary: Summary,
    pub dir: PathBuf,
    /// Problem codes with their count and the first few rows.
    pub problems: ProblemTable,
}

/// `ferry validate`: every row checked, nothing sent. This thread reads the rows and
/// writes the reports while worker threads check them (`Validator::in_order`).
pub fn validate(input: &Input, config: &Config) -> Result<ValidateReport, Error> {
    let started = chrono::Utc::now();
    let run_id = run_id(started);
    let dir = input.report_dir_or(&run_id);
    let _claim = crate::report::claim_folder(&dir, &input.source.path, input.overwrite)?;
    let opened = open(input, config)?;
    let Opened {
        manifest,
        validator,
        display_path,
    } = opened;
    say_notice(&manifest);
    // Needed before the first report line: each carries the manifest's id.
    let sha = manifest_sha256(&input.source.path)
        .join()
        .unwrap_or_default();
    let mut reports = Reports::create(
        &dir,
        Mode::Validate,
        &manifest.header,
        manifest::manifest_id(&sha),
    )?;
    let mut rows_read = 0u64;
    for checked in validator.in_order(manifest.rows) {
        let (raw, verdict) = checked?;
        rows_read += 1;
        let outcome = match verdict {
            Ok(valid) => RowOutcome {
                row: raw.row,
                key: valid.key,
                outcome: Outcome::Succeeded {
                    remote_id: None,
                    warnings: valid.warnings,
                },
                trail: Trail::default(),
            },
            Err(rejected) => rejected_outcome(raw.row, rejected),
        };
        reports.write(&outcome, &raw.carried())?;
    }
    let failed = reports.counts().failed_total;
    let mut summary = Summary {
        run_id,
        command: "validate",
        kind: input.kind.name(),
        target: None,
        manifest: display_path,
        manifest_sha256: sha,
        started_at: started.to_rfc3339(),
        finished_at: chrono::Utc::now().to_rfc3339(),
        exit_code: Exit::finished(failed),
        duration_secs: crate::report::seconds_since(started),
        ..Summary::default()
    };
    let problems = reports.problems().clone();
    let dir = reports.finish(&mut summary, rows_read)?;
    Ok(ValidateReport {
        summary,
        dir,
        problems,
    })
}

/// The report line of a row that failed validation.
pub fn rejected_outcome(row: u64, rejected: crate::kinds::Rejected) -> RowOutcome {
    RowOutcome {
        row,
        key: rejected.key.unwrap_or_default(),
        outcome: Outcome::Failed {
            stage: Stage::Validation,
            problems: rejected.problems,
            http_status: None,
        },
        trail: Trail::default(),
    }
}

/// `20261123-121530-a1b2`: sortable, and unique enough for folders made by one person.
pub fn run_id(at: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "{}-{:04x}",
        at.format("%Y%m%d-%H%M%S"),
        rand::random::<u16>()
    )
}

pub fn default_report_dir(run_id: &str) -> PathBuf {
    Path::new("ferry-reports").join(run_id)
}

/// The manifest's SHA-256, computed on a second thread. Standard input has none (it is
/// consumed once).
pub fn manifest_sha256(path: &Path) -> std::thread::JoinHandle<String> {
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        use sha2::{Digest, Sha256};
        if crate::manifest::is_stdin(&path) {
            return String::new();
        }
        let Ok(mut file) = std::fs::File::open(&path) else {
            return String::new();
        };
        let mut hasher = Sha256::new();
        match std::io::copy(&mut file, &mut hasher) {
            Ok(_) => format!("{:x}", hasher.finalize()),
            Err(_) => String::new(),
        }
    })
}
