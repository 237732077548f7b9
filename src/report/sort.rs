//! Report rows put back in `ferry_row` order for `report.xlsx`, in bounded memory.
//!
//! `run` reports rows in the order its workers finish them, but a person reads a sheet
//! from the top. Rows are kept in one buffer up to a byte budget; a full buffer is sorted
//! and written to unnamed temporary files (one sorted run per table, gone with the
//! process however it ends), and at the end each table's runs are merged through a
//! binary heap. Memory is the budget plus, while merging, one read buffer and one row per
//! run, however many rows a run reports. A table that piles up too many runs has them
//! merged into one on the way, so that open files stay few; that merge keeps only the
//! rows a sheet can show.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};

/// One buffered row: where its record sits in the buffer.
struct Entry {
    row: u64,
    table: u32,
    len: u32,
    start: usize,
}

/// A sorted run on disk: records of `row` (u64 LE), record length (u32 LE), record.
struct Run {
    file: File,
    rows: u64,
}

/// Rows of several tables, handed back table by table in `ferry_row` order.
pub(super) struct RowSorter {
    budget: usize,
    max_runs: usize,
    /// Rows of a table worth keeping: a sheet shows no more.
    keep: u64,
    /// Records (`Cells`) of the buffered rows, back to back.
    buffer: Vec<u8>,
    index: Vec<Entry>,
    runs: Vec<Vec<Run>>,
    /// Where runs spill: the report folder, whose disk the user chose for a run's
    /// output; else the system's temporary folder.
    spill_dir: Option<std::path::PathBuf>,
}

/// Read buffer of each run while merging.
const READ_BUFFER: usize = 64 << 10;

impl RowSorter {
    /// A sorter for `tables` tables that holds about `budget` bytes of rows in memory
    /// and merges a table's runs into one once it has `max_runs`.
    pub(super) fn new(tables: usize, budget: usize, max_runs: usize, keep: u64) -> RowSorter {
        RowSorter {
            budget,
            max_runs: max_runs.max(2),
            keep,
            buffer: Vec::new(),
            index: Vec::new(),
            runs: (0..tables).map(|_| Vec::new()).collect(),
            spill_dir: None,
        }
    }

    /// Spills runs to files in `dir` rather than in the system's temporary folder.
    pub(super) fn spilling_to(mut self, dir: &std::path::Path) -> RowSorter {
        self.spill_dir = Some(dir.to_path_buf());
        self
    }

    pub(super) fn push<'a>(
        &mut self,
        table: usize,
        row: u64,
        cells: impl Iterator<Item = &'a str> + Clone,
    ) -> io::Result<()> {
        let need: usize = cells.clone().map(|c| 4 + c.len()).sum();
        let held = self.buffer.len() + (self.index.len() + 1) * size_of::<Entry>();
        if !self.index.is_empty() && held + need > self.budget {
            self.spill().map_err(in_temp_folder)?;
        }
        if self.buffer.capacity() == 0 {
            // Reserved whole: a buffer that doubled its way up would hold the old and
            // the new copy at once.
            self.buffer.reserve_exact(self.budget);
        }
        let start = self.buffer.len();
        for cell in cells {
            Cells::encode(&mut self.buffer, cell);
        }
        self.index.push(Entry {
            row,
            table: table as u32,
            len: (self.buffer.len() - start) as u32,
            start,
        });
        Ok(())
    }

    /// Sorts the buffer and writes each table's rows as a run of that table.
    fn spill(&mut self) -> io::Result<()> {
        self.index.sort_unstable_by_key(|e| (e.table, e.row));
        let mut rest = &self.index[..];
        while let Some(first) = rest.first() {
            let table = first.table;
            let n = rest.iter().take_while(|e| e.table == table).count();
            let (group, tail) = rest.split_at(n);
            rest = tail;
            let file = spill_file(self.spill_dir.as_deref())?;
            let mut out = BufWriter::with_capacity(READ_BUFFER, file);
            for e in group {
                write_record(
                    &mut out,
                    e.row,
                    &self.buffer[e.start..e.start + e.len as usize],
                )?;
            }
            let run = Run {
                file: out.into_inner().map_err(io::IntoInnerError::into_error)?,
                rows: group.len() as u64,
            };
            let runs = &mut self.runs[table as usize];
            runs.push(run);
            if runs.len() >= self.max_runs {
                compact(runs, self.keep, self.spill_dir.as_deref())?;
            }
        }
        self.index.clear();
        self.buffer.clear();
        if self.buffer.capacity() > self.budget {
            // One row larger than the budget grew it: let that memory go.
            self.buffer = Vec::new();
        }
        Ok(())
    }

    /// Hands every row to `put`, table by table, each table in `ferry_row` order.
    pub(super) fn drain<E: From<io::Error>>(
        mut self,
        mut put: impl FnMut(usize, u64, Cells<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.runs.iter().all(Vec::is_empty) {
            // Everything fitted in memory: no file was ever written.
            self.index.sort_unstable_by_key(|e| (e.table, e.row));
            for e in &self.index {
                let record = &self.buffer[e.start..e.start + e.len as usize];
                put(e.table as usize, e.row, Cells(record))?;
            }
            return Ok(());
        }
        if !self.index.is_empty() {
            self.spill().map_err(in_temp_folder)?;
        }
        self.buffer = Vec::new();
        for (table, runs) in std::mem::take(&mut self.runs).into_iter().enumerate() {
            merge(runs, self.keep, |row, record| {
                put(table, row, Cells(record))
            })?;
        }
        Ok(())
    }
}

/// A nameless file for a run, gone when it is closed (or the process dies).
fn spill_file(dir: Option<&std::path::Path>) -> io::Result<File> {
    match dir {
        Some(dir) => tempfile::tempfile_in(dir),
        None => tempfile::tempfile(),
    }
}

/// Merges a table's runs into one, keeping only the rows a sheet can show (the rows
/// dropped are larger than at least `keep` rows already seen).
fn compact(runs: &mut Vec<Run>, keep: u64, dir: Option<&std::path::Path>) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(READ_BUFFER, spill_file(dir)?);
    let mut rows = 0;
    merge(std::mem::take(runs), keep, |row, record| {
        rows += 1;
        write_record(&mut out, row, record)
    })?;
    let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    runs.push(Run { file, rows });
    Ok(())
}

fn write_record(out: &mut impl Write, row: u64, record: &[u8]) -> io::Result<()> {
    out.write_all(&row.to_le_bytes())?;
    out.write_all(&(record.len() as u32).to_le_bytes())?;
    out.write_all(record)
}

/// A run being read: its next row and record.
struct Reader {
    file: BufReader<File>,
    left: u64,
    row: u64,
    record: Vec<u8>,
}

impl Reader {
    fn open(mut run: Run) -> io::Result<Reader> {
        run.file.rewind()?;
        Ok(Reader {
            file: BufReader::with_capacity(READ_BUFFER, run.file),
            left: run.rows,
            row: 0,
            record: Vec::new(),
        })
    }

    /// Reads the next record; false once the run is over. The run's row count, not
    /// the end of the file, says when: a short file is an error, never fewer rows.
    fn advance(&mut self) -> io::Result<bool> {
        if self.left == 0 {
            return Ok(false);
        }
        self.left -= 1;
        let mut head = [0u8; 12];
        self.file.read_exact(&mut head)?;
        let (row, len) = head.split_at(8);
        self.row = u64::from_le_bytes(row.try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
        self.record.resize(len, 0);
        self.file.read_exact(&mut self.record)?;
        if !Cells(&self.record).is_valid() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a sorted run of report rows came back damaged",
            ));
        }
        Ok(true)
    }
}

/// Merges sorted runs, handing at most `keep` records to `put` in row order.
fn merge<E: From<io::Error>>(
    runs: Vec<Run>,
    keep: u64,
    mut put: impl FnMut(u64, &[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let mut readers = Vec::with_capacity(runs.len());
    let mut heap = BinaryHeap::with_capacity(runs.len());
    for run in runs {
        let mut reader = Reader::open(run).map_err(in_temp_folder)?;
        if reader.advance().map_err(in_temp_folder)? {
            heap.push(Reverse((reader.row, readers.len())));
            readers.push(reader);
        }
    }
    let mut handed = 0;
    while let Some(Reverse((row, i))) = heap.pop() {
        if handed == keep {
            break;
        }
        handed += 1;
        put(row, &readers[i].record)?;
        if readers[i].advance().map_err(in_temp_folder)? {
            heap.push(Reverse((readers[i].row, i)));
        }
    }
    Ok(())
}

/// An error of the sorted runs says where they are: not in the report folder, whose disk
/// may have room when the temporary folder's has none.
fn in_temp_folder(e: io::Error) -> io::Error {
    let folder = std::env::temp_dir();
    io::Error::new(
        e.kind(),
        format!(
            "putting rows in order in the temporary folder {}: {e}",
            folder.display()
        ),
    )
}

/// One row's cells as stored: each a u32 LE byte length, then its UTF-8 text.
#[derive(Clone, Copy)]
pub(super) struct Cells<'a>(&'a [u8]);

impl Cells<'_> {
    fn encode(out: &mut Vec<u8>, cell: &str) {
        out.extend_from_slice(&(cell.len() as u32).to_le_bytes());
        out.extend_from_slice(cell.as_bytes());
    }

    /// Whether the record splits into whole cells of UTF-8 text.
    fn is_valid(self) -> bool {
        let mut rest = self.0;
        while !rest.is_empty() {
            let Some((len, tail)) = rest.split_first_chunk::<4>() else {
                return false;
            };
            let len = u32::from_le_bytes(*len) as usize;
            if tail.len() < len || std::str::from_utf8(&tail[..len]).is_err() {
                return false;
            }
            rest = &tail[len..];
        }
        true
    }
}

impl<'a> Iterator for Cells<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let (len, tail) = self.0.split_first_chunk::<4>()?;
        let len = (u32::from_le_bytes(*len) as usize).min(tail.len());
        let (cell, rest) = tail.split_at(len);
        self.0 = rest;
        // Records are written from text by this process, and checked when read back
        // from disk (`Reader::advance`): never anything but UTF-8.
        Some(std::str::from_utf8(cell).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows pushed in a scrambled order over `tables` tables; what `drain` hands back.
    fn sorted(budget: usize, max_runs: usize, keep: u64, rows: &[(usize, u64)]) -> Vec<String> {
        let mut sorter = RowSorter::new(3, budget, max_runs, keep);
        for &(table, row) in rows {
            let cells = [
                format!("{row}"),
                format!("t{table}"),
                "電話 0911".repeat(row as usize % 4),
            ];
            sorter
                .push(table, row, cells.iter().map(String::as_str))
                .expect("push");
        }
        let mut out = Vec::new();
        sorter
            .drain(|table, row, cells| {
                let cells: Vec<&str> = cells.collect();
                assert_eq!(cells[0], row.to_string(), "the row's own cells");
                out.push(format!("{table}:{}", cells.join("|")));
                Ok::<_, io::Error>(())
            })
            .expect("drain");
        out
    }

    fn scrambled(n: u64) -> Vec<(usize, u64)> {
        // A fixed permutation: 7919 is prime, so i * 7919 mod n visits every row once.
        (0..n)
            .map(|i| (i * 7919) % n + 2)
            .map(|row| ((row % 3) as usize, row))
            .collect()
    }

    fn expected(rows: &[(usize, u64)], keep: usize) -> Vec<String> {
        let mut want: Vec<(usize, u64)> = rows.to_vec();
        want.sort();
        let mut out = Vec::new();
        for table in 0..3 {
            for &(_, row) in want.iter().filter(|(t, _)| *t == table).take(keep) {
                let extra = "電話 0911".repeat(row as usize % 4);
                out.push(format!("{table}:{row}|t{table}|{extra}"));
            }
        }
        out
    }

    #[test]
    fn rows_that_fit_the_budget_come_back_sorted_without_a_file() {
        let rows = scrambled(500);
        let mut sorter = RowSorter::new(3, 1 << 20, 8, u64::MAX);
        for &(table, row) in &rows {
            sorter.push(table, row, ["x"].into_iter()).expect("push");
        }
        assert!(sorter.runs.iter().all(Vec::is_empty));
        assert_eq!(
            sorted(1 << 20, 8, u64::MAX, &rows),
            expected(&rows, usize::MAX)
        );
    }

    #[test]
    fn rows_past_the_budget_are_spilled_and_merged_in_order() {
        let rows = scrambled(2_000);
        let mut sorter = RowSorter::new(3, 4096, 1_000, u64::MAX);
        for &(table, row) in &rows {
            sorter.push(table, row, ["x"].into_iter()).expect("push");
        }
        assert!(
            sorter.runs[0].len() > 10,
            "the test spills: {}",
            sorter.runs[0].len()
        );
        assert_eq!(
            sorted(4096, 1_000, u64::MAX, &rows),
            expected(&rows, usize::MAX)
        );
    }

    #[test]
    fn too_many_runs_are_merged_into_one_keeping_the_first_rows_a_sheet_shows() {
        let rows = scrambled(3_000);
        let mut sorter = RowSorter::new(3, 2048, 4, 700);
        for &(table, row) in &rows {
            sorter.push(table, row, ["x"].into_iter()).expect("push");
        }
        assert!(sorter.runs.iter().all(|r| r.len() < 4), "runs compacted");
        assert_eq!(sorted(2048, 4, 700, &rows), expected(&rows, 700));
    }

    #[test]
    fn a_row_larger_than_the_budget_is_kept_whole() {
        let big = "長".repeat(10_000);
        let mut sorter = RowSorter::new(1, 1024, 4, u64::MAX);
        for row in [9, 3, 7] {
            let cell = if row == 7 { big.as_str() } else { "small" };
            sorter.push(0, row, [cell].into_iter()).expect("push");
        }
        let mut out = Vec::new();
        sorter
            .drain(|_, row, cells| {
                out.push((row, cells.map(str::len).sum::<usize>()));
                Ok::<_, io::Error>(())
            })
            .expect("drain");
        assert_eq!(out, [(3, 5), (7, big.len()), (9, 5)]);
    }

    #[test]
    fn a_damaged_run_is_an_error_not_fewer_rows() {
        let mut file = tempfile::tempfile().expect("temp file");
        write_record(&mut file, 2, &[9, 0, 0, 0, b'a']).expect("write");
        let run = Run { file, rows: 1 };
        let got = merge(vec![run], u64::MAX, |_, _| Ok::<_, io::Error>(()));
        let e = got.expect_err("damaged");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("in the temporary folder"), "{e}");
        let mut file = tempfile::tempfile().expect("temp file");
        write_record(&mut file, 2, &[1, 0, 0, 0, b'a']).expect("write");
        let run = Run { file, rows: 2 };
        let got = merge(vec![run], u64::MAX, |_, _| Ok::<_, io::Error>(()));
        assert_eq!(got.expect_err("short").kind(), io::ErrorKind::UnexpectedEof);
    }
}
