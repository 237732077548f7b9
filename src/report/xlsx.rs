//! `report.xlsx`: the report tables as sheets a person can work in, plus a summary sheet
//! (`validate`'s valid rows stay in `valid.csv`: `Table::in_workbook`).
//!
//! Each sheet is its CSV table rearranged for reading (`person_order`): `ferry_row`, the
//! message, the manifest's own columns, then ferry's other columns in CSV order, under a
//! frozen header with an autofilter, in columns as wide as what they hold, rows in
//! `ferry_row` order. `ferry_row` is a number; every other cell is text, so phone numbers,
//! ids and leading zeros survive a round trip through Excel. Header names stay the CSV's,
//! so a fed-back `failed` sheet reads like `failed.csv`.
//!
//! The workbook is written on its own thread while rows are reported (a sheet row costs
//! about as much as validating one), in constant-memory mode, fed
//! through a bounded channel: its size never grows ferry's memory. Rows that may arrive
//! out of order (`run`) are written in their turn as they come (`turn::InTurn`), or,
//! held back too long, put in order at the end by `sort::RowSorter`: bounded memory
//! either way.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

use super::sort::RowSorter;
use super::turn::InTurn;
pub use super::turn::Turn;
use super::{Summary, Table, ROW_COLUMN};

/// Excel's limits (`manifest::limits`: rows and columns of a sheet, characters of a
/// cell) hold for reports too. A wider table is cut at the last column, and the summary
/// sheet says so; the CSV files keep every column (and a report is never refused for its
/// width: the rows were already sent).
const MAX_ROWS: u32 = crate::manifest::limits::SHEET_ROWS as u32;
const MAX_COLUMNS: usize = crate::manifest::limits::COLUMNS;

/// Rows travel in chunks: one channel message per row costs more in thread wake-ups
/// than writing the row. A chunk of wide or long rows is sent sooner, so that a queue of
/// them stays small (rows of a megabyte, as a manifest may hold, would otherwise make
/// chunks of half a gigabyte).
const CHUNK: usize = 512;
const CHUNK_CELLS: usize = 64 * 1024;
const CHUNK_BYTES: usize = 4 * 1024 * 1024;
/// Chunks in the channel before reporting waits for the workbook.
const QUEUE: usize = 8;

/// Memory for putting out-of-order rows in order; past it they go to sorted runs on
/// disk. Small enough that a million-row `run` stays within its memory target.
const SORT_BUDGET: usize = 16 << 20;
/// Sorted runs of one table before they are merged into one (each holds a file open).
const SORT_MAX_RUNS: usize = 32;
/// Memory for rows that come before their turn (`InTurn`): thousands of rows, far
/// more than the batches on the wire hold.
const WAIT_BUDGET: usize = 8 << 20;

/// Column widths, in characters (an East Asian wide character counts two): as wide as
/// the longest text in the column, within these bounds.
const MIN_WIDTH: usize = 8;
const MAX_WIDTH: usize = 60;
/// Room beside a header for the autofilter's drop-down button.
const FILTER_BUTTON: usize = 2;

enum Message {
    Rows(Chunk),
    Finish(Box<Summary>),
}

/// Rows packed into one string: a row's cells never become separate allocations that
/// the other thread would have to free (cross-thread frees are what made this slow).
#[derive(Default)]
struct Chunk {
    text: String,
    /// End offset of each cell in `text`.
    cell_ends: Vec<usize>,
    /// Each row's place in its chunk.
    rows: Vec<ChunkRow>,
}

#[derive(Clone, Copy)]
struct ChunkRow {
    table: usize,
    /// `ferry_row`, and the row's place among the rows read (`RawRow::seq`).
    row: u64,
    seq: u64,
    cells: usize,
}

impl Chunk {
    fn push<'a>(&mut self, at: Turn, cells: impl Iterator<Item = &'a str>) {
        let before = self.cell_ends.len();
        for cell in cells {
            self.text.push_str(cell);
            self.cell_ends.push(self.text.len());
        }
        self.rows.push(ChunkRow {
            table: at.table,
            row: at.row,
            seq: at.seq,
            cells: self.cell_ends.len() - before,
        });
    }

    /// Each row: where it goes, and its cells.
    fn rows(&self) -> impl Iterator<Item = (Turn, ChunkCells<'_>)> {
        let mut first = 0;
        self.rows.iter().map(move |r| {
            let count = r.cells;
            let ends = &self.cell_ends[first..first + count];
            let start = if first == 0 {
                0
            } else {
                self.cell_ends[first - 1]
            };
            first += count;
            let cells = ChunkCells {
                text: &self.text,
                ends: ends.iter(),
                start,
            };
            let at = Turn {
                table: r.table,
                row: r.row,
                seq: r.seq,
            };
            (at, cells)
        })
    }
}

/// The cells of one row of a chunk.
#[derive(Clone)]
struct ChunkCells<'a> {
    text: &'a str,
    ends: std::slice::Iter<'a, usize>,
    start: usize,
}

impl<'a> Iterator for ChunkCells<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let end = *self.ends.next()?;
        let cell = &self.text[self.start..end];
        self.start = end;
        Some(cell)
    }
}

/// A workbook being written on a background thread.
pub struct XlsxWriter {
    tx: SyncSender<Message>,
    pending: Chunk,
    thread: JoinHandle<Result<(), XlsxError>>,
    path: PathBuf,
}

impl XlsxWriter {
    /// One sheet per table, in the order of `tables`, each starting with its header
    /// row (`headers`: each table's CSV header). `in_order`: rows are reported in
    /// `ferry_row` order, so they go straight to their sheet. `note`: a line for the
    /// summary sheet.
    pub fn start(
        path: &Path,
        tables: &[Table],
        headers: Vec<Vec<String>>,
        in_order: bool,
        note: Option<&'static str>,
    ) -> XlsxWriter {
        let (tx, rx) = sync_channel::<Message>(QUEUE);
        let sheets: Vec<Sheet> = tables
            .iter()
            .zip(headers)
            .map(|(&table, header)| Sheet::new(table, header))
            .collect();
        let out = path.to_path_buf();
        // The sorter's runs spill beside the reports, on the disk the user chose for the
        // run's output. (The workbook's own temporary files stay in the system's folder:
        // rust_xlsxwriter does not report every failed write to them, and on a full
        // report disk it saved a broken workbook.)
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        let thread = std::thread::spawn(move || {
            let mut in_turn = (!in_order).then(|| {
                let keep = u64::from(MAX_ROWS - 1);
                let sorter = RowSorter::new(sheets.len(), SORT_BUDGET, SORT_MAX_RUNS, keep)
                    .spilling_to(&folder);
                InTurn::new(WAIT_BUDGET, sorter)
            });
            let mut book = Book::new(sheets, note)?;
            // Without a summary the run ended abnormally: the CSVs are the record.
            let Some(summary) = receive(&rx, &mut book, in_turn.as_mut())? else {
                return Ok(());
            };
            if let Some(in_turn) = in_turn {
                in_turn.finish(|table, row, cells| book.put(table, row, cells))?;
            }
            book.finish(&summary, &out)
        });
        XlsxWriter {
            tx,
            pending: Chunk::default(),
            thread,
            path: path.to_path_buf(),
        }
    }

    /// Queues one row for a table's sheet, its cells in CSV order (raw values: a text
    /// cell is never a formula, so the CSV formula guard has no place here).
    pub fn row<'a>(&mut self, at: Turn, cells: impl Iterator<Item = &'a str>) {
        self.pending.push(at, cells);
        if self.pending.rows.len() >= CHUNK
            || self.pending.cell_ends.len() >= CHUNK_CELLS
            || self.pending.text.len() >= CHUNK_BYTES
        {
            self.send_pending();
        }
    }

    fn send_pending(&mut self) {
        let rows = std::mem::take(&mut self.pending);
        // A send fails only if the thread stopped on an error, which `finish` reports.
        let _ = self.tx.send(Message::Rows(rows));
    }

    /// Adds the summary sheet and saves the workbook.
    pub fn finish(mut self, summary: &Summary) -> Result<PathBuf, XlsxError> {
        self.send_pending();
        let _ = self.tx.send(Message::Finish(Box::new(summary.clone())));
        drop(self.tx);
        self.thread
            .join()
            .map_err(|_| XlsxError::ParameterError("the workbook writer panicked".into()))??;
        Ok(self.path)
    }
}

/// Takes rows until the summary comes (`None`: the reporting side went away without
/// one), into their sheets or, when they may be out of order, into `sorter`.
fn receive(
    rx: &Receiver<Message>,
    book: &mut Book,
    mut in_turn: Option<&mut InTurn>,
) -> Result<Option<Box<Summary>>, XlsxError> {
    let mut put = |table, row, cells: &mut dyn Iterator<Item = &str>| book.put(table, row, cells);
    while let Ok(message) = rx.recv() {
        let chunk = match message {
            Message::Rows(chunk) => chunk,
            Message::Finish(summary) => return Ok(Some(summary)),
        };
        for (at, mut cells) in chunk.rows() {
            match in_turn.as_deref_mut() {
                Some(in_turn) => in_turn.push(at, cells, &mut put)?,
                None => put(at.table, at.row, &mut cells)?,
            }
        }
    }
    Ok(None)
}

/// The sheet's columns, each as an index into the table's CSV columns (ferry's, then
/// the manifest's `manifest_columns`): `ferry_row` and the message a person reads
/// first, then the manifest's own columns, then the rest of ferry's in CSV order. The
/// one place that says how a sheet is laid out.
fn person_order(table: Table, manifest_columns: usize) -> Vec<usize> {
    let ferry = table.columns();
    let first = [ROW_COLUMN, table.message_column()];
    let at = |name: &str| {
        ferry
            .iter()
            .position(|c| *c == name)
            .expect("every table has a row and a message column")
    };
    first
        .iter()
        .map(|c| at(c))
        .chain(ferry.len()..ferry.len() + manifest_columns)
        .chain((0..ferry.len()).filter(|&i| !first.contains(&ferry[i])))
        .collect()
}

/// One table's sheet: its layout, and what has been written to it.
struct Sheet {
    name: &'static str,
    /// The CSV header.
    header: Vec<String>,
    /// The sheet column of each CSV column; `None` past the sheet's last column.
    column: Vec<Option<u16>>,
    /// The CSV column of `ferry_row`, written as a number.
    row_cell: usize,
    /// Widest text of each sheet column so far, in characters, up to `MAX_WIDTH`.
    widths: Vec<u8>,
    /// The sheet row the next row goes to.
    next: u32,
    /// Data rows written, and the last `ferry_row` among them.
    rows: u32,
    last_row: u64,
}

impl Sheet {
    fn new(table: Table, header: Vec<String>) -> Sheet {
        let ferry_columns = table.columns().len();
        let order = person_order(table, header.len().saturating_sub(ferry_columns));
        let mut column = vec![None; header.len()];
        for (sheet_col, &csv_col) in order.iter().enumerate().take(MAX_COLUMNS) {
            column[csv_col] = Some(sheet_col as u16);
        }
        Sheet {
            name: table.name(),
            row_cell: order[0],
            widths: vec![0; header.len().min(MAX_COLUMNS)],
            header,
            column,
            next: 1,
            rows: 0,
            last_row: 0,
        }
    }

    /// The header of the sheet's last column, when the table is cut to fit a sheet.
    fn cut_at(&self) -> Option<&str> {
        let last = Some((MAX_COLUMNS - 1) as u16);
        if self.header.len() <= MAX_COLUMNS {
            return None;
        }
        let csv_col = self.column.iter().position(|c| *c == last)?;
        Some(&self.header[csv_col])
    }

    /// Widens a column to fit `text`. Most cells are not measured at all: a text never
    /// shows wider than its UTF-8 bytes (a wide character takes three or four), so one
    /// no longer than the column's width cannot widen it.
    fn measure(&mut self, col: u16, text: &str) {
        let width = &mut self.widths[usize::from(col)];
        if text.len() > usize::from(*width) && usize::from(*width) < MAX_WIDTH {
            *width = (*width).max(text_width(text, MAX_WIDTH) as u8);
        }
    }
}

/// The workbook and its table sheets.
struct Book {
    workbook: Workbook,
    sheets: Vec<Sheet>,
    text: Format,
    note: Option<&'static str>,
}

impl Book {
    fn new(sheets: Vec<Sheet>, note: Option<&'static str>) -> Result<Book, XlsxError> {
        let mut workbook = Workbook::new();
        // Compression is most of the time a large workbook takes; level 1 halves it
        // for a file about half as large again.
        workbook.set_zip_compression_level(1);
        let text = Format::new().set_num_format("@");
        let mut book = Book {
            workbook,
            sheets,
            text,
            note,
        };
        for i in 0..book.sheets.len() {
            book.start_sheet(i)?;
        }
        Ok(book)
    }

    fn start_sheet(&mut self, i: usize) -> Result<(), XlsxError> {
        let sheet = &mut self.sheets[i];
        let ws = self.workbook.add_worksheet_with_constant_memory()?;
        ws.set_name(sheet.name)?;
        if sheet.widths.len() > 1 {
            // Text format on whole columns but `ferry_row`'s: what a person types there
            // stays text.
            ws.set_column_range_format(1, (sheet.widths.len() - 1) as u16, &self.text)?;
        }
        for (csv_col, name) in sheet.header.iter().enumerate() {
            let Some(col) = sheet.column[csv_col] else {
                continue;
            };
            ws.write_string(
                0,
                col,
                truncate_chars(name, crate::manifest::limits::CELL_CHARS),
            )?;
            let width = &mut sheet.widths[usize::from(col)];
            *width = (text_width(name, MAX_WIDTH) + FILTER_BUTTON).min(MAX_WIDTH) as u8;
        }
        Ok(())
    }

    /// Writes one row to a table's sheet, rows in `ferry_row` order; past the rows a
    /// sheet holds, a note says where the rest are.
    fn put<'a>(
        &mut self,
        table: usize,
        row: u64,
        cells: impl Iterator<Item = &'a str>,
    ) -> Result<(), XlsxError> {
        let sheet = &mut self.sheets[table];
        let ws = self.workbook.worksheet_from_index(table)?;
        debug_assert!(
            sheet.rows == 0 || row > sheet.last_row,
            "rows reach their sheet in ferry_row order"
        );
        let at = sheet.next;
        sheet.next = at.saturating_add(1);
        if at == MAX_ROWS - 1 {
            let note = format!("… more rows than a sheet can hold; see {}.csv", sheet.name);
            ws.write_string(at, 0, note)?;
        }
        if at >= MAX_ROWS - 1 {
            return Ok(());
        }
        (sheet.rows, sheet.last_row) = (sheet.rows + 1, row);
        for (csv_col, cell) in cells.enumerate() {
            let Some(&Some(col)) = sheet.column.get(csv_col) else {
                continue;
            };
            if csv_col == sheet.row_cell {
                // The one number: a person sorts and filters by it.
                ws.write_number(at, col, row as f64)?;
                let digits = row.checked_ilog10().unwrap_or(0) as u8 + 1;
                let width = &mut sheet.widths[usize::from(col)];
                *width = (*width).max(digits);
            } else if !cell.is_empty() {
                // A string cell is text whatever its format: phones and ids stay as written.
                let cell = truncate_chars(cell, crate::manifest::limits::CELL_CHARS);
                ws.write_string(at, col, cell)?;
                sheet.measure(col, cell);
            }
        }
        Ok(())
    }

    /// Frozen headers, filters and widths, the sheet a person sees first, the summary
    /// sheet; then saves.
    fn finish(mut self, summary: &Summary, path: &Path) -> Result<(), XlsxError> {
        // The failed rows are what a person opens the workbook for; otherwise the first
        // sheet with rows, or the summary.
        let active = self.sheets.iter().position(|s| s.rows > 0);
        for (i, sheet) in self.sheets.iter().enumerate() {
            let ws = self.workbook.worksheet_from_index(i)?;
            dress(ws, sheet)?;
            if active == Some(i) {
                ws.set_active(true);
            }
        }
        let notes: Vec<String> = cut_note(&self.sheets)
            .into_iter()
            .chain(self.note.map(String::from))
            .collect();
        let summary_sheet = write_summary(&mut self.workbook, summary, &notes, &self.text)?;
        if active.is_none() {
            summary_sheet.set_active(true);
        }
        save(&mut self.workbook, path)
    }
}

/// The header row frozen, an autofilter over header and rows, column widths that fit.
fn dress(ws: &mut Worksheet, sheet: &Sheet) -> Result<(), XlsxError> {
    let last_col = sheet.widths.len().saturating_sub(1) as u16;
    ws.set_freeze_panes(1, 0)?;
    ws.autofilter(0, 0, sheet.rows, last_col)?;
    for (col, &width) in sheet.widths.iter().enumerate() {
        let width = (usize::from(width) + 1).clamp(MIN_WIDTH, MAX_WIDTH);
        ws.set_column_width(col as u16, width as f64)?;
    }
    Ok(())
}

/// How many character cells `text` takes on screen, its longest line (East Asian wide
/// characters count two), counted up to `stop`.
fn text_width(text: &str, stop: usize) -> usize {
    let (mut longest, mut line) = (0, 0);
    for c in text.chars() {
        if c == '\n' {
            line = 0;
            continue;
        }
        line += if is_wide(c) { 2 } else { 1 };
        longest = longest.max(line);
        if longest >= stop {
            break;
        }
    }
    longest
}

/// East Asian Wide and Fullwidth characters (Unicode UAX #11), by their main blocks:
/// Hangul Jamo, CJK radicals to Yi, Hangul syllables, CJK compatibility, vertical and
/// small forms, full-width forms, emoji, and the supplementary ideographs. A width is a
/// sheet's guess anyway: Excel measures with the font.
fn is_wide(c: char) -> bool {
    matches!(
        u32::from(c),
        0x1100..=0x115F
            | 0x2E80..=0x303E
            | 0x3041..=0x33FF
            | 0x3400..=0x4DBF
            | 0x4E00..=0x9FFF
            | 0xA000..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE10..=0xFE19
            | 0xFE30..=0xFE6F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x1F300..=0x1F64F
            | 0x1F900..=0x1F9FF
            | 0x20000..=0x3FFFD
    )
}

/// Saves the workbook at `path`; a file that could not be written whole is removed, so a
/// `report.xlsx` that is there opens (the error says what happened).
fn save(workbook: &mut Workbook, path: &Path) -> Result<(), XlsxError> {
    let mut file = KeepFirstError {
        inner: BufWriter::new(File::create(path)?),
        error: None,
    };
    let saved = workbook
        .save_to_writer(&mut file)
        .and_then(|()| Ok(file.flush()?));
    let result = match file.error.take() {
        Some(e) => Err(XlsxError::IoError(e)),
        None => saved,
    };
    drop(file);
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// The file under `report.xlsx`: it keeps the first write error and fails that write,
/// so the save stops there, then swallows every later write. zip also finalizes an
/// archive when its `ZipWriter` is dropped, and if that fails it prints
/// "ZipWriter::drop: failed to finalize archive" straight to stderr (zip 9,
/// `src/write.rs`, `impl Drop for ZipWriter`): on a full disk that line, which is not
/// JSON, broke `--log-format json`. Swallowed, the finalizing succeeds silently, and
/// `save` reports the kept error the normal way.
struct KeepFirstError<W> {
    inner: W,
    error: Option<io::Error>,
}

impl<W: Write> Write for KeepFirstError<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.error.is_some() {
            return Ok(buf.len());
        }
        self.inner.write(buf).map_err(|e| self.keep(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.error.is_some() {
            return Ok(());
        }
        self.inner.flush().map_err(|e| self.keep(e))
    }
}

impl<W> KeepFirstError<W> {
    /// Keeps `e` (unless it only asks to try again) and returns a copy for the caller.
    fn keep(&mut self, e: io::Error) -> io::Error {
        if e.kind() == io::ErrorKind::Interrupted {
            return e;
        }
        let copy = io::Error::new(e.kind(), e.to_string());
        self.error = Some(e);
        copy
    }
}

/// What the summary sheet says when the tables are wider than a sheet: where each sheet
/// stops.
fn cut_note(sheets: &[Sheet]) -> Option<String> {
    let widest = sheets.iter().map(|s| s.header.len()).max()?;
    if widest <= MAX_COLUMNS {
        return None;
    }
    let stops: Vec<String> = sheets
        .iter()
        .filter_map(|s| {
            Some(format!(
                "sheet \"{}\" at column \"{}\"",
                s.name,
                s.cut_at()?
            ))
        })
        .collect();
    Some(format!(
        "a sheet holds {MAX_COLUMNS} columns and the tables have up to {widest}, so the \
         sheets stop early ({}); the CSV files hold every column",
        stops.join(", ")
    ))
}

/// The summary sheet: the summary's keys (`run_id`, `command`, …) in column A, so that
/// ferry knows its own report when it is fed back (`manifest::xlsx`).
fn write_summary<'a>(
    workbook: &'a mut Workbook,
    summary: &Summary,
    notes: &[String],
    text: &Format,
) -> Result<&'a mut Worksheet, XlsxError> {
    let sheet = workbook.add_worksheet();
    sheet.set_name("summary")?;
    let value =
        serde_json::to_value(summary).map_err(|e| XlsxError::ParameterError(e.to_string()))?;
    let mut rows: Vec<(String, String)> = notes
        .iter()
        .map(|note| ("note".to_string(), note.clone()))
        .collect();
    flatten("", &value, &mut rows);
    for (i, (key, val)) in rows.iter().enumerate() {
        sheet.write_string_with_format(i as u32, 0, key, text)?;
        sheet.write_string_with_format(i as u32, 1, val, text)?;
    }
    Ok(sheet)
}

fn truncate_chars(s: &str, max: usize) -> &str {
    // Bytes bound chars from above: most cells need no counting at all.
    if s.len() <= max {
        return s;
    }
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `{"counts": {"total": 3}}` → `counts.total = 3`.
fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        serde_json::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        serde_json::Value::Null => out.push((prefix.to_string(), String::new())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sheet_header(table: Table, manifest: &[&str]) -> Vec<String> {
        let csv: Vec<&str> = table
            .columns()
            .iter()
            .copied()
            .chain(manifest.iter().copied())
            .collect();
        person_order(table, manifest.len())
            .into_iter()
            .map(|i| csv[i].to_string())
            .collect()
    }

    #[test]
    fn a_sheet_puts_the_row_the_message_and_the_manifest_before_ferry_s_other_columns() {
        assert_eq!(
            sheet_header(Table::Failed, &["手机", "name"]),
            [
                "ferry_row",
                "ferry_error",
                "手机",
                "name",
                "ferry_key",
                "ferry_stage",
                "ferry_error_code",
                "ferry_field",
                "ferry_http_status",
                "ferry_request_id",
                "ferry_server_request_id",
                "ferry_attempts",
                "ferry_source_row",
                "ferry_source",
            ]
        );
        for table in [Table::Succeeded, Table::Valid] {
            assert_eq!(
                sheet_header(table, &["userId"]),
                [
                    "ferry_row",
                    "ferry_warning",
                    "userId",
                    "ferry_key",
                    "ferry_remote_id",
                    "ferry_request_id",
                    "ferry_server_request_id",
                    "ferry_attempts",
                    "ferry_source_row",
                    "ferry_source",
                ]
            );
        }
        for table in [Table::Skipped, Table::Unprocessed] {
            assert_eq!(sheet_header(table, &[]), sheet_header(Table::Failed, &[]));
        }
    }

    #[test]
    fn a_wide_table_is_cut_at_the_sheet_s_last_column() {
        let manifest: Vec<String> = (0..MAX_COLUMNS).map(|i| format!("c{i}")).collect();
        let header: Vec<String> = Table::Valid
            .columns()
            .iter()
            .map(|c| c.to_string())
            .chain(manifest)
            .collect();
        let sheet = Sheet::new(Table::Valid, header);
        assert_eq!(sheet.widths.len(), MAX_COLUMNS);
        // ferry_row, ferry_warning, then c0…: the last column is c16381.
        assert_eq!(sheet.cut_at(), Some("c16381"));
        assert_eq!(sheet.column[0], Some(0), "ferry_row");
        assert_eq!(sheet.column[1], None, "ferry_key is past the edge");
    }

    #[test]
    fn text_width_counts_the_longest_line_and_wide_characters_twice() {
        let cases = [
            ("", 0),
            ("0911211211", 10),
            ("手机", 4),
            ("ｆｕｌｌ", 8),
            ("a\nlonger line\nb", 11),
            ("Lin 林", 6),
            ("한국어", 6),
            ("é", 1),
        ];
        for (text, want) in cases {
            assert_eq!(text_width(text, MAX_WIDTH), want, "{text:?}");
        }
        assert_eq!(text_width(&"x".repeat(10_000), MAX_WIDTH), MAX_WIDTH);
    }
}
