//! task-status → arctos updateTaskStatus (path from the config: the vendor page omits it).

use serde::Serialize;

use super::{task_ref, Item, TaskRef};
use crate::validate::{Checker, Need};

pub const FIELDS: &[&str] = &["task_num", "out_task_num", "task_status"];
const TASK_NUM: usize = 0;
const OUT_TASK_NUM: usize = 1;
const TASK_STATUS: usize = 2;

pub const REQUIRED_COLUMNS: &[&[&str]] = &[&["task_num", "out_task_num"], &["task_status"]];

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

pub(super) fn validate(c: &mut Checker) -> (Option<String>, Option<Item>) {
    let task = task_ref(c, TASK_NUM, OUT_TASK_NUM);
    let status = c.choice(TASK_STATUS, Need::Required, &["finished", "canceled"]);
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
