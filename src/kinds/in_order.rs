//! The validate stage spread over threads, rows handed back in file order.
//!
//! A row's rules need nothing from other rows (`Rules`), so rows go out in chunks, one
//! chunk to each worker thread in turn; what needs file order — a repeated key, where the
//! first row keeps it — is settled on the calling thread as chunks come back, in the
//! order they went out. Going round in turn is what keeps the order: chunk n always comes
//! back from worker n mod workers. The calling thread reads the rows and writes what it
//! is handed, so it is busy too. At most `IN_FLIGHT` chunks per worker are out at a time,
//! and a chunk is bounded in rows and bytes: memory stays flat whatever the file.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use super::validator::Rules;
use super::{Passed, Rejected, Validator};
use crate::manifest::{ManifestError, RawRow};

/// Rows a chunk holds: enough that a channel message costs nothing beside them.
const CHUNK_ROWS: usize = 512;
/// Bytes of cells past which a chunk goes out with fewer rows (rows of a megabyte, as a
/// manifest may hold, would otherwise make chunks of gigabytes).
const CHUNK_BYTES: usize = 1 << 19;
/// Chunks out per worker: one being checked and three waiting. Threads outnumber cores,
/// so a worker or the reader is often off its core; with only one chunk waiting, the
/// others then ran dry (validate was 6% slower). Chunks half as large keep memory as it was.
const IN_FLIGHT: usize = 4;
/// Workers beyond this would wait on the one thread that reads and reports.
const MAX_WORKERS: usize = 4;

/// A row with its verdict: what the rules found, settled against the rows before it.
pub type CheckedRow = (RawRow, Result<Passed, Rejected>);

/// Rows with their verdicts, in file order; an error of the reader ends the stream after
/// the rows before it.
pub struct InOrder<I> {
    rows: I,
    validator: Validator,
    workers: Vec<Worker>,
    /// Chunks sent out and taken back so far.
    sent: usize,
    taken: usize,
    /// The chunk being handed out.
    current: std::iter::Zip<std::vec::IntoIter<RawRow>, std::vec::IntoIter<Verdict>>,
    /// The reader's error, handed out after every row before it.
    error: Option<ManifestError>,
    read_all: bool,
}

type Verdict = Result<Passed, Rejected>;

struct Worker {
    tx: SyncSender<Vec<RawRow>>,
    rx: Receiver<(Vec<RawRow>, Vec<Verdict>)>,
    thread: JoinHandle<()>,
}

impl Worker {
    fn start(rules: Rules) -> Worker {
        let (tx, chunks) = sync_channel::<Vec<RawRow>>(IN_FLIGHT);
        let (done, rx) = sync_channel(IN_FLIGHT);
        let thread = std::thread::spawn(move || {
            for chunk in chunks {
                let verdicts = chunk
                    .iter()
                    .map(|raw| rules.check(&raw.cells).map(Passed::from))
                    .collect();
                if done.send((chunk, verdicts)).is_err() {
                    return;
                }
            }
        });
        Worker { tx, rx, thread }
    }
}

impl Validator {
    /// Checks `rows` on worker threads (as many as the machine has cores, within
    /// bounds) and hands each back with its verdict, in file order. For `validate`: the
    /// items to send are dropped on the workers (`Passed`).
    pub fn in_order<I>(self, rows: I) -> InOrder<I>
    where
        I: Iterator<Item = Result<RawRow, ManifestError>>,
    {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let workers = (0..cores.clamp(1, MAX_WORKERS))
            .map(|_| Worker::start(self.rules().clone()))
            .collect();
        InOrder {
            rows,
            validator: self,
            workers,
            sent: 0,
            taken: 0,
            current: Vec::new().into_iter().zip(Vec::new()),
            error: None,
            read_all: false,
        }
    }
}

impl<I> InOrder<I>
where
    I: Iterator<Item = Result<RawRow, ManifestError>>,
{
    /// The validator back, once the rows are through: what it learnt of repeated keys.
    pub fn into_validator(self) -> Validator {
        self.validator
    }

    /// Reads the next chunk of rows; empty at the end of the rows.
    fn read_chunk(&mut self) -> Vec<RawRow> {
        let mut chunk = Vec::with_capacity(CHUNK_ROWS);
        let mut bytes = 0;
        while chunk.len() < CHUNK_ROWS && bytes < CHUNK_BYTES {
            match self.rows.next() {
                Some(Ok(raw)) => {
                    bytes += raw.cells.iter().map(String::len).sum::<usize>();
                    chunk.push(raw);
                }
                Some(Err(e)) => {
                    self.error = Some(e);
                    self.read_all = true;
                    break;
                }
                None => {
                    self.read_all = true;
                    break;
                }
            }
        }
        chunk
    }

    /// Keeps every worker supplied, then takes back the oldest chunk out; false when
    /// none is left.
    fn next_chunk(&mut self) -> bool {
        while !self.read_all && self.sent - self.taken < IN_FLIGHT * self.workers.len() {
            let chunk = self.read_chunk();
            if chunk.is_empty() {
                break;
            }
            let worker = &self.workers[self.sent % self.workers.len()];
            // A worker gone has panicked: taking its chunk back says so.
            let _ = worker.tx.send(chunk);
            self.sent += 1;
        }
        if self.taken == self.sent {
            return false;
        }
        let index = self.taken % self.workers.len();
        let Ok((rows, verdicts)) = self.workers[index].rx.recv() else {
            // Only a panic stops a worker while chunks still come: it goes on here, as it
            // would have on one thread.
            let worker = self.workers.swap_remove(index);
            let panic = worker.thread.join().err();
            std::panic::resume_unwind(panic.unwrap_or_else(|| Box::new("a worker stopped")))
        };
        self.taken += 1;
        self.current = rows.into_iter().zip(verdicts);
        true
    }
}

impl<I> Iterator for InOrder<I>
where
    I: Iterator<Item = Result<RawRow, ManifestError>>,
{
    type Item = Result<CheckedRow, ManifestError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((mut raw, verdict)) = self.current.next() {
                let defects = std::mem::take(&mut raw.defects);
                let verdict = self.validator.settle(raw.row, verdict, defects);
                return Some(Ok((raw, verdict)));
            }
            if !self.next_chunk() {
                return self.error.take().map(Err);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::kinds::{Columns, Ctx, Kind};
    use crate::problem::Code;

    fn validator() -> Validator {
        let header = ["userId".to_string(), "callType".to_string()];
        let columns =
            Columns::map(Kind::AgentSettings, &header, &HashMap::new(), &[]).expect("columns");
        Validator::new(columns, Ctx::default())
    }

    /// Rows over several chunks: every third invalid, every fifth repeating an earlier
    /// row's user, which is in another chunk.
    fn rows(n: u64) -> Vec<RawRow> {
        (2..n + 2)
            .map(|row| {
                let user = if row % 5 == 0 { row / 5 } else { row };
                let call_type = if row % 3 == 0 { "9" } else { "1" };
                RawRow::new(row, vec![format!("u{user}"), call_type.to_string()])
            })
            .collect()
    }

    #[test]
    fn rows_come_back_in_file_order_with_the_verdicts_of_one_thread() {
        let n = (CHUNK_ROWS * 5 + 7) as u64;
        let mut one = validator();
        let want: Vec<_> = rows(n)
            .into_iter()
            .map(|raw| {
                let verdict = one.check(raw.row, &raw.cells, Vec::new());
                (raw.row, verdict.map(Passed::from))
            })
            .collect();
        let got: Vec<_> = validator()
            .in_order(rows(n).into_iter().map(Ok))
            .map(|checked| {
                let (raw, verdict) = checked.expect("no error");
                (raw.row, verdict)
            })
            .collect();
        assert_eq!(got.len(), want.len());
        assert!(got == want, "the same verdicts, in the same order");
        let repeats = want.iter().filter(|(_, v)| {
            v.as_ref()
                .is_err_and(|r| r.problems.iter().any(|p| p.code == Code::DuplicateKey))
        });
        assert!(
            repeats.count() > CHUNK_ROWS / 2,
            "the test repeats keys across chunks"
        );
    }

    #[test]
    fn a_read_error_comes_after_every_row_before_it() {
        let mut input: Vec<Result<RawRow, ManifestError>> =
            rows(CHUNK_ROWS as u64 * 3).into_iter().map(Ok).collect();
        input.push(Err(ManifestError::Io {
            path: "m.csv".into(),
            source: std::io::Error::other("gone"),
        }));
        input.extend(rows(10).into_iter().map(Ok));
        let got: Vec<_> = validator().in_order(input.into_iter()).collect();
        assert_eq!(got.len(), CHUNK_ROWS * 3 + 1, "nothing after the error");
        assert!(got[..CHUNK_ROWS * 3].iter().all(Result::is_ok));
        assert!(got.last().is_some_and(Result::is_err));
    }
}
