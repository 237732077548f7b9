//! Reconciliation reports: one CSV per fate (`succeeded.csv` or `valid.csv`,
//! `failed.csv`, `skipped.csv`, `unprocessed.csv`), `summary.json`, and `report.xlsx`
//! with the same tables laid out for a person (`xlsx`; `validate`'s without the valid
//! rows). All CSV writer setup lives here.
//!
//! CSVs are UTF-8 with a BOM (Excel reads CSV without one in the local code page) and
//! have formula-looking cells neutralised. Rows are written as outcomes arrive, so an
//! interrupted run still leaves complete reports for what finished.

mod sort;
mod summary;
mod turn;
mod xlsx;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

pub use summary::{requests as summary_requests, seconds_since, Counts, Requests, Summary};

use crate::exit::Exit;
use crate::manifest::{formula, Carried, OriginManifest};
use crate::outcome::{Outcome, RowOutcome, Trail};
use crate::problem::{Code, Problem};

/// Which command the folder is for: `validate` writes `valid.csv`, `run` the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Validate,
    Run,
}

impl Mode {
    /// Whether rows are reported in `ferry_row` order: `validate` reports each row as it
    /// reads it; `run` as its workers finish them. (`reconcile`, which shares `run`'s
    /// folder, reports in order too; sorting rows already in order costs it little.)
    fn rows_in_order(self) -> bool {
        self == Mode::Validate
    }

    /// What the summary sheet says about the rows the workbook leaves out.
    fn workbook_note(self) -> Option<&'static str> {
        match self {
            Mode::Validate => Some(
                "the valid rows are in valid.csv, beside this workbook, which holds the \
                 failed rows and this summary",
            ),
            Mode::Run => None,
        }
    }
}

// The columns that say where a row came from are read back by the manifest reader
// when a report is fed back; they are named there.
pub use crate::manifest::{ROW_COLUMN, SOURCE_COLUMN, SOURCE_ROW_COLUMN};
/// The message a person reads about a row: why it failed, was skipped or was not sent.
pub const ERROR_COLUMN: &str = "ferry_error";
/// What a person should know about a row that succeeded (or is valid).
pub const WARNING_COLUMN: &str = "ferry_warning";

pub const SUCCEEDED_COLUMNS: &[&str] = &[
    ROW_COLUMN,
    "ferry_key",
    "ferry_remote_id",
    "ferry_request_id",
    "ferry_server_request_id",
    "ferry_attempts",
    WARNING_COLUMN,
    SOURCE_ROW_COLUMN,
    SOURCE_COLUMN,
];

pub const FAILED_COLUMNS: &[&str] = &[
    ROW_COLUMN,
    "ferry_key",
    "ferry_stage",
    "ferry_error_code",
    ERROR_COLUMN,
    "ferry_field",
    "ferry_http_status",
    "ferry_request_id",
    "ferry_server_request_id",
    "ferry_attempts",
    SOURCE_ROW_COLUMN,
    SOURCE_COLUMN,
];

/// One report table: its file name, sheet name and ferry columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Succeeded,
    Valid,
    Failed,
    Skipped,
    Unprocessed,
}

impl Table {
    pub fn name(self) -> &'static str {
        match self {
            Table::Succeeded => "succeeded",
            Table::Valid => "valid",
            Table::Failed => "failed",
            Table::Skipped => "skipped",
            Table::Unprocessed => "unprocessed",
        }
    }

    fn columns(self) -> &'static [&'static str] {
        match self {
            Table::Succeeded | Table::Valid => SUCCEEDED_COLUMNS,
            _ => FAILED_COLUMNS,
        }
    }

    /// The column a person reads first about a row of this table.
    fn message_column(self) -> &'static str {
        match self {
            Table::Succeeded | Table::Valid => WARNING_COLUMN,
            _ => ERROR_COLUMN,
        }
    }

    /// A folder's tables, in the workbook's sheet order: the failed rows first, which
    /// are what a person opens the report for.
    pub fn tables(mode: Mode) -> &'static [Table] {
        match mode {
            Mode::Validate => &[Table::Failed, Table::Valid],
            Mode::Run => &[
                Table::Failed,
                Table::Succeeded,
                Table::Skipped,
                Table::Unprocessed,
            ],
        }
    }

    /// Whether the table is a sheet of the workbook. A `validate` workbook is for the
    /// rows to fix: repeating every valid row there cost half of the command's time, and
    /// `valid.csv` holds them (the summary sheet says so).
    fn in_workbook(self, mode: Mode) -> bool {
        !(mode == Mode::Validate && self == Table::Valid)
    }
}

/// The problem codes of the failed rows, each with its count of rows and the first few
/// of them: the table `validate` and `run` print. A row counts once per code.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProblemTable(std::collections::BTreeMap<Code, (u64, Vec<u64>)>);

/// Rows of each code shown as examples on the terminal.
const EXAMPLES_PER_CODE: usize = 3;

impl ProblemTable {
    fn add(&mut self, row: u64, problems: &[Problem]) {
        let mut codes: Vec<Code> = problems.iter().map(|p| p.code).collect();
        codes.sort();
        codes.dedup();
        for code in codes {
            let entry = self.0.entry(code).or_default();
            entry.0 += 1;
            if entry.1.len() < EXAMPLES_PER_CODE {
                entry.1.push(row);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// (code, rows, example rows), by code.
    pub fn rows(&self) -> impl Iterator<Item = (Code, u64, &[u64])> {
        self.0
            .iter()
            .map(|(c, (n, rows))| (*c, *n, rows.as_slice()))
    }
}

/// The report folder being written.
pub struct Reports {
    dir: PathBuf,
    mode: Mode,
    header: Vec<String>,
    /// `ferry_source` of the rows that came from this manifest itself.
    manifest_id: String,
    /// Rows of a fed-back report whose place in the original is not known.
    lost_origins: u64,
    writers: Vec<(Table, csv::Writer<BufWriter<File>>)>,
    /// The workbook sheet of each writer's table, if it has one.
    sheets: Vec<Option<usize>>,
    counts: Counts,
    problems: ProblemTable,
    seen: RowSet,
    fields: Fields,
    xlsx: xlsx::XlsxWriter,
}

/// A row was reported twice, or a writer failed: the reports cannot be trusted.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("--report-dir {}: it holds the manifest {}, which ferry is reading; nothing was sent: give the reports another folder", .dir.display(), .manifest.display())]
    HoldsManifest { dir: PathBuf, manifest: PathBuf },
    #[error("--report-dir {}: another ferry run is writing its reports there; nothing was sent: give this run another folder", .dir.display())]
    Busy { dir: PathBuf },
    #[error("--report-dir {}: it already holds files (an earlier run's reports?); nothing was sent: give a new folder, or --overwrite to replace ferry's reports in it", .dir.display())]
    NotEmpty { dir: PathBuf },
    #[error("--report-dir {}: it is a file, not a folder; nothing was sent: give a folder (ferry creates it)", .dir.display())]
    NotAFolder { dir: PathBuf },
    #[error("internal error: row {0} was reported twice; please report this bug")]
    Duplicate(u64),
    #[error("internal error: {reported} rows reported but {read} read; please report this bug")]
    Mismatch { reported: u64, read: u64 },
}

/// Every file a report folder may hold, for --overwrite to clear.
const REPORT_FILES: &[&str] = &[
    "succeeded.csv",
    "valid.csv",
    "failed.csv",
    "skipped.csv",
    "unprocessed.csv",
    "summary.json",
    "report.xlsx",
];

/// A report folder this run has claimed: locked against other runs until dropped.
#[derive(Debug)]
pub struct Claim {
    _lock: File,
}

/// Claims `dir` for this run's reports, before anything is read or sent. Never the
/// folder of the manifest being read (through any symbolic link): a fixed `failed.csv`
/// fed back with its own folder as `--report-dir` would be overwritten while it is read.
/// Never a folder another run is writing to (it stays locked while the claim lives).
/// Never a folder with files in it unless `overwrite`, and then ferry's own report files
/// are removed first, so an old run's files are never mixed with a new run's.
pub fn claim_folder(dir: &Path, manifest: &Path, overwrite: bool) -> Result<Claim, ReportError> {
    let io_err = |source| ReportError::Io {
        path: dir.display().to_string(),
        source,
    };
    let manifest = manifest
        .canonicalize()
        .unwrap_or_else(|_| manifest.to_path_buf());
    let manifest_folder = match manifest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if same_folder(dir, manifest_folder) {
        return Err(ReportError::HoldsManifest {
            dir: dir.to_path_buf(),
            manifest: manifest.to_path_buf(),
        });
    }
    if dir.exists() && !dir.is_dir() {
        return Err(ReportError::NotAFolder {
            dir: dir.to_path_buf(),
        });
    }
    std::fs::create_dir_all(dir).map_err(io_err)?;
    let lock = File::open(dir).map_err(io_err)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(ReportError::Busy {
                dir: dir.to_path_buf(),
            })
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io_err(e)),
    }
    let empty = std::fs::read_dir(dir).map_err(io_err)?.next().is_none();
    if !empty && !overwrite {
        return Err(ReportError::NotEmpty {
            dir: dir.to_path_buf(),
        });
    }
    if !empty {
        for name in REPORT_FILES {
            match std::fs::remove_file(dir.join(name)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(e)),
                _ => {}
            }
        }
    }
    Ok(Claim { _lock: lock })
}

fn same_folder(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

impl Reports {
    /// Creates the folder and the CSV files with their headers. `header` is the
    /// manifest's own columns, carried after the ferry columns; `manifest_id` is the
    /// manifest's `ferry_source` (`manifest::manifest_id`).
    pub fn create(
        dir: &Path,
        mode: Mode,
        header: &[String],
        manifest_id: String,
    ) -> Result<Reports, ReportError> {
        let io_err = |path: &Path| {
            let path = path.display().to_string();
            move |source| ReportError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut writers = Vec::new();
        for &table in Table::tables(mode) {
            let path = dir.join(format!("{}.csv", table.name()));
            let mut file =
                BufWriter::with_capacity(256 * 1024, File::create(&path).map_err(io_err(&path))?);
            file.write_all("\u{feff}".as_bytes())
                .map_err(io_err(&path))?;
            let mut writer = csv::WriterBuilder::new().flexible(false).from_writer(file);
            let columns = table
                .columns()
                .iter()
                .copied()
                .chain(header.iter().map(String::as_str));
            write_guarded(&mut writer, columns).map_err(|e| csv_err(&path, e))?;
            // On disk now: a folder that cannot take even the headers (a full disk)
            // fails here, before anything is sent, not after.
            writer.flush().map_err(io_err(&path))?;
            writers.push((table, writer));
        }
        let in_workbook: Vec<Table> = Table::tables(mode)
            .iter()
            .copied()
            .filter(|t| t.in_workbook(mode))
            .collect();
        let sheets = writers
            .iter()
            .map(|(t, _)| in_workbook.iter().position(|s| s == t))
            .collect();
        let headers = in_workbook
            .iter()
            .map(|t| {
                t.columns()
                    .iter()
                    .map(|c| c.to_string())
                    .chain(header.iter().cloned())
                    .collect()
            })
            .collect();
        let xlsx = xlsx::XlsxWriter::start(
            &dir.join("report.xlsx"),
            &in_workbook,
            headers,
            mode.rows_in_order(),
            mode.workbook_note(),
        );
        Ok(Reports {
            xlsx,
            sheets,
            dir: dir.to_path_buf(),
            mode,
            header: header.to_vec(),
            manifest_id,
            lost_origins: 0,
            writers,
            counts: Counts::default(),
            problems: ProblemTable::default(),
            seen: RowSet::default(),
            fields: Fields::default(),
        })
    }

    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    pub fn problems(&self) -> &ProblemTable {
        &self.problems
    }

    /// Writes one row to the table its outcome belongs in.
    pub fn write(&mut self, row: &RowOutcome, carried: &Carried) -> Result<(), ReportError> {
        let cells = &carried.cells;
        if !self.seen.insert(row.row) {
            return Err(ReportError::Duplicate(row.row));
        }
        self.counts.add(&row.outcome);
        if let Outcome::Failed { problems, .. } = &row.outcome {
            self.problems.add(row.row, problems);
        }
        let table = match (&row.outcome, self.mode) {
            (Outcome::Succeeded { .. }, Mode::Validate) => Table::Valid,
            (Outcome::Succeeded { .. }, Mode::Run) => Table::Succeeded,
            (Outcome::Failed { .. }, _) => Table::Failed,
            (Outcome::Skipped { .. }, _) => Table::Skipped,
            (Outcome::Unprocessed { .. }, _) => Table::Unprocessed,
        };
        let Some(index) = self.writers.iter().position(|(t, _)| *t == table) else {
            // A validate folder has no skipped/unprocessed tables; nothing produces them there.
            return Ok(());
        };
        if carried.origin.manifest == OriginManifest::Unknown {
            self.lost_origins += 1;
        }
        let source = carried.origin.manifest_id(&self.manifest_id);
        self.fields.fill(row, carried.origin.row, source);
        // Every row has exactly the header's cells (the reader pads), but padding here
        // keeps the tables rectangular whatever a caller passes.
        let extra = self.header.len().saturating_sub(cells.len());
        let fields = &self.fields;
        let record = || {
            fields
                .cells()
                .chain(cells.iter().take(self.header.len()).map(String::as_str))
                .chain(std::iter::repeat_n("", extra))
        };
        let writer = &mut self.writers[index].1;
        write_guarded(writer, record())
            .map_err(|e| csv_err(&self.dir.join(format!("{}.csv", table.name())), e))?;
        if let Some(sheet) = self.sheets[index] {
            let at = xlsx::Turn {
                table: sheet,
                row: row.row,
                seq: carried.seq,
            };
            self.xlsx.row(at, record());
        }
        Ok(())
    }

    /// Pushes written rows to disk (called at each group commit and at the end).
    pub fn flush(&mut self) -> Result<(), ReportError> {
        for (table, writer) in &mut self.writers {
            writer.flush().map_err(|source| ReportError::Io {
                path: self
                    .dir
                    .join(format!("{}.csv", table.name()))
                    .display()
                    .to_string(),
                source,
            })?;
        }
        Ok(())
    }

    /// Checks the invariant, writes `summary.json` and `report.xlsx`.
    pub fn finish(mut self, summary: &mut Summary, rows_read: u64) -> Result<PathBuf, ReportError> {
        // The outcomes handed to the reports, even when the files cannot take them: the
        // end-of-run lines must not say "0 rows" after a full disk stopped the writing.
        summary.counts = self.counts.clone();
        self.flush()?;
        if self.lost_origins > 0 {
            tracing::warn!(
                "{} rows of this fed-back report do not say which row of the original they came \
                 from (ferry_source_row or ferry_source cleared or edited, or a line copied): \
                 their reports leave ferry_source_row empty, and `ferry reconcile` of the \
                 original cannot count them",
                self.lost_origins
            );
        }
        let reported = self.counts.total();
        if reported != rows_read {
            return Err(ReportError::Mismatch {
                reported,
                read: rows_read,
            });
        }
        summary.counts = self.counts.clone();
        drop(self.writers);
        // The workbook before summary.json, so that the summary tells the truth about it:
        // summary.json is written last, whole, and says how the command ended.
        let xlsx_path = self.dir.join("report.xlsx");
        let xlsx = self.xlsx.finish(summary).map_err(|e| ReportError::Io {
            path: xlsx_path.display().to_string(),
            source: io::Error::other(e.to_string()),
        });
        if let Err(e) = &xlsx {
            // Nothing is sent by validate: 2; a run that sent ended in a fault: 3.
            if summary.exit_code != Exit::Interrupted {
                summary.exit_code = match self.mode {
                    Mode::Validate => Exit::NothingSent,
                    Mode::Run => Exit::Aborted,
                };
            }
            let why = format!("report.xlsx could not be written: {e}");
            summary.aborted = Some(match summary.aborted.take() {
                Some(earlier) => format!("{earlier}; {why}"),
                None => why,
            });
        }
        let summary_path = self.dir.join("summary.json");
        let json = serde_json::to_vec_pretty(&summary).expect("a summary always serialises");
        // Written whole or not at all: a summary.json that is there is complete.
        let partial = self.dir.join(".summary.json.partial");
        let written =
            std::fs::write(&partial, json).and_then(|()| std::fs::rename(&partial, &summary_path));
        if let Err(source) = written {
            // Nothing half-written stays behind; the message names both failures.
            let _ = std::fs::remove_file(&partial);
            let also = match &xlsx {
                Err(ReportError::Io { source, .. }) => {
                    format!(" (and report.xlsx could not be written: {source})")
                }
                _ => String::new(),
            };
            return Err(ReportError::Io {
                path: format!("{}{also}", summary_path.display()),
                source,
            });
        }
        xlsx?;
        Ok(self.dir)
    }
}

fn write_guarded<'a, W: Write>(
    writer: &mut csv::Writer<W>,
    cells: impl Iterator<Item = &'a str>,
) -> Result<(), csv::Error> {
    for cell in cells {
        writer.write_field(formula::guard(cell).as_bytes())?;
    }
    writer.write_record(std::iter::empty::<&[u8]>())
}

fn csv_err(path: &Path, e: csv::Error) -> ReportError {
    ReportError::Io {
        path: path.display().to_string(),
        source: io::Error::other(e.to_string()),
    }
}

/// A row's ferry cells, written into one buffer that every row reuses: a report line
/// costs no allocation of its own.
#[derive(Default)]
struct Fields {
    text: String,
    /// End offset of each cell in `text`.
    ends: Vec<usize>,
}

impl Fields {
    /// The ferry cells of `row`, in the order of its table, then its origin's.
    fn fill(&mut self, row: &RowOutcome, source_row: u64, source: &str) {
        self.text.clear();
        self.ends.clear();
        self.push(row.row);
        self.push(&row.key);
        match &row.outcome {
            Outcome::Succeeded {
                remote_id,
                warnings,
            } => {
                self.push(remote_id.as_deref().unwrap_or_default());
                self.trail(&row.trail);
                // Allocates only for a row with warnings.
                self.push(crate::problem::summary(warnings));
            }
            Outcome::Failed {
                stage,
                problems,
                http_status,
            } => self.failed(stage.as_str(), problems, *http_status, &row.trail),
            Outcome::Skipped { problem } | Outcome::Unprocessed { problem } => {
                self.failed("", std::slice::from_ref(problem), None, &row.trail)
            }
        }
        // Row 0: the place was lost (cleared, mangled or copied): left empty.
        match source_row {
            0 => self.push(""),
            n => self.push(n),
        }
        self.push(source);
    }

    fn failed(
        &mut self,
        stage: &str,
        problems: &[Problem],
        http_status: Option<u16>,
        trail: &Trail,
    ) {
        self.push(stage);
        self.joined(problems.iter().map(|p| p.code.as_str()), ";");
        self.joined(problems.iter().map(|p| p.message.as_str()), "; ");
        self.joined(problems.iter().map(|p| p.field.as_str()), ";");
        match http_status {
            Some(status) => self.push(status),
            None => self.push(""),
        }
        self.trail(trail);
    }

    /// `ferry_request_id`, `ferry_server_request_id`, `ferry_attempts`.
    fn trail(&mut self, trail: &Trail) {
        self.joined(trail.request_ids.iter(), ";");
        self.joined(trail.server_request_ids.iter(), ";");
        self.push(trail.attempts());
    }

    fn push(&mut self, cell: impl std::fmt::Display) {
        use std::fmt::Write as _;
        let _ = write!(self.text, "{cell}");
        self.ends.push(self.text.len());
    }

    /// One cell of `parts` with `separator` between them.
    fn joined<T: std::fmt::Display>(&mut self, parts: impl Iterator<Item = T>, separator: &str) {
        use std::fmt::Write as _;
        for (i, part) in parts.enumerate() {
            if i > 0 {
                self.text.push_str(separator);
            }
            let _ = write!(self.text, "{part}");
        }
        self.ends.push(self.text.len());
    }

    fn cells(&self) -> impl Iterator<Item = &str> + Clone {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let cell = &self.text[start..end];
            start = end;
            cell
        })
    }
}

/// Row numbers already reported, as a bit set: a million rows cost 125 KB.
#[derive(Default)]
struct RowSet {
    bits: Vec<u64>,
}

impl RowSet {
    /// False when the row was already in the set.
    fn insert(&mut self, row: u64) -> bool {
        let (word, bit) = ((row / 64) as usize, row % 64);
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        let was = self.bits[word] & (1 << bit) != 0;
        self.bits[word] |= 1 << bit;
        !was
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reports that cannot be finished still give the summary the outcomes they were
    /// handed: the end-of-run lines said "0 rows" after a full disk stopped the writing.
    #[test]
    fn the_summary_has_the_counts_even_when_the_reports_cannot_be_finished() {
        let dir = tempfile::tempdir().unwrap();
        let header = vec!["name".to_string()];
        let mut reports = Reports::create(dir.path(), Mode::Run, &header, "id".into()).unwrap();
        for row in [2, 3] {
            let outcome = RowOutcome {
                row,
                key: format!("k{row}"),
                outcome: Outcome::Succeeded {
                    remote_id: None,
                    warnings: Vec::new(),
                },
                trail: Default::default(),
            };
            let carried = Carried {
                origin: crate::manifest::Origin::here(row),
                cells: vec!["n".into()],
                seq: row,
            };
            reports.write(&outcome, &carried).unwrap();
        }
        let mut summary = Summary::default();
        // Three rows read, two reported: the reports cannot be finished.
        let err = reports.finish(&mut summary, 3).unwrap_err();
        assert!(matches!(
            err,
            ReportError::Mismatch {
                reported: 2,
                read: 3
            }
        ));
        assert_eq!((summary.counts.total(), summary.counts.succeeded), (2, 2));
    }

    #[test]
    fn row_set_reports_repeats() {
        let mut set = RowSet::default();
        assert!(set.insert(2));
        assert!(set.insert(1_000_000));
        assert!(!set.insert(2));
    }
}
