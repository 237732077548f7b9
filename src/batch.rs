//! Batching: valid rows grouped into requests. Publishers of one task share a request's
//! `customer` array; calls of one (`eventId`, `beforeMinutes`) share a `callList`;
//! every other kind sends one row per request.
//!
//! Groups are flushed when full; when too many groups are open at once (a manifest that
//! interleaves many events), the fullest is flushed early so memory stays bounded.

use std::collections::HashMap;

use crate::kinds::{Item, Kind};
use crate::problem::Warning;

/// One row ready to send.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchRow {
    pub row: u64,
    pub key: String,
    pub item: Item,
    pub warnings: Vec<Warning>,
    /// The arctos task, resolved from `out_task_num` where the row named it that way.
    pub task_num: Option<String>,
    /// A deliberate resend of a row whose earlier outcome was unknown: "already
    /// exists" then means it succeeded before.
    pub resend: bool,
}

/// Rows that travel in one request.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub kind: Kind,
    pub rows: Vec<BatchRow>,
}

/// What groups rows: requests only ever hold rows with the same group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Group {
    Task(String),
    Event(i64, i64),
    Single,
}

fn group_of(row: &BatchRow) -> Group {
    match &row.item {
        Item::Publisher(_) => Group::Task(row.task_num.clone().unwrap_or_default()),
        Item::Call(c) => Group::Event(c.event_id, c.before_minutes),
        _ => Group::Single,
    }
}

/// Open groups allowed before the largest is sent early.
const MAX_OPEN_GROUPS: usize = 64;

pub struct Batcher {
    kind: Kind,
    size: usize,
    open: HashMap<Group, Vec<BatchRow>>,
}

impl Batcher {
    /// `size`: rows per request for kinds that batch.
    pub fn new(kind: Kind, size: usize) -> Self {
        let size = match kind {
            Kind::Publishers | Kind::Calls => size.max(1),
            _ => 1,
        };
        Batcher {
            kind,
            size,
            open: HashMap::new(),
        }
    }

    /// Adds a row; returns the batches that became ready.
    pub fn push(&mut self, row: BatchRow) -> Vec<Batch> {
        let group = group_of(&row);
        let rows = self.open.entry(group.clone()).or_default();
        rows.push(row);
        let mut ready = Vec::new();
        if rows.len() >= self.size {
            let rows = self.open.remove(&group).unwrap_or_default();
            ready.push(Batch { kind: self.kind, rows });
        }
        if self.open.len() > MAX_OPEN_GROUPS {
            if let Some(largest) = self
                .open
                .iter()
                .max_by_key(|(_, rows)| rows.len())
                .map(|(g, _)| g.clone())
            {
                let rows = self.open.remove(&largest).unwrap_or_default();
                ready.push(Batch { kind: self.kind, rows });
            }
        }
        ready
    }

    /// Everything still open, at the end of the manifest.
    pub fn finish(&mut self) -> Vec<Batch> {
        let kind = self.kind;
        let mut groups: Vec<Vec<BatchRow>> = self.open.drain().map(|(_, rows)| rows).collect();
        // Oldest rows first, so reports fill in manifest order where they can.
        groups.sort_by_key(|rows| rows.first().map_or(0, |r| r.row));
        groups.into_iter().map(|rows| Batch { kind, rows }).collect()
    }
}
