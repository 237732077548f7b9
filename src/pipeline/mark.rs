//! The mark stage: a batch leaves only once the state holds its rows in flight. After a
//! crash (even `kill -9`) the next run then finds them in doubt and never sends them a
//! second time unasked.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::oneshot;

use super::record::{ToRecorder, ToRecorderTx};
use crate::batch::{Batch, Row};
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

/// A batch on the wire: its rows, their cells, and whether a request of it left.
struct OnWire {
    rows: Vec<Row>,
    cells: Vec<Carried>,
    left: Arc<AtomicBool>,
}

/// The batches on the wire: marked in flight, not yet handed to the recorder. A second
/// interrupt stops the workers at once; the rows they held are then reported in doubt
/// if a request of theirs may have reached the vendor, not sent otherwise, so the
/// reports still account for every row.
#[derive(Default)]
pub struct OnTheWire {
    next: AtomicU64,
    batches: std::sync::Mutex<HashMap<u64, OnWire>>,
}

/// The rows of a batch drained from the wire, with their cells; `left` when a request
/// of it may have reached the vendor.
pub struct Drained {
    pub rows: Vec<Row>,
    pub cells: Vec<Carried>,
    pub left: bool,
}

impl OnTheWire {
    pub fn put(&self, batch: &Batch, cells: Vec<Carried>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let rows = batch.rows.clone();
        let left = Arc::default();
        self.lock().insert(id, OnWire { rows, cells, left });
        id
    }

    /// The flag the sender sets before a request of the batch leaves.
    pub fn left(&self, id: u64) -> Arc<AtomicBool> {
        self.lock()
            .get(&id)
            .map(|w| Arc::clone(&w.left))
            .unwrap_or_default()
    }

    /// The cells of a batch back, in row order; `None` once drained.
    pub fn take(&self, id: u64) -> Option<Vec<Carried>> {
        Some(self.lock().remove(&id)?.cells)
    }

    pub fn drain(&self) -> Vec<Drained> {
        self.lock()
            .drain()
            .map(|(_, w)| Drained {
                rows: w.rows,
                cells: w.cells,
                left: w.left.load(Ordering::SeqCst),
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, OnWire>> {
        self.batches.lock().unwrap_or_else(|p| p.into_inner())
    }
}
