//! The mark stage: a batch leaves only once the state holds its rows in flight. After a
//! crash (even `kill -9`) the next run then finds them in doubt and never sends them a
//! second time unasked.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::oneshot;

use super::record::{ToRecorder, ToRecorderTx};
use crate::batch::Batch;
use crate::manifest::Carried;

/// Marks the rows of the batches in flight, in one message, and waits until that is
/// durable. `false` when the recorder would not (the state failed): the batches must
/// not be sent.
pub async fn in_flight<'a>(
    to_recorder: &ToRecorderTx,
    batches: impl Iterator<Item = &'a Batch>,
) -> bool {
    let keys = batches
        .flat_map(|b| b.rows.iter().map(|r| r.key.clone()))
        .collect();
    let (ack, acked) = oneshot::channel();
    to_recorder.send(ToRecorder::InFlight(keys, ack)).is_ok() && acked.await.is_ok()
}

/// A row of a batch on the wire: its row number, key and cells.
pub type WireRow = (u64, String, Carried);

/// The batches on the wire: marked in flight, not yet handed to the recorder. A second
/// interrupt stops the workers at once; the rows they held are then reported in doubt,
/// so the reports still account for every row.
#[derive(Default)]
pub struct OnTheWire {
    next: AtomicU64,
    batches: std::sync::Mutex<std::collections::HashMap<u64, Vec<WireRow>>>,
}

impl OnTheWire {
    pub fn put(&self, batch: &Batch, cells: Vec<Carried>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let rows = batch
            .rows
            .iter()
            .zip(cells)
            .map(|(r, cells)| (r.row, r.key.clone(), cells))
            .collect();
        self.lock().insert(id, rows);
        id
    }

    /// The cells of a batch back, in row order; `None` once drained.
    pub fn take(&self, id: u64) -> Option<Vec<Carried>> {
        let rows = self.lock().remove(&id)?;
        Some(rows.into_iter().map(|(_, _, cells)| cells).collect())
    }

    pub fn drain(&self) -> Vec<WireRow> {
        self.lock().drain().flat_map(|(_, rows)| rows).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<u64, Vec<WireRow>>> {
        self.batches.lock().unwrap_or_else(|p| p.into_inner())
    }
}
