//! Quanshi event call create. One request carries a `callList`; the answer lists the
//! records in `success_data` and `fail_data`, matched back to rows by their number
//! (ferry never puts two rows with the same number into one batch). A record the
//! answer does not account for is unknown.
//!
//! Every answer carries a `requestId`, kept as the server request id of every attempt.

use std::collections::HashMap;

use serde::Deserialize;

use super::{
    answer, existed_before, failed, read_answer, rejected, unreadable, AuthRefused, Credentials,
    Request, Response, RowResult, Verdict,
};
use crate::batch::{Batch, CallList, Row};
use crate::config::Target;
use crate::kinds::number_key;
use crate::problem::{Code, Problem};

/// A Quanshi answer: `code` 200 is success (401/403: the token is refused). Its
/// `requestId` is read on its own ([`server_request_id`]), for every attempt.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Answer {
    #[serde(deserialize_with = "answer::number_or_string")]
    code: Option<String>,
    #[serde(deserialize_with = "answer::text")]
    msg: String,
    /// Absent is unreadable; present (even `null`) with no lists accounts for no row.
    #[serde(deserialize_with = "answer::present")]
    data: Option<Data>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Data {
    #[serde(deserialize_with = "answer::list")]
    success_data: Vec<Record>,
    #[serde(deserialize_with = "answer::list")]
    fail_data: Vec<Record>,
}

/// One record of `success_data` or `fail_data`: the number as ferry sent it, and the
/// vendor's id. Quanshi echoes absent fields as empty strings.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Record {
    #[serde(deserialize_with = "answer::number_or_string")]
    country_code: Option<String>,
    #[serde(deserialize_with = "answer::number_or_string")]
    mobile: Option<String>,
    #[serde(deserialize_with = "answer::number_or_string")]
    area_code: Option<String>,
    #[serde(deserialize_with = "answer::number_or_string")]
    phone: Option<String>,
    #[serde(deserialize_with = "answer::number_or_string")]
    id: Option<String>,
}

impl Record {
    /// The number key of the row this record answers (`CallEntry::number_key`).
    fn number_key(&self) -> String {
        let field = |f: &Option<String>| f.clone().filter(|s| !s.is_empty());
        number_key(
            &field(&self.country_code).unwrap_or_default(),
            field(&self.mobile).as_deref(),
            field(&self.area_code).as_deref(),
            field(&self.phone).as_deref(),
        )
    }
}

/// What the answer says of one number: listed as a success or not, and its id.
type Listed = HashMap<String, (bool, Option<String>)>;

impl Data {
    fn listed(self) -> Listed {
        let success = self.success_data.into_iter().map(|r| (r, true));
        let fail = self.fail_data.into_iter().map(|r| (r, false));
        success
            .chain(fail)
            .map(|(record, ok)| {
                let id = record.id.clone().filter(|s| !s.is_empty());
                (record.number_key(), (ok, id))
            })
            .collect()
    }
}

pub fn build(target: &Target, creds: &Credentials, calls: &CallList) -> Request {
    let token = creds
        .body_token
        .as_ref()
        .map(|t| t.expose())
        .unwrap_or_default();
    let body = serde_json::json!({
        "token": token,
        "eventId": calls.event_id,
        "beforeMinutes": calls.before_minutes,
        "callList": calls.entries,
    });
    Request {
        path: target.paths.create_call.clone(),
        headers: Vec::new(),
        body: super::to_json(&body),
    }
}

pub fn classify(batch: &Batch, calls: &CallList, response: &Response) -> Verdict {
    let answer: Answer = match read_answer(batch, response) {
        Ok(answer) => answer,
        Err(verdict) => return verdict,
    };
    let msg = &answer.msg;
    if !super::success(response.status) {
        let s = response.status;
        return failed(batch, Code::HttpError, s, format!("HTTP {s}: {msg}"));
    }
    match answer.code.as_deref() {
        Some("200") => {}
        Some(code @ ("401" | "403")) => {
            return Verdict::AuthRefused(AuthRefused {
                status: Some(code.parse().unwrap_or(401)),
                message: format!("Quanshi refused the token (code {code}): {msg}"),
            })
        }
        Some(code) => {
            let message = format!("Quanshi answered code {code}: {msg}");
            return failed(batch, Code::VendorError, response.status, message);
        }
        None => return unreadable(batch, response, "no code"),
    }
    let Some(data) = answer.data else {
        return unreadable(batch, response, "no data");
    };
    let listed = data.listed();
    let rows = batch.rows.iter().zip(&calls.entries);
    Verdict::Rows(
        rows.map(|(row, entry)| row_result(row, listed.get(&entry.number_key()), msg))
            .collect(),
    )
}

/// One row's fate from how the answer lists its number.
fn row_result(row: &Row, listed: Option<&(bool, Option<String>)>, msg: &str) -> RowResult {
    match listed {
        Some((true, id)) => RowResult::Succeeded {
            remote_id: id.clone(),
            warning: None,
        },
        // Quanshi's "already exists" rule: a deliberate resend that the vendor lists as
        // failed is most likely already in the event from the unknown attempt.
        Some((false, id)) if row.resend => existed_before(id.clone(), msg),
        Some((false, _)) => rejected(format!("Quanshi listed this number in fail_data without a reason (msg: {msg:?}); it is usually already in the event or not a callable number")),
        None => RowResult::Unknown {
            problem: Problem::new(
                Code::OutcomeUnknown,
                "",
                "Quanshi's answer did not list this number in success_data or fail_data; check the event, then rerun with --retry-unknown if it is missing",
            ),
            http_status: Some(200),
        },
    }
}

/// The top-level `requestId` of an answer, kept as every row's server request id.
pub fn server_request_id(body: &[u8]) -> Option<String> {
    let answer: RequestId = answer::parse(body).ok()?;
    answer.request_id.filter(|s| !s.is_empty())
}

/// An answer's `requestId` alone: the rest of it (a hundred records) is skipped unread.
#[derive(Deserialize, Default)]
#[serde(default)]
struct RequestId {
    #[serde(rename = "requestId", deserialize_with = "answer::number_or_string")]
    request_id: Option<String>,
}
