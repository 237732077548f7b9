//! CSV and TSV, record by record, numbered the way a spreadsheet numbers its rows.
//!
//! csv_core parses; this module feeds it one line at a time and keeps what it writes.
//! That is what lets it do three things the csv crate's reader cannot:
//! - number rows as a spreadsheet does: line endings are normalised to `\n` (so every
//!   line, CR-only and CRLF files included, holds exactly one `\n` and every record ends
//!   with one), and a record's row is its first line minus the line breaks inside the
//!   quoted cells before it;
//! - bound memory whatever the file: a cell keeps at most `CELL_BYTES` (the row then
//!   fails with `cell_too_long`), a record at most `COLUMNS` cells and `ROW_BYTES` of
//!   text (past it, `row_too_long`);
//! - catch a quote left open, which would swallow the rows after it into one cell: a
//!   quoted cell that runs over more than `CELL_LINE_BREAKS` line breaks (Excel's own
//!   limit), or past `CELL_BYTES` over several lines, or to the end of the file, is cut
//!   at its first line break and its row fails with `unclosed_quote`; the lines it took
//!   in are read again as rows of their own. Only those lines are held for that, so
//!   memory stays bounded too.

use std::io::{self, BufRead, BufReader, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use csv_core::ReadRecordResult;

use super::encoding::Text;
use super::limits::{CELL_BYTES, CELL_LINE_BREAKS, COLUMNS, ROW_BYTES};
use super::{Flaw, ManifestError, OpenQuote, Record};

/// Input is fed to the parser in pieces of at most this many bytes, each ending at the
/// first line break.
const PIECE: usize = 64 * 1024;

/// Reads `text` as delimited records (the header is just the first of them).
pub(crate) fn records(
    path: &str,
    text: Text,
    delimiter: u8,
) -> impl Iterator<Item = Result<Record, ManifestError>> + Send {
    CsvRecords {
        path: path.to_string(),
        input: BufReader::with_capacity(PIECE, LineEndings::new(text.reader)),
        replay: Vec::new(),
        replay_pos: 0,
        piece: Vec::with_capacity(PIECE),
        core: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
        out: vec![0; PIECE],
        ends: vec![0; 1024],
        raw_utf8: text.raw_utf8,
        replaced: text.replaced,
        lines: 0,
        breaks_in_cells: 0,
        last_row: 0,
        done: false,
        spare: (Vec::new(), Vec::new()),
    }
}

struct CsvRecords {
    path: String,
    input: BufReader<LineEndings<Box<dyn Read + Send>>>,
    /// Lines to read again before `input`: those a quote left open had taken in.
    replay: Vec<u8>,
    replay_pos: usize,
    /// The piece of input being parsed.
    piece: Vec<u8>,
    core: csv_core::Reader,
    /// csv_core's output for one call; what is kept is copied into a `Building`.
    out: Vec<u8>,
    ends: Vec<usize>,
    raw_utf8: bool,
    replaced: Arc<AtomicBool>,
    /// Lines parsed so far (each ends with its `\n`).
    lines: u64,
    /// Line breaks inside quoted cells so far: lines that are not rows.
    breaks_in_cells: u64,
    last_row: u64,
    done: bool,
    /// The text and cell ends of the record before, emptied: each record is built in
    /// them, so that it costs no allocation beyond its cells.
    spare: (Vec<u8>, Vec<usize>),
}

impl Iterator for CsvRecords {
    type Item = Result<Record, ManifestError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = self.next_record();
        if !matches!(result, Ok(Some(_))) {
            self.done = true;
        }
        result.transpose()
    }
}

impl CsvRecords {
    fn next_record(&mut self) -> Result<Option<Record>, ManifestError> {
        let (text, bounds) = std::mem::take(&mut self.spare);
        let mut b = Building {
            text,
            bounds,
            ..Building::default()
        };
        loop {
            if !self.next_piece()? {
                if b.hold.is_some() {
                    return Ok(Some(self.open_quote(b, OpenQuote::EndOfFile)));
                }
                return Ok(self.finish_input(b).map(|b| self.record(b)));
            }
            let piece = std::mem::take(&mut self.piece);
            let breaks_before = b.breaks;
            let (consumed, recorded) = self.parse(&mut b, &piece);
            self.lines += count_breaks(&piece[..consumed]);
            if consumed < piece.len() {
                self.unread(&piece[consumed..]);
            }
            if let Some(hold) = b.hold.as_mut() {
                hold.bytes.extend_from_slice(&piece[..consumed]);
            }
            self.piece = piece;
            if recorded {
                return Ok(Some(self.record(b)));
            }
            // A piece holds at most one line break, its last byte: if it went into the
            // cell, the line ended inside a quoted cell.
            if b.breaks > breaks_before && b.hold.is_none() {
                let newline_kept = b.width < COLUMNS
                    && !b.cell_cut
                    && b.row_cut.is_none()
                    && b.text.len() > b.cell_start
                    && b.text.last() == Some(&b'\n');
                b.hold = Some(Hold {
                    line: self.lines,
                    cut: b.text.len() - usize::from(newline_kept),
                    row_cut: b.row_cut,
                    breaks_before,
                    bytes: Vec::new(),
                });
            }
            if b.cell_breaks > CELL_LINE_BREAKS {
                return Ok(Some(self.open_quote(b, OpenQuote::TooManyLines)));
            }
            if b.hold.is_some() && b.cell_cut {
                return Ok(Some(self.open_quote(b, OpenQuote::TooLong)));
            }
        }
    }

    /// Feeds one piece to the parser. Returns the bytes consumed and whether a record
    /// ended.
    fn parse(&mut self, b: &mut Building, piece: &[u8]) -> (usize, bool) {
        let mut input = piece;
        loop {
            let (result, nin, nout, nend) =
                self.core.read_record(input, &mut self.out, &mut self.ends);
            input = &input[nin..];
            b.take(&self.out[..nout], &self.ends[..nend]);
            match result {
                ReadRecordResult::OutputFull | ReadRecordResult::OutputEndsFull => continue,
                ReadRecordResult::Record => return (piece.len() - input.len(), true),
                ReadRecordResult::InputEmpty | ReadRecordResult::End => {
                    return (piece.len() - input.len(), false)
                }
            }
        }
    }

    /// The end of the input: the last record, when one is under way.
    fn finish_input(&mut self, mut b: Building) -> Option<Building> {
        loop {
            let (result, _, nout, nend) = self.core.read_record(&[], &mut self.out, &mut self.ends);
            b.take(&self.out[..nout], &self.ends[..nend]);
            match result {
                ReadRecordResult::Record => return Some(b),
                ReadRecordResult::End => return None,
                _ => continue,
            }
        }
    }

    /// Fills `piece` with input up to and including the next line break (or `PIECE`
    /// bytes); false at the end of the input.
    fn next_piece(&mut self) -> Result<bool, ManifestError> {
        self.piece.clear();
        if self.replay_pos < self.replay.len() {
            let rest = &self.replay[self.replay_pos..];
            let n = line_piece(rest);
            self.piece.extend_from_slice(&rest[..n]);
            self.replay_pos += n;
            if self.replay_pos == self.replay.len() {
                self.replay.clear();
                self.replay_pos = 0;
            }
            return Ok(true);
        }
        let buf = loop {
            match self.input.fill_buf() {
                Ok(buf) => break buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ManifestError::Io {
                        path: self.path.clone(),
                        source,
                    })
                }
            }
        };
        if buf.is_empty() {
            return Ok(false);
        }
        let n = line_piece(buf);
        self.piece.extend_from_slice(&buf[..n]);
        self.input.consume(n);
        Ok(true)
    }

    /// Puts bytes back in front of the input.
    fn unread(&mut self, bytes: &[u8]) {
        let mut replay = bytes.to_vec();
        replay.extend_from_slice(&self.replay[self.replay_pos..]);
        self.replay = replay;
        self.replay_pos = 0;
    }

    /// A record whose quoted cell never closed: cut at the cell's first line break; the
    /// lines after it are read again, from a parser that starts afresh.
    fn open_quote(&mut self, mut b: Building, how: OpenQuote) -> Record {
        let hold = b.hold.take().expect("an open quote holds its lines");
        let swallowed = self.lines - hold.line;
        b.text.truncate(hold.cut);
        b.cell_cut = false;
        b.row_cut = hold.row_cut;
        b.breaks = hold.breaks_before;
        let column = b.width;
        b.finish_cell();
        self.lines = hold.line;
        self.unread(&hold.bytes);
        self.core.reset();
        let mut record = self.record(b);
        record
            .flaws
            .push((column, Flaw::OpenQuote { how, swallowed }));
        record
    }

    /// The record `b` ends on line `self.lines`: numbers it and turns its cells to text.
    fn record(&mut self, b: Building) -> Record {
        let first_line = self.lines.saturating_sub(b.breaks);
        let row = first_line
            .saturating_sub(self.breaks_in_cells)
            .max(self.last_row + 1);
        self.breaks_in_cells += b.breaks;
        self.last_row = row;

        let check_replacements = !self.raw_utf8 && self.replaced.load(Ordering::Relaxed);
        let mut cells = Vec::with_capacity(b.bounds.len());
        let mut flaws: Vec<(usize, Flaw)> = b.cut.iter().map(|&i| (i, Flaw::Cut)).collect();
        flaws.extend(b.row_cut.map(|i| (i, Flaw::RowCut)));
        let mut start = 0;
        for (i, &end) in b.bounds.iter().enumerate() {
            let field = &b.text[start..end];
            start = end;
            let cell = match std::str::from_utf8(field) {
                Ok(s) => s.to_string(),
                Err(_) => {
                    flaws.push((i, Flaw::BadText));
                    String::from_utf8_lossy(field).into_owned()
                }
            };
            if check_replacements && cell.contains('\u{FFFD}') {
                flaws.push((i, Flaw::BadText));
            }
            cells.push(cell);
        }
        let (mut text, mut bounds) = (b.text, b.bounds);
        text.clear();
        bounds.clear();
        self.spare = (text, bounds);
        Record {
            row,
            cells,
            width: b.width,
            flaws,
        }
    }
}

/// The length of the first piece of `bytes`: up to and including its first line break,
/// at most `PIECE`.
fn line_piece(bytes: &[u8]) -> usize {
    let window = &bytes[..bytes.len().min(PIECE)];
    window
        .iter()
        .position(|&b| b == b'\n')
        .map_or(window.len(), |i| i + 1)
}

fn count_breaks(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// A record as csv_core writes it, kept within the limits.
#[derive(Default)]
struct Building {
    /// The kept bytes of the record's cells, back to back.
    text: Vec<u8>,
    /// The end of each kept cell in `text`.
    bounds: Vec<usize>,
    /// Cells finished, kept or not.
    width: usize,
    /// Where csv_core's record-relative output stands (its `ends` count from there).
    written: usize,
    /// Where the cell being read starts in `text`.
    cell_start: usize,
    /// Line breaks in the cell being read, and in the record so far.
    cell_breaks: u64,
    breaks: u64,
    /// Bytes of the cell being read so far, kept or not.
    cell_len: usize,
    /// The cell being read was longer than `CELL_BYTES`.
    cell_cut: bool,
    /// The cell where the record passed `ROW_BYTES`: nothing after it was kept.
    row_cut: Option<usize>,
    /// Cells cut at `CELL_BYTES`.
    cut: Vec<usize>,
    /// Set at the first line break inside the cell being read.
    hold: Option<Hold>,
}

/// What is needed to undo a quoted cell that turns out never to close.
struct Hold {
    /// `lines` when the cell's first line break was read: the row's last line.
    line: u64,
    /// The cell's kept length before that line break.
    cut: usize,
    /// `Building::row_cut` then.
    row_cut: Option<usize>,
    /// Line breaks in the record before that one.
    breaks_before: u64,
    /// The input read since, to be read again.
    bytes: Vec<u8>,
}

impl Building {
    /// Takes one call's output: `out` in order, with the ends of the cells it finished.
    fn take(&mut self, out: &[u8], ends: &[usize]) {
        let mut start = 0;
        for &end in ends {
            let len = end.saturating_sub(self.written).min(out.len() - start);
            self.push(&out[start..start + len]);
            self.finish_cell();
            start += len;
            self.written = end;
        }
        self.push(&out[start..]);
        self.written += out.len() - start;
    }

    fn push(&mut self, bytes: &[u8]) {
        let breaks = count_breaks(bytes);
        self.cell_breaks += breaks;
        self.breaks += breaks;
        if self.width >= COLUMNS {
            return;
        }
        // The cell's length counts what was read, kept or not: it is what tells a cell
        // too long (and a quote left open) even in a row whose text is no longer kept.
        let cell_room = CELL_BYTES.saturating_sub(self.cell_len);
        self.cell_len = self.cell_len.saturating_add(bytes.len());
        if bytes.len() > cell_room {
            self.cell_cut = true;
        }
        let row_room = match self.row_cut {
            Some(_) => 0,
            None => ROW_BYTES.saturating_sub(self.text.len()),
        };
        let keep = bytes.len().min(cell_room);
        if keep > row_room && self.row_cut.is_none() {
            self.row_cut = Some(self.width);
        }
        self.text.extend_from_slice(&bytes[..keep.min(row_room)]);
    }

    fn finish_cell(&mut self) {
        if self.width < COLUMNS {
            if self.cell_cut || self.row_cut == Some(self.width) {
                // Cut mid-character: drop the incomplete character, not the cell.
                let cell = &self.text[self.cell_start..];
                if let Err(e) = std::str::from_utf8(cell) {
                    if e.error_len().is_none() {
                        self.text.truncate(self.cell_start + e.valid_up_to());
                    }
                }
            }
            if self.cell_cut {
                self.cut.push(self.width);
            }
            self.bounds.push(self.text.len());
        }
        self.width += 1;
        self.cell_start = self.text.len();
        self.cell_breaks = 0;
        self.cell_len = 0;
        self.cell_cut = false;
        self.hold = None;
    }
}

/// Rewrites `\r\n` and a lone `\r` as `\n`, and ends the text with a `\n`, so that
/// line numbers count rows' lines in every file. A line break inside a quoted cell is
/// normalised the same way (Excel itself stores it as `\n`).
struct LineEndings<R> {
    inner: R,
    input: Vec<u8>,
    output: Vec<u8>,
    out_start: usize,
    pending_cr: bool,
    last: Option<u8>,
    eof: bool,
}

impl<R: Read> LineEndings<R> {
    fn new(inner: R) -> Self {
        LineEndings {
            inner,
            input: vec![0; 64 * 1024],
            output: Vec::with_capacity(64 * 1024 + 1),
            out_start: 0,
            pending_cr: false,
            last: None,
            eof: false,
        }
    }

    /// Refills `output`; leaves it empty only at the end.
    fn fill(&mut self) -> io::Result<()> {
        self.output.clear();
        self.out_start = 0;
        while self.output.is_empty() && !self.eof {
            let n = match self.inner.read(&mut self.input) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                self.eof = true;
                if self.pending_cr || self.last.is_some_and(|b| b != b'\n') {
                    self.output.push(b'\n');
                }
                self.pending_cr = false;
                break;
            }
            for &b in &self.input[..n] {
                if self.pending_cr {
                    self.pending_cr = false;
                    self.output.push(b'\n');
                    if b == b'\n' {
                        continue;
                    }
                }
                if b == b'\r' {
                    self.pending_cr = true;
                } else {
                    self.output.push(b);
                }
            }
        }
        if let Some(&b) = self.output.last() {
            self.last = Some(b);
        }
        Ok(())
    }
}

impl<R: Read> Read for LineEndings<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.out_start == self.output.len() {
            self.fill()?;
        }
        let n = out.len().min(self.output.len() - self.out_start);
        out[..n].copy_from_slice(&self.output[self.out_start..self.out_start + n]);
        self.out_start += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalise(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        // A one-byte buffer on the reading side exercises every boundary.
        let mut reader = LineEndings::new(input);
        let mut byte = [0u8; 1];
        loop {
            match reader.read(&mut byte) {
                Ok(0) => break,
                Ok(_) => out.push(byte[0]),
                Err(e) => panic!("{e}"),
            }
        }
        out
    }

    #[test]
    fn line_endings_become_lf_and_the_text_ends_with_one() {
        assert_eq!(normalise(b"a\r\nb\rc\n"), b"a\nb\nc\n");
        assert_eq!(normalise(b"a\r\n\r\nb"), b"a\n\nb\n");
        assert_eq!(normalise(b"a\r"), b"a\n");
        assert_eq!(normalise(b""), b"");
    }
}
