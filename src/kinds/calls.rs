//! calls → Quanshi event call create (`POST /eventopenapi/event/call/create`). Rows are
//! grouped by (`eventId`, `beforeMinutes`) into one request's `callList`.

use serde::Serialize;

use super::{Ctx, Item};
use crate::problem::Code;
use crate::validate::phone::{self, Expect};
use crate::validate::{Checker, Need};

fields! {
    EventId = "eventId",
    BeforeMinutes = "beforeMinutes",
    Name = "name",
    Company = "company",
    CountryCode = "countryCode",
    Mobile = "mobile",
    AreaCode = "areaCode",
    Phone = "phone",
}

pub const REQUIRED_COLUMNS: &[&[Field]] = &[
    &[Field::EventId],
    &[Field::Name],
    &[Field::CountryCode],
    &[Field::Mobile, Field::Phone],
];

/// The vendor's default when `beforeMinutes` is not given.
const DEFAULT_BEFORE_MINUTES: i64 = 30;

#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub event_id: i64,
    pub before_minutes: i64,
    pub entry: CallEntry,
}

/// One element of `callList`. Empty fields are left out of the body.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallEntry {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    pub country_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

impl CallEntry {
    /// How the vendor's `success_data`/`fail_data` records are matched back to rows.
    pub fn number_key(&self) -> String {
        number_key(
            &self.country_code,
            self.mobile.as_deref(),
            self.area_code.as_deref(),
            self.phone.as_deref(),
        )
    }
}

/// `countryCode|mobile` or `countryCode|areaCode|phone`: how a record of the vendor's
/// answer is matched back to its row, by the wire form ferry sent. (The record key is the
/// number's E.164 form; one wire form belongs to one E.164 number.)
pub fn number_key(
    cc: &str,
    mobile: Option<&str>,
    area: Option<&str>,
    phone: Option<&str>,
) -> String {
    match mobile.filter(|m| !m.is_empty()) {
        Some(m) => format!("{cc}|{m}"),
        None => format!("{cc}|{}|{}", area.unwrap_or(""), phone.unwrap_or("")),
    }
}

/// The key that ferry 0.1.0 recorded for a call, `eventId|countryCode|mobile` or
/// `eventId|countryCode|areaCode|phone` with the digits as the cell wrote them, turned
/// into today's `eventId|+E164`. `None` when it is not such a key or not a valid number.
pub fn key_from_v0(old: &str) -> Option<String> {
    let parts: Vec<&str> = old.split('|').collect();
    let event: i64 = parts.first()?.parse().ok()?;
    let cc: u16 = parts.get(1)?.parse().ok()?;
    let e164 = match parts[2..] {
        [mobile] => phone::phone(mobile, cc, Expect::Any, "").ok()?.number.e164,
        [area, local] => phone::landline(Some(area), local, cc, "", "").ok()?.e164,
        _ => return None,
    };
    Some(format!("{event}|{e164}"))
}

pub(super) fn validate(c: &mut Checker<Field>, ctx: &Ctx) -> (Option<String>, Option<Item>) {
    let event_id = event_id(c, ctx);
    let before_minutes = c
        .integer(Field::BeforeMinutes, Need::Optional, Some((0, 60)))
        .or(c
            .cell(Field::BeforeMinutes)
            .is_none()
            .then_some(DEFAULT_BEFORE_MINUTES));
    let name = c.text(Field::Name, Need::Required);
    let company = c.text(Field::Company, Need::Optional);
    let cc = match c.cell(Field::CountryCode) {
        Some(raw) => phone::country_code(raw, c.name(Field::CountryCode))
            .map_err(|p| c.push_problems([p]))
            .ok(),
        None => {
            c.required(Field::CountryCode);
            None
        }
    };
    let number = number(c, cc);

    let country_code = cc.map(|cc| cc.to_string());
    // One number, one key, whichever column and spelling it came in.
    let key = match (event_id, &number.e164) {
        (Some(e), Some(number)) => Some(format!("{e}|{number}")),
        _ => None,
    };
    let item = (|| {
        Some(Item::Call(Call {
            event_id: event_id?,
            before_minutes: before_minutes?,
            entry: CallEntry {
                name: name?,
                company,
                country_code: country_code?,
                mobile: number.mobile,
                area_code: number.area_code,
                phone: number.local,
            },
        }))
    })();
    (key, item)
}

/// The row's `eventId`, or `--event-id` for a row without one.
fn event_id(c: &mut Checker<Field>, ctx: &Ctx) -> Option<i64> {
    match c.cell(Field::EventId) {
        Some(_) => c.integer(Field::EventId, Need::Required, Some((1, i64::MAX))),
        None if ctx.event_id.is_some() => ctx.event_id,
        None => {
            let name = c.name(Field::EventId);
            c.problem(
                Field::EventId,
                Code::Required,
                format!(
                    "{name} is required: fill the column or pass --event-id for the whole file"
                ),
            );
            None
        }
    }
}

/// The number a row gives the vendor to call, in the wire's fields: a mobile, or a
/// landline (with an area code in mainland China). All `None` when the row has none.
#[derive(Default)]
struct Dialled {
    mobile: Option<String>,
    area_code: Option<String>,
    local: Option<String>,
    e164: Option<String>,
}

/// The row's one number: a mobile or a landline, never both and never neither. Without a
/// valid country code `cc` the number is not checked (the code's problem is reported).
fn number(c: &mut Checker<Field>, cc: Option<u16>) -> Dialled {
    let (mobile, phone, area) = (
        c.name(Field::Mobile),
        c.name(Field::Phone),
        c.name(Field::AreaCode),
    );
    match (c.cell(Field::Mobile), c.cell(Field::Phone)) {
        (Some(_), Some(_)) => c.problem(
            Field::Phone,
            Code::ChannelConflict,
            format!("give either a mobile ({mobile}) or a landline ({phone} with {area}), not both: the vendor calls one number per row"),
        ),
        (None, None) => c.problem(
            Field::Mobile,
            Code::ChannelMissing,
            format!("a mobile ({mobile}) or a landline ({phone}, with {area} in mainland China) is required"),
        ),
        (Some(raw), None) => {
            if c.cell(Field::AreaCode).is_some() {
                c.problem(
                    Field::AreaCode,
                    Code::AreaCodeNotAllowed,
                    format!(
                        "{area} is only for landlines (with {phone}); leave it empty for a mobile"
                    ),
                );
            }
            match cc.map(|cc| phone::phone(raw, cc, Expect::Mobile, mobile)) {
                Some(Ok(p)) => {
                    c.push_warnings(p.warnings);
                    return Dialled {
                        mobile: Some(p.number.national_significant),
                        e164: Some(p.number.e164),
                        ..Dialled::default()
                    };
                }
                Some(Err(problems)) => c.push_problems(problems),
                None => {}
            }
        }
        (None, Some(raw)) => {
            let area_cell = c.cell(Field::AreaCode);
            match cc.map(|cc| phone::landline(area_cell, raw, cc, area, phone)) {
                Some(Ok(l)) => {
                    c.push_warnings(l.warnings);
                    return Dialled {
                        area_code: l.area_code,
                        local: Some(l.local),
                        e164: Some(l.e164),
                        mobile: None,
                    };
                }
                Some(Err(problems)) => c.push_problems(problems),
                None => {}
            }
        }
    }
    Dialled::default()
}
