//! appointments → arctos createBlankTask (`POST /api/task/do_add`).

use serde::Serialize;
use serde_json::Value;

use super::{Ctx, Item};
use crate::validate::{parse_integer, Checker, Need};

fields! {
    BusinessId = "business_id",
    OutTaskNum = "out_task_num",
    OutTaskType = "out_task_type",
    TaskType = "task_type",
    TaskNotify = "task_notify",
    TaskTime = "task_time",
    TaskRemark = "task_remark",
    BranchCode = "branch_code",
    BusinessCode = "business_code",
    RoomType = "room_type",
    Video = "video",
}

pub const REQUIRED_COLUMNS: &[&[Field]] = &[
    &[Field::BusinessId],
    &[Field::OutTaskNum],
    &[Field::TaskType],
    &[Field::BranchCode],
    &[Field::RoomType],
    &[Field::Video],
];

/// The createBlankTask body, in the JSON types of the vendor's example.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Appointment {
    pub business_id: i64,
    pub out_task_num: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_task_type: Option<String>,
    pub task_type: &'static str,
    pub task_notify: bool,
    /// Unix seconds as a string, as in the vendor example.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_remark: Option<String>,
    pub branch_code: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_code: Option<Value>,
    pub room_type: &'static str,
    pub video: bool,
}

pub(super) fn validate(c: &mut Checker<Field>, ctx: &Ctx) -> (Option<String>, Option<Item>) {
    let out_task_num = c.id(Field::OutTaskNum, Need::Required);
    let business_id = c.integer(Field::BusinessId, Need::Required, None);
    let out_task_type = c.text(Field::OutTaskType, Need::Optional);
    let task_type = c.choice(Field::TaskType, Need::Required, &["normal", "custom"]);
    let task_notify = c.boolean(Field::TaskNotify, Need::Optional);
    let room_type = c.choice(Field::RoomType, Need::Required, &["realtime", "normal"]);
    let time_need = if room_type == Some("normal") {
        Need::Required
    } else {
        Need::Optional
    };
    let task_time = c.time(Field::TaskTime, time_need, ctx.timezone);
    let task_remark = c.text(Field::TaskRemark, Need::Optional);
    let branch_code = c
        .id(Field::BranchCode, Need::Required)
        .map(|s| number_or_text(&s));
    let business_code = c
        .id(Field::BusinessCode, Need::Optional)
        .map(|s| number_or_text(&s));
    let video = c.boolean(Field::Video, Need::Required);

    let item = (|| {
        Some(Item::Appointment(Appointment {
            business_id: business_id?,
            out_task_num: out_task_num.clone()?,
            out_task_type,
            task_type: task_type?,
            // The vendor requires it; an empty cell means the documented default.
            task_notify: task_notify.unwrap_or(false),
            task_time: task_time.map(|t| t.to_string()),
            task_remark,
            branch_code: branch_code?,
            business_code,
            room_type: room_type?,
            video: video?,
        }))
    })();
    (out_task_num, item)
}

/// Codes are numbers in the vendor example when they are integers; text otherwise.
fn number_or_text(s: &str) -> Value {
    match parse_integer(s) {
        Some(n) if !s.starts_with('0') || s == "0" => Value::from(n),
        _ => Value::from(s),
    }
}
