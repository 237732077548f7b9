//! agent-settings → Huawei AICC `agentsettings/create`.

use serde::Serialize;

use super::Item;
use crate::validate::{Checker, Need};

fields! {
    UserId = "userId",
    CallType = "callType",
    CallerPresent = "callerPresent",
    CallNumber = "callNumber",
    CallNumberDefault = "callNumberDefault",
    CallerPresentDefault = "callerPresentDefault",
}

pub const REQUIRED_COLUMNS: &[&[Field]] = &[&[Field::UserId]];

/// The vendor's limits: at most five numbers in a list, fifteen digits a number.
const MAX_NUMBERS: usize = 5;
const MAX_DIGITS: usize = 15;

/// The request body, field for field.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentSetting {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_type: Option<&'static str>,
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller_present: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_number: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_number_default: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller_present_default: Option<String>,
}

pub(super) fn validate(c: &mut Checker<Field>) -> (Option<String>, Option<Item>) {
    let user_id = c.id(Field::UserId, Need::Required);
    let call_type = c.choice(Field::CallType, Need::Optional, &["0", "1", "2"]);
    let caller_present = c.number_list(Field::CallerPresent, MAX_NUMBERS, MAX_DIGITS);
    let call_number = c.number_list(Field::CallNumber, MAX_NUMBERS, MAX_DIGITS);
    let call_number_default = c.short_number(Field::CallNumberDefault, MAX_DIGITS);
    let caller_present_default = c.short_number(Field::CallerPresentDefault, MAX_DIGITS);
    let item = user_id.clone().map(|user_id| {
        Item::AgentSetting(AgentSetting {
            call_type,
            user_id,
            caller_present,
            call_number,
            call_number_default,
            caller_present_default,
        })
    });
    (user_id, item)
}
