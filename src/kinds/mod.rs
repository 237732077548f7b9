//! Mapping: the six kinds, their fields, and the turn from a manifest row into a
//! validated request item. One file per kind holds its field list and its rules; the
//! shared value rules live in `crate::validate`.
//!
//! Header names are matched to fields ignoring case, spaces, `_` and `-`, plus the
//! aliases of `[columns.<kind>]` in the config. Unknown columns are carried through to
//! the reports by the caller; they never reach a request.

use std::collections::HashMap;

use serde::Serialize;

use crate::problem::{Problem, Warning};
use crate::validate::Checker;

mod agent_settings;
mod appointments;
mod calls;
mod keys;
mod moderators;
mod publishers;
mod task_status;
mod validator;

pub use agent_settings::AgentSetting;
pub use appointments::Appointment;
pub use calls::{key_from_v0 as call_key_from_v0, number_key, Call, CallEntry};
pub use moderators::Moderator;
pub use publishers::{Customer, Publisher};
pub use task_status::TaskStatusUpdate;
pub use validator::Validator;

/// What a manifest holds; decides the fields, the rules and the endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Appointments,
    Moderators,
    Publishers,
    TaskStatus,
    Calls,
    AgentSettings,
}

/// The three vendors ferry speaks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    Arctos,
    Quanshi,
    Aicc,
}

impl Vendor {
    pub fn name(self) -> &'static str {
        match self {
            Vendor::Arctos => "arctos",
            Vendor::Quanshi => "quanshi",
            Vendor::Aicc => "aicc",
        }
    }
}

/// Fields that must have a column in the header: each entry lists alternatives, one of
/// which must be present (`task_num` or `out_task_num`).
type RequiredColumns = &'static [&'static [&'static str]];

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Appointments,
        Kind::Moderators,
        Kind::Publishers,
        Kind::TaskStatus,
        Kind::Calls,
        Kind::AgentSettings,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Appointments => "appointments",
            Kind::Moderators => "moderators",
            Kind::Publishers => "publishers",
            Kind::TaskStatus => "task-status",
            Kind::Calls => "calls",
            Kind::AgentSettings => "agent-settings",
        }
    }

    pub fn vendor(self) -> Vendor {
        match self {
            Kind::Calls => Vendor::Quanshi,
            Kind::AgentSettings => Vendor::Aicc,
            _ => Vendor::Arctos,
        }
    }

    /// Canonical field names, in the order the kind's module indexes them.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Kind::Appointments => appointments::FIELDS,
            Kind::Moderators => moderators::FIELDS,
            Kind::Publishers => publishers::FIELDS,
            Kind::TaskStatus => task_status::FIELDS,
            Kind::Calls => calls::FIELDS,
            Kind::AgentSettings => agent_settings::FIELDS,
        }
    }

    /// The columns a header must have; each entry lists alternatives (README's table of
    /// columns is checked against this).
    pub fn required_columns(self) -> RequiredColumns {
        match self {
            Kind::Appointments => appointments::REQUIRED_COLUMNS,
            Kind::Moderators => moderators::REQUIRED_COLUMNS,
            Kind::Publishers => publishers::REQUIRED_COLUMNS,
            Kind::TaskStatus => task_status::REQUIRED_COLUMNS,
            Kind::Calls => calls::REQUIRED_COLUMNS,
            Kind::AgentSettings => agent_settings::REQUIRED_COLUMNS,
        }
    }

    /// Maps, checks and converts one row. A rejected row still carries its key when the
    /// key's own fields were valid, so duplicates are found whatever else is wrong.
    pub fn validate(self, record: &Record, ctx: &Ctx) -> Result<Valid, Rejected> {
        let mut check = Checker::new(record);
        let (key, item) = match self {
            Kind::Appointments => appointments::validate(&mut check, ctx),
            Kind::Moderators => moderators::validate(&mut check),
            Kind::Publishers => publishers::validate(&mut check, ctx),
            Kind::TaskStatus => task_status::validate(&mut check),
            Kind::Calls => calls::validate(&mut check, ctx),
            Kind::AgentSettings => agent_settings::validate(&mut check),
        };
        let (problems, warnings) = check.finish();
        match item {
            Some(item) if problems.is_empty() => Ok(Valid {
                key: key.unwrap_or_default(),
                item,
                warnings,
            }),
            _ => Err(Rejected { key, problems }),
        }
    }
}

/// Settings that validation needs from the config and the command line.
#[derive(Clone, Debug, Default)]
pub struct Ctx {
    /// `defaults.timezone`: for `task_time` written without an offset.
    pub timezone: Option<chrono_tz::Tz>,
    /// `defaults.country_code`: for phones in rows without one.
    pub country_code: Option<u16>,
    /// `--event-id`: the Quanshi event for rows without an `eventId` cell.
    pub event_id: Option<i64>,
}

/// A row that passed validation: its record key, the item to send and any warnings.
#[derive(Clone, Debug, PartialEq)]
pub struct Valid {
    pub key: String,
    pub item: Item,
    pub warnings: Vec<Warning>,
}

/// A row that did not: every problem found, and its key when that could be read.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejected {
    pub key: Option<String>,
    pub problems: Vec<Problem>,
}

/// One validated request item, in the vendor's own field names and JSON types.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Appointment(Appointment),
    Moderator(Moderator),
    Publisher(Publisher),
    TaskStatus(TaskStatusUpdate),
    Call(Call),
    AgentSetting(AgentSetting),
}

impl Item {
    /// The arctos task the item belongs to (moderators, publishers, task-status).
    pub fn task_ref(&self) -> Option<&TaskRef> {
        match self {
            Item::Moderator(m) => Some(&m.task),
            Item::Publisher(p) => Some(&p.task),
            Item::TaskStatus(s) => Some(&s.task),
            Item::Appointment(_) | Item::Call(_) | Item::AgentSetting(_) => None,
        }
    }
}

/// How a row names its arctos task: directly, or by the `out_task_num` an earlier
/// appointments run recorded.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TaskRef {
    TaskNum(String),
    OutTaskNum(String),
}

impl TaskRef {
    /// The part of a record key that names the task.
    pub fn key_part(&self) -> &str {
        match self {
            TaskRef::TaskNum(t) | TaskRef::OutTaskNum(t) => t,
        }
    }
}

/// The header mapped onto a kind's fields: for each field, the column that holds it.
#[derive(Clone, Debug)]
pub struct Columns {
    kind: Kind,
    field_columns: Vec<Option<usize>>,
    /// Column names as written, for messages.
    header: Vec<String>,
}

/// The header cannot serve this kind: nothing should be read further.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("columns {first:?} and {second:?} both map to the field {field}; keep one of them")]
    DuplicateColumn {
        field: &'static str,
        first: String,
        second: String,
    },
    /// Every required column that is missing, at once: one run tells all the file needs.
    #[error("{} {}; the header has: {have}. Rename a column, or map it with [columns.{kind}] in ferry.toml", missing_lead(missing), missing_list(missing))]
    MissingColumn {
        kind: &'static str,
        /// Each missing column as `name` or `name or other`; a column a flag can stand
        /// in for says so (`eventId (or pass --event-id)`).
        missing: Vec<String>,
        have: String,
    },
}

fn missing_lead(missing: &[String]) -> &'static str {
    match missing.len() {
        1 => "no column for the required field",
        _ => "no columns for the required fields",
    }
}

fn missing_list(missing: &[String]) -> String {
    missing.join("; ")
}

/// Columns a flag can stand in for: the flag gives every row the same value.
const FLAG_FOR_COLUMN: &[(&str, &str)] = &[("eventId", "--event-id")];

/// The flag that can stand in for a column, if there is one.
pub fn flag_for_column(column: &str) -> Option<&'static str> {
    FLAG_FOR_COLUMN
        .iter()
        .find(|(c, _)| *c == column)
        .map(|(_, flag)| *flag)
}

/// Header-name matching: case, spaces, `_` and `-` do not count.
pub fn normalize_header(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace() && *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

impl Columns {
    /// `aliases`: extra header names per canonical field, from `[columns.<kind>]`.
    pub fn map(
        kind: Kind,
        header: &[String],
        aliases: &HashMap<String, Vec<String>>,
        optional_columns: &[&str],
    ) -> Result<Columns, MappingError> {
        let fields = kind.fields();
        let mut names: HashMap<String, usize> = HashMap::new();
        for (i, field) in fields.iter().enumerate() {
            names.insert(normalize_header(field), i);
            for alias in aliases.get(*field).into_iter().flatten() {
                names.insert(normalize_header(alias), i);
            }
        }
        let mut field_columns: Vec<Option<usize>> = vec![None; fields.len()];
        for (col, name) in header.iter().enumerate() {
            let Some(&field) = names.get(&normalize_header(name)) else {
                continue;
            };
            if let Some(first) = field_columns[field] {
                return Err(MappingError::DuplicateColumn {
                    field: fields[field],
                    first: header[first].to_string(),
                    second: name.clone(),
                });
            }
            field_columns[field] = Some(col);
        }
        // No columns at all (an empty JSON array) means no rows: nothing to map.
        let required = if header.is_empty() {
            &[][..]
        } else {
            kind.required_columns()
        };
        let mut missing = Vec::new();
        for alternatives in required {
            let present = alternatives.iter().any(|wanted| {
                optional_columns.contains(wanted)
                    || fields
                        .iter()
                        .position(|f| f == wanted)
                        .is_some_and(|i| field_columns[i].is_some())
            });
            if !present {
                let mut wanted = alternatives.join(" or ");
                for flag in alternatives.iter().filter_map(|c| flag_for_column(c)) {
                    wanted.push_str(&format!(" (or pass {flag})"));
                }
                missing.push(wanted);
            }
        }
        if !missing.is_empty() {
            return Err(MappingError::MissingColumn {
                kind: kind.name(),
                missing,
                have: header.join(", "),
            });
        }
        Ok(Columns {
            kind,
            field_columns,
            header: header.to_vec(),
        })
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The column name as the manifest writes it for a field, if present.
    pub fn column_name(&self, field: usize) -> Option<&str> {
        self.field_columns[field].map(|c| self.header[c].as_str())
    }
}

/// One row seen through the kind's fields.
pub struct Record<'a> {
    pub cells: &'a [String],
    pub columns: &'a Columns,
}

impl<'a> Record<'a> {
    /// The field's cell, trimmed; `None` when the column is absent or the cell empty.
    pub fn get(&self, field: usize) -> Option<&'a str> {
        let col = self.columns.field_columns[field]?;
        let value = self.cells.get(col)?.trim();
        (!value.is_empty()).then_some(value)
    }

    pub fn field_name(&self, field: usize) -> &'static str {
        self.columns.kind.fields()[field]
    }
}

/// `task_num` or `out_task_num`: one is required; `task_num` wins when both are given,
/// since it names the task directly.
fn task_ref(c: &mut Checker, task_num: usize, out_task_num: usize) -> Option<TaskRef> {
    if let Some(t) = c.cell(task_num) {
        return Some(TaskRef::TaskNum(t.to_string()));
    }
    if let Some(t) = c.cell(out_task_num) {
        return Some(TaskRef::OutTaskNum(t.to_string()));
    }
    let message = format!(
        "{} or {} is required: name the arctos task this row belongs to",
        c.name(task_num),
        c.name(out_task_num)
    );
    c.problem(task_num, crate::problem::Code::TaskRefRequired, message);
    None
}
