//! Reading manifests: CSV, TSV, JSON (array or lines) and XLSX, in any of the encodings
//! spreadsheets export, as a stream of `RawRow`s numbered the way a person finds them.
//!
//! Reading knows nothing of kinds: it yields the header as written and each row's cells
//! as text. Columns named `ferry_*` are dropped here, so a report fed back as a manifest
//! reads like the original. Problems confined to one row (a ragged row, bytes that are
//! not text) travel with the row as `defects`; problems with the file itself are a
//! `ManifestError`.

use std::path::PathBuf;

use crate::problem::Problem;

/// The formats ferry reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Tsv,
    Json,
    Jsonl,
    Xlsx,
}

/// Where to read a manifest from and how. `path` may be `-` (standard input; then
/// `format` is required).
#[derive(Clone, Debug)]
pub struct Source {
    pub path: PathBuf,
    pub format: Option<Format>,
    /// `--encoding`: utf-8, gb18030, gbk, big5, utf-16, utf-16le, utf-16be.
    pub encoding: Option<String>,
    /// `--sheet`: XLSX sheet name; the first sheet when absent.
    pub sheet: Option<String>,
}

/// One record of the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRow {
    /// Where a person finds the record: spreadsheet row (header = 1), JSON Lines line
    /// number, or 1-based JSON array index.
    pub row: u64,
    /// One cell per header column, in header order (never more, never fewer).
    pub cells: Vec<String>,
    /// Reading problems confined to this row; such a row fails validation.
    pub defects: Vec<Problem>,
}

/// An open manifest: its header and the stream of its rows.
pub struct Manifest {
    /// Column names as written, `ferry_*` columns removed.
    pub header: Vec<String>,
    /// Rows in file order, empty rows skipped. An `Err` ends the stream.
    pub rows: Box<dyn Iterator<Item = Result<RawRow, ManifestError>> + Send>,
}

/// A problem with the manifest as a whole: nothing should be sent.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {message}")]
    Unreadable { path: String, message: String },
    #[error("{path}: line {line}: {message}")]
    Syntax { path: String, line: u64, message: String },
}
