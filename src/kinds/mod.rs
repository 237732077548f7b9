//! Mapping: the six kinds, their fields, and the turn from a manifest row into a
//! validated request item. One file per kind holds its `Field` enum and its rules; the
//! shared value rules live in `crate::validate`, and the stage that runs them over a
//! manifest in `validator.rs`.
//!
//! Header names are matched to fields ignoring case, spaces, `_` and `-`, plus the
//! aliases of `[columns.<kind>]` in the config. Unknown columns are carried through to
//! the reports by the caller; they never reach a request.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use crate::problem::{Problem, Warning};
use crate::validate::{self, Checker, Need};

/// Declares a kind's `Field` enum, each field once with its canonical name (the column
/// name a manifest uses, and the vendor's), in the order `Columns` keeps them.
macro_rules! fields {
    ($($field:ident = $name:literal,)+) => {
        /// The fields of this kind's rows.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Field {
            $($field,)+
        }

        impl $crate::kinds::KindField for Field {
            const ALL: &'static [Field] = &[$(Field::$field,)+];

            fn name(self) -> &'static str {
                match self {
                    $(Field::$field => $name,)+
                }
            }

            fn index(self) -> usize {
                // Declared in the order of `ALL`, so the discriminant is the position.
                self as usize
            }
        }
    };
}

pub mod agent_settings;
pub mod appointments;
pub mod calls;
mod in_order;
mod keys;
pub mod moderators;
pub mod publishers;
pub mod task_status;
mod validator;

pub use agent_settings::AgentSetting;
pub use appointments::Appointment;
pub use calls::{key_from_v0 as call_key_from_v0, number_key, Call, CallEntry};
pub use in_order::{CheckedRow, InOrder};
pub use moderators::Moderator;
pub use publishers::{Customer, Publisher};
pub use task_status::TaskStatusUpdate;
pub use validator::{Rules, Validator};

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

/// The fields of one kind, one enum per kind (`calls::Field`, ...), declared with
/// `fields!`.
pub trait KindField: Copy + 'static {
    /// Every field, in the order `Columns` keeps them.
    const ALL: &'static [Self];
    /// The canonical name: what a manifest's header calls the column.
    fn name(self) -> &'static str;
    /// The position in `ALL`.
    fn index(self) -> usize;
}

/// A kind's field names, in the order of its `Field::ALL`.
fn names<F: KindField>() -> Vec<&'static str> {
    F::ALL.iter().map(|f| f.name()).collect()
}

/// The names of the fields that must have a column in the header: each entry lists
/// alternatives, one of which must be present (`task_num` or `out_task_num`).
fn required_names<F: KindField>(required: &[&[F]]) -> Vec<Vec<&'static str>> {
    required
        .iter()
        .map(|alternatives| alternatives.iter().map(|f| f.name()).collect())
        .collect()
}

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

    /// Canonical field names, in the order of the kind's `Field::ALL`.
    pub fn fields(self) -> Vec<&'static str> {
        match self {
            Kind::Appointments => names::<appointments::Field>(),
            Kind::Moderators => names::<moderators::Field>(),
            Kind::Publishers => names::<publishers::Field>(),
            Kind::TaskStatus => names::<task_status::Field>(),
            Kind::Calls => names::<calls::Field>(),
            Kind::AgentSettings => names::<agent_settings::Field>(),
        }
    }

    /// The columns a header must have; each entry lists alternatives (README's table of
    /// columns is checked against this).
    pub fn required_columns(self) -> Vec<Vec<&'static str>> {
        match self {
            Kind::Appointments => required_names(appointments::REQUIRED_COLUMNS),
            Kind::Moderators => required_names(moderators::REQUIRED_COLUMNS),
            Kind::Publishers => required_names(publishers::REQUIRED_COLUMNS),
            Kind::TaskStatus => required_names(task_status::REQUIRED_COLUMNS),
            Kind::Calls => required_names(calls::REQUIRED_COLUMNS),
            Kind::AgentSettings => required_names(agent_settings::REQUIRED_COLUMNS),
        }
    }

    /// Maps, checks and converts one row. A rejected row still carries its key when the
    /// key's own fields were valid, so duplicates are found whatever else is wrong.
    pub fn validate(self, row: &RowCells, ctx: &Ctx) -> Result<Valid, Rejected> {
        match self {
            Kind::Appointments => checked(row, |c| appointments::validate(c, ctx)),
            Kind::Moderators => checked(row, moderators::validate),
            Kind::Publishers => checked(row, |c| publishers::validate(c, ctx)),
            Kind::TaskStatus => checked(row, task_status::validate),
            Kind::Calls => checked(row, |c| calls::validate(c, ctx)),
            Kind::AgentSettings => checked(row, agent_settings::validate),
        }
    }
}

/// What a kind's rules give for a row: its key when the key's fields were valid, and the
/// item when every field the item needs was.
type Checked = (Option<String>, Option<Item>);

/// Runs a kind's `rules` on a row and sorts the outcome into valid or rejected.
fn checked<F: KindField>(
    row: &RowCells,
    rules: impl FnOnce(&mut Checker<F>) -> Checked,
) -> Result<Valid, Rejected> {
    let mut check = Checker::new(row);
    let (key, item) = rules(&mut check);
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

/// A row that passed, as `validate` needs it: it sends nothing, so the item is dropped
/// on the worker thread that made it (`in_order`), and only the key and warnings go on.
#[derive(Clone, Debug, PartialEq)]
pub struct Passed {
    pub key: String,
    pub warnings: Vec<Warning>,
}

impl From<Valid> for Passed {
    fn from(valid: Valid) -> Passed {
        Passed {
            key: valid.key,
            warnings: valid.warnings,
        }
    }
}

/// What `Validator::settle` needs of a row that passed its rules: its record key.
pub trait Keyed {
    fn key(&self) -> &str;
    fn into_key(self) -> String;
}

impl Keyed for Valid {
    fn key(&self) -> &str {
        &self.key
    }
    fn into_key(self) -> String {
        self.key
    }
}

impl Keyed for Passed {
    fn key(&self) -> &str {
        &self.key
    }
    fn into_key(self) -> String {
        self.key
    }
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
    #[error("{} {}; the header has: {}. {}", missing_lead(missing), missing_list(missing), header.join(", "), missing_fix(kind, header))]
    MissingColumn {
        kind: &'static str,
        missing: Vec<RequiredColumn>,
        /// The header's column names, as written.
        header: Vec<String>,
    },
}

/// A required column a header lacks: the fields any one of which would do. It reads
/// `name` or `name or other`, and says when a flag can stand in for the column
/// (`eventId (or pass --event-id)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequiredColumn(pub Vec<&'static str>);

impl fmt::Display for RequiredColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" or "))?;
        for flag in self.0.iter().filter_map(|c| flag_for_column(c)) {
            write!(f, " (or pass {flag})")?;
        }
        Ok(())
    }
}

fn missing_lead(missing: &[RequiredColumn]) -> &'static str {
    match missing.len() {
        1 => "no column for the required field",
        _ => "no columns for the required fields",
    }
}

/// What to do about missing columns. A header read as one column that holds another
/// separator was saved split at that separator (a spreadsheet in a European locale saves
/// "CSV" split at `;`): renaming columns would not help.
fn missing_fix(kind: &str, header: &[String]) -> String {
    let split_at = match header {
        [only] => [';', '\t', ','].into_iter().find(|&c| only.contains(c)),
        _ => None,
    };
    match split_at {
        Some(c) => {
            let shown = if c == '\t' {
                "tabs".to_string()
            } else {
                format!("'{c}'")
            };
            format!(
                "The header reads as one column: the file seems to be split at {shown}, not at \
                 this file type's separator. Save it again as CSV split at commas (or as .tsv \
                 for tabs), or as .xlsx"
            )
        }
        None => format!("Rename a column, or map it with [columns.{kind}] in ferry.toml"),
    }
}

fn missing_list(missing: &[RequiredColumn]) -> String {
    let texts: Vec<String> = missing.iter().map(ToString::to_string).collect();
    texts.join("; ")
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
            Vec::new()
        } else {
            kind.required_columns()
        };
        let mut missing = Vec::new();
        for alternatives in &required {
            let present = alternatives.iter().any(|wanted| {
                optional_columns.contains(wanted)
                    || fields
                        .iter()
                        .position(|f| f == wanted)
                        .is_some_and(|i| field_columns[i].is_some())
            });
            if !present {
                missing.push(RequiredColumn(alternatives.clone()));
            }
        }
        if !missing.is_empty() {
            return Err(MappingError::MissingColumn {
                kind: kind.name(),
                missing,
                header: header.to_vec(),
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
    pub fn column_name<F: KindField>(&self, field: F) -> Option<&str> {
        self.field_columns[field.index()].map(|c| self.header[c].as_str())
    }
}

/// One row's cells seen through its kind's fields.
pub struct RowCells<'a> {
    pub cells: &'a [String],
    pub columns: &'a Columns,
}

impl<'a> RowCells<'a> {
    /// The field's cell, trimmed; `None` when the column is absent or the cell empty.
    pub fn get<F: KindField>(&self, field: F) -> Option<&'a str> {
        let col = self.columns.field_columns[field.index()]?;
        let value = self.cells.get(col)?.trim();
        (!value.is_empty()).then_some(value)
    }
}

impl<F: KindField> validate::Cells<F> for RowCells<'_> {
    fn cell(&self, field: F) -> Option<&str> {
        self.get(field)
    }

    /// The column as the header writes it, or the field's own name when the manifest
    /// has no such column.
    fn name(&self, field: F) -> &str {
        self.columns.column_name(field).unwrap_or(field.name())
    }
}

/// `task_num` or `out_task_num`: one is required; `task_num` wins when both are given,
/// since it names the task directly.
fn task_ref<F: Copy>(c: &mut Checker<F>, task_num: F, out_task_num: F) -> Option<TaskRef> {
    if c.cell(task_num).is_some() {
        return c.id(task_num, Need::Optional).map(TaskRef::TaskNum);
    }
    if c.cell(out_task_num).is_some() {
        return c.id(out_task_num, Need::Optional).map(TaskRef::OutTaskNum);
    }
    let message = format!(
        "{} or {} is required: name the arctos task this row belongs to",
        c.name(task_num),
        c.name(out_task_num)
    );
    c.problem(task_num, crate::problem::Code::TaskRefRequired, message);
    None
}
