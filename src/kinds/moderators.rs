//! moderators → arctos createTaskModerator (`POST /api/task/service/do_add`).

use serde::Serialize;

use super::{task_ref, Item, TaskRef};
use crate::validate::{Checker, Need};

pub const FIELDS: &[&str] = &[
    "task_num",
    "out_task_num",
    "business_code",
    "branch_code",
    "emp_id",
];
const TASK_NUM: usize = 0;
const OUT_TASK_NUM: usize = 1;
const BUSINESS_CODE: usize = 2;
const BRANCH_CODE: usize = 3;
const EMP_ID: usize = 4;

pub const REQUIRED_COLUMNS: &[&[&str]] = &[&["task_num", "out_task_num"]];

/// The createTaskModerator body minus `task_num`, which is resolved at send time.
/// Every field is a string, as in the vendor example.
#[derive(Clone, Debug, PartialEq)]
pub struct Moderator {
    pub task: TaskRef,
    pub business_code: Option<String>,
    pub branch_code: Option<String>,
    pub emp_id: Option<String>,
}

#[derive(Serialize)]
pub struct ModeratorBody<'a> {
    pub task_num: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emp_id: Option<&'a str>,
}

impl Moderator {
    pub fn body<'a>(&'a self, task_num: &'a str) -> ModeratorBody<'a> {
        ModeratorBody {
            task_num,
            business_code: self.business_code.as_deref(),
            branch_code: self.branch_code.as_deref(),
            emp_id: self.emp_id.as_deref(),
        }
    }
}

pub(super) fn validate(c: &mut Checker) -> (Option<String>, Option<Item>) {
    let task = task_ref(c, TASK_NUM, OUT_TASK_NUM);
    let business_code = c.text(BUSINESS_CODE, Need::Optional);
    let branch_code = c.text(BRANCH_CODE, Need::Optional);
    let emp_id = c.text(EMP_ID, Need::Optional);
    let key = task
        .as_ref()
        .map(|t| format!("{}|{}", t.key_part(), emp_id.as_deref().unwrap_or("")));
    let item = task.map(|task| {
        Item::Moderator(Moderator {
            task,
            business_code,
            branch_code,
            emp_id,
        })
    });
    (key, item)
}
