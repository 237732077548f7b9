//! The validate stage: a manifest's rows through their kind's rules, with the defects
//! their reading found and the keys repeated across rows. It sits beside the kinds, not
//! in `crate::validate`, so that the rule library knows nothing of kinds.

use std::collections::HashMap;

use super::keys::KeySet;
use super::{Columns, Ctx, Keyed, Rejected, RowCells, Valid};
use crate::problem::{Code, Problem};

/// A kind's rules for one row. They need nothing from other rows, so they may run on
/// any thread (`in_order` runs them on several).
#[derive(Clone)]
pub struct Rules {
    columns: Columns,
    ctx: Ctx,
}

impl Rules {
    /// The row's own problems, or the item to send.
    pub fn check(&self, cells: &[String]) -> Result<Valid, Rejected> {
        let cells = RowCells {
            cells,
            columns: &self.columns,
        };
        self.columns.kind().validate(&cells, &self.ctx)
    }
}

/// The validate stage for a whole manifest: each row's own rules, its reading defects,
/// and keys repeated across rows.
pub struct Validator {
    rules: Rules,
    keys: Keys,
}

/// How repeated keys are found.
enum Keys {
    /// Every key remembered as rows go by; repeats noted (later row → first row).
    Track {
        seen: KeySet,
        repeats: HashMap<u64, u64>,
    },
    /// A second reading of a manifest whose repeats an earlier pass already found
    /// (`run` with `--max-failed-rows`): no key table is needed.
    Known(HashMap<u64, u64>),
}

impl Validator {
    pub fn new(columns: Columns, ctx: Ctx) -> Self {
        Validator {
            rules: Rules { columns, ctx },
            keys: Keys::Track {
                seen: KeySet::default(),
                repeats: Default::default(),
            },
        }
    }

    /// The rows found repeating an earlier row's key so far (later row → first row).
    pub fn into_repeats(self) -> HashMap<u64, u64> {
        match self.keys {
            Keys::Track { repeats, .. } | Keys::Known(repeats) => repeats,
        }
    }

    /// This validator, for a manifest whose repeated keys are already known.
    pub fn with_known_repeats(mut self, repeats: HashMap<u64, u64>) -> Self {
        self.keys = Keys::Known(repeats);
        self
    }

    /// Every problem of the row, or the item to send. Duplicates are reported on the
    /// later rows; the first row with a key keeps it.
    pub fn check(
        &mut self,
        row: u64,
        cells: &[String],
        defects: Vec<Problem>,
    ) -> Result<Valid, Rejected> {
        let result = self.rules.check(cells);
        self.settle(row, result, defects)
    }

    /// The rules this validator applies to each row on its own.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// `check` after the rules: adds what only the rows before tell (a repeated key)
    /// and the row's reading defects to what `Rules::check` found. Rows must come in
    /// file order, so that the first row with a key keeps it.
    pub fn settle<V: Keyed>(
        &mut self,
        row: u64,
        result: Result<V, Rejected>,
        defects: Vec<Problem>,
    ) -> Result<V, Rejected> {
        let key = match &result {
            Ok(valid) => Some(valid.key()),
            Err(rejected) => rejected.key.as_deref(),
        };
        let earlier = match &mut self.keys {
            Keys::Track { seen, repeats } => {
                let earlier = key.and_then(|k| seen.insert(k, row));
                if let Some(first) = earlier {
                    repeats.insert(row, first);
                }
                earlier
            }
            Keys::Known(repeats) => repeats.get(&row).copied(),
        };
        if defects.is_empty() && earlier.is_none() {
            return result;
        }
        let (key, mut problems) = match result {
            Ok(valid) => (Some(valid.into_key()), Vec::new()),
            Err(rejected) => (rejected.key, rejected.problems),
        };
        if let Some(first) = earlier {
            problems.push(Problem::new(
                Code::DuplicateKey,
                "",
                format!(
                    "the same record key {:?} is already on row {first}; each record may appear once: remove or merge one of them",
                    key.as_deref().unwrap_or_default()
                ),
            ));
        }
        let mut all = defects;
        all.extend(problems);
        Err(Rejected { key, problems: all })
    }
}
