//! Huawei AICC agent settings create: `X-APP-Key` and an optional bearer token; HTTP 200
//! with `returnCode` "0" is success. HTTP 400 ("bad request") and 500 ("business
//! failure") are final failures, not retried.

use serde_json::Value;

use super::{
    body_excerpt, failed, number_or_string, says_exists, unreadable, Credentials, Request,
    Response, RowResult, Verdict,
};
use crate::batch::Batch;
use crate::config::{Secret, Target};
use crate::kinds::Item;
use crate::problem::{Code, Problem};

pub fn build(target: &Target, creds: &Credentials, batch: &Batch) -> Request {
    let Item::AgentSetting(setting) = &batch.rows[0].item else {
        unreachable!("aicc serves only agent settings")
    };
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
    match s {
        400 => return failed(batch, Code::HttpError, s, format!("AICC answered 400 (bad request: check the values){}", body_excerpt(response))),
        500 => return failed(batch, Code::VendorError, s, format!("AICC answered 500 (business failure: check the values, e.g. at most 5 numbers of 15 digits){}", body_excerpt(response))),
        200 => {}
        _ => return failed(batch, Code::HttpError, s, format!("HTTP {s}{}", body_excerpt(response))),
    }
    let Ok(body) = serde_json::from_slice::<Value>(response.body) else {
        return unreadable(batch, response, super::not_json(response.body));
    };
    let desc = super::vendor_text(body.get("returnDesc"));
    match number_or_string(body.get("returnCode")).as_deref() {
        Some("0") => Verdict::Rows(vec![RowResult::Succeeded {
            remote_id: number_or_string(body.get("id")),
            warning: None,
        }]),
        Some(code) if batch.rows[0].resend && says_exists(&desc) => {
            let _ = code;
            Verdict::Rows(vec![RowResult::Succeeded {
                remote_id: None,
                warning: Some(super::arctos::existed_before(&desc)),
            }])
        }
        Some(code) => Verdict::Rows(vec![RowResult::Failed {
            problem: Problem::new(
                Code::VendorRejected,
                "",
                format!("AICC returnCode {code}: {desc}"),
            ),
            http_status: Some(200),
        }]),
        None => unreadable(batch, response, "no returnCode"),
    }
}
