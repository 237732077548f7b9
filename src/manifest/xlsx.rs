//! XLSX: one sheet, row by row, each cell as Excel shows it.
//!
//! Before calamine opens the file, `package` bounds what its zip expands to.
//!
//! Memory: the sheet's cells are streamed from the zip with calamine's cell reader on a
//! helper thread, a channel holding a few hundred rows (`CHANNEL_BYTES`) at most, and a
//! row keeps at most `ROW_BYTES` of text. calamine does load the workbook's shared-strings
//! table (every distinct text in the workbook) and styles into memory when it opens the
//! file; that is the one part that grows with the file.
//!
//! Nothing in a sheet is lost without a word: a cell inside a merged range (other than
//! its first, which holds the value) fails its row with `merged_cell`, a row that only
//! a merge reaches into included; a cell the sheet's XML gives twice fails its row with
//! `duplicate_cell`; and without `--sheet` the first *visible* sheet is read, since a
//! hidden one is not what a person looking at the workbook means.
//!
//! A number is shown the way Excel shows it through the cell's number format, because
//! that is what a person sees and fixes: `912345678` formatted `0000000000` reads
//! `0912345678`, `8613800138000` formatted `0` reads `8613800138000`, and the same phone
//! left in the General format reads `8.613800138E+12`, which a later stage rejects with
//! a hint; it is never silently "repaired" here. The formats are parsed once per cell
//! style (see `number_format`); dates are calamine's, read by the date rules below.

use std::fs::File;
use std::io::BufReader;

use calamine::{
    DataRef, Dimensions, ExcelDateTime, ExcelDateTimeType, Reader, SheetType, SheetVisible, Xlsx,
};

use super::limits::{COLUMNS, ROW_BYTES, SHEET_ROWS};
use super::number_format::{general_number, NumberFormat};
use super::pin::Watched;
use super::{
    package, spawn_reader, Flaw, ManifestError, Msg, Passed, Range, Record, RecordSender,
    SheetCause, Unreadable,
};

/// A workbook being read, its reads noted for the pin.
type Workbook = Xlsx<BufReader<Watched<File>>>;

/// The sheet read, how messages name it, and why it was chosen when a person would not
/// guess it.
pub(crate) struct Chosen {
    pub name: String,
    pub label: String,
    pub notice: Option<String>,
}

impl Chosen {
    fn plain(name: String) -> Chosen {
        Chosen {
            label: format!("sheet \"{name}\""),
            name,
            notice: None,
        }
    }
}

/// Opens the workbook and starts streaming the chosen sheet's rows.
pub(crate) fn records(
    path: &str,
    mut file: Watched<File>,
    sheet: Option<&str>,
) -> Result<(Chosen, super::ChannelRecords), ManifestError> {
    // Unnoted reads, before any row: the pin looks at the file before the first row.
    let package = package::check(path, file.get_mut())?;
    let unreadable = |why| ManifestError::Unreadable {
        path: path.to_string(),
        why,
    };
    let mut workbook: Workbook = Xlsx::new(BufReader::new(file))
        .map_err(|e| unreadable(Unreadable::NotAWorkbook(Box::new(e))))?;
    let names = workbook.sheet_names();
    if names.is_empty() {
        return Err(unreadable(Unreadable::NoSheets));
    }
    let chosen = match sheet {
        None if is_ferry_report(&mut workbook, &names) => Chosen {
            // A fixed report fed back: its first sheet may be `succeeded` (an older
            // ferry's layout), and reading that would skip every row and send no fix.
            notice: Some(format!(
                "{path} is a ferry report: reading its \"{FED_BACK_SHEET}\" sheet (the rows to \
                 fix and send again); pass --sheet to read another"
            )),
            ..Chosen::plain(FED_BACK_SHEET.to_string())
        },
        None => first_visible(path, &workbook),
        Some(wanted) => {
            let name = by_name(&names, wanted).ok_or_else(|| ManifestError::UnknownSheet {
                path: path.to_string(),
                sheet: wanted.to_string(),
                sheets: names.clone(),
            })?;
            Chosen::plain(name)
        }
    };
    let owned_path = path.to_string();
    let name = chosen.name.clone();
    let rows = spawn_reader(path, "ferry-xlsx-reader", move |tx| {
        read_sheet(&owned_path, workbook, &name, package.merges, &tx)
    })?;
    Ok((chosen, rows))
}

/// The sheet of ferry's own report that is fed back: the rows to fix and send again.
pub(crate) const FED_BACK_SHEET: &str = "failed";

/// Whether the workbook is a `report.xlsx` ferry wrote: it has a `failed` sheet and a
/// `summary` sheet whose first column names `run_id` and `command`. Only the summary's
/// first cells are read, streamed, whatever the sheet holds.
fn is_ferry_report(workbook: &mut Workbook, names: &[String]) -> bool {
    const SUMMARY: &str = "summary";
    const CELLS_LOOKED_AT: usize = 200;
    if !names.iter().any(|n| n == FED_BACK_SHEET) || !names.iter().any(|n| n == SUMMARY) {
        return false;
    }
    let Ok(mut cells) = workbook.worksheet_cells_reader(SUMMARY) else {
        return false;
    };
    let (mut run_id, mut command) = (false, false);
    for _ in 0..CELLS_LOOKED_AT {
        let Ok(Some(cell)) = cells.next_cell() else {
            break;
        };
        if cell.get_position().1 == 0 {
            let text = match cell.get_value() {
                DataRef::String(s) => s.as_str(),
                DataRef::SharedString(s) => s,
                _ => "",
            };
            run_id |= text == "run_id";
            command |= text == "command";
        }
    }
    run_id && command
}

/// `--sheet NAME`: the sheet of that name, or the only one that matches it ignoring case.
fn by_name(names: &[String], wanted: &str) -> Option<String> {
    names
        .iter()
        .find(|n| n.as_str() == wanted)
        .or_else(|| {
            let mut folded = names
                .iter()
                .filter(|n| n.to_lowercase() == wanted.to_lowercase());
            match (folded.next(), folded.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            }
        })
        .cloned()
}

/// Without `--sheet`: the first sheet a person sees when the workbook opens, that is the
/// first visible worksheet (a hidden sheet, or a chart, never holds the manifest they
/// mean). Says so when that is not the first sheet. Returns the name, and the sheet as
/// messages name it.
fn first_visible(path: &str, workbook: &Workbook) -> Chosen {
    let sheets = workbook.sheets_metadata();
    // The caller made sure there is one.
    let first = &sheets[0].name;
    let visible = sheets
        .iter()
        .find(|s| s.visible == SheetVisible::Visible && s.typ == SheetType::WorkSheet);
    match visible {
        Some(sheet) if sheet.name != *first => {
            let skipped = if sheets[0].visible == SheetVisible::Visible {
                "is not a worksheet"
            } else {
                "is hidden"
            };
            // Said once by the command (`run` opens the manifest twice).
            let notice = format!(
                "{path}: reading sheet \"{}\", the first visible one: the first sheet, \
                 \"{first}\", {skipped} (--sheet chooses another)",
                sheet.name
            );
            Chosen {
                name: sheet.name.clone(),
                label: format!(
                    "sheet \"{}\" (the first visible one; \"{first}\" before it {skipped})",
                    sheet.name
                ),
                notice: Some(notice),
            }
        }
        // None visible (only a file no spreadsheet saved): the first, as before.
        _ => Chosen::plain(first.clone()),
    }
}

/// Sends the sheet's non-empty rows, and the rows a merge reaches into; returns an
/// error to end the stream with.
fn read_sheet(
    path: &str,
    mut workbook: Workbook,
    sheet: &str,
    has_merges: bool,
    tx: &RecordSender,
) -> Result<(), Option<ManifestError>> {
    let is_1904 = workbook.has_1904_epoch();
    let fail = |row: Option<u32>, e: calamine::XlsxError| unreadable_at(path, sheet, row, e.into());
    // `package` checked every merge of every sheet: this pass over the sheet runs only
    // when there are some, and holds a bounded list.
    let mut merges = Merges::new(if has_merges {
        workbook
            .merge_cells_by_sheet_name(sheet)
            .map_err(|e| fail(None, e))?
    } else {
        Vec::new()
    });
    let mut reader = workbook
        .worksheet_cells_reader(sheet)
        .map_err(|e| fail(None, e))?;
    // Indexed by a cell's style id; built-in format ids come already as their codes.
    let formats: Vec<NumberFormat> = reader
        .styles()
        .iter()
        .map(|style| {
            let code = style.number_format.as_ref();
            NumberFormat::parse(code.map_or("General", |f| f.format_code.as_str()))
        })
        .collect();
    let mut current: Option<SheetRow> = None;
    loop {
        let last_row = current.as_ref().map(|r| r.row);
        let next = reader
            .next_cell_with_style_id()
            .map_err(|e| fail(last_row, e))?;
        let Some((cell, style)) = next else {
            break;
        };
        let (row, column) = cell.get_position();
        let text = cell_text(cell.get_value(), formats.get(style), is_1904);
        if text.is_none() && last_row != Some(row) {
            continue; // an empty cell starts no row
        }
        check_position(path, sheet, (row, column), last_row)?;
        if last_row != Some(row) {
            if let Some(done) = current.take() {
                send(tx, done.record(&mut merges))?;
            }
            merges.send_rows_before(row, tx)?;
            current = Some(SheetRow::new(row));
        }
        if let Some(current) = current.as_mut() {
            current.put(column as usize, text);
        }
    }
    if let Some(done) = current.take() {
        send(tx, done.record(&mut merges))?;
    }
    merges.send_rows_before(u32::MAX, tx)
}

fn unreadable_at(
    path: &str,
    sheet: &str,
    row: Option<u32>,
    cause: SheetCause,
) -> Option<ManifestError> {
    Some(ManifestError::Unreadable {
        path: path.to_string(),
        why: Unreadable::Sheet {
            sheet: sheet.to_string(),
            row,
            cause,
        },
    })
}

/// A cell's place is one a spreadsheet writes: within Excel's rows and columns, in a row
/// not before the last one read.
fn check_position(
    path: &str,
    sheet: &str,
    (row, column): (u32, u32),
    last_row: Option<u32>,
) -> Result<(), Option<ManifestError>> {
    if u64::from(row) >= SHEET_ROWS {
        // Checked before the row is held anywhere: reports index rows by number.
        return Err(Some(ManifestError::Limit {
            path: path.to_string(),
            passed: Passed::SheetRow {
                sheet: sheet.to_string(),
                row,
            },
        }));
    }
    if column as usize >= COLUMNS {
        return Err(unreadable_at(
            path,
            sheet,
            Some(row),
            SheetCause::BeyondLastColumn(column),
        ));
    }
    if let Some(last) = last_row.filter(|&last| row < last) {
        // Excel writes rows in order; a row seen again (or out of order) would be two
        // records with one row number, which no report can tell apart.
        return Err(unreadable_at(
            path,
            sheet,
            Some(row),
            SheetCause::OutOfOrder { row, last },
        ));
    }
    Ok(())
}

fn send(tx: &RecordSender, record: Record) -> Result<(), Option<ManifestError>> {
    // The reader was dropped: stop quietly.
    tx.send(Msg::Record(record)).map_err(|_| None)
}

/// The row being read: its cells, kept to `ROW_BYTES` of text, and what was wrong.
struct SheetRow {
    row: u32,
    cells: Vec<String>,
    /// Columns seen in this row, empty cells included, to catch a cell given twice.
    seen: Vec<bool>,
    /// Bytes of text kept.
    bytes: usize,
    cut: bool,
    flaws: Vec<(usize, Flaw)>,
}

impl SheetRow {
    fn new(row: u32) -> SheetRow {
        SheetRow {
            row,
            cells: Vec::new(),
            seen: Vec::new(),
            bytes: 0,
            cut: false,
            flaws: Vec::new(),
        }
    }

    /// Takes the cell at `column`: its text, or `None` when it is empty.
    fn put(&mut self, column: usize, text: Option<String>) {
        if self.seen.len() <= column {
            self.seen.resize(column + 1, false);
        }
        if std::mem::replace(&mut self.seen[column], true) {
            // The first is kept, and the row fails: never a silent overwrite.
            self.flaws.push((column, Flaw::Twice));
            return;
        }
        let Some(mut text) = text else {
            return;
        };
        if self.cells.len() <= column {
            // Cells past the cut are empty but still counted: the row keeps its width.
            self.cells.resize(column + 1, String::new());
        }
        if self.cut {
            return;
        }
        let room = ROW_BYTES - self.bytes;
        if text.len() > room {
            // Keep the row's first `ROW_BYTES`, as CSV does: this cell up to there.
            let mut end = room;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            self.cut = true;
            self.flaws.push((column, Flaw::RowCut));
        }
        self.bytes += text.len();
        self.cells[column] = text;
    }

    fn record(self, merges: &mut Merges) -> Record {
        let mut record = Record::new(u64::from(self.row) + 1, self.cells);
        record.flaws = self.flaws;
        record.flaws.extend(merges.flaws(self.row));
        record
    }
}

/// The sheet's merged ranges, met row by row as the sheet is read (rows rise). A cell
/// inside a merge other than its first reads as empty, since the merge keeps its value
/// in the first cell only: each row that has such cells carries a `Flaw::Merged` for
/// them, and a row that has nothing else is sent all the same, so that it is reported
/// rather than skipped as empty.
struct Merges {
    /// Sorted by first row; `next` is the first not yet reached.
    ranges: Vec<Range>,
    next: usize,
    /// The ranges reached that the last row looked at still lies in.
    active: Vec<Range>,
    /// Rows before this one have been looked at.
    cursor: u32,
}

impl Merges {
    fn new(dimensions: Vec<Dimensions>) -> Merges {
        let mut ranges: Vec<Range> = dimensions
            .into_iter()
            .map(|d| Range {
                first_row: d.start.0,
                first_col: d.start.1,
                last_row: d.end.0,
                last_col: d.end.1,
            })
            .collect();
        ranges.sort_by_key(|r| (r.first_row, r.first_col));
        Merges {
            ranges,
            next: 0,
            active: Vec::new(),
            cursor: 0,
        }
    }

    /// The merged cells of `row`, which is past every row looked at before.
    fn flaws(&mut self, row: u32) -> Vec<(usize, Flaw)> {
        while let Some(range) = self.ranges.get(self.next).filter(|r| r.first_row <= row) {
            self.active.push(*range);
            self.next += 1;
        }
        self.active.retain(|r| r.last_row >= row);
        self.cursor = row.saturating_add(1);
        self.active
            .iter()
            .filter_map(|r| {
                // In its first row, a range's first cell is the one that holds the value.
                let first = if r.first_row == row {
                    r.first_col + 1
                } else {
                    r.first_col
                };
                (first <= r.last_col).then_some((first as usize, Flaw::Merged(*r)))
            })
            .collect()
    }

    /// Sends the rows from the cursor up to `until` (not included) that hold merged
    /// cells and nothing else.
    fn send_rows_before(
        &mut self,
        until: u32,
        tx: &RecordSender,
    ) -> Result<(), Option<ManifestError>> {
        loop {
            let reaches = self.active.iter().any(|r| r.last_row >= self.cursor);
            let row = match self.ranges.get(self.next) {
                _ if reaches => self.cursor,
                Some(range) => range.first_row.max(self.cursor),
                None => return Ok(()),
            };
            if row >= until {
                return Ok(());
            }
            let flaws = self.flaws(row);
            if !flaws.is_empty() {
                let mut record = Record::new(u64::from(row) + 1, Vec::new());
                record.flaws = flaws;
                send(tx, record)?;
            }
        }
    }
}

/// A cell's text as Excel shows it; `None` for an empty cell. `format` is the cell's
/// number format (General when it has none).
pub(crate) fn cell_text(
    value: &DataRef<'_>,
    format: Option<&NumberFormat>,
    is_1904: bool,
) -> Option<String> {
    Some(match value {
        DataRef::Empty => return None,
        DataRef::String(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_string(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => format.map_or_else(|| general_number(*f), |n| n.format(*f)),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(dt) => date_time(dt, is_1904),
        DataRef::DateTimeIso(s) => s.replacen('T', " ", 1),
        DataRef::DurationIso(s) => s.clone(),
        DataRef::Error(e) => e.to_string(),
    })
}

/// `YYYY-MM-DD HH:MM:SS`, or `YYYY-MM-DD` at midnight, or `HH:MM:SS` for a time of day
/// without a date; durations as `[h]:mm:ss`.
fn date_time(dt: &ExcelDateTime, is_1904: bool) -> String {
    let value = dt.as_f64();
    let seconds = (value * 86_400.0).round();
    if dt.is_duration() {
        let total = seconds.abs() as u64;
        let sign = if seconds < 0.0 { "-" } else { "" };
        return format!(
            "{sign}{}:{:02}:{:02}",
            total / 3600,
            total / 60 % 60,
            total % 60
        );
    }
    let rounded = ExcelDateTime::new(seconds / 86_400.0, ExcelDateTimeType::DateTime, is_1904);
    let (y, mo, d, h, mi, s, _) = rounded.to_ymd_hms_milli();
    if (0.0..1.0).contains(&value) {
        format!("{h:02}:{mi:02}:{s:02}")
    } else if h == 0 && mi == 0 && s == 0 {
        format!("{y:04}-{mo:02}-{d:02}")
    } else {
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
    }
}
