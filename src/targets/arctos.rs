//! arctos task API: createBlankTask, createTaskModerator, createTaskPublisher,
//! updateTaskStatus, and the license-key login.
//!
//! Every answer is HTTP 200 with `status` 1 (success), 2 (success with a warning) or
//! 0 (failure, `message` says why); `status` may be a number or a string.

use std::time::Duration;

use serde::Deserialize;

use super::{
    all_rows, answer, existed_before, failed, read_answer, rejected, retryable, says_exists,
    to_json, unreadable, AuthRefused, Credentials, EndpointMissing, Request, Response, RowResult,
    Verdict,
};
use crate::batch::{ArctosBody, Batch, Row};
use crate::config::{Secret, Target};
use crate::problem::{Code, Problem};

/// An arctos answer, to a request or to a login step.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Answer {
    #[serde(deserialize_with = "answer::number_or_string")]
    status: Option<String>,
    #[serde(deserialize_with = "answer::text")]
    message: String,
    #[serde(deserialize_with = "answer::nested")]
    info: Info,
}

/// `info`: the created task's number, or what a login step issued.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Info {
    #[serde(deserialize_with = "answer::number_or_string")]
    task_num: Option<String>,
    #[serde(deserialize_with = "answer::string")]
    code: Option<String>,
    #[serde(deserialize_with = "answer::string")]
    access_token: Option<String>,
}

impl Answer {
    /// The message, or a stand-in when the vendor gave none.
    fn said(&self) -> String {
        match self.message.as_str() {
            "" => "no message".into(),
            m => m.to_string(),
        }
    }
}

pub fn build(target: &Target, creds: &Credentials, body: &ArctosBody) -> Request {
    let (path, body) = match body {
        ArctosBody::Appointment(a) => (target.paths.create_task.clone(), to_json(a)),
        ArctosBody::Moderator {
            task_num,
            moderator,
        } => (
            target.paths.add_moderator.clone(),
            to_json(&moderator.body(task_num)),
        ),
        ArctosBody::TaskStatus { task_num, update } => (
            target.paths.update_task_status.clone().unwrap_or_default(),
            to_json(&update.body(task_num)),
        ),
        ArctosBody::Publishers {
            task_num,
            customers,
        } => (
            target.paths.add_publisher.clone(),
            to_json(&serde_json::json!({ "task_num": task_num, "customer": customers })),
        ),
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
    let answer: Answer = match read_answer(batch, response) {
        Ok(answer) => answer,
        Err(verdict) => return verdict,
    };
    if !super::success(response.status) {
        let s = response.status;
        return failed(
            batch,
            Code::HttpError,
            s,
            format!("HTTP {s}: {}", answer.said()),
        );
    }
    let Answer {
        status,
        message,
        info,
    } = answer;
    match status.as_deref() {
        Some("1") => all_rows(
            batch,
            RowResult::Succeeded {
                remote_id: info.task_num,
                warning: None,
            },
        ),
        Some("2") => all_rows(
            batch,
            RowResult::Succeeded {
                remote_id: info.task_num,
                warning: Some(Problem::new(
                    Code::VendorWarning,
                    "",
                    format!("arctos answered with a warning: {message}"),
                )),
            },
        ),
        Some("0") => Verdict::Rows(
            batch
                .rows
                .iter()
                .map(|row| refused(row, &message))
                .collect(),
        ),
        _ => unreadable(batch, response, "no status 0, 1 or 2"),
    }
}

/// A row arctos refused (`status` 0). arctos's "already exists" rule: a deliberate
/// resend refused with a message saying the record exists was created the first time.
fn refused(row: &Row, message: &str) -> RowResult {
    if row.resend && says_exists(message) {
        return existed_before(None, message);
    }
    rejected(format!("arctos refused the row: {message}"))
}

// ---------------------------------------------------------------------------------
// The license-key login: license key → authorization code → access token.
// ---------------------------------------------------------------------------------

/// The two exchanges of the login, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginStep {
    /// `POST /api/auth/code`: the license key buys an authorization code.
    Code,
    /// `POST /api/auth/login`: the code buys the access token.
    Token,
}

/// What a login step's answer means.
#[derive(Debug)]
pub enum LoginVerdict {
    /// The code or the token: a secret from the moment it exists.
    Issued(Secret),
    /// Worth trying again like any request (a retryable status, or no answer);
    /// `refused` is what it means once no try is left.
    Retry {
        after: Option<Duration>,
        refused: AuthRefused,
    },
    Refused(AuthRefused),
    /// A redirect: base_url does not lead to the API.
    Redirected(EndpointMissing),
}

impl LoginStep {
    /// The step's name in messages.
    fn what(self) -> &'static str {
        match self {
            LoginStep::Code => "auth code",
            LoginStep::Token => "login",
        }
    }

    fn refused(self, status: Option<u16>, why: &str) -> AuthRefused {
        AuthRefused {
            status,
            message: format!("arctos login ({}) refused: {why}", self.what()),
        }
    }

    /// A step that got no answer ferry could read: tried again while tries are left.
    pub fn unanswered(self, why: &str) -> LoginVerdict {
        LoginVerdict::Retry {
            after: None,
            refused: self.refused(None, why),
        }
    }

    /// Reads a step's answer: `info.code` or `info.access_token` with `status` 1.
    pub fn read(self, response: &Response) -> LoginVerdict {
        let s = response.status;
        if let Some(location) = &response.location {
            return LoginVerdict::Redirected(EndpointMissing {
                status: s,
                message: format!(
                    "arctos login ({}): HTTP {s} redirect {location}; ferry does not follow redirects, fix base_url in ferry.toml",
                    self.what()
                ),
            });
        }
        let refused = match self.issued(response) {
            Ok(secret) => return LoginVerdict::Issued(secret),
            Err(why) => self.refused(Some(s), &why),
        };
        if retryable(s) {
            LoginVerdict::Retry {
                after: response.retry_after,
                refused,
            }
        } else {
            LoginVerdict::Refused(refused)
        }
    }

    /// The secret the step issued, or why there is none.
    fn issued(self, response: &Response) -> Result<Secret, String> {
        let s = response.status;
        let answer: Answer = answer::parse(response.body)
            .map_err(|_| format!("HTTP {s} with an answer that is not JSON"))?;
        let ok = answer.status.as_deref() == Some("1") && s == 200;
        let issued = match self {
            LoginStep::Code => &answer.info.code,
            LoginStep::Token => &answer.info.access_token,
        };
        match issued {
            Some(v) if ok && !v.is_empty() => Ok(Secret::new(v.as_str())),
            _ => Err(format!("HTTP {s}: {}", answer.said())),
        }
    }
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
