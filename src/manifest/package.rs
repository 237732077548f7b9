//! An XLSX file checked before calamine opens it: the zip's expansion bounded.
//!
//! An XLSX file is a zip of XML parts, and a few megabytes of zip can hold gigabytes of
//! XML. calamine holds some parts in memory whole (shared strings, styles, the workbook),
//! reserves room up front for as many shared strings as the file declares, and builds
//! each cell of a sheet whole. So every XML part is checked first, against the bounds in
//! `limits`:
//! - its uncompressed size as the zip declares it (the zip crate refuses to inflate a part
//!   past its declared size, so a part that lies is caught when it is read);
//! - its content, inflated once and scanned byte by byte, never parsed or kept: no tag or
//!   text, no cell (`<c>`) and no shared string (`<si>`) longer than
//!   `XLSX_ELEMENT_BYTES`, and no more shared strings, counted or declared, than
//!   `XLSX_SHARED_STRINGS`;
//! - the cell references calamine turns into numbers (`r` of a cell or a row, `ref` of
//!   the sheet's dimension): none past Excel's last row or column. calamine adds them up
//!   unchecked, so a reference of many letters or digits panicked (debug builds) or
//!   wrapped round to a cell the file never named (release builds); the fuzzer found it.
//! - its merged ranges (`<mergeCell ref="B2:B5"/>`, which a worksheet lists after its
//!   cells): at most `XLSX_MERGED_RANGES`, each a range within Excel's rows and columns,
//!   written plainly. calamine's own parser of a range can overflow (a panic in a debug
//!   build) on what a spreadsheet never writes, so nothing else reaches it.
//!
//! Sheet rows and columns past Excel's reached without a reference (cells and rows
//! counted on from the last one) are checked as cells are read (`xlsx.rs`).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};

use super::limits::{
    self, COLUMNS, SHEET_ROWS, XLSX_ELEMENT_BYTES, XLSX_MERGED_RANGES, XLSX_PART_BYTES,
    XLSX_SHARED_STRINGS, XLSX_SHEET_BYTES,
};
use super::{ManifestError, Unreadable};

/// What to do about a workbook past a bound: CSV streams, and a spreadsheet writes parts
/// far within them.
pub(super) const TODO: &str =
    "if a spreadsheet saved it, save the sheet as CSV UTF-8 and pass that; \
                    a workbook from anywhere else may not be what it claims";

/// What the check learnt of the workbook.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Package {
    /// Some worksheet has merged cells (all of them checked).
    pub merges: bool,
}

/// Checks `file`'s parts. A file that is not a zip passes: calamine says what is wrong.
pub(crate) fn check(path: &str, file: &mut File) -> Result<Package, ManifestError> {
    let result = check_parts(path, file);
    file.seek(SeekFrom::Start(0))
        .map_err(|source| ManifestError::Io {
            path: path.to_string(),
            source,
        })?;
    result
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Sheet,
    SharedStrings,
    Styles,
    Other,
}

fn check_parts(path: &str, file: &File) -> Result<Package, ManifestError> {
    let clone = file.try_clone().map_err(|source| ManifestError::Io {
        path: path.to_string(),
        source,
    })?;
    let Ok(mut zip) = zip::ZipArchive::new(BufReader::new(clone)) else {
        return Ok(Package::default());
    };
    let mut parts = Vec::new();
    for i in 0..zip.len() {
        let Ok(entry) = zip.by_index_raw(i) else {
            continue;
        };
        let Ok(name) = entry.name().map(|n| n.to_string()) else {
            continue;
        };
        let lower = name.to_ascii_lowercase();
        if !(lower.ends_with(".xml") || lower.ends_with(".rels")) {
            continue; // images and the like: calamine does not read them
        }
        let part = if lower.ends_with("sharedstrings.xml") {
            Part::SharedStrings
        } else if lower.ends_with("styles.xml") {
            Part::Styles
        } else if lower.contains("worksheets/") {
            Part::Sheet
        } else {
            Part::Other
        };
        if entry.size() > part.bound() {
            let (size, compressed) = (entry.size(), entry.compressed_size());
            return Err(Over::Expands {
                part,
                size,
                compressed,
            }
            .error(path, &name));
        }
        parts.push((i, name, part));
    }
    check_sheet_targets(path, &mut zip)?;
    let mut package = Package::default();
    for (i, name, part) in parts {
        let entry = zip.by_index(i).map_err(|e| unreadable(path, &name, e))?;
        package.merges |= scan(path, &name, part, entry)? > 0;
    }
    Ok(package)
}

/// The workbook's relationships: where calamine finds each sheet. Only parts named
/// `.xml` are scanned above (images and the like are not read), so a sheet put in a part
/// named otherwise would pass every bound unchecked: such a workbook is refused. Read
/// whole, so bounded far below the other parts (a workbook of a thousand sheets takes
/// about 100 KiB).
const RELATIONSHIPS: &str = "xl/_rels/workbook.xml.rels";
const RELATIONSHIPS_BYTES: u64 = 1024 * 1024;

fn check_sheet_targets(
    path: &str,
    zip: &mut zip::ZipArchive<BufReader<File>>,
) -> Result<(), ManifestError> {
    let Some(index) = (0..zip.len()).find(|&i| {
        zip.by_index_raw(i).is_ok_and(|e| {
            e.name()
                .is_ok_and(|n| n.eq_ignore_ascii_case(RELATIONSHIPS))
        })
    }) else {
        return Ok(()); // calamine says what is wrong with a workbook without them
    };
    let entry = zip
        .by_index(index)
        .map_err(|e| unreadable(path, RELATIONSHIPS, e))?;
    let mut xml = Vec::new();
    entry
        .take(RELATIONSHIPS_BYTES + 1)
        .read_to_end(&mut xml)
        .map_err(|e| unreadable(path, RELATIONSHIPS, e))?;
    if xml.len() as u64 > RELATIONSHIPS_BYTES {
        return Err(Over::Relationships.error(path, RELATIONSHIPS));
    }
    match sheet_target_not_xml(&String::from_utf8_lossy(&xml)) {
        Some(target) => Err(ManifestError::Unreadable {
            path: path.to_string(),
            why: Unreadable::SheetNotXml { target },
        }),
        None => Ok(()),
    }
}

/// The first worksheet or chart sheet target in workbook relationships that does not
/// end in `.xml`.
fn sheet_target_not_xml(rels: &str) -> Option<String> {
    let attribute = |tag: &str, name: &str| -> Option<String> {
        let at = tag.find(&format!("{name}="))? + name.len() + 1;
        let rest = tag.get(at..)?;
        let quote = rest.chars().next().filter(|q| *q == '"' || *q == '\'')?;
        let value = &rest[1..];
        Some(value[..value.find(quote)?].to_string())
    };
    rels.split('<').skip(1).find_map(|tag| {
        let kind = attribute(tag, "Type")?;
        let sheet = kind.ends_with("/worksheet") || kind.ends_with("/chartsheet");
        let target = attribute(tag, "Target")?;
        (sheet && !target.to_ascii_lowercase().ends_with(".xml")).then_some(target)
    })
}

impl Part {
    /// The most bytes a part of this kind may expand to.
    fn bound(self) -> u64 {
        if self == Part::Sheet {
            XLSX_SHEET_BYTES
        } else {
            XLSX_PART_BYTES
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Part::Sheet => "(uncompressed, per sheet)",
            Part::SharedStrings | Part::Styles | Part::Other => {
                "(uncompressed, per part other than a sheet)"
            }
        }
    }
}

fn unreadable(
    path: &str,
    name: &str,
    cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> ManifestError {
    ManifestError::Unreadable {
        path: path.to_string(),
        why: Unreadable::Part {
            part: name.to_string(),
            cause: cause.into(),
        },
    }
}

/// Inflates one part and checks it as it streams by. Returns how many merged ranges it
/// lists.
fn scan(path: &str, name: &str, part: Part, mut reader: impl Read) -> Result<u64, ManifestError> {
    let mut scanner = Scanner::new(part);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(unreadable(path, name, e)),
        };
        for &b in &buf[..n] {
            if let Some(over) = scanner.byte(b) {
                return Err(over.error(path, name));
            }
        }
    }
    match scanner.end() {
        Some(over) => Err(over.error(path, name)),
        None => Ok(scanner.merges),
    }
}

/// A bound a part passed.
#[derive(Debug, PartialEq, Eq)]
pub enum Over {
    /// The part expands to `size` bytes (from `compressed` in the file), more than a
    /// part of its kind may.
    Expands {
        part: Part,
        size: u64,
        compressed: u64,
    },
    /// The workbook's relationships are longer than `RELATIONSHIPS_BYTES`.
    Relationships,
    /// A tag or a text longer than `XLSX_ELEMENT_BYTES`.
    Run,
    /// A cell or a shared string longer than `XLSX_ELEMENT_BYTES`.
    Element(Part),
    /// More shared strings than `XLSX_SHARED_STRINGS`, counted or (`declared`) declared.
    Strings { declared: Option<u64> },
    /// More cell formats than `XLSX_STYLES`.
    Styles,
    /// A cell reference past Excel's last row (the row number, for messages).
    Row(String),
    /// A cell reference past Excel's last column (its letters as written).
    Column(String),
    /// More merged ranges than `XLSX_MERGED_RANGES`.
    Merges,
    /// Not a bound passed: XML that no spreadsheet writes, and that would mislead the
    /// reader.
    Malformed(Malformed),
}

/// A part written as no spreadsheet writes it.
#[derive(Debug, PartialEq, Eq)]
pub enum Malformed {
    /// A dimension (`ref` of `<dimension>`) whose end comes before its start, as written.
    Backwards(String),
    /// A merged range that is not plainly a range of cells within Excel's bounds: its
    /// tag's attributes, as far as they were read.
    BadMerge(Vec<u8>),
    /// A second list of merged ranges (calamine would read only the first).
    MergeLists,
}

/// How a part's problem reads: a bound passed, or a part no spreadsheet writes.
pub enum Shown {
    Passed {
        what: String,
        limit: String,
        todo: &'static str,
    },
    Malformed(String),
}

impl Over {
    /// The error for the part named `name`.
    fn error(self, path: &str, name: &str) -> ManifestError {
        ManifestError::Workbook {
            path: path.to_string(),
            part: name.to_string(),
            over: self,
        }
    }

    /// How the problem reads, for the part named `name`.
    pub(super) fn describe(&self, name: &str) -> Shown {
        let mut todo = TODO;
        let (what, limit) = match self {
            Over::Malformed(malformed) => return Shown::Malformed(malformed.describe(name)),
            Over::Expands {
                part,
                size,
                compressed,
            } => (
                format!(
                    "its part \"{name}\" expands to {} (from {} in the file)",
                    limits::bytes(*size),
                    limits::bytes(*compressed)
                ),
                format!("{} {}", limits::bytes(part.bound()), part.noun()),
            ),
            Over::Relationships => (
                format!("its part \"{name}\" is larger"),
                limits::bytes(RELATIONSHIPS_BYTES),
            ),
            Over::Run => too_long(name, None),
            Over::Element(part) => too_long(name, Some(*part)),
            Over::Styles => (
                format!(
                    "its part \"{name}\" holds more than {} cell formats",
                    limits::count(limits::XLSX_STYLES)
                ),
                format!("{} (Excel's own limit)", limits::count(limits::XLSX_STYLES)),
            ),
            Over::Strings { declared: Some(n) } => (
                format!("it declares {} shared strings", limits::count(*n)),
                limits::count(XLSX_SHARED_STRINGS),
            ),
            Over::Row(row) => (
                format!("its part \"{name}\" refers to row {row}"),
                format!("{} rows (Excel's limit)", limits::count(SHEET_ROWS)),
            ),
            Over::Column(column) => (
                format!("its part \"{name}\" refers to column {column}"),
                format!("{} columns (Excel's limit)", limits::count(COLUMNS as u64)),
            ),
            Over::Strings { declared: None } => (
                format!(
                    "its part \"{name}\" holds more than {} shared strings",
                    limits::count(XLSX_SHARED_STRINGS)
                ),
                limits::count(XLSX_SHARED_STRINGS),
            ),
            Over::Merges => {
                todo = "unmerge the sheet's cells (select them all, then Unmerge Cells) and \
                        fill in each one; a manifest needs no merged cells";
                (
                    format!(
                        "its part \"{name}\" has more than {} merged ranges",
                        limits::count(XLSX_MERGED_RANGES)
                    ),
                    limits::count(XLSX_MERGED_RANGES),
                )
            }
        };
        Shown::Passed { what, limit, todo }
    }
}

/// What passed `XLSX_ELEMENT_BYTES` (or a number format's bound) in part `name`: an
/// element of `part`, or (`None`) any tag or text; and the bound.
fn too_long(name: &str, part: Option<Part>) -> (String, String) {
    let size = limits::bytes(XLSX_ELEMENT_BYTES);
    let cell = format!(
        "{size} (a cell holds at most {} characters)",
        limits::CELL_CHARS
    );
    match part {
        None => (
            format!("its part \"{name}\" holds a tag or a text longer than {size}"),
            cell,
        ),
        Some(Part::Sheet) => (
            format!("a cell of its part \"{name}\" takes more than {size} of XML"),
            cell,
        ),
        Some(Part::Styles) => {
            let format_bytes = limits::bytes(limits::XLSX_NUMBER_FORMAT_BYTES);
            (
                format!("a number format of its part \"{name}\" takes more than {format_bytes}"),
                format!("{format_bytes} (Excel allows 255 characters in a number format)"),
            )
        }
        Some(_) => (
            format!("a shared string of its part \"{name}\" takes more than {size} of XML"),
            cell,
        ),
    }
}

impl Malformed {
    pub(super) fn describe(&self, name: &str) -> String {
        match self {
            Malformed::Backwards(dimension) => format!(
                "its part \"{name}\" gives the sheet's dimension as \"{dimension}\", \
                 which ends before it starts; {TODO}"
            ),
            Malformed::BadMerge(tag) => format!(
                "its part \"{name}\" has a merged range that is not a range of cells within \
                 Excel's rows and columns (<mergeCell{}>); {TODO}",
                String::from_utf8_lossy(tag)
            ),
            Malformed::MergeLists => format!(
                "its part \"{name}\" has more than one list of merged cells, which no \
                 spreadsheet writes; {TODO}"
            ),
        }
    }
}

/// The longest name a scanned tag needs (`sheetData`); longer names are no concern.
const NAME: usize = 16;

/// Scans XML bytes without parsing them: tags are found by `<`, their local names read
/// far enough to tell cells, shared strings and their containers apart.
struct Scanner {
    part: Part,
    pos: u64,
    /// Where the last `<` was.
    last_tag: u64,
    /// Reading a tag's name: its bytes so far (`None` once it is past `NAME`).
    name: Option<Vec<u8>>,
    in_name: bool,
    closing: bool,
    /// Where the cell or shared string being read started.
    element_start: Option<u64>,
    elements: u64,
    /// The `<sst ...>` tag, kept to read `uniqueCount`.
    sst_tag: Option<Vec<u8>>,
    /// The attribute holding cell references in the tag being read (`r` of `<c>` and
    /// `<row>`, `ref` of `<dimension>`), whose attributes are kept in `attributes`.
    reference: Option<&'static [u8]>,
    attributes: Vec<u8>,
    /// The quote character of the attribute value being read, if inside one (a `>`
    /// there does not end the tag).
    quote: Option<u8>,
    /// In a sheet: merged ranges and lists of them so far, and the attributes of the
    /// `<mergeCell ...>` tag being read.
    merges: u64,
    merge_lists: u64,
    merge_tag: Option<Vec<u8>>,
}

/// The most bytes of a `<mergeCell ...>` tag's attributes (`ref="A1:XFD1048576"` takes
/// 20): a longer one is refused.
const MERGE_TAG: usize = 256;

impl Scanner {
    fn new(part: Part) -> Scanner {
        Scanner {
            part,
            pos: 0,
            last_tag: 0,
            name: None,
            in_name: false,
            closing: false,
            element_start: None,
            elements: 0,
            sst_tag: None,
            reference: None,
            attributes: Vec::new(),
            quote: None,
            merges: 0,
            merge_lists: 0,
            merge_tag: None,
        }
    }

    /// Takes one byte; `Some` as soon as a bound is passed.
    fn byte(&mut self, b: u8) -> Option<Over> {
        self.pos += 1;
        if let Some(attribute) = self.reference {
            return self.attribute_byte(attribute, b);
        }
        if let Some(over) = self.watched_tag_byte(b) {
            return Some(over);
        }
        if b == b'<' {
            if self.pos - self.last_tag > XLSX_ELEMENT_BYTES {
                return Some(Over::Run);
            }
            self.last_tag = self.pos;
            self.in_name = true;
            self.closing = false;
            self.name = Some(Vec::with_capacity(NAME));
            return None;
        }
        if self.pos - self.last_tag > XLSX_ELEMENT_BYTES {
            return Some(Over::Run);
        }
        if let Some(start) = self.element_start {
            let bound = match self.part {
                Part::Styles => limits::XLSX_NUMBER_FORMAT_BYTES,
                _ => XLSX_ELEMENT_BYTES,
            };
            if self.pos - start > bound {
                return Some(Over::Element(self.part));
            }
        }
        if !self.in_name {
            return None;
        }
        match b {
            b'/' if self.name.as_ref().is_some_and(Vec::is_empty) && !self.closing => {
                self.closing = true;
            }
            b'/' | b'>' | b' ' | b'\t' | b'\r' | b'\n' => {
                self.in_name = false;
                return self.tag(b);
            }
            // A namespace prefix (`x:c`): only the local name counts.
            b':' => self.name = Some(Vec::with_capacity(NAME)),
            _ => match self.name.as_mut() {
                Some(name) if name.len() < NAME => name.push(b),
                _ => self.name = None,
            },
        }
        None
    }

    /// A byte of the attributes of a tag that holds a cell reference in `attribute`.
    fn attribute_byte(&mut self, attribute: &'static [u8], b: u8) -> Option<Over> {
        // Inside the tag, as XML reads it: a `<` or `>` in a quoted value is part of
        // the value (calamine reads it so), not a tag of its own.
        if self.quote.is_none() && b == b'>' {
            self.reference = None;
            return bad_reference(&self.attributes, attribute);
        }
        match self.quote {
            None if b == b'"' || b == b'\'' => self.quote = Some(b),
            Some(q) if q == b => self.quote = None,
            _ => {}
        }
        if self.pos - self.last_tag > XLSX_ELEMENT_BYTES {
            return Some(Over::Run);
        }
        self.attributes.push(b);
        None
    }

    /// A byte of the `<sst ...>` or `<mergeCell ...>` tag being kept, if any: checked
    /// when the tag ends.
    fn watched_tag_byte(&mut self, b: u8) -> Option<Over> {
        if let Some(tag) = self.sst_tag.as_mut() {
            if b == b'>' {
                let declared = unique_count(tag);
                self.sst_tag = None;
                if declared.is_some_and(|n| n > XLSX_SHARED_STRINGS) {
                    return Some(Over::Strings { declared });
                }
            } else if tag.len() < 4096 {
                tag.push(b);
            }
        }
        if let Some(tag) = self.merge_tag.as_mut() {
            if b == b'>' {
                let tag = std::mem::take(tag);
                self.merge_tag = None;
                if !merge_attributes_ok(&tag) {
                    return Some(Over::Malformed(Malformed::BadMerge(tag)));
                }
            } else if b == b'<' || tag.len() >= MERGE_TAG {
                return Some(Over::Malformed(Malformed::BadMerge(std::mem::take(tag))));
            } else {
                tag.push(b);
            }
        }
        None
    }

    /// A tag's name has been read, up to `end` (the byte after it).
    fn tag(&mut self, end: u8) -> Option<Over> {
        let attributes = end != b'/' && end != b'>';
        let name = self.name.take()?;
        if self.part == Part::Styles {
            return self.style_tag(&name);
        }
        if attributes && !self.closing && matches!(self.part, Part::Sheet | Part::Other) {
            // Any part but shared strings and styles: the workbook may put a sheet anywhere.
            self.reference = match name.as_slice() {
                b"c" | b"row" => Some(b"r"),
                b"dimension" => Some(b"ref"),
                _ => None,
            };
            if self.reference.is_some() {
                self.attributes.clear();
                self.quote = None;
            }
        }
        if self.part == Part::Sheet && !self.closing {
            if name == b"mergeCell" {
                self.merges += 1;
                if self.merges > XLSX_MERGED_RANGES {
                    return Some(Over::Merges);
                }
                if end != b'>' {
                    self.merge_tag = Some(vec![end]);
                }
            } else if name == b"mergeCells" {
                self.merge_lists += 1;
                if self.merge_lists > 1 {
                    return Some(Over::Malformed(Malformed::MergeLists));
                }
            }
        }
        let (element, container) = match self.part {
            Part::Sheet => (&b"c"[..], &b"sheetData"[..]),
            Part::SharedStrings => (&b"si"[..], &b"sst"[..]),
            Part::Styles | Part::Other => return None,
        };
        if name == element && !self.closing {
            self.element_start = Some(self.pos);
            self.elements += 1;
            if self.part == Part::SharedStrings && self.elements > XLSX_SHARED_STRINGS {
                return Some(Over::Strings { declared: None });
            }
        } else if name == container {
            self.element_start = None;
            if !self.closing && self.part == Part::SharedStrings {
                self.sst_tag = Some(Vec::new());
            }
        }
        None
    }

    /// In the styles: a number format is one tag (`<numFmt .../>`), measured until the
    /// next tag; cell formats (`<xf>`) are counted.
    fn style_tag(&mut self, name: &[u8]) -> Option<Over> {
        self.element_start = (name == b"numFmt" && !self.closing).then_some(self.pos);
        if name == b"xf" && !self.closing {
            self.elements += 1;
            if self.elements > limits::XLSX_STYLES {
                return Some(Over::Styles);
            }
        }
        None
    }

    fn end(&mut self) -> Option<Over> {
        if self.pos - self.last_tag > XLSX_ELEMENT_BYTES {
            return Some(Over::Run);
        }
        None
    }
}

/// The first cell reference in attribute `name` of a tag's `attributes` (the bytes
/// between its name and its `>`) that calamine cannot do its sums on: past Excel's grid,
/// or, for a dimension (`ref`, two references split at `:`), ending before it starts.
/// Attributes are split as calamine splits them (a key runs to `=`; it stops at the
/// first malformed one), and a reference is read as calamine reads it: letters (the
/// column), then digits (the row), up to the first other byte.
fn bad_reference(attributes: &[u8], name: &[u8]) -> Option<Over> {
    let mut rest = attributes.strip_suffix(b"/").unwrap_or(attributes);
    loop {
        rest = rest.trim_ascii_start();
        let eq = rest.iter().position(|b| *b == b'=')?;
        let key = rest[..eq].trim_ascii_end();
        let (&quote, tail) = rest[eq + 1..].trim_ascii_start().split_first()?;
        if quote != b'"' && quote != b'\'' {
            return None;
        }
        let close = tail.iter().position(|b| *b == quote).unwrap_or(tail.len());
        let value = &tail[..close];
        rest = tail.get(close + 1..).unwrap_or_default();
        if key != name {
            continue;
        }
        // The (column, row) of each reference that calamine reads whole.
        let mut whole = Vec::new();
        for reference in value.split(|b| *b == b':') {
            let letters = reference
                .iter()
                .take_while(|b| b.is_ascii_alphabetic())
                .count();
            let (column, tail) = reference.split_at(letters);
            let digits = tail.iter().take_while(|b| b.is_ascii_digit()).count();
            let row = &tail[..digits];
            let column_number = column.iter().fold(0u64, |n, b| {
                n.saturating_mul(26)
                    .saturating_add(u64::from(b.to_ascii_uppercase() - b'A') + 1)
            });
            let row_number = row.iter().fold(0u64, |n, b| {
                n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
            });
            // As written, cut short when very long.
            let shown = |text: &[u8]| match text.len() {
                0..=20 => String::from_utf8_lossy(text).into_owned(),
                _ => format!("{}…", String::from_utf8_lossy(&text[..20])),
            };
            if row_number > SHEET_ROWS {
                return Some(Over::Row(match row_number {
                    u64::MAX => shown(row),
                    n => limits::count(n),
                }));
            }
            if column_number > COLUMNS as u64 {
                return Some(Over::Column(shown(column)));
            }
            if letters > 0 && digits > 0 && letters + digits == reference.len() {
                whole.push((column_number, row_number));
            }
        }
        // calamine subtracts the start from the end of a dimension of two references.
        if let [(start_column, start_row), (end_column, end_row)] = whole[..] {
            let pieces = value.split(|b| *b == b':').count();
            let backwards = end_column < start_column || end_row < start_row;
            if name == b"ref" && pieces == 2 && backwards {
                return Some(Over::Malformed(Malformed::Backwards(
                    String::from_utf8_lossy(value).into_owned(),
                )));
            }
        }
    }
}

/// Whether what follows `<mergeCell` up to its `>` is plain `name="value"` pairs, and
/// every `ref` among them a range of cells within Excel's bounds, its first cell above
/// and left of its last. Anything else (entities, a stray `>`, a reversed range, a row
/// past Excel's) is refused, so calamine only ever parses ranges it parses safely.
fn merge_attributes_ok(attributes: &[u8]) -> bool {
    // XML's white space only (a form feed, say, would part a name for one parser and not
    // for another).
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let trim_start = |s: &[u8]| -> usize { s.iter().take_while(|b| space(b)).count() };
    let mut rest = attributes;
    loop {
        let skipped = trim_start(rest);
        let trimmed = &rest[skipped..];
        if trimmed.is_empty() || trimmed == b"/" {
            return true;
        }
        if skipped == 0 {
            return false; // attributes are set apart by white space
        }
        let Some(eq) = trimmed.iter().position(|&b| b == b'=') else {
            return false;
        };
        let name = &trimmed[..eq];
        let name = &name[..name.len() - name.iter().rev().take_while(|b| space(b)).count()];
        let value = &trimmed[eq + 1..];
        let value = &value[trim_start(value)..];
        let Some((&quote, value)) = value.split_first() else {
            return false;
        };
        let Some(close) = value.iter().position(|&b| b == quote) else {
            return false;
        };
        let plain_name = !name.is_empty()
            && name
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"_:.-".contains(b));
        if !matches!(quote, b'"' | b'\'') || !plain_name {
            return false;
        }
        if name == b"ref" && cell_range(&value[..close]).is_none() {
            return false;
        }
        rest = &value[close + 1..];
    }
}

/// `B2:C5` or `B2` as (first row, first column, last row, last column), 1-based,
/// within Excel's sheet and in order.
fn cell_range(text: &[u8]) -> Option<(u64, u64, u64, u64)> {
    let mut ends = text.splitn(2, |&b| b == b':');
    let first = cell(ends.next()?)?;
    let last = match ends.next() {
        Some(last) => cell(last)?,
        None => first,
    };
    (first.0 <= last.0 && first.1 <= last.1).then_some((first.0, first.1, last.0, last.1))
}

/// `B2` as (row, column), 1-based, within Excel's sheet.
fn cell(text: &[u8]) -> Option<(u64, u64)> {
    let letters = text.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    let (column, row) = text.split_at(letters);
    if !(1..=3).contains(&column.len())
        || !(1..=7).contains(&row.len())
        || !row.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let column = column.iter().fold(0u64, |n, b| {
        n * 26 + u64::from(b.to_ascii_uppercase() - b'A') + 1
    });
    let row = row.iter().fold(0u64, |n, b| n * 10 + u64::from(b - b'0'));
    let inside = (1..=SHEET_ROWS).contains(&row) && (1..=COLUMNS as u64).contains(&column);
    inside.then_some((row, column))
}

/// `uniqueCount="N"` in the `<sst ...>` tag.
fn unique_count(tag: &[u8]) -> Option<u64> {
    let key = b"uniqueCount";
    let at = tag.windows(key.len()).position(|w| w == key)?;
    let rest = &tag[at + key.len()..];
    let rest = rest
        .iter()
        .skip_while(|b| matches!(b, b' ' | b'=' | b'"' | b'\''))
        .take_while(|b| b.is_ascii_digit());
    let digits: Vec<u8> = rest.copied().collect();
    if digits.is_empty() {
        return None;
    }
    // Too many digits for a u64 is too many strings.
    Some(
        std::str::from_utf8(&digits)
            .ok()?
            .parse()
            .unwrap_or(u64::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_bytes(part: Part, xml: &[u8]) -> Option<Over> {
        let mut scanner = Scanner::new(part);
        for &b in xml {
            if let Some(over) = scanner.byte(b) {
                return Some(over);
            }
        }
        scanner.end()
    }

    #[test]
    fn ordinary_parts_pass() {
        let sheet = br#"<worksheet><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><x:c r="B1"><v>1</v></x:c></row></sheetData></worksheet>"#;
        assert_eq!(scan_bytes(Part::Sheet, sheet), None);
        let sst = br#"<sst count="2" uniqueCount="2"><si><t>a</t></si><si><t>b</t></si></sst>"#;
        assert_eq!(scan_bytes(Part::SharedStrings, sst), None);
    }

    #[test]
    fn a_declared_count_past_the_bound_is_caught_before_any_string() {
        let sst = br#"<sst xmlns="x" count="1" uniqueCount="99999999999999999999999"><si>"#;
        assert_eq!(
            scan_bytes(Part::SharedStrings, sst),
            Some(Over::Strings {
                declared: Some(u64::MAX)
            })
        );
    }

    #[test]
    fn a_cell_of_many_short_runs_is_caught() {
        let mut sheet = b"<sheetData><row><c t=\"inlineStr\"><is>".to_vec();
        let run = b"<r><t>abcdefghijklmnopqrstuvwxyz</t></r>";
        while sheet.len() as u64 <= XLSX_ELEMENT_BYTES + 100 {
            sheet.extend_from_slice(run);
        }
        assert_eq!(
            scan_bytes(Part::Sheet, &sheet),
            Some(Over::Element(Part::Sheet))
        );
    }

    #[test]
    fn styles_are_bounded_in_number_and_in_their_number_formats() {
        let ordinary = br#"<styleSheet><numFmts count="1"><numFmt numFmtId="164" formatCode="0000000000"/></numFmts><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="164"/></cellXfs></styleSheet>"#;
        assert_eq!(scan_bytes(Part::Styles, ordinary), None);

        let mut many = b"<styleSheet><cellXfs>".to_vec();
        for _ in 0..=limits::XLSX_STYLES {
            many.extend_from_slice(b"<xf/>");
        }
        assert_eq!(scan_bytes(Part::Styles, &many), Some(Over::Styles));

        let mut long = b"<styleSheet><numFmts><numFmt numFmtId=\"164\" formatCode=\"".to_vec();
        long.resize(long.len() + 5000, b'0');
        long.extend_from_slice(b"\"/></numFmts></styleSheet>");
        assert_eq!(
            scan_bytes(Part::Styles, &long),
            Some(Over::Element(Part::Styles))
        );
    }

    #[test]
    fn a_sheet_part_not_named_as_xml_is_found_in_the_relationships() {
        let rels = |target: &str| {
            format!(
                r#"<?xml version="1.0"?><Relationships><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.bin"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="{target}"/></Relationships>"#
            )
        };
        assert_eq!(sheet_target_not_xml(&rels("worksheets/sheet1.xml")), None);
        assert_eq!(
            sheet_target_not_xml(&rels("/xl/worksheets/Sheet1.XML")),
            None
        );
        assert_eq!(
            sheet_target_not_xml(&rels("media/image1.png")),
            Some("media/image1.png".to_string())
        );
        assert_eq!(
            sheet_target_not_xml(&rels("worksheets/sheet1.xml.bin")),
            Some("worksheets/sheet1.xml.bin".to_string())
        );
    }

    /// Found by the fuzzer (fuzz target `xlsx_parts`): calamine adds up a cell
    /// reference's letters and digits unchecked, so `<c r="AshetDat">` panicked with
    /// "attempt to multiply with overflow" in debug builds and named a made-up cell in
    /// release builds.
    #[test]
    fn fuzz_cell_reference_overflow_is_caught_before_calamine() {
        let row = |r: &str| Some(Over::Row(r.to_string()));
        let column = |c: &str| Some(Over::Column(c.to_string()));
        let backwards = |d: &str| Some(Over::Malformed(Malformed::Backwards(d.to_string())));
        let cases: &[(&[u8], Option<Over>)] = &[
            (br#"<sheetData><c r="AshetDat">"#, column("AshetDat")),
            (
                br#"<sheetData><row r="1"><c r="XFD1048576"><v>1</v></c></row>"#,
                None,
            ),
            (br#"<sheetData><c r="XFE1">"#, column("XFE")),
            (br#"<sheetData><c r="A1048577">"#, row("1,048,577")),
            (
                br#"<sheetData><x:c t="s" r='A99999999999'/>"#,
                row("99,999,999,999"),
            ),
            (
                br#"<sheetData><row spans="1:2" r="4000000000">"#,
                row("4,000,000,000"),
            ),
            (
                br#"<sheetData><row r="123456789012345678901234567890">"#,
                row("12345678901234567890…"),
            ),
            (br#"<dimension ref="A1:XFD1048576"/><sheetData>"#, None),
            (br#"<dimension ref="A1:ZZZZZZZ1"/>"#, column("ZZZZZZZ")),
            // calamine subtracts a dimension's start from its end: found by the fuzzer too.
            (br#"<dimension ref="I1:G9"/>"#, backwards("I1:G9")),
            (br#"<dimension ref="A9:B1"/>"#, backwards("A9:B1")),
            (br#"<dimension ref="B2:B2"/><dimension ref="A1"/>"#, None),
            // Dimensions calamine refuses before subtracting pass (it says what is wrong).
            (
                br#"<dimension ref="I1:G"/><dimension ref="I1:G9:A1"/>"#,
                None,
            ),
            // A `>` inside a quoted value does not end the tag, nor does a `<` start one.
            (br#"<c t="a>b" r="AAAAAAAAAA1">"#, column("AAAAAAAAAA")),
            (
                br#"<dimension ref="AborderIds><sheetView a="/>"#,
                column("AborderIds"),
            ),
            // Other attributes, closing tags, tags without attributes and text pass.
            (
                br#"<c s="99999999999" t="AAAAAAAAAA"><v>AAAAAAAAAA1</v></c>"#,
                None,
            ),
            (br#"<c>r="AAAAAAAAAA1"</c><row/>"#, None),
            // Attributes calamine cannot split stop the check, as they stop calamine.
            (br#"<c t=s r="AAAAAAAAAA1">"#, None),
        ];
        for (xml, expected) in cases {
            let text = String::from_utf8_lossy(xml);
            assert_eq!(&scan_bytes(Part::Sheet, xml), expected, "{text}");
            assert_eq!(&scan_bytes(Part::Other, xml), expected, "{text}");
            assert_eq!(scan_bytes(Part::SharedStrings, xml), None, "{text}");
        }
    }

    #[test]
    fn merged_ranges_pass_only_when_plain_and_within_excel() {
        let sheet = |merges: &str| {
            format!("<worksheet><sheetData/><mergeCells>{merges}</mergeCells></worksheet>")
        };
        for plain in [
            r#"<mergeCell ref="B2:B5"/>"#,
            r#"<x:mergeCell  ref = 'A1:XFD1048576' />"#,
            r#"<mergeCell ref="c3"></mergeCell>"#,
            r#"<mergeCell/>"#,
        ] {
            assert_eq!(
                scan_bytes(Part::Sheet, sheet(plain).as_bytes()),
                None,
                "{plain}"
            );
        }
        for odd in [
            r#"<mergeCell ref="B5:B2"/>"#,
            r#"<mergeCell ref="C2:B2"/>"#,
            r#"<mergeCell ref="A0"/>"#,
            r#"<mergeCell ref="XFE1"/>"#,
            r#"<mergeCell ref="A1048577"/>"#,
            r#"<mergeCell ref="AAAAAAAA1"/>"#,
            r#"<mergeCell ref="A99999999999"/>"#,
            r#"<mergeCell ref="A1:B2:C3"/>"#,
            r#"<mergeCell ref="$A$1:B2"/>"#,
            r#"<mergeCell ref="A&#49;"/>"#,
            r#"<mergeCell ref=A1/>"#,
            r#"<mergeCell x="y"ref="A1:B2"/>"#,
            r#"<mergeCell note="a>b" ref="B5:B2"/>"#,
            "<mergeCell ref=\"A1:B2\"\x0cx=\"y\"/>",
        ] {
            assert!(
                matches!(
                    scan_bytes(Part::Sheet, sheet(odd).as_bytes()),
                    Some(Over::Malformed(Malformed::BadMerge(_)))
                ),
                "{odd}"
            );
        }
        let two_lists = "<worksheet><mergeCells/><mergeCells/></worksheet>";
        assert_eq!(
            scan_bytes(Part::Sheet, two_lists.as_bytes()),
            Some(Over::Malformed(Malformed::MergeLists))
        );
        let many = "<mergeCell ref=\"A1:A2\"/>".repeat(XLSX_MERGED_RANGES as usize + 1);
        assert_eq!(
            scan_bytes(Part::Sheet, sheet(&many).as_bytes()),
            Some(Over::Merges)
        );
    }

    #[test]
    fn a_long_text_is_caught_in_any_part() {
        let mut xml = b"<styleSheet><x>".to_vec();
        xml.resize(XLSX_ELEMENT_BYTES as usize + 100, b'a');
        assert_eq!(scan_bytes(Part::Other, &xml), Some(Over::Run));
    }
}
