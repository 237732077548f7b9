//! `report.xlsx`: the report tables as sheets plus a summary sheet, every cell stored
//! as text so phone numbers, ids and leading zeros survive a round trip through Excel.
//!
//! The workbook is written on its own thread while rows are reported (building it is
//! as much work as everything else a `validate` does), in constant-memory mode, fed
//! through a bounded channel: its size never grows ferry's memory.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

use rust_xlsxwriter::{Format, Workbook, XlsxError};

use super::{Summary, Table};

/// Excel's limits: a sheet has at most 1,048,576 rows and 16,384 columns, a cell at most
/// 32,767 characters. A wider table is cut at the last column, and the summary sheet says
/// so; the CSV files keep every column (and a report is never refused for its width:
/// the rows were already sent).
const MAX_ROWS: u32 = crate::manifest::limits::SHEET_ROWS as u32;
const MAX_COLUMNS: usize = crate::manifest::limits::COLUMNS;
const MAX_CELL_CHARS: usize = crate::manifest::limits::CELL_CHARS;

/// Rows travel in chunks: one channel message per row costs more in thread wake-ups
/// than writing the row. A chunk of wide or long rows is sent sooner, so that a queue of
/// them stays small (rows of a megabyte, as a manifest may hold, would otherwise make
/// chunks of half a gigabyte).
const CHUNK: usize = 512;
const CHUNK_CELLS: usize = 64 * 1024;
const CHUNK_BYTES: usize = 4 * 1024 * 1024;
/// Chunks in the channel before reporting waits for the workbook.
const QUEUE: usize = 8;

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
    /// Table and number of cells of each row.
    rows: Vec<(usize, usize)>,
}

impl Chunk {
    fn push<'a>(&mut self, table: usize, cells: impl Iterator<Item = &'a str>) {
        let before = self.cell_ends.len();
        for cell in cells {
            self.text.push_str(cell);
            self.cell_ends.push(self.text.len());
        }
        self.rows.push((table, self.cell_ends.len() - before));
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
    /// One sheet per table, each starting with its header row.
    pub fn start(path: &Path, tables: &[Table], headers: Vec<Vec<String>>) -> XlsxWriter {
        let (tx, rx) = sync_channel::<Message>(QUEUE);
        let names: Vec<&'static str> = tables.iter().map(|t| t.name()).collect();
        let out = path.to_path_buf();
        let note = cut_note(&names, &headers);
        let thread = std::thread::spawn(move || {
            let mut workbook = Workbook::new();
            // Compression is most of the time a large workbook takes; level 1 halves it
            // for a file about half as large again.
            workbook.set_zip_compression_level(1);
            let text = Format::new().set_num_format("@");
            for (name, header) in names.iter().zip(&headers) {
                let sheet = workbook.add_worksheet_with_constant_memory()?;
                sheet.set_name(*name)?;
                if !header.is_empty() {
                    // Text format on whole columns: what a person types there stays text.
                    let last = header.len().min(MAX_COLUMNS) - 1;
                    sheet.set_column_range_format(0, last as u16, &text)?;
                }
                write_row(sheet, 0, header.iter().map(String::as_str))?;
            }
            let mut next_row = vec![1u32; names.len()];
            let mut summary = None;
            while let Ok(message) = rx.recv() {
                match message {
                    Message::Rows(chunk) => {
                        let (mut cell, mut start) = (0, 0);
                        for &(table, count) in &chunk.rows {
                            let ends = &chunk.cell_ends[cell..cell + count];
                            cell += count;
                            let cells = ends.iter().map(|&end| {
                                let text = &chunk.text[start..end];
                                start = end;
                                text
                            });
                            let row = next_row[table];
                            let sheet = workbook.worksheet_from_index(table)?;
                            if row < MAX_ROWS - 1 {
                                write_row(sheet, row, cells)?;
                            } else if row == MAX_ROWS - 1 {
                                let note = format!(
                                    "… more rows than a sheet can hold; see {}.csv",
                                    names[table]
                                );
                                sheet.write_string(row, 0, note)?;
                            }
                            next_row[table] = row.saturating_add(1);
                        }
                    }
                    Message::Finish(s) => {
                        summary = Some(s);
                        break;
                    }
                }
            }
            // Without a summary the run ended abnormally: the CSVs are the record.
            let Some(summary) = summary else {
                return Ok(());
            };
            write_summary(&mut workbook, &summary, note.as_deref(), &text)?;
            save(&mut workbook, &out)
        });
        XlsxWriter {
            tx,
            pending: Chunk::default(),
            thread,
            path: path.to_path_buf(),
        }
    }

    /// Queues one row for a table's sheet (raw values: a text cell is never a formula,
    /// so the CSV formula guard has no place here).
    pub fn row<'a>(&mut self, table: usize, cells: impl Iterator<Item = &'a str>) {
        self.pending.push(table, cells.take(MAX_COLUMNS));
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

fn write_row<'a>(
    sheet: &mut rust_xlsxwriter::Worksheet,
    row: u32,
    cells: impl Iterator<Item = &'a str>,
) -> Result<(), XlsxError> {
    for (col, cell) in cells.take(MAX_COLUMNS).enumerate() {
        if cell.is_empty() {
            continue;
        }
        // A string cell is text whatever its format: phones and ids stay as written.
        sheet.write_string(row, col as u16, truncate_chars(cell, MAX_CELL_CHARS))?;
    }
    Ok(())
}

/// What the summary sheet says when the tables are wider than a sheet: where each sheet
/// stops.
fn cut_note(names: &[&str], headers: &[Vec<String>]) -> Option<String> {
    let widest = headers.iter().map(Vec::len).max()?;
    if widest <= MAX_COLUMNS {
        return None;
    }
    let stops: Vec<String> = names
        .iter()
        .zip(headers)
        .filter(|(_, h)| h.len() > MAX_COLUMNS)
        .map(|(name, h)| format!("sheet \"{name}\" at column \"{}\"", h[MAX_COLUMNS - 1]))
        .collect();
    Some(format!(
        "a sheet holds {MAX_COLUMNS} columns and the tables have up to {widest}, so the \
         sheets stop early ({}); the CSV files hold every column",
        stops.join(", ")
    ))
}

fn write_summary(
    workbook: &mut Workbook,
    summary: &Summary,
    note: Option<&str>,
    text: &Format,
) -> Result<(), XlsxError> {
    let sheet = workbook.add_worksheet();
    sheet.set_name("summary")?;
    let value =
        serde_json::to_value(summary).map_err(|e| XlsxError::ParameterError(e.to_string()))?;
    let mut rows = Vec::new();
    if let Some(note) = note {
        rows.push(("note".to_string(), note.to_string()));
    }
    flatten("", &value, &mut rows);
    for (i, (key, val)) in rows.iter().enumerate() {
        sheet.write_string_with_format(i as u32, 0, key, text)?;
        sheet.write_string_with_format(i as u32, 1, val, text)?;
    }
    Ok(())
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
