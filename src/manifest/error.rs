//! What makes a manifest unreadable as a whole, as data: each variant says what
//! happened and where, and `Display` builds the message, which names the file, the line
//! where there is one, and what to do.

use std::fmt;
use std::io;

use super::encoding::{Guess, ACCEPTED_ENCODINGS};
use super::limits;
use super::package::{Over, Shown, TODO};
use super::Format;

/// A problem with the manifest as a whole: nothing should be sent. The `Display` form
/// is meant to be printed to the user as `error: {err}`.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {why}")]
    Unreadable { path: String, why: Unreadable },
    #[error("{path}: line {line}: {why}")]
    Syntax {
        path: String,
        line: u64,
        why: Syntax,
    },
    #[error("{path}: cannot read it: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {why}; pass --format csv, tsv, json, jsonl or xlsx")]
    UnknownFormat { path: String, why: UnknownFormat },
    #[error("unknown encoding \"{name}\"; --encoding accepts {accepted}", accepted = ACCEPTED_ENCODINGS)]
    UnknownEncoding { name: String },
    /// A bound of `limits` passed.
    #[error("{path}: {}, more than the {} ferry reads; {}", passed.what(), passed.limit(), passed.todo())]
    Limit { path: String, passed: Passed },
    /// A part of an XLSX workbook (`part`, its name in the zip) past a bound, or
    /// malformed.
    #[error("{path}: {}", Workbook { part, over })]
    Workbook {
        path: String,
        part: String,
        over: Over,
    },
    #[error(
        "{path}: the workbook has no sheet named \"{sheet}\"; its sheets are {}",
        quote_list(sheets)
    )]
    UnknownSheet {
        path: String,
        sheet: String,
        sheets: Vec<String>,
    },
}

impl ManifestError {
    /// The line (or row) the error is about, when it is about one.
    pub fn line(&self) -> Option<u64> {
        match self {
            ManifestError::Syntax { line, .. } => Some(*line),
            _ => None,
        }
    }
}

fn quote_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a file cannot be read as a manifest at all.
#[derive(Debug, thiserror::Error)]
pub enum Unreadable {
    #[error("this is a directory, not a file")]
    Directory,
    #[error("the file is empty")]
    Empty,
    #[error("the file is empty (it holds only a byte-order mark)")]
    OnlyByteOrderMark,
    #[error("old Excel 97-2003 (.xls) workbooks are not read; save it as .xlsx or CSV UTF-8")]
    XlsName,
    #[error(
        "this is an old Excel 97-2003 (.xls) workbook, not text; save it as .xlsx or CSV UTF-8"
    )]
    XlsBytes,
    #[error(
        "this is a ZIP archive (an .xlsx workbook?), not text; name it .xlsx or pass --format xlsx"
    )]
    Zip,
    /// Not UTF-8, and no `--encoding`: the first bad `byte`, its `line`, and what the
    /// text looks like.
    #[error("{}", not_utf8(*line, guess, *byte))]
    NotUtf8 { line: usize, guess: Guess, byte: u8 },
    #[error(
        "not UTF-8 text (it looks like UTF-16 without a byte-order mark); pass --encoding {order}"
    )]
    Utf16WithoutBom { order: &'static str },
    #[error("the file holds NUL bytes, so it is not text; is it the manifest you meant?")]
    NulBytes,
    #[error(
        "--sheet {sheet:?} chooses a sheet of an XLSX workbook, and this is read as {}; \
         leave --sheet out, or pass --format xlsx if it is a workbook",
        format!("{format:?}").to_uppercase()
    )]
    SheetOfText { sheet: String, format: Format },
    #[error("cannot copy the input to a temporary file: {0}")]
    Spool(io::Error),
    /// `what`: "the file", or the sheet as messages name it.
    #[error("{what} has no header row: every row is empty")]
    NoHeader { what: String },
    #[error("{}", flaw.describe(*row, what))]
    Header {
        row: u64,
        what: String,
        flaw: HeaderFlaw,
    },
    #[error("cannot start a reader thread: {0}")]
    ReaderThread(io::Error),
    #[error("reading stopped unexpectedly (a bug in ferry); no rows after this point were read")]
    ReaderStopped,
    #[error("cannot read it: {0}")]
    Json(serde_json::Error),
    #[error("cannot read the workbook's part \"{part}\" ({cause}); {TODO}")]
    Part {
        part: String,
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(
        "its workbook puts a sheet in the part \"{target}\", which is not named as \
         XML (no spreadsheet does that, and ferry checks only XML parts before reading \
         them); {TODO}"
    )]
    SheetNotXml { target: String },
    #[error("cannot read it as an XLSX workbook ({0}); if it is CSV or JSON, pass --format")]
    NotAWorkbook(Box<calamine::XlsxError>),
    #[error("the workbook has no sheets")]
    NoSheets,
    /// `row`: 0-based, near where reading stopped.
    #[error("sheet \"{sheet}\"{}: cannot read it: {cause}", near(*row))]
    Sheet {
        sheet: String,
        row: Option<u32>,
        cause: SheetCause,
    },
    /// The manifest could not be pinned for the run (see `pin`).
    #[error("{0}")]
    Pin(io::Error),
}

fn not_utf8(line: usize, guess: &Guess, byte: u8) -> String {
    match guess {
        Guess::Gb18030 => format!(
            "not UTF-8 text (it looks like GB18030/GBK, as Chinese Excel exports it; \
             the first non-UTF-8 byte is on line {line}); pass --encoding gb18030"
        ),
        Guess::Big5 => format!(
            "not UTF-8 text (it looks like Big5, as Traditional Chinese Excel exports it; \
             the first non-UTF-8 byte is on line {line}); pass --encoding big5"
        ),
        Guess::Either => format!(
            "not UTF-8 text (it looks like GB18030/GBK or Big5, as Chinese Excel exports them; \
             the first non-UTF-8 byte is on line {line}); pass --encoding gb18030 for Simplified \
             Chinese or --encoding big5 for Traditional Chinese"
        ),
        Guess::Windows1252 => format!(
            "not UTF-8 text (it looks like windows-1252, as Western European Excel saves CSV; \
             the first non-UTF-8 byte is on line {line}); pass --encoding windows-1252"
        ),
        Guess::Unknown => format!(
            "not UTF-8 text (byte 0x{byte:02X} on line {line} is not UTF-8); save the file as \
             UTF-8, or pass --encoding with its encoding ({ACCEPTED_ENCODINGS})"
        ),
    }
}

fn near(row: Option<u32>) -> String {
    match row {
        Some(row) => format!(", near row {}", u64::from(row) + 1),
        None => String::new(),
    }
}

/// Why a header row cannot name its columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderFlaw {
    /// Merged cells, by their range (`B1:C1`).
    Merged(String),
    /// A cell (`C1`) the sheet holds twice.
    Twice(String),
    /// Longer than `limits::ROW_BYTES`.
    TooLong,
}

impl HeaderFlaw {
    fn describe(&self, row: u64, what: &str) -> String {
        match self {
            HeaderFlaw::Merged(range) => format!(
                "the header (row {row}) of {what} has the merged cells {range}, and a merged header names \
                 only its first column; unmerge them and give each column its own name (a title \
                 above the header does not belong in a manifest: delete its row)"
            ),
            HeaderFlaw::Twice(cell) => format!(
                "the header (row {row}) of {what} holds cell {cell} twice, which no spreadsheet writes; \
                 open the file in a spreadsheet, check the header and save it again"
            ),
            HeaderFlaw::TooLong => format!(
                "the header (row {row}) of {what} holds more than the {} of text ferry reads in a \
                 row; a header only names its columns: check that row {row} is the header",
                limits::bytes(limits::ROW_BYTES as u64)
            ),
        }
    }
}

/// What stopped the reading of a sheet.
#[derive(Debug, thiserror::Error)]
pub enum SheetCause {
    #[error("{0}")]
    Calamine(Box<calamine::XlsxError>),
    #[error("a cell lies beyond Excel's last column (index {0})")]
    BeyondLastColumn(u32),
    /// Rows 0-based.
    #[error(
        "row {} comes again after row {}: the sheet's rows are out of order; open it in Excel and save it again",
        u64::from(*row) + 1,
        u64::from(*last) + 1
    )]
    OutOfOrder { row: u32, last: u32 },
}

/// A JSON manifest that is not what one must be.
#[derive(Debug, thiserror::Error)]
pub enum Syntax {
    #[error(
        "the file starts with `{{`, not `[`: a JSON manifest is an array of \
         objects; if it holds one object per line, name it .jsonl or pass \
         --format jsonl"
    )]
    ObjectNotArray,
    #[error("a JSON manifest is an array of objects (`[{{...}}, {{...}}]`), but the file does not start with `[`")]
    NotArray,
    /// An element (1-based) of the array that is not an object, or JSON that is not
    /// valid.
    #[error("{}", array_error(*element, error))]
    Array {
        element: u64,
        error: serde_json::Error,
    },
    /// A line of JSON Lines that is not one object.
    #[error("{}", line_error(error))]
    Line { error: serde_json::Error },
}

fn array_error(element: u64, e: &serde_json::Error) -> String {
    if e.is_data() {
        format!(
            "element {element} of the array is not an object: {}",
            serde_message(e)
        )
    } else {
        format!("{}; the file is not valid JSON", serde_message(e))
    }
}

fn line_error(e: &serde_json::Error) -> String {
    if e.is_data() {
        format!("the line is not a JSON object: {}", serde_message(e))
    } else {
        format!("{}; each line must be one JSON object", serde_message(e))
    }
}

/// serde_json's message without its ` at line L column C` (the error names the line
/// itself), with the column kept.
fn serde_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(message) if e.column() > 0 => format!("{message} (column {})", e.column()),
        Some(message) => message.to_string(),
        None => text,
    }
}

/// Why the format cannot be told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownFormat {
    #[error("standard input has no file name to tell the format by")]
    Stdin,
    #[error("the file name has no extension to tell the format by")]
    NoExtension,
    #[error("cannot tell the format from the extension \".{0}\"")]
    Extension(String),
}

/// Which bound of `limits` a manifest passed, and by what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Passed {
    /// The header row `row` is `width` columns wide.
    HeaderColumns { row: u64, width: usize },
    /// JSON: a distinct key past `JSON_KEYS`, the `count`-th, `last`, found in `place`.
    JsonKeys {
        last: String,
        count: usize,
        place: Place,
    },
    /// JSON: an element or line past `JSON_ELEMENT_BYTES`.
    JsonElement { place: Place },
    /// A sheet cell at `row` (0-based), past Excel's rows.
    SheetRow { sheet: String, row: u32 },
}

/// Where in a JSON file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// `element N`, as a key's place.
    Element(u64),
    /// `element N of the array`, as a length's place.
    ArrayElement(u64),
    Line(u64),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Element(n) => write!(f, "element {n}"),
            Place::ArrayElement(n) => write!(f, "element {n} of the array"),
            Place::Line(n) => write!(f, "line {n}"),
        }
    }
}

impl Passed {
    fn what(&self) -> String {
        match self {
            Passed::HeaderColumns { row, width } => format!(
                "the header (row {row}) has {} columns",
                limits::count(*width as u64)
            ),
            Passed::JsonKeys { last, count, place } => format!(
                "key \"{last}\" in {place} is distinct key number {}",
                limits::count(*count as u64)
            ),
            Passed::JsonElement { place } => format!(
                "{place} is longer than {}",
                limits::bytes(limits::JSON_ELEMENT_BYTES)
            ),
            Passed::SheetRow { sheet, row } => format!(
                "sheet \"{sheet}\" has a cell at row {}",
                limits::count(u64::from(*row) + 1)
            ),
        }
    }

    fn limit(&self) -> String {
        match self {
            Passed::HeaderColumns { .. } => {
                format!("{} (Excel's limit)", limits::count(limits::COLUMNS as u64))
            }
            Passed::JsonKeys { .. } => limits::count(limits::JSON_KEYS as u64),
            Passed::JsonElement { .. } => limits::bytes(limits::JSON_ELEMENT_BYTES),
            Passed::SheetRow { .. } => {
                format!("{} rows (Excel's limit)", limits::count(limits::SHEET_ROWS))
            }
        }
    }

    fn todo(&self) -> &'static str {
        match self {
            Passed::HeaderColumns { .. } => {
                "remove the columns the kind does not use, or split the file"
            }
            Passed::JsonKeys { .. } => {
                "every report row gets a cell for every key any object has, so write the records \
                 with the same keys (an id belongs in a value, not in a key)"
            }
            Passed::JsonElement { .. } => {
                "a record holds a few short values; check that the file is a list of records"
            }
            Passed::SheetRow { .. } => {
                "the file was not saved by a spreadsheet as it is; open it in one and save \
                 it again, or save the sheet as CSV UTF-8"
            }
        }
    }
}

/// A workbook part's problem, as `ManifestError::Workbook` shows it.
struct Workbook<'a> {
    part: &'a str,
    over: &'a Over,
}

impl fmt::Display for Workbook<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.over.describe(self.part) {
            Shown::Malformed(message) => f.write_str(&message),
            Shown::Passed { what, limit, todo } => {
                write!(f, "{what}, more than the {limit} ferry reads; {todo}")
            }
        }
    }
}

impl From<calamine::XlsxError> for SheetCause {
    fn from(e: calamine::XlsxError) -> SheetCause {
        SheetCause::Calamine(Box::new(e))
    }
}
