//! Batching: valid rows grouped into requests. Publishers of one task share a request's
//! `customer` array; calls of one (`eventId`, `beforeMinutes`) share a `callList`;
//! every other kind sends one row per request.
//!
//! A batch is built once, typed for its vendor: the rows' common part (number, key,
//! warnings, resend) beside a [`Payload`] that holds exactly what the vendor's request
//! carries, so an adapter never meets an item of another vendor.
//!
//! Groups are flushed when full; when too many groups are open at once (a manifest that
//! interleaves many events), the fullest is flushed early so memory stays bounded.

use std::collections::HashMap;
use std::hash::Hash;

use crate::kinds::{
    AgentSetting, Appointment, CallEntry, Customer, Item, Kind, Moderator, TaskRef,
    TaskStatusUpdate,
};
use crate::problem::Warning;

/// One row ready to send, as the reader hands it to the [`Batcher`].
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

/// What every row of a batch keeps beside the payload: what the run and the reports
/// need to account for it.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub row: u64,
    pub key: String,
    pub warnings: Vec<Warning>,
    /// A deliberate resend of a row whose earlier outcome was unknown.
    pub resend: bool,
}

/// Rows that travel in one request: `rows[i]` is the `i`-th element of the payload's
/// list (one row for the kinds that do not batch).
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub kind: Kind,
    pub rows: Vec<Row>,
    pub payload: Payload,
}

/// What a request carries, typed per vendor.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    Arctos(ArctosBody),
    Quanshi(CallList),
    Aicc(AgentSetting),
}

/// The arctos requests, with the task resolved.
#[derive(Clone, Debug, PartialEq)]
pub enum ArctosBody {
    Appointment(Appointment),
    Moderator {
        task_num: String,
        moderator: Moderator,
    },
    TaskStatus {
        task_num: String,
        update: TaskStatusUpdate,
    },
    /// Publishers of one task, in row order.
    Publishers {
        task_num: String,
        customers: Vec<Customer>,
    },
}

/// One Quanshi call create: the calls of one event and reminder time, in row order.
#[derive(Clone, Debug, PartialEq)]
pub struct CallList {
    pub event_id: i64,
    pub before_minutes: i64,
    pub entries: Vec<CallEntry>,
}

/// Open groups allowed before the largest is sent early.
const MAX_OPEN_GROUPS: usize = 64;
/// Rows read, in batches' worth, before a group still open is sent as it is: a group
/// whose rows stopped coming (a manifest sorted by event) would otherwise wait for the
/// manifest's end, and every report row read after it would wait for it to be put in
/// its turn (`report::turn`).
const MAX_OPEN_BATCHES: u64 = 50;

/// A batch ready to send, with what each of its rows carries beside the request (for
/// the pipeline: the row's manifest cells, for the reports), in the same order.
#[derive(Debug)]
pub struct Ready<X> {
    pub batch: Batch,
    pub carried: Vec<X>,
}

/// Rows waiting for the rest of their group, by group key; `P` is the part of a row
/// the request lists (a customer, a call), `X` what the row carries beside it.
struct Groups<K, P, X> {
    open: HashMap<K, Open<P, X>>,
    /// Rows pushed so far.
    pushed: u64,
}

struct Open<P, X> {
    /// `Groups::pushed` when its first row came.
    opened: u64,
    rows: Vec<Row>,
    parts: Vec<P>,
    carried: Vec<X>,
}

impl<K: Hash + Eq + Clone, P, X> Groups<K, P, X> {
    fn new() -> Self {
        Groups {
            open: HashMap::new(),
            pushed: 0,
        }
    }

    /// Adds a row to its group; returns the groups that became ready: its own when
    /// full, the largest when too many are open, and those open too long.
    fn push(&mut self, key: K, row: (Row, P, X), size: usize) -> Vec<(K, Open<P, X>)> {
        let pushed = self.pushed;
        self.pushed += 1;
        let open = self.open.entry(key.clone()).or_insert_with(|| Open {
            opened: pushed,
            rows: Vec::new(),
            parts: Vec::new(),
            carried: Vec::new(),
        });
        let (row, part, carried) = row;
        open.rows.push(row);
        open.parts.push(part);
        open.carried.push(carried);
        let mut ready = Vec::new();
        if open.rows.len() >= size {
            ready.extend(self.open.remove_entry(&key));
        }
        if self.open.len() > MAX_OPEN_GROUPS {
            let largest = self
                .open
                .iter()
                .max_by_key(|(_, open)| open.rows.len())
                .map(|(k, _)| k.clone());
            if let Some(largest) = largest {
                ready.extend(self.open.remove_entry(&largest));
            }
        }
        let too_old = MAX_OPEN_BATCHES * size as u64;
        if pushed.is_multiple_of(size as u64) && pushed >= too_old {
            let old: Vec<K> = self
                .open
                .iter()
                .filter(|(_, open)| open.opened <= pushed - too_old)
                .map(|(k, _)| k.clone())
                .collect();
            ready.extend(old.iter().filter_map(|k| self.open.remove_entry(k)));
        }
        ready
    }

    fn drain(&mut self) -> impl Iterator<Item = (K, Open<P, X>)> + '_ {
        self.open.drain()
    }
}

/// Groups rows into batches; `X` is what each row carries beside the request.
pub struct Batcher<X> {
    kind: Kind,
    size: usize,
    /// Publishers, by resolved task.
    customers: Groups<String, Customer, X>,
    /// Calls, by (`eventId`, `beforeMinutes`).
    calls: Groups<(i64, i64), CallEntry, X>,
}

impl<X> Batcher<X> {
    /// `size`: rows per request for kinds that batch.
    pub fn new(kind: Kind, size: usize) -> Self {
        let size = match kind {
            Kind::Publishers | Kind::Calls => size.max(1),
            _ => 1,
        };
        Batcher {
            kind,
            size,
            customers: Groups::new(),
            calls: Groups::new(),
        }
    }

    /// Adds a row and what it carries; returns the batches that became ready.
    pub fn push(&mut self, row: BatchRow, carried: X) -> Vec<Ready<X>> {
        let BatchRow {
            row,
            key,
            item,
            warnings,
            task_num,
            resend,
        } = row;
        let task_num = task_num
            .or_else(|| match item.task_ref() {
                Some(TaskRef::TaskNum(t)) => Some(t.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let row = Row {
            row,
            key,
            warnings,
            resend,
        };
        let payload = match item {
            Item::Publisher(p) => {
                let row = (row, p.customer, carried);
                let ready = self.customers.push(task_num, row, self.size);
                return ready.into_iter().map(|g| self.customers_batch(g)).collect();
            }
            Item::Call(c) => {
                let group = (c.event_id, c.before_minutes);
                let ready = self.calls.push(group, (row, c.entry, carried), self.size);
                return ready.into_iter().map(|g| self.calls_batch(g)).collect();
            }
            Item::Appointment(a) => Payload::Arctos(ArctosBody::Appointment(a)),
            Item::Moderator(moderator) => Payload::Arctos(ArctosBody::Moderator {
                task_num,
                moderator,
            }),
            Item::TaskStatus(update) => {
                Payload::Arctos(ArctosBody::TaskStatus { task_num, update })
            }
            Item::AgentSetting(setting) => Payload::Aicc(setting),
        };
        vec![Ready {
            batch: self.batch(vec![row], payload),
            carried: vec![carried],
        }]
    }

    /// Everything still open, at the end of the manifest.
    pub fn finish(&mut self) -> Vec<Ready<X>> {
        let customers: Vec<_> = self.customers.drain().collect();
        let calls: Vec<_> = self.calls.drain().collect();
        let mut batches: Vec<Ready<X>> = customers
            .into_iter()
            .map(|g| self.customers_batch(g))
            .chain(calls.into_iter().map(|g| self.calls_batch(g)))
            .collect();
        // Oldest rows first, so reports fill in manifest order where they can.
        batches.sort_by_key(|b| b.batch.rows.first().map_or(0, |r| r.row));
        batches
    }

    fn batch(&self, rows: Vec<Row>, payload: Payload) -> Batch {
        Batch {
            kind: self.kind,
            rows,
            payload,
        }
    }

    fn customers_batch(&self, (task_num, open): (String, Open<Customer, X>)) -> Ready<X> {
        let body = ArctosBody::Publishers {
            task_num,
            customers: open.parts,
        };
        Ready {
            batch: self.batch(open.rows, Payload::Arctos(body)),
            carried: open.carried,
        }
    }

    fn calls_batch(
        &self,
        ((event_id, before_minutes), open): ((i64, i64), Open<CallEntry, X>),
    ) -> Ready<X> {
        let calls = CallList {
            event_id,
            before_minutes,
            entries: open.parts,
        };
        Ready {
            batch: self.batch(open.rows, Payload::Quanshi(calls)),
            carried: open.carried,
        }
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

    fn rows(batches: &[Ready<u64>]) -> Vec<Vec<u64>> {
        let rows: Vec<Vec<u64>> = batches
            .iter()
            .map(|b| b.batch.rows.iter().map(|r| r.row).collect())
            .collect();
        // What each row carries travels with it: here, its own number.
        let carried: Vec<Vec<u64>> = batches.iter().map(|b| b.carried.clone()).collect();
        assert_eq!(carried, rows);
        rows
    }

    /// A row pushed with its own number as what it carries.
    fn push(b: &mut Batcher<u64>, row: BatchRow) -> Vec<Ready<u64>> {
        let number = row.row;
        b.push(row, number)
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
            ready.extend(push(&mut b, r));
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
            assert!(push(&mut b, r).is_empty());
        }
        assert_eq!(rows(&b.finish()), vec![vec![2, 4], vec![3]]);

        let mut b = Batcher::new(Kind::AgentSettings, 50);
        let setting = BatchRow {
            row: 2,
            key: "u".into(),
            item: Item::AgentSetting(AgentSetting {
                user_id: "u".into(),
                ..AgentSetting::default()
            }),
            warnings: vec![],
            task_num: None,
            resend: false,
        };
        assert_eq!(rows(&push(&mut b, setting)), vec![vec![2]]);
    }

    #[test]
    fn a_batch_carries_its_vendors_payload_in_row_order() {
        let mut b = Batcher::new(Kind::Calls, 2);
        assert!(push(&mut b, call(2, 7, 10)).is_empty());
        let ready = push(&mut b, call(3, 7, 10));
        let Payload::Quanshi(calls) = &ready[0].batch.payload else {
            panic!("{:?}", ready[0].batch.payload)
        };
        assert_eq!((calls.event_id, calls.before_minutes), (7, 10));
        let mobiles: Vec<_> = calls.entries.iter().map(|e| e.mobile.clone()).collect();
        assert_eq!(
            mobiles,
            vec![Some("18100000002".into()), Some("18100000003".into())]
        );

        // A task named directly groups and reaches the body even without a resolved one.
        let moderator = BatchRow {
            row: 2,
            key: "T9|e".into(),
            item: Item::Moderator(Moderator {
                task: TaskRef::TaskNum("T9".into()),
                business_code: None,
                branch_code: None,
                emp_id: Some("e".into()),
            }),
            warnings: vec![],
            task_num: None,
            resend: true,
        };
        let ready = push(&mut Batcher::new(Kind::Moderators, 50), moderator);
        assert!(matches!(
            &ready[0].batch.payload,
            Payload::Arctos(ArctosBody::Moderator { task_num, .. }) if task_num == "T9"
        ));
        assert!(ready[0].batch.rows[0].resend);
    }

    #[test]
    fn too_many_open_groups_flush_the_largest_so_memory_stays_bounded() {
        let mut b = Batcher::new(Kind::Calls, 1000);
        let mut flushed = Vec::new();
        let mut row = 2;
        for event in 1..=(MAX_OPEN_GROUPS as i64 + 1) {
            for _ in 0..(if event == 5 { 3 } else { 1 }) {
                flushed.extend(push(&mut b, call(row, event, 30)));
                row += 1;
            }
        }
        assert_eq!(flushed.len(), 1);
        assert_eq!(flushed[0].batch.rows.len(), 3);
        assert_eq!(b.finish().len(), MAX_OPEN_GROUPS);
    }

    /// A manifest sorted by event: the last rows of one event are not held back until
    /// the manifest ends, but sent once 50 batches' worth of rows were read after them.
    #[test]
    fn a_group_whose_rows_stopped_coming_is_sent_after_fifty_batches_of_rows() {
        let size = 10;
        let mut b = Batcher::new(Kind::Calls, size);
        let mut ready = Vec::new();
        for row in 2..15 {
            ready.extend(push(&mut b, call(row, 1, 30)));
        }
        assert_eq!(ready.len(), 1, "event 1's first full batch");
        let mut row = 15;
        let sent = loop {
            let now = push(&mut b, call(row, 2, 30));
            row += 1;
            if let Some(last) = now.iter().find(|r| r.batch.rows.len() == 3) {
                break last.batch.rows.iter().map(|r| r.row).collect::<Vec<_>>();
            }
            assert!(
                row < 15 + 50 * size as u64,
                "event 1's last rows still held"
            );
        };
        assert_eq!(sent, [12, 13, 14]);
        // Row 12 was the 11th row pushed; sent with the 511th, 50 batches later.
        assert_eq!(row - 1 - 12, MAX_OPEN_BATCHES * size as u64);
    }
}
