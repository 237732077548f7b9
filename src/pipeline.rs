//! The stages wired in order. `validate` reads, maps, validates and reports; `run`
//! (in `run.rs`) adds batching, sending and state between validation and reporting.

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError};
use crate::kinds::{Columns, Ctx, Kind, MappingError};
use crate::manifest::{self, Manifest, ManifestError, Source};
use crate::outcome::{Outcome, RowOutcome, Stage, Trail};
use crate::report::ProblemTable;
use crate::report::{Mode, ReportError, Reports, Summary};
use crate::validate::Validator;

/// Anything that stops a command before or outside the per-row flow.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    #[error("{path}: {source}")]
    Mapping { path: String, source: MappingError },
    #[error("{0}")]
    Report(#[from] ReportError),
    /// Another run holds the state: nothing was sent.
    #[error("{0}")]
    Locked(#[from] crate::lock::LockError),
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// Everything here stops the command before a row is sent.
    pub fn exit_code(&self) -> i32 {
        2
    }
}

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
/// `name` is the manifest as the user named it (`<stdin>` for `-`).
pub fn open(
    source: &Source,
    name: &str,
    kind: Kind,
    config: &Config,
    event_id: Option<i64>,
) -> Result<Opened, Error> {
    let display_path = name.to_string();
    let manifest = manifest::open(source)?;
    let aliases = config.columns.get(&kind).cloned().unwrap_or_default();
    let supplied: &[&str] = if event_id.is_some() {
        &["eventId"]
    } else {
        &[]
    };
    let columns = Columns::map(kind, &manifest.header, &aliases, supplied).map_err(|source| {
        Error::Mapping {
            path: display_path.clone(),
            source,
        }
    })?;
    let ctx = Ctx {
        timezone: config.timezone,
        country_code: config.country_code,
        event_id,
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

/// `ferry validate`: every row checked, nothing sent.
pub fn validate(
    source: &Source,
    name: &str,
    kind: Kind,
    config: &Config,
    event_id: Option<i64>,
    report_dir: Option<&Path>,
    overwrite: bool,
) -> Result<ValidateReport, Error> {
    let started = chrono::Utc::now();
    let run_id = run_id(started);
    let dir = report_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| default_report_dir(&run_id));
    let _claim = crate::report::claim_folder(&dir, &source.path, overwrite)?;
    let opened = open(source, name, kind, config, event_id)?;
    let Opened {
        manifest,
        mut validator,
        display_path,
    } = opened;
    say_notice(&manifest);
    // Needed before the first report line: each carries the manifest's id.
    let sha = manifest_sha256(&source.path).join().unwrap_or_default();
    let mut reports = Reports::create(
        &dir,
        Mode::Validate,
        &manifest.header,
        manifest::manifest_id(&sha),
    )?;
    let mut rows_read = 0u64;
    for raw in manifest.rows {
        let mut raw = raw?;
        rows_read += 1;
        let defects = std::mem::take(&mut raw.defects);
        let outcome = match validator.check(raw.row, &raw.cells, defects) {
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
        kind: kind.name(),
        target: None,
        manifest: display_path,
        manifest_sha256: sha,
        started_at: started.to_rfc3339(),
        finished_at: chrono::Utc::now().to_rfc3339(),
        exit_code: if failed > 0 { 1 } else { 0 },
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

/// A command-line flag's value checked against its range (`config::limits`); outside it
/// is a usage error that names the flag and the range.
pub fn check_flag<T: PartialOrd + std::fmt::Display>(
    name: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<(), Error> {
    crate::config::limits::check(value, range).map_err(|why| Error::Usage(format!("{name}: {why}")))
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
