//! moderators → arctos createTaskModerator (`POST /api/task/service/do_add`).

use serde::Serialize;

use super::{task_ref, Item, TaskRef};
use crate::validate::{Checker, Need};

fields! {
    TaskNum = "task_num",
    OutTaskNum = "out_task_num",
    BusinessCode = "business_code",
    BranchCode = "branch_code",
    EmpId = "emp_id",
}

pub const REQUIRED_COLUMNS: &[&[Field]] = &[&[Field::TaskNum, Field::OutTaskNum]];

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

pub(super) fn validate(c: &mut Checker<Field>) -> (Option<String>, Option<Item>) {
    let task = task_ref(c, Field::TaskNum, Field::OutTaskNum);
    let business_code = c.id(Field::BusinessCode, Need::Optional);
    let branch_code = c.id(Field::BranchCode, Need::Optional);
    let emp_id = c.id(Field::EmpId, Need::Optional);
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
