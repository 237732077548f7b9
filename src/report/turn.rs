//! Report rows put back in the order they were read, for `report.xlsx`, while the run
//! goes on.
//!
//! `run` reports rows as its requests come back: nearly in order, a few batches apart.
//! A row whose turn has come (`seq`, its place among the rows read) goes to its sheet
//! at once, with the rows that were waiting for it; one that comes early waits in
//! memory. So the workbook is written while the run sends, not after it. If the rows
//! waiting outgrow their budget (a batch retried for minutes holds back everything read
//! after it), the rest go through `RowSorter` — sorted runs on disk — and are written
//! at the end, still in order: memory stays flat either way.

use std::collections::BTreeMap;

use super::sort::RowSorter;

/// Where a report row goes and when its turn comes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Turn {
    /// The index of its sheet.
    pub table: usize,
    /// `ferry_row`.
    pub row: u64,
    /// Its place among the rows read (`RawRow::seq`).
    pub seq: u64,
}

/// A row that came before its turn: its cells back to back.
struct Waiting {
    table: usize,
    row: u64,
    text: String,
    ends: Vec<usize>,
}

impl Waiting {
    fn cells(&self) -> impl Iterator<Item = &str> + Clone {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(self.ends.iter()).map(|(a, &b)| &self.text[a..b])
    }

    fn bytes(&self) -> usize {
        self.text.len() + self.ends.len() * size_of::<usize>() + size_of::<Waiting>()
    }
}

/// Rows on their way to the sheets in their turn.
pub(super) struct InTurn {
    /// The `seq` whose turn it is.
    next: u64,
    waiting: BTreeMap<u64, Waiting>,
    bytes: usize,
    budget: usize,
    /// Once set, every row goes through it and is written at the end.
    sorter: RowSorter,
    sorting: bool,
}

impl InTurn {
    /// Rows wait up to `budget` bytes; past it they are sorted through `sorter`.
    pub(super) fn new(budget: usize, sorter: RowSorter) -> InTurn {
        InTurn {
            next: 0,
            waiting: BTreeMap::new(),
            bytes: 0,
            budget,
            sorter,
            sorting: false,
        }
    }

    /// Takes one row: `put` writes it now if its turn has come (and the rows waiting
    /// for it after it), or it waits.
    pub(super) fn push<'a, E: From<std::io::Error>>(
        &mut self,
        at: Turn,
        cells: impl Iterator<Item = &'a str> + Clone,
        put: &mut impl FnMut(usize, u64, &mut dyn Iterator<Item = &str>) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.sorting || at.seq < self.next {
            // (A row before its turn cannot come twice; were it to, it is still
            // written, at the end.)
            return Ok(self.sorter.push(at.table, at.row, cells)?);
        }
        if at.seq > self.next {
            let mut waiting = Waiting {
                table: at.table,
                row: at.row,
                text: String::new(),
                ends: Vec::new(),
            };
            for cell in cells {
                waiting.text.push_str(cell);
                waiting.ends.push(waiting.text.len());
            }
            self.bytes += waiting.bytes();
            self.waiting.insert(at.seq, waiting);
            if self.bytes > self.budget {
                self.sort_the_rest()?;
            }
            return Ok(());
        }
        put(at.table, at.row, &mut cells.clone())?;
        self.next += 1;
        while let Some(entry) = self.waiting.first_entry() {
            if *entry.key() != self.next {
                break;
            }
            let waiting = entry.remove();
            self.bytes -= waiting.bytes();
            put(waiting.table, waiting.row, &mut waiting.cells())?;
            self.next += 1;
        }
        Ok(())
    }

    /// From here on every row goes through the sorter, those waiting first.
    fn sort_the_rest(&mut self) -> std::io::Result<()> {
        self.sorting = true;
        for (_, waiting) in std::mem::take(&mut self.waiting) {
            self.sorter
                .push(waiting.table, waiting.row, waiting.cells())?;
        }
        self.bytes = 0;
        Ok(())
    }

    /// Writes what is left, in order: rows still waiting (their turn never came: a row
    /// before them was not reported), then what went through the sorter.
    pub(super) fn finish<E: From<std::io::Error>>(
        self,
        mut put: impl FnMut(usize, u64, &mut dyn Iterator<Item = &str>) -> Result<(), E>,
    ) -> Result<(), E> {
        for waiting in self.waiting.values() {
            put(waiting.table, waiting.row, &mut waiting.cells())?;
        }
        self.sorter
            .drain(|table, row, mut cells| put(table, row, &mut cells))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs rows through `InTurn` with `budget`; returns what was written while they
    /// came and what only at the end, as (seq-derived row, first cell).
    fn written(order: &[u64], budget: usize) -> (Vec<u64>, Vec<u64>) {
        let sorter = RowSorter::new(1, 1 << 20, 4, u64::MAX);
        let mut turn = InTurn::new(budget, sorter);
        let mut during = Vec::new();
        for &seq in order {
            let cell = format!("cell {seq}");
            let at = Turn {
                table: 0,
                row: seq * 2 + 2,
                seq,
            };
            let mut put = |_table: usize, row: u64, cells: &mut dyn Iterator<Item = &str>| {
                assert_eq!(
                    cells.next(),
                    Some(format!("cell {}", (row - 2) / 2).as_str())
                );
                during.push(row);
                Ok::<(), std::io::Error>(())
            };
            turn.push(at, [cell.as_str(), "x"].into_iter(), &mut put)
                .unwrap();
        }
        let mut after = Vec::new();
        turn.finish(|_, row, _| {
            after.push(row);
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
        (during, after)
    }

    #[test]
    fn rows_that_come_early_wait_for_their_turn() {
        let (during, after) = written(&[1, 0, 3, 4, 2, 5], 1 << 20);
        assert_eq!(during, [2, 4, 6, 8, 10, 12]);
        assert!(after.is_empty());
    }

    #[test]
    fn past_the_budget_the_rest_is_sorted_and_written_at_the_end() {
        // Row 0 comes last: everything after it waits, until the budget is spent.
        let order: Vec<u64> = (1..200).chain([0]).collect();
        let (during, after) = written(&order, 2_000);
        assert!(during.is_empty(), "{during:?}");
        let all: Vec<u64> = (0..200).map(|seq| seq * 2 + 2).collect();
        assert_eq!(after, all);
    }

    #[test]
    fn a_row_whose_turn_never_comes_leaves_the_rest_to_the_end_in_order() {
        let (during, after) = written(&[0, 2, 3, 5], 1 << 20);
        assert_eq!(during, [2]);
        assert_eq!(after, [6, 8, 12]);
    }
}
