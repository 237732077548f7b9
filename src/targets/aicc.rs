//! Huawei AICC agent settings create: `X-APP-Key` and an optional bearer token; HTTP 200
//! with `returnCode` "0" is success. HTTP 400 ("bad request") and 500 ("business
//! failure") are final failures, not retried.

use serde::Deserialize;

use super::{
    all_rows, answer, body_excerpt, existed_before, failed, rejected, says_exists, unreadable,
    Credentials, Request, Response, RowResult, Verdict,
};
use crate::batch::{Batch, Row};
use crate::config::{Secret, Target};
use crate::kinds::AgentSetting;
use crate::problem::Code;

/// An AICC answer: `returnCode` (a number or a string), `returnDesc`, and the id of
/// the created setting.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Answer {
    #[serde(deserialize_with = "answer::number_or_string")]
    return_code: Option<String>,
    #[serde(deserialize_with = "answer::text")]
    return_desc: String,
    #[serde(deserialize_with = "answer::number_or_string")]
    id: Option<String>,
}

pub fn build(target: &Target, creds: &Credentials, setting: &AgentSetting) -> Request {
    let mut headers = Vec::new();
    if let Some(key) = &creds.app_key {
        headers.push(("X-APP-Key", key.clone()));
    }
    if let Some(token) = &creds.bearer {
        headers.push((
            "Authorization",
            Secret::new(format!("Bearer {}", token.expose())),
        ));
    }
    Request {
        path: target.paths.create_agent_settings.clone(),
        headers,
        body: super::to_json(setting),
    }
}

pub fn classify(batch: &Batch, response: &Response) -> Verdict {
    let s = response.status;
    let excerpt = || body_excerpt(response);
    match s {
        400 => {
            let message = format!(
                "AICC answered 400 (bad request: check the values){}",
                excerpt()
            );
            return failed(batch, Code::HttpError, s, message);
        }
        500 => {
            let message = format!("AICC answered 500 (business failure: check the values, e.g. at most 5 numbers of 15 digits){}", excerpt());
            return failed(batch, Code::VendorError, s, message);
        }
        s if super::success(s) => {}
        _ => return failed(batch, Code::HttpError, s, format!("HTTP {s}{}", excerpt())),
    }
    let Ok(answer) = answer::parse::<Answer>(response.body) else {
        return unreadable(batch, response, super::not_json(response.body));
    };
    match answer.return_code.as_deref() {
        Some("0") => all_rows(
            batch,
            RowResult::Succeeded {
                remote_id: answer.id,
                warning: None,
            },
        ),
        Some(code) => Verdict::Rows(
            (batch.rows.iter())
                .map(|row| refused(row, code, &answer.return_desc))
                .collect(),
        ),
        None => unreadable(batch, response, "no returnCode"),
    }
}

/// A setting AICC refused. AICC's "already exists" rule: a deliberate resend whose
/// `returnDesc` says the setting exists was created the first time.
fn refused(row: &Row, code: &str, desc: &str) -> RowResult {
    if row.resend && says_exists(desc) {
        return existed_before(None, desc);
    }
    rejected(format!("AICC returnCode {code}: {desc}"))
}
