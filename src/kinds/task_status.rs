//! task-status → arctos updateTaskStatus (path from the config: the vendor page omits it).

use serde::Serialize;

use super::{task_ref, Item, TaskRef};
use crate::validate::{Checker, Need};

fields! {
    TaskNum = "task_num",
    OutTaskNum = "out_task_num",
    TaskStatus = "task_status",
}

pub const REQUIRED_COLUMNS: &[&[Field]] =
    &[&[Field::TaskNum, Field::OutTaskNum], &[Field::TaskStatus]];

#[derive(Clone, Debug, PartialEq)]
pub struct TaskStatusUpdate {
    pub task: TaskRef,
    pub task_status: &'static str,
}

#[derive(Serialize)]
pub struct TaskStatusBody<'a> {
    pub task_num: &'a str,
    pub task_status: &'a str,
}

impl TaskStatusUpdate {
    pub fn body<'a>(&'a self, task_num: &'a str) -> TaskStatusBody<'a> {
        TaskStatusBody {
            task_num,
            task_status: self.task_status,
        }
    }
}

pub(super) fn validate(c: &mut Checker<Field>) -> (Option<String>, Option<Item>) {
    let task = task_ref(c, Field::TaskNum, Field::OutTaskNum);
    let status = c.choice(Field::TaskStatus, Need::Required, &["finished", "canceled"]);
    let key = match (&task, status) {
        (Some(t), Some(s)) => Some(format!("{}|{s}", t.key_part())),
        _ => None,
    };
    let item = (|| {
        Some(Item::TaskStatus(TaskStatusUpdate {
            task: task?,
            task_status: status?,
        }))
    })();
    (key, item)
}
