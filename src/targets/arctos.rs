//! arctos task API: createBlankTask, createTaskModerator, createTaskPublisher,
//! updateTaskStatus, and the license-key login.
//!
//! Every answer is HTTP 200 with `status` 1 (success), 2 (success with a warning) or
//! 0 (failure, `message` says why); `status` may be a number or a string.

use serde_json::Value;

use super::{
    failed, json_body, number_or_string, says_exists, to_json, unreadable, Credentials, Request,
    Response, RowResult, Verdict,
};
use crate::batch::Batch;
use crate::config::{Secret, Target};
use crate::kinds::{Item, TaskRef};
use crate::problem::{Code, Problem};

pub fn build(target: &Target, creds: &Credentials, batch: &Batch) -> Request {
    let first = &batch.rows[0];
    let task_num = first
        .task_num
        .as_deref()
        .or(match first.item.task_ref() {
            Some(TaskRef::TaskNum(t)) => Some(t.as_str()),
            _ => None,
        })
        .unwrap_or_default();
    let (path, body) = match &first.item {
        Item::Appointment(a) => (target.paths.create_task.clone(), to_json(a)),
        Item::Moderator(m) => (
            target.paths.add_moderator.clone(),
            to_json(&m.body(task_num)),
        ),
        Item::TaskStatus(s) => (
            target.paths.update_task_status.clone().unwrap_or_default(),
            to_json(&s.body(task_num)),
        ),
        Item::Publisher(_) => {
            let customer: Vec<_> = batch
                .rows
                .iter()
                .filter_map(|r| match &r.item {
                    Item::Publisher(p) => Some(&p.customer),
                    _ => None,
                })
                .collect();
            (
                target.paths.add_publisher.clone(),
                to_json(&serde_json::json!({ "task_num": task_num, "customer": customer })),
            )
        }
        Item::Call(_) | Item::AgentSetting(_) => unreachable!("arctos serves only arctos kinds"),
    };
    let headers = creds
        .bearer
        .as_ref()
        .map(|t| {
            vec![(
                "Authorization",
                Secret::new(format!("Bearer {}", t.expose())),
            )]
        })
        .unwrap_or_default();
    Request {
        path,
        headers,
        body,
    }
}

pub fn classify(batch: &Batch, response: &Response) -> Verdict {
    let body = match json_body(batch, response) {
        Ok(body) => body,
        Err(verdict) => return verdict,
    };
    let message = super::vendor_text(body.get("message"));
    let status = number_or_string(body.get("status"));
    if response.status != 200 {
        let s = response.status;
        return failed(
            batch,
            Code::HttpError,
            s,
            format!(
                "HTTP {s}: {}",
                if message.is_empty() {
                    "no message".into()
                } else {
                    message
                }
            ),
        );
    }
    match status.as_deref() {
        Some("1") | Some("2") => {
            let remote_id = number_or_string(body.pointer("/info/task_num"));
            let warning = (status.as_deref() == Some("2")).then(|| {
                Problem::new(
                    Code::VendorWarning,
                    "",
                    format!("arctos answered with a warning: {message}"),
                )
            });
            Verdict::Rows(
                batch
                    .rows
                    .iter()
                    .map(|_| RowResult::Succeeded {
                        remote_id: remote_id.clone(),
                        warning: warning.clone(),
                    })
                    .collect(),
            )
        }
        Some("0") => Verdict::Rows(
            batch
                .rows
                .iter()
                .map(|row| {
                    if row.resend && says_exists(&message) {
                        RowResult::Succeeded {
                            remote_id: None,
                            warning: Some(existed_before(&message)),
                        }
                    } else {
                        RowResult::Failed {
                            problem: Problem::new(
                                Code::VendorRejected,
                                "",
                                format!("arctos refused the row: {message}"),
                            ),
                            http_status: Some(200),
                        }
                    }
                })
                .collect(),
        ),
        _ => unreadable(batch, response, "no status 0, 1 or 2"),
    }
}

/// The warning for a deliberate resend that the vendor already had.
pub fn existed_before(message: &str) -> Problem {
    Problem::new(
        Code::ExistedBefore,
        "",
        format!("the vendor already had this record from an earlier attempt whose outcome was unknown ({message})"),
    )
}

/// `POST /api/auth/code`: the body; the license key goes in the `arc-license-key` header.
pub fn code_request(target: &Target, license_key: &Secret, user_id: &str) -> Request {
    Request {
        path: target.paths.auth_code.clone(),
        headers: vec![("arc-license-key", license_key.clone())],
        body: to_json(
            &serde_json::json!({ "user_id": user_id, "name": user_id, "role": "MODERATOR" }),
        ),
    }
}

/// `POST /api/auth/login` with the code just issued.
pub fn login_request(target: &Target, client_id: &str, code: &Secret) -> Request {
    Request {
        path: target.paths.auth_login.clone(),
        headers: Vec::new(),
        body: to_json(&serde_json::json!({
            "grant_type": "authorization_code",
            "client_id": client_id,
            "code": code.expose(),
        })),
    }
}

/// Reads `info.code` or `info.access_token` from a login step's answer.
pub fn login_answer(response: &Response, field: &str) -> Result<Secret, String> {
    let body: Value = serde_json::from_slice(response.body)
        .map_err(|_| format!("HTTP {} with an answer that is not JSON", response.status))?;
    let ok = number_or_string(body.get("status")).as_deref() == Some("1");
    match body
        .pointer(&format!("/info/{field}"))
        .and_then(Value::as_str)
    {
        Some(v) if ok && response.status == 200 && !v.is_empty() => Ok(Secret::new(v)),
        _ => Err(format!(
            "HTTP {}: {}",
            response.status,
            Some(super::vendor_text(body.get("message")))
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "no message".into())
        )),
    }
}
