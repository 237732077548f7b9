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
            ready.push(Batch {
                kind: self.kind,
                rows,
            });
        }
        if self.open.len() > MAX_OPEN_GROUPS {
            if let Some(largest) = self
                .open
                .iter()
                .max_by_key(|(_, rows)| rows.len())
                .map(|(g, _)| g.clone())
            {
                let rows = self.open.remove(&largest).unwrap_or_default();
                ready.push(Batch {
                    kind: self.kind,
                    rows,
                });
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
        groups
            .into_iter()
            .map(|rows| Batch { kind, rows })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{AgentSetting, Call, CallEntry, Customer, Publisher, TaskRef};

    fn call(row: u64, event_id: i64, before: i64) -> BatchRow {
        BatchRow {
            row,
            key: format!("{event_id}|86|1810000{row:04}"),
            item: Item::Call(Call {
                event_id,
                before_minutes: before,
                entry: CallEntry {
                    name: "n".into(),
                    company: None,
                    country_code: "86".into(),
                    mobile: Some(format!("1810000{row:04}")),
                    area_code: None,
                    phone: None,
                },
            }),
            warnings: vec![],
            task_num: None,
            resend: false,
        }
    }

    fn rows(batches: &[Batch]) -> Vec<Vec<u64>> {
        batches
            .iter()
            .map(|b| b.rows.iter().map(|r| r.row).collect())
            .collect()
    }

    #[test]
    fn calls_group_by_event_and_before_minutes_up_to_the_batch_size() {
        let mut b = Batcher::new(Kind::Calls, 2);
        let mut ready = Vec::new();
        for r in [
            call(2, 1, 30),
            call(3, 2, 30),
            call(4, 1, 10),
            call(5, 1, 30),
            call(6, 2, 30),
            call(7, 1, 30),
        ] {
            ready.extend(b.push(r));
        }
        assert_eq!(rows(&ready), vec![vec![2, 5], vec![3, 6]]);
        assert_eq!(rows(&b.finish()), vec![vec![4], vec![7]]);
    }

    #[test]
    fn publishers_group_by_resolved_task_and_others_go_alone() {
        let publisher = |row: u64, task: &str| BatchRow {
            row,
            key: format!("{task}|{row}"),
            item: Item::Publisher(Publisher {
                task: TaskRef::OutTaskNum(format!("out-{task}")),
                customer: Customer {
                    customer_title: None,
                    customer_name: "n".into(),
                    customer_id_num: row.to_string(),
                    customer_country_code: None,
                    customer_phone: None,
                    customer_email: None,
                },
            }),
            warnings: vec![],
            task_num: Some(task.into()),
            resend: false,
        };
        let mut b = Batcher::new(Kind::Publishers, 50);
        for r in [publisher(2, "T1"), publisher(3, "T2"), publisher(4, "T1")] {
            assert!(b.push(r).is_empty());
        }
        assert_eq!(rows(&b.finish()), vec![vec![2, 4], vec![3]]);

        let mut b = Batcher::new(Kind::AgentSettings, 50);
        let setting = BatchRow {
            row: 2,
            key: "u".into(),
            item: Item::AgentSetting(AgentSetting {
                call_type: None,
                user_id: "u".into(),
                caller_present: None,
                call_number: None,
                call_number_default: None,
                caller_present_default: None,
            }),
            warnings: vec![],
            task_num: None,
            resend: false,
        };
        assert_eq!(rows(&b.push(setting)), vec![vec![2]]);
    }

    #[test]
    fn too_many_open_groups_flush_the_largest_so_memory_stays_bounded() {
        let mut b = Batcher::new(Kind::Calls, 1000);
        let mut flushed = Vec::new();
        let mut row = 2;
        for event in 1..=(MAX_OPEN_GROUPS as i64 + 1) {
            for _ in 0..(if event == 5 { 3 } else { 1 }) {
                flushed.extend(b.push(call(row, event, 30)));
                row += 1;
            }
        }
        assert_eq!(flushed.len(), 1);
        assert_eq!(flushed[0].rows.len(), 3);
        assert_eq!(b.finish().len(), MAX_OPEN_GROUPS);
    }
}
