//! CSV and TSV, record by record, numbered the way a spreadsheet numbers its rows.
//!
//! The csv crate skips blank lines and numbers lines, not rows, so the row number is
//! rebuilt here: line endings are normalised to `\n` (so that every line, CR-only and
//! CRLF files included, holds exactly one `\n` and every record ends with one), and a
//! record's row is its first line minus the line breaks inside the quoted cells before it.
//! Memory holds one record at a time.

use std::io::{self, Read};

use ::csv::{ByteRecord, ReaderBuilder};

use super::encoding::Text;
use super::{ManifestError, Record};

/// Reads `text` as delimited records (the header is just the first of them).
pub(crate) fn records(
    path: &str,
    text: Text,
    delimiter: u8,
) -> impl Iterator<Item = Result<Record, ManifestError>> + Send {
    let reader = ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(LineEndings::new(text.reader));
    CsvRecords {
        path: path.to_string(),
        reader,
        record: ByteRecord::new(),
        raw_utf8: text.raw_utf8,
        replaced: text.replaced,
        breaks_in_cells: 0,
        last_row: 0,
        done: false,
    }
}

struct CsvRecords {
    path: String,
    reader: ::csv::Reader<LineEndings<Box<dyn Read + Send>>>,
    record: ByteRecord,
    raw_utf8: bool,
    replaced: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Line breaks inside quoted cells so far: lines that are not rows.
    breaks_in_cells: u64,
    last_row: u64,
    done: bool,
}

impl Iterator for CsvRecords {
    type Item = Result<Record, ManifestError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => {}
            Ok(false) => {
                self.done = true;
                return None;
            }
            Err(e) => {
                self.done = true;
                let line = self.reader.position().line();
                let message = e.to_string();
                return Some(Err(match e.into_kind() {
                    ::csv::ErrorKind::Io(source) => ManifestError::Io {
                        path: self.path.clone(),
                        source,
                    },
                    _ => ManifestError::Syntax {
                        path: self.path.clone(),
                        line,
                        message,
                    },
                }));
            }
        }
        // Every record ends with the `\n` that `LineEndings` guarantees, so the reader
        // stands on the line after it.
        let breaks = self
            .record
            .as_slice()
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64;
        let first_line = self.reader.position().line().saturating_sub(1 + breaks);
        let row = first_line
            .saturating_sub(self.breaks_in_cells)
            .max(self.last_row + 1);
        self.breaks_in_cells += breaks;
        self.last_row = row;

        let mut cells = Vec::with_capacity(self.record.len());
        let mut bad_text = Vec::new();
        let check_replacements =
            !self.raw_utf8 && self.replaced.load(std::sync::atomic::Ordering::Relaxed);
        for (i, field) in self.record.iter().enumerate() {
            let cell = match std::str::from_utf8(field) {
                Ok(s) => s.to_string(),
                Err(_) => {
                    bad_text.push(i);
                    String::from_utf8_lossy(field).into_owned()
                }
            };
            if check_replacements && cell.contains('\u{FFFD}') {
                bad_text.push(i);
            }
            cells.push(cell);
        }
        Some(Ok(Record {
            row,
            cells,
            bad_text,
        }))
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
