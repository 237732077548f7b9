//! Reading manifests: CSV, TSV, JSON (array or lines) and XLSX, in any of the encodings
//! spreadsheets export, as a stream of `RawRow`s numbered the way a person finds them.
//!
//! Reading knows nothing of kinds: it yields the header as written and each row's cells
//! as text. Columns named `ferry_*` are dropped here, so a report fed back as a manifest
//! reads like the original. Problems confined to one row (a ragged row, bytes that are
//! not text) travel with the row as `defects`; problems with the file itself are a
//! `ManifestError`.
//!
//! Every format streams: memory holds a row (or a JSON element) at a time, not the file.
//! Standard input and pipes are first copied to a temporary file, so that JSON (read
//! twice: once for the header, once for the rows) and XLSX (a zip, read by seeking) work
//! on them like on any file.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex};

use crate::problem::{Code, Problem};

mod csv;
mod encoding;
mod error;
pub mod formula;
mod json;
pub mod limits;
mod number_format;
mod package;
pub mod pin;
mod xlsx;

pub use encoding::ACCEPTED_ENCODINGS;
pub use error::{
    HeaderFlaw, ManifestError, Passed, Place, SheetCause, Syntax, UnknownFormat, Unreadable,
};
use limits::CELL_CHARS;
use pin::Watched;

/// How standard input is named in messages.
pub const STDIN_NAME: &str = "<stdin>";

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
    /// Where the record first came from (itself, unless a report was fed back).
    pub origin: Origin,
    /// Reading problems confined to this row; such a row fails validation.
    pub defects: Vec<Problem>,
    /// The row's place among the rows read (the first is 0): `row` can skip numbers
    /// (empty rows, a cell over several lines), this never does.
    pub seq: u64,
}

impl RawRow {
    /// A record of this manifest itself, with nothing wrong.
    pub fn new(row: u64, cells: Vec<String>) -> RawRow {
        RawRow {
            row,
            cells,
            origin: Origin::here(row),
            defects: Vec::new(),
            seq: 0,
        }
    }

    /// What travels with the row to its report line once it has been validated.
    pub fn carried(self) -> Carried {
        Carried {
            origin: self.origin,
            cells: self.cells,
            seq: self.seq,
        }
    }
}

/// The row of the manifest a record first came from. A report fed back as a manifest
/// carries it in `ferry_source_row` and `ferry_source`, so after any number of
/// fix-and-feed-back rounds each row can still be found in the original sheet (and
/// `ferry reconcile` of the original finds the rows sent from its reports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// `ferry_source_row`: the row number in the original manifest.
    pub row: u64,
    pub manifest: OriginManifest,
}

/// `ferry_row`: the row's number in the manifest a run read (a report's column).
pub const ROW_COLUMN: &str = "ferry_row";
/// `ferry_source_row`: the row's number in the manifest it first came from, kept through
/// any number of fix-and-feed-back rounds (the same as `ferry_row` in the first).
pub const SOURCE_ROW_COLUMN: &str = "ferry_source_row";
/// `ferry_source`: which manifest that was: the first 16 hex digits of its SHA-256
/// (`manifest_id`).
pub const SOURCE_COLUMN: &str = "ferry_source";

/// Which manifest `Origin::row` counts in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OriginManifest {
    /// The manifest being read: the record is its own origin.
    Here,
    /// An earlier manifest, by its id (`ferry_source`: the first 16 hex digits of its
    /// SHA-256, as its summary.json gives it).
    Earlier(String),
    /// A report fed back without `ferry_source` (edited out, or an older ferry's): the
    /// row number is known, its manifest is not.
    Unknown,
}

impl Origin {
    pub fn here(row: u64) -> Origin {
        Origin {
            row,
            manifest: OriginManifest::Here,
        }
    }

    /// `ferry_source` for this origin, given the id of the manifest being read.
    pub fn manifest_id<'a>(&'a self, here: &'a str) -> &'a str {
        match &self.manifest {
            OriginManifest::Here => here,
            OriginManifest::Earlier(id) => id,
            OriginManifest::Unknown => "",
        }
    }

    /// The earlier manifest's id, when the record was fed back from one.
    pub fn earlier(&self) -> Option<&str> {
        match &self.manifest {
            OriginManifest::Earlier(id) => Some(id),
            _ => None,
        }
    }
}

/// A manifest's id in `ferry_source`: the first 16 hex digits of its SHA-256 (enough to
/// tell a site's manifests apart, short enough for a spreadsheet column).
pub fn manifest_id(sha256: &str) -> String {
    sha256.get(..16).unwrap_or_default().to_string()
}

/// A row's manifest cells and origin: what its report line carries after the ferry
/// columns, untouched by validation and sending.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Carried {
    pub origin: Origin,
    pub cells: Vec<String>,
    /// `RawRow::seq`: what puts report rows that come back out of order in their turn.
    pub seq: u64,
}

impl Default for Origin {
    fn default() -> Origin {
        Origin::here(0)
    }
}

/// An open manifest: its header and the stream of its rows.
pub struct Manifest {
    /// Column names as written, `ferry_*` columns removed.
    pub header: Vec<String>,
    /// Rows in file order, empty rows skipped. An `Err` ends the stream.
    pub rows: Box<dyn Iterator<Item = Result<RawRow, ManifestError>> + Send>,
    /// What a person should know about how the file was read, said once by the command
    /// (which sheet of a workbook was chosen, and why).
    pub notice: Option<String>,
}

/// Opens a manifest: reads its header and returns the stream of its rows. `-` reads
/// standard input (`source.format` is then required).
pub fn open(source: &Source) -> Result<Manifest, ManifestError> {
    open_noting(source, None)
}

/// Opens a pinned manifest (`open`), its files watched by `watch`.
pub fn open_pinned(source: &Source, watch: pin::Watch) -> Result<Manifest, ManifestError> {
    open_noting(source, Some(watch))
}

fn open_noting(source: &Source, watch: Option<pin::Watch>) -> Result<Manifest, ManifestError> {
    if is_stdin(&source.path) {
        return open_reader(source, io::stdin().lock());
    }
    let path = source.path.display().to_string();
    let format = match source.format {
        Some(format) => format,
        None => format_from_path(&source.path)?,
    };
    let encoding = parse_encoding(source)?;
    let file = File::open(&source.path).map_err(|source| ManifestError::Io {
        path: path.clone(),
        source,
    })?;
    let meta = file.metadata().map_err(|source| ManifestError::Io {
        path: path.clone(),
        source,
    })?;
    if meta.is_dir() {
        return Err(ManifestError::Unreadable {
            path,
            why: Unreadable::Directory,
        });
    }
    if !meta.is_file() {
        // A pipe (`<(...)`, /dev/stdin) cannot be read twice or sought in: spool it.
        let spooled = spool_as(&path, file)?;
        return open_spooled(&path, spooled, format, encoding, source.sheet.as_deref());
    }
    open_path(
        &path,
        &source.path,
        format,
        encoding,
        source.sheet.as_deref(),
        None,
        watch,
    )
}

/// Opens a manifest read from `input` (what `open` does with standard input): the input
/// is copied to a temporary file first, so every format reads the same way, and the
/// file lives as long as the returned rows. `source.format` is required; `source.path`
/// is not read.
pub fn open_reader(source: &Source, input: impl Read) -> Result<Manifest, ManifestError> {
    let format = source.format.ok_or_else(|| ManifestError::UnknownFormat {
        path: STDIN_NAME.to_string(),
        why: UnknownFormat::Stdin,
    })?;
    let encoding = parse_encoding(source)?;
    let spooled = spool(input)?;
    open_spooled(
        STDIN_NAME,
        spooled,
        format,
        encoding,
        source.sheet.as_deref(),
    )
}

/// Copies `input` (standard input) into a temporary file that is deleted when the
/// returned path is dropped.
pub fn spool(input: impl Read) -> Result<tempfile::TempPath, ManifestError> {
    spool_as(STDIN_NAME, input)
}

fn spool_as(path: &str, mut input: impl Read) -> Result<tempfile::TempPath, ManifestError> {
    let fail = |e: io::Error| ManifestError::Unreadable {
        path: path.to_string(),
        why: Unreadable::Spool(e),
    };
    let mut file = tempfile::Builder::new()
        .prefix("ferry-input-")
        .tempfile()
        .map_err(fail)?;
    io::copy(&mut input, &mut file).map_err(fail)?;
    file.flush().map_err(fail)?;
    Ok(file.into_temp_path())
}

fn open_spooled(
    path: &str,
    spooled: tempfile::TempPath,
    format: Format,
    encoding: Option<encoding::Encoding>,
    sheet: Option<&str>,
) -> Result<Manifest, ManifestError> {
    let file_path = spooled.to_path_buf();
    open_path(
        path,
        &file_path,
        format,
        encoding,
        sheet,
        Some(spooled),
        None,
    )
}

/// Whether a manifest path means standard input: `-`.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// A manifest path as messages and reports name it: `<stdin>` for `-`.
pub fn display_name(path: &Path) -> String {
    if is_stdin(path) {
        STDIN_NAME.to_string()
    } else {
        path.display().to_string()
    }
}

fn parse_encoding(source: &Source) -> Result<Option<encoding::Encoding>, ManifestError> {
    source
        .encoding
        .as_deref()
        .map(encoding::Encoding::parse)
        .transpose()
}

/// The format a file name implies.
pub fn format_from_path(path: &Path) -> Result<Format, ManifestError> {
    let unknown = |why| ManifestError::UnknownFormat {
        path: path.display().to_string(),
        why,
    };
    let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
        return Err(unknown(UnknownFormat::NoExtension));
    };
    match ext.to_ascii_lowercase().as_str() {
        "csv" => Ok(Format::Csv),
        "tsv" | "tab" => Ok(Format::Tsv),
        "json" => Ok(Format::Json),
        "jsonl" | "ndjson" => Ok(Format::Jsonl),
        "xlsx" | "xlsm" => Ok(Format::Xlsx),
        "xls" => Err(ManifestError::Unreadable {
            path: path.display().to_string(),
            why: Unreadable::XlsName,
        }),
        _ => Err(unknown(UnknownFormat::Extension(ext.to_string()))),
    }
}

fn open_path(
    path: &str,
    file_path: &Path,
    format: Format,
    encoding: Option<encoding::Encoding>,
    sheet: Option<&str>,
    spooled: Option<tempfile::TempPath>,
    watch: Option<pin::Watch>,
) -> Result<Manifest, ManifestError> {
    if let (Some(sheet), false) = (sheet, format == Format::Xlsx) {
        // Ignored, it would leave a person believing a sheet was chosen.
        return Err(ManifestError::Unreadable {
            path: path.to_string(),
            why: Unreadable::SheetOfText {
                sheet: sheet.to_string(),
                format,
            },
        });
    }
    let open = || {
        File::open(file_path)
            .and_then(|file| match &watch {
                Some(watch) => watch.file(file),
                None => Ok(Watched::new(file, None)),
            })
            .map_err(|source| ManifestError::Io {
                path: path.to_string(),
                source,
            })
    };
    let mut file = open()?;
    let empty = file
        .get_mut()
        .metadata()
        .map(|m| m.len() == 0)
        .unwrap_or(false);
    if empty {
        return Err(ManifestError::Unreadable {
            path: path.to_string(),
            why: Unreadable::Empty,
        });
    }
    let manifest = match format {
        Format::Csv => open_delimited(path, file, encoding, b',', "comma")?,
        Format::Tsv => open_delimited(path, file, encoding, b'\t', "tab")?,
        Format::Xlsx => open_xlsx(path, file, sheet)?,
        Format::Json | Format::Jsonl => open_json(path, [file, open()?], format, encoding)?,
    };
    Ok(match spooled {
        None => manifest,
        Some(spooled) => Manifest {
            rows: Box::new(KeepAlive {
                rows: manifest.rows,
                _spooled: spooled,
            }),
            ..manifest
        },
    })
}

/// CSV or TSV, split at `delimiter` (named `separator` in messages).
fn open_delimited(
    path: &str,
    file: Watched<File>,
    encoding: Option<encoding::Encoding>,
    delimiter: u8,
    separator: &'static str,
) -> Result<Manifest, ManifestError> {
    let text = encoding::open_text(path, file, encoding, false)?;
    let label = text.label;
    let records = csv::records(path, text, delimiter);
    let layout = Layout::Delimited { separator };
    tabular(path, Box::new(records), layout, label, "the file")
}

/// The sheet `sheet` of a workbook, or the one ferry chooses (and says why).
fn open_xlsx(
    path: &str,
    file: Watched<File>,
    sheet: Option<&str>,
) -> Result<Manifest, ManifestError> {
    let (chosen, records) = xlsx::records(path, file, sheet)?;
    let mut manifest = tabular(
        path,
        Box::new(records),
        Layout::Sheet,
        "UTF-8",
        &chosen.label,
    )?;
    manifest.notice = chosen.notice;
    Ok(manifest)
}

/// A JSON array or JSON Lines, read twice (`files`): once for the header (every key of
/// every object), once for the rows.
fn open_json(
    path: &str,
    files: [Watched<File>; 2],
    format: Format,
    encoding: Option<encoding::Encoding>,
) -> Result<Manifest, ManifestError> {
    let [file, second] = files;
    let text = encoding::open_text(path, file, encoding, true)?;
    let label = text.label;
    let (header, rows): (_, Records) = if format == Format::Json {
        let header = json::scan_array(path, text)?;
        let names = header.names();
        let text = encoding::open_text(path, second, encoding, true)?;
        (names, Box::new(json::array_rows(path, text, header)?))
    } else {
        let header = json::scan_lines(path, text)?;
        let names = header.names();
        let text = encoding::open_text(path, second, encoding, true)?;
        (names, Box::new(json::line_rows(path, text, header)))
    };
    Ok(shaped(Shaper::new(header, Layout::Json, label), rows))
}

/// A record as a format reader yields it, before the header is applied.
pub(crate) struct Record {
    /// `RawRow::row`.
    pub row: u64,
    pub cells: Vec<String>,
    /// How many cells the record had: more than `cells.len()` when a reader kept only
    /// the first `limits::COLUMNS`.
    pub width: usize,
    /// What went wrong reading single cells, by raw column index.
    pub flaws: Vec<(usize, Flaw)>,
}

/// A reading problem with one cell of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flaw {
    /// Bytes that could not be decoded (shown as U+FFFD).
    BadText,
    /// Longer than `limits::CELL_BYTES`: the rest was not kept.
    Cut,
    /// A quote opened in this cell never closed; the cell was cut at its first line
    /// break and the `swallowed` lines after it were read as rows of their own.
    OpenQuote { how: OpenQuote, swallowed: u64 },
    /// A JSON object gave this cell's key `times` times.
    Repeated { times: u32 },
    /// The record passed `limits::ROW_BYTES` in this cell: from here on nothing was
    /// kept, so the rest of the row reads as empty.
    RowCut,
    /// A sheet holds this cell twice (no spreadsheet writes that); the first was kept.
    Twice,
    /// This cell, and those right of it up to the range's last column, lie inside a
    /// merged range without being its first cell: they read as empty.
    Merged(Range),
}

/// How a quoted cell showed that its quote was never closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpenQuote {
    /// It ran to the end of the file.
    EndOfFile,
    /// It ran over more than `limits::CELL_LINE_BREAKS` line breaks.
    TooManyLines,
    /// It ran over several lines and past `limits::CELL_BYTES`.
    TooLong,
}

/// A range of sheet cells, 0-based and inclusive, as a merge covers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    pub first_row: u32,
    pub first_col: u32,
    pub last_row: u32,
    pub last_col: u32,
}

impl Range {
    /// `B2:B5` (or `B2` for one cell), as a spreadsheet names it.
    fn name(&self) -> String {
        rust_xlsxwriter::utility::cell_range(
            self.first_row,
            column_number(self.first_col),
            self.last_row,
            column_number(self.last_col),
        )
    }
}

/// `C2` for row index 1, column index 2.
fn cell_name(row: u32, col: u32) -> String {
    rust_xlsxwriter::utility::row_col_to_cell(row, column_number(col))
}

/// A column index as rust_xlsxwriter takes it (readers keep columns below `COLUMNS`).
fn column_number(col: u32) -> u16 {
    u16::try_from(col).unwrap_or(u16::MAX)
}

impl Record {
    /// A record of `cells` with nothing wrong.
    pub(crate) fn new(row: u64, cells: Vec<String>) -> Record {
        Record {
            row,
            width: cells.len(),
            cells,
            flaws: Vec::new(),
        }
    }

    /// Nothing in its cells. A row cut at `ROW_BYTES` is never blank: what was not kept
    /// may hold anything.
    fn is_blank(&self) -> bool {
        self.cells.iter().all(|c| is_blank(c)) && !self.flaws.iter().any(|f| f.1 == Flaw::RowCut)
    }

    /// Roughly the memory the record holds, for the reader channel's byte budget.
    fn bytes(&self) -> u64 {
        let cells: usize = self.cells.iter().map(String::capacity).sum();
        let slots = self.cells.capacity() * std::mem::size_of::<String>()
            + self.flaws.capacity() * std::mem::size_of::<(usize, Flaw)>();
        (std::mem::size_of::<Record>() + slots + cells) as u64
    }
}

/// `ferry_row`, `FERRY_KEY`: a report's column, ignored on input. Only a plain name
/// counts: a header read as one column because the file is split at `;` (a spreadsheet
/// in a European locale saves CSV so), `ferry_row;ferry_key;…;mobile`, is the user's
/// data, and must reach the header check that says what is wrong, not be dropped.
fn is_ferry_column(name: &str) -> bool {
    name.get(..6)
        .is_some_and(|p| p.eq_ignore_ascii_case("ferry_"))
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn is_blank(cell: &str) -> bool {
    cell.trim().is_empty()
}

type Records = Box<dyn Iterator<Item = Result<Record, ManifestError>> + Send>;

/// CSV, TSV and XLSX: the first non-empty record is the header.
fn tabular(
    path: &str,
    mut records: Records,
    layout: Layout,
    label: &'static str,
    what: &str,
) -> Result<Manifest, ManifestError> {
    let header = loop {
        match records.next() {
            None => {
                return Err(ManifestError::Unreadable {
                    path: path.to_string(),
                    why: Unreadable::NoHeader {
                        what: what.to_string(),
                    },
                })
            }
            Some(Err(e)) => return Err(e),
            Some(Ok(record)) if record.is_blank() => continue,
            Some(Ok(record)) if record.width > limits::COLUMNS => {
                return Err(ManifestError::Limit {
                    path: path.to_string(),
                    passed: Passed::HeaderColumns {
                        row: record.row,
                        width: record.width,
                    },
                })
            }
            Some(Ok(record)) => {
                header_flaws(path, what, &record)?;
                break record.cells;
            }
        }
    };
    Ok(shaped(Shaper::new(header, layout, label), records))
}

/// A header that cannot name its columns: one cut at `ROW_BYTES`, or (in a sheet) with
/// merged or doubled cells. Any of them would shift or blank a column's name.
fn header_flaws(path: &str, what: &str, header: &Record) -> Result<(), ManifestError> {
    let row = header.row;
    let flaw = match header
        .flaws
        .iter()
        .find(|(_, f)| matches!(f, Flaw::RowCut | Flaw::Twice | Flaw::Merged(_)))
    {
        None => return Ok(()),
        Some((_, Flaw::Merged(range))) => HeaderFlaw::Merged(range.name()),
        Some((raw, Flaw::Twice)) => HeaderFlaw::Twice(cell_name(
            u32::try_from(row - 1).unwrap_or(u32::MAX),
            *raw as u32,
        )),
        Some(_) => HeaderFlaw::TooLong,
    };
    Err(ManifestError::Unreadable {
        path: path.to_string(),
        why: Unreadable::Header {
            row,
            what: what.to_string(),
            flaw,
        },
    })
}

fn shaped(mut shaper: Shaper, records: Records) -> Manifest {
    let header = shaper.header.clone();
    let rows = records.filter_map(move |record| match record {
        Ok(record) => shaper.shape(record).map(Ok),
        Err(e) => Some(Err(e)),
    });
    Manifest {
        header,
        rows: Box::new(rows),
        notice: None,
    }
}

/// Keeps the spooled copy of standard input on disk while its rows are read.
struct KeepAlive {
    rows: Box<dyn Iterator<Item = Result<RawRow, ManifestError>> + Send>,
    _spooled: tempfile::TempPath,
}

impl Iterator for KeepAlive {
    type Item = Result<RawRow, ManifestError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rows.next()
    }
}

#[derive(Clone, Copy)]
enum Layout {
    /// CSV or TSV: a row with fewer cells than the header is ragged too.
    Delimited { separator: &'static str },
    /// A sheet: missing cells at a row's end are just empty.
    Sheet,
    /// JSON: rows are built to the header's width.
    Json,
}

/// Applies the header to records: drops `ferry_*` columns, skips empty rows, and turns
/// what is wrong with a single row into its defects.
struct Shaper {
    header: Vec<String>,
    /// Raw column index of each header column.
    keep: Vec<usize>,
    /// The header's columns, `ferry_*` included.
    columns: usize,
    /// Raw column indices of a fed-back report's `ferry_source_row`, `ferry_row` and
    /// `ferry_source`.
    origin: OriginColumns,
    layout: Layout,
    label: &'static str,
    /// Rows handed on so far: the next row's `seq`.
    read: u64,
}

impl Shaper {
    fn new(raw: Vec<String>, layout: Layout, label: &'static str) -> Shaper {
        let mut header = Vec::new();
        let mut keep = Vec::new();
        let mut origin = OriginColumns::default();
        for (i, name) in raw.iter().enumerate() {
            let name = name.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
            let is_ferry = is_ferry_column(name);
            if is_ferry {
                origin.note(name, i);
                continue;
            }
            // An unnamed column still carries its data, under a name that says where it is.
            header.push(if name.is_empty() {
                format!("column_{}", i + 1)
            } else {
                name.to_string()
            });
            keep.push(i);
        }
        Shaper {
            header,
            keep,
            columns: raw.len(),
            origin,
            layout,
            label,
            read: 0,
        }
    }

    fn shape(&mut self, mut record: Record) -> Option<RawRow> {
        // A fed-back row whose own cells were cleared still has its `ferry_*` cells: it
        // is a row the person touched, not an empty line, and is reported (its required
        // fields missing) rather than skipped without a trace.
        let blank = record.cells.iter().all(|c| is_blank(c));
        let open_quote = record.flaws.iter().find_map(|&(raw, flaw)| match flaw {
            Flaw::OpenQuote { how, swallowed } => Some((raw, how, swallowed)),
            _ => None,
        });
        let flawed_row = self.row_flaws(&record);
        if blank && open_quote.is_none() && flawed_row.is_empty() {
            return None;
        }
        let mut defects = Vec::new();
        if let Some((raw, how, swallowed)) = open_quote {
            // The cut row is short of cells because of the quote, not a missing separator.
            defects.push(self.open_quote(raw, how, swallowed));
        } else if let Some(problem) = self.ragged(&record.cells, record.width) {
            defects.push(problem);
        }
        let origin = self.origin.of(&record);
        let origin = self.origin.once(origin);
        defects.extend(flawed_row);
        let mut cells = Vec::with_capacity(self.keep.len());
        for (&raw, name) in self.keep.iter().zip(&self.header) {
            let cell = record
                .cells
                .get_mut(raw)
                .map(std::mem::take)
                .unwrap_or_default();
            let cell = self.unguarded(cell);
            defects.extend(self.cell_defects(&record.flaws, raw, name, &cell));
            cells.push(cell);
        }
        let seq = self.read;
        self.read += 1;
        Some(RawRow {
            row: record.row,
            cells,
            origin,
            defects,
            seq,
        })
    }

    /// A fixed failed.csv fed back reads as the original: undo the formula guard.
    fn unguarded(&self, cell: String) -> String {
        if !matches!(self.layout, Layout::Delimited { .. }) {
            return cell;
        }
        match formula::unguard(&cell) {
            unguarded if unguarded.len() != cell.len() => unguarded.to_string(),
            _ => cell,
        }
    }

    /// What is wrong with the cell of raw column `raw`, named `name`: how it was read
    /// (`flaws`), and its length.
    fn cell_defects(
        &self,
        flaws: &[(usize, Flaw)],
        raw: usize,
        name: &str,
        cell: &str,
    ) -> Vec<Problem> {
        let mut defects = Vec::new();
        let flawed = |flaw: Flaw| flaws.contains(&(raw, flaw));
        if let Some(times) = flaws.iter().find_map(|&(r, flaw)| match flaw {
            Flaw::Repeated { times } if r == raw => Some(times),
            _ => None,
        }) {
            defects.push(json::repeated_key(name, times));
        }
        if flawed(Flaw::BadText) {
            defects.push(Problem::new(
                Code::InvalidUtf8,
                name,
                format!(
                    "the cell holds bytes that are not {} text (shown as \u{fffd}); save the file as \
                     UTF-8, or pass the right --encoding",
                    self.label
                ),
            ));
        }
        if flawed(Flaw::Cut) {
            defects.push(Problem::new(
                Code::CellTooLong,
                name,
                format!(
                    "the cell holds more than the {CELL_CHARS} characters a spreadsheet \
                     cell can hold (only its first {} were read); check for a missing \
                     closing quote",
                    limits::bytes(limits::CELL_BYTES as u64)
                ),
            ));
        } else if cell.len() > CELL_CHARS {
            let chars = cell.chars().count();
            if chars > CELL_CHARS {
                defects.push(Problem::new(
                    Code::CellTooLong,
                    name,
                    format!(
                        "the cell holds {chars} characters, more than the {CELL_CHARS} a \
                         spreadsheet cell can hold; check for a missing closing quote"
                    ),
                ));
            }
        }
        defects
    }

    /// The header name of raw column `raw` (empty when the column is not kept), and the
    /// column as a message names it.
    fn column(&self, raw: usize) -> (String, String) {
        match self.keep.binary_search(&raw) {
            Ok(i) => (
                self.header[i].clone(),
                format!("column \"{}\"", self.header[i]),
            ),
            Err(_) => (String::new(), format!("column {}", raw + 1)),
        }
    }

    /// The problems of a row cut at `ROW_BYTES`, and of sheet cells that are doubled or
    /// inside a merge, in the columns the manifest keeps. Such a row is reported even
    /// when its cells are empty: a merge is exactly what leaves them so.
    fn row_flaws(&self, record: &Record) -> Vec<Problem> {
        let mut problems = Vec::new();
        for &(raw, flaw) in &record.flaws {
            match flaw {
                Flaw::RowCut => {
                    let (_, column) = self.column(raw);
                    let size = limits::bytes(limits::ROW_BYTES as u64);
                    problems.push(Problem::new(
                        Code::RowTooLong,
                        "",
                        format!(
                            "the row holds more than {size} of text, far more than any manifest \
                             row: only its first {size} was read, up to {column} (cut short \
                             there), and the cells after it read as empty. Check the row for text \
                             pasted over and over or a missing line break, fix it, then feed it \
                             again"
                        ),
                    ));
                }
                Flaw::Twice => {
                    let (field, _) = self.column(raw);
                    if field.is_empty() {
                        continue;
                    }
                    let row = u32::try_from(record.row - 1).unwrap_or(u32::MAX);
                    problems.push(Problem::new(
                        Code::DuplicateCell,
                        field,
                        format!(
                            "the sheet holds this cell ({}) twice, which no spreadsheet writes: \
                             ferry read the first and cannot tell which is meant. Open the file \
                             in a spreadsheet, check the cell and save it again, then feed this \
                             row again",
                            cell_name(row, raw as u32)
                        ),
                    ));
                }
                Flaw::Merged(range) => problems.extend(self.merged(raw, range)),
                Flaw::BadText | Flaw::Cut | Flaw::OpenQuote { .. } | Flaw::Repeated { .. } => {}
            }
        }
        problems
    }

    /// The problem of a row whose cells from raw column `raw` to the end of `range` lie
    /// inside that merged range; none when the manifest keeps none of those columns.
    fn merged(&self, raw: usize, range: Range) -> Option<Problem> {
        const NAMED: usize = 3;
        let from = self.keep.partition_point(|&k| k < raw);
        let to = self.keep.partition_point(|&k| k <= range.last_col as usize);
        let names = self.header.get(from..to).filter(|n| !n.is_empty())?;
        let mut columns: Vec<String> = names
            .iter()
            .take(NAMED)
            .map(|n| format!("\"{n}\""))
            .collect();
        if names.len() > NAMED {
            columns.push(format!("{} more", names.len() - NAMED));
        }
        let (columns, lie) = match names.len() {
            1 => (format!("column {}", columns[0]), "lies"),
            _ => (format!("columns {}", columns.join(", ")), "lie"),
        };
        Some(Problem::new(
            Code::MergedCell,
            names[0].clone(),
            format!(
                "{columns} {lie} inside the merged cells {}: a merge shows its first cell's \
                 value ({}) in all its cells but stores it only there, so this row does not \
                 have it. Unmerge the cells and fill in each one, then feed this row again",
                range.name(),
                cell_name(range.first_row, range.first_col)
            ),
        ))
    }

    /// The problem of a row whose quoted cell (raw column `raw`) never closed.
    fn open_quote(&self, raw: usize, how: OpenQuote, swallowed: u64) -> Problem {
        let (field, column) = self.column(raw);
        let lines = match swallowed {
            1 => "the line after it".to_string(),
            n => format!("the {} lines after it", limits::count(n)),
        };
        let why = match how {
            OpenQuote::EndOfFile if swallowed == 0 => {
                "is never closed: the file ends first".to_string()
            }
            OpenQuote::EndOfFile => format!(
                "is never closed: it would take in {lines}, to the end of the file, as one cell"
            ),
            OpenQuote::TooManyLines => format!(
                "runs over more than {} line breaks (the most a spreadsheet cell holds), so it \
                 is probably never closed",
                limits::CELL_LINE_BREAKS
            ),
            OpenQuote::TooLong => format!(
                "runs over several lines and past {CELL_CHARS} characters (the most a \
                 spreadsheet cell holds), so it is probably never closed"
            ),
        };
        let reread = match (how, swallowed) {
            (OpenQuote::EndOfFile, 0) => String::new(),
            _ => " ferry cut the cell at its first line break and read the lines after it as \
                  rows of their own."
                .to_string(),
        };
        Problem::new(
            Code::UnclosedQuote,
            field,
            format!(
                "the quote that opens the cell in {column} {why}.{reread} Close the quote, or \
                 write a quote that belongs to the text as two (\"\"), then feed this row again"
            ),
        )
    }

    /// A row whose cells do not line up with the header. Cells past the header's end
    /// that are all empty (a trailing separator) carry nothing and are let go. `width` is
    /// the record's own count of cells (a reader keeps at most `limits::COLUMNS`).
    fn ragged(&self, cells: &[String], width: usize) -> Option<Problem> {
        let header = self.columns;
        let count = width.max(cells.len());
        let extra = cells.get(header..).unwrap_or(&[]);
        let too_many = extra.iter().any(|c| !is_blank(c)) || width > cells.len();
        let too_few = count < header && matches!(self.layout, Layout::Delimited { .. });
        if !too_many && !too_few {
            return None;
        }
        let message = match self.layout {
            Layout::Delimited { separator } => {
                let mut message = format!(
                    "row has {count} cells but the header has {header}; check for an unquoted \
                     {separator} or a missing cell"
                );
                if too_many {
                    message.push_str(&format!(" (extra cells: {})", preview(extra)));
                }
                message
            }
            Layout::Sheet | Layout::Json => format!(
                "row has values right of the header's last column ({header} columns); give \
                 those columns a header or clear them (extra cells: {})",
                preview(extra)
            ),
        };
        Some(Problem::new(Code::RaggedRow, "", message))
    }
}

/// Where a fed-back report keeps each row's origin.
#[derive(Default)]
struct OriginColumns {
    source_row: Option<usize>,
    row: Option<usize>,
    source: Option<usize>,
    /// The rows of earlier manifests claimed so far, by manifest id: a second claim of
    /// one is a line copied in the spreadsheet (to add a person, say), not that row.
    claimed: std::collections::HashMap<String, std::collections::HashSet<u64>>,
}

impl OriginColumns {
    fn note(&mut self, name: &str, raw: usize) {
        let slot = match name.to_ascii_lowercase() {
            n if n == SOURCE_ROW_COLUMN => &mut self.source_row,
            n if n == ROW_COLUMN => &mut self.row,
            n if n == SOURCE_COLUMN => &mut self.source,
            _ => return,
        };
        slot.get_or_insert(raw);
    }

    /// The record's origin: `ferry_source_row` when the report had it, else `ferry_row`
    /// (a report of the first round), else the record itself. These are ferry's own
    /// bookkeeping, not data to send: a row whose cells were cleared or mangled is still
    /// read, its origin unknown (row 0: reports leave `ferry_source_row` empty rather
    /// than show a number that would mislead).
    fn of(&self, record: &Record) -> Origin {
        let number = |column: Option<usize>| {
            let cell = record.cells.get(column?)?.trim();
            // A workbook's number cell may come back as `12.0` from other tools.
            let digits = cell.strip_suffix(".0").unwrap_or(cell);
            digits.parse::<u64>().ok().filter(|&n| n > 0)
        };
        let source = self
            .source
            .and_then(|c| record.cells.get(c))
            .map(|c| c.trim().to_ascii_lowercase())
            .filter(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()));
        // `ferry_row` stands in only for a report made before `ferry_source_row` existed:
        // in a later round it counts rows of the fed-back file, not of the original.
        let row = match self.source_row {
            Some(_) => number(self.source_row),
            None => number(self.row),
        };
        if self.source_row.is_none() && self.row.is_none() {
            return Origin::here(record.row);
        }
        match (row, source) {
            (Some(row), Some(id)) => Origin {
                row,
                manifest: OriginManifest::Earlier(id),
            },
            (row, _) => Origin {
                row: row.unwrap_or(0),
                manifest: OriginManifest::Unknown,
            },
        }
    }

    /// `origin`, unless an earlier row of this file already claimed the same row of the
    /// same manifest: then it is unknown, so that a copied line never passes for the
    /// row it was copied from (in the reports, or in `ferry reconcile`).
    fn once(&mut self, origin: Origin) -> Origin {
        let OriginManifest::Earlier(id) = &origin.manifest else {
            return origin;
        };
        if self
            .claimed
            .entry(id.clone())
            .or_default()
            .insert(origin.row)
        {
            origin
        } else {
            Origin {
                row: 0,
                manifest: OriginManifest::Unknown,
            }
        }
    }
}

/// A short, quoted view of some cells for a message.
fn preview(cells: &[String]) -> String {
    const MAX_CELLS: usize = 3;
    const MAX_CHARS: usize = 20;
    let mut parts: Vec<String> = cells
        .iter()
        .take(MAX_CELLS)
        .map(|c| {
            let mut short: String = c.chars().take(MAX_CHARS).collect();
            if short.len() < c.len() {
                short.push('…');
            }
            format!("{short:?}")
        })
        .collect();
    if cells.len() > MAX_CELLS {
        parts.push(format!("… {} more", cells.len() - MAX_CELLS));
    }
    parts.join(", ")
}

/// What a reader thread sends.
pub(crate) enum Msg {
    Record(Record),
    Failed(ManifestError),
    Done,
}

impl Msg {
    /// What the message holds, against the channel's byte budget.
    fn bytes(&self) -> u64 {
        match self {
            Msg::Record(record) => record.bytes(),
            Msg::Failed(_) | Msg::Done => 0,
        }
    }
}

/// Rows read on a helper thread, through a channel bounded in records and in bytes (so
/// memory stays flat however long the rows are).
pub(crate) struct ChannelRecords {
    path: String,
    rx: Receiver<Msg>,
    budget: Arc<Budget>,
    finished: bool,
}

/// How many records may wait in a reader thread's channel, `limits::CHANNEL_BYTES` of
/// them at most. Deep, so that the reader runs ahead in bursts rather than being woken
/// for every row (a channel two records deep reads a sheet at half the speed).
const CHANNEL_DEPTH: usize = 256;

/// The sending end of a reader thread's channel: before it sends a record, it waits
/// until the records not yet received leave room for it in `limits::CHANNEL_BYTES`.
#[derive(Clone)]
pub(crate) struct RecordSender {
    tx: SyncSender<Msg>,
    budget: Arc<Budget>,
}

impl RecordSender {
    /// Sends `msg`, once there is room for it; an error when the receiving side is gone.
    pub(crate) fn send(&self, msg: Msg) -> Result<(), mpsc::SendError<Msg>> {
        if !self.budget.take(msg.bytes()) {
            return Err(mpsc::SendError(msg));
        }
        self.tx.send(msg)
    }
}

/// Runs `read` on a thread of its own, sending through a `RecordSender`. `read` returns
/// `Err(Some(e))` to end the stream with an error, `Err(None)` when the receiving side
/// is gone.
pub(crate) fn spawn_reader<F>(
    path: &str,
    name: &str,
    read: F,
) -> Result<ChannelRecords, ManifestError>
where
    F: FnOnce(RecordSender) -> Result<(), Option<ManifestError>> + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(CHANNEL_DEPTH);
    let budget = Arc::new(Budget::new(limits::CHANNEL_BYTES));
    let sender = RecordSender {
        tx,
        budget: Arc::clone(&budget),
    };
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let end = match read(sender.clone()) {
                Ok(()) => Msg::Done,
                Err(Some(e)) => Msg::Failed(e),
                Err(None) => return,
            };
            let _ = sender.send(end);
        })
        .map_err(|e| ManifestError::Unreadable {
            path: path.to_string(),
            why: Unreadable::ReaderThread(e),
        })?;
    Ok(ChannelRecords {
        path: path.to_string(),
        rx,
        budget,
        finished: false,
    })
}

/// Bytes of the records in a reader's channel: the sender takes before it sends, the
/// receiver gives back what it receives.
struct Budget {
    state: Mutex<Held>,
    changed: Condvar,
    limit: u64,
}

#[derive(Default)]
struct Held {
    bytes: u64,
    /// The receiving side is gone: nothing will be given back.
    closed: bool,
    /// The sender waits for room (a wake-up costs a system call: only then is one sent).
    waiting: bool,
}

impl Budget {
    fn new(limit: u64) -> Budget {
        Budget {
            state: Mutex::new(Held::default()),
            changed: Condvar::new(),
            limit,
        }
    }

    /// Waits until `bytes` fit, and takes them. A record larger than the whole budget
    /// passes when the channel is empty, so nothing waits forever. False when the
    /// receiving side is gone.
    fn take(&self, bytes: u64) -> bool {
        let Ok(mut held) = self.state.lock() else {
            return false;
        };
        while !held.closed && held.bytes > 0 && held.bytes.saturating_add(bytes) > self.limit {
            held.waiting = true;
            held = match self.changed.wait(held) {
                Ok(held) => held,
                Err(_) => return false,
            };
            held.waiting = false;
        }
        held.bytes = held.bytes.saturating_add(bytes);
        !held.closed
    }

    /// Gives back what a received message took.
    fn give(&self, bytes: u64) {
        if let Ok(mut held) = self.state.lock() {
            held.bytes = held.bytes.saturating_sub(bytes);
            if held.waiting {
                self.changed.notify_one();
            }
        }
    }

    fn close(&self) {
        if let Ok(mut held) = self.state.lock() {
            held.closed = true;
            self.changed.notify_one();
        }
    }
}

impl Drop for ChannelRecords {
    fn drop(&mut self) {
        // The relay may be waiting for room that will never be given back.
        self.budget.close();
    }
}

impl Iterator for ChannelRecords {
    type Item = Result<Record, ManifestError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let msg = self.rx.recv();
        if let Ok(msg) = &msg {
            self.budget.give(msg.bytes());
        }
        if !matches!(msg, Ok(Msg::Record(_))) {
            self.finished = true;
        }
        match msg {
            Ok(Msg::Record(record)) => Some(Ok(record)),
            Ok(Msg::Failed(e)) => Some(Err(e)),
            Ok(Msg::Done) => None,
            // The thread ended without saying it was done: it failed, and rows may be
            // missing, so this must not look like the end of the file.
            Err(_) => Some(Err(ManifestError::Unreadable {
                path: self.path.clone(),
                why: Unreadable::ReaderStopped,
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    /// A record of one cell of `bytes` bytes.
    fn record_of(row: u64, bytes: usize) -> Record {
        Record::new(row, vec!["x".repeat(bytes)])
    }

    #[test]
    fn a_reader_runs_ahead_by_the_byte_budget_not_by_256_records() {
        const BYTES: usize = 4 * 1024 * 1024;
        let sent = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&sent);
        let mut records = spawn_reader("test", "test-reader", move |tx: RecordSender| {
            for row in 1..=64 {
                tx.send(Msg::Record(record_of(row, BYTES)))
                    .map_err(|_| None)?;
                counted.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        })
        .expect("reader starts");
        std::thread::sleep(Duration::from_millis(300));
        // Seven fit in the 32 MiB (with what a record holds besides its text); before
        // the budget, all 64 (256 MiB) were read ahead.
        let ahead = sent.load(Ordering::SeqCst);
        assert!(ahead <= 8, "{ahead} records of 4 MiB read ahead");
        let rows: Vec<u64> = records.by_ref().map(|r| r.expect("a record").row).collect();
        assert_eq!(rows, (1..=64).collect::<Vec<_>>());
    }

    #[test]
    fn a_record_larger_than_the_budget_passes_alone() {
        let big = limits::CHANNEL_BYTES as usize + 1;
        let records = spawn_reader("test", "test-reader", move |tx: RecordSender| {
            for row in 1..=3 {
                tx.send(Msg::Record(record_of(row, big)))
                    .map_err(|_| None)?;
            }
            Ok(())
        })
        .expect("reader starts");
        let rows: Vec<u64> = records.map(|r| r.expect("a record").row).collect();
        assert_eq!(rows, [1, 2, 3]);
    }

    #[test]
    fn dropping_the_rows_stops_a_reader_waiting_for_room() {
        let (done_tx, done_rx) = mpsc::channel();
        let mut records = spawn_reader("test", "test-reader", move |tx: RecordSender| {
            let mut result = Ok(());
            for row in 1..=100 {
                if tx.send(Msg::Record(record_of(row, 1024 * 1024))).is_err() {
                    result = Err(None);
                    break;
                }
            }
            let _ = done_tx.send(());
            result
        })
        .expect("reader starts");
        assert_eq!(records.next().map(|r| r.map(|r| r.row).ok()), Some(Some(1)));
        drop(records);
        done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the reader stops once nobody reads");
    }
}
