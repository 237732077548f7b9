//! Quanshi event call create. One request carries a `callList`; the answer lists the
//! records in `success_data` and `fail_data`, matched back to rows by their number
//! (ferry never puts two rows with the same number into one batch). A record the
//! answer does not account for is unknown.

use std::collections::HashMap;

use serde_json::Value;

use super::{
    failed, json_body, number_or_string, unreadable, Credentials, Request, Response, RowResult,
    Verdict,
};
use crate::batch::Batch;
use crate::config::Target;
use crate::kinds::{number_key, Item};
use crate::problem::{Code, Problem};

pub fn build(target: &Target, creds: &Credentials, batch: &Batch) -> Request {
    let (event_id, before_minutes) = match &batch.rows[0].item {
        Item::Call(c) => (c.event_id, c.before_minutes),
        _ => unreachable!("quanshi serves only calls"),
    };
    let call_list: Vec<_> = batch
        .rows
        .iter()
        .filter_map(|r| match &r.item {
            Item::Call(c) => Some(&c.entry),
            _ => None,
        })
        .collect();
    let token = creds
        .body_token
        .as_ref()
        .map(|t| t.expose())
        .unwrap_or_default();
    let body = serde_json::json!({
        "token": token,
        "eventId": event_id,
        "beforeMinutes": before_minutes,
        "callList": call_list,
    });
    Request {
        path: target.paths.create_call.clone(),
        headers: Vec::new(),
        body: super::to_json(&body),
    }
}

pub fn classify(batch: &Batch, response: &Response) -> Verdict {
    let body = match json_body(batch, response) {
        Ok(body) => body,
        Err(verdict) => return verdict,
    };
    let msg = super::vendor_text(body.get("msg"));
    if response.status != 200 {
        let s = response.status;
        return failed(batch, Code::HttpError, s, format!("HTTP {s}: {msg}"));
    }
    match number_or_string(body.get("code")).as_deref() {
        Some("200") => {}
        Some(code @ ("401" | "403")) => {
            return Verdict::AuthRefused {
                status: code.parse().unwrap_or(401),
                message: format!("Quanshi refused the token (code {code}): {msg}"),
            }
        }
        Some(code) => {
            return failed(
                batch,
                Code::VendorError,
                200,
                format!("Quanshi answered code {code}: {msg}"),
            );
        }
        None => return unreadable(batch, response, "no code"),
    }
    let Some(data) = body.get("data") else {
        return unreadable(batch, response, "no data");
    };
    let mut answered: HashMap<String, (bool, Option<String>)> = HashMap::new();
    for (list, ok) in [("success_data", true), ("fail_data", false)] {
        for record in data
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let field = |name: &str| number_or_string(record.get(name)).filter(|s| !s.is_empty());
            let key = number_key(
                &field("countryCode").unwrap_or_default(),
                field("mobile").as_deref(),
                field("areaCode").as_deref(),
                field("phone").as_deref(),
            );
            answered.insert(key, (ok, field("id")));
        }
    }
    Verdict::Rows(
        batch
            .rows
            .iter()
            .map(|row| {
                let Item::Call(call) = &row.item else {
                    unreachable!("quanshi serves only calls")
                };
                match answered.get(&call.entry.number_key()) {
                    Some((true, id)) => RowResult::Succeeded {
                        remote_id: id.clone(),
                        warning: None,
                    },
                    // A deliberate resend that the vendor lists as failed: the number is
                    // most likely already in the event from the unknown attempt.
                    Some((false, id)) if row.resend => RowResult::Succeeded {
                        remote_id: id.clone(),
                        warning: Some(super::arctos::existed_before(&msg)),
                    },
                    Some((false, _)) => RowResult::Failed {
                        problem: Problem::new(
                            Code::VendorRejected,
                            "",
                            format!("Quanshi listed this number in fail_data without a reason (msg: {msg:?}); it is usually already in the event or not a callable number"),
                        ),
                        http_status: Some(200),
                    },
                    None => RowResult::Unknown {
                        problem: Problem::new(
                            Code::OutcomeUnknown,
                            "",
                            "Quanshi's answer did not list this number in success_data or fail_data; check the event, then rerun with --retry-unknown if it is missing",
                        ),
                        http_status: Some(200),
                    },
                }
            })
            .collect(),
    )
}

/// The top-level `requestId` of an answer, kept as every row's server request id.
pub fn server_request_id(body: &[u8]) -> Option<String> {
    let body: Value = serde_json::from_slice(body).ok()?;
    number_or_string(body.get("requestId")).filter(|s| !s.is_empty())
}
