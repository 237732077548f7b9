//! Quanshi event call create. Quanshi always answers HTTP 200 and puts its status in the
//! body's `code`; within a good request each record is accepted (`success_data`) or
//! refused (`fail_data`, with no reason) on its own.

use std::collections::{HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Local};
use serde_json::{json, Value};

use super::fields::{self, Object};
use super::{Reply, Req, State};
use crate::kinds::Kind;
use crate::validate::phone;

#[derive(Debug)]
pub(super) struct Store {
    /// Per `eventId`, the numbers already in it (see [`number_key`]).
    events: HashMap<i64, HashSet<String>>,
    /// The middle of every id, fixed for the process, as in a MongoDB ObjectId.
    id_process: u64,
    id_counter: u32,
    last_request_ms: i64,
}

impl Default for Store {
    fn default() -> Store {
        let random = uuid::Uuid::new_v4().as_u128();
        Store {
            events: HashMap::new(),
            id_process: (random as u64) & 0xff_ffff_ffff,
            id_counter: (random >> 64) as u32 & 0xff_ffff,
            last_request_ms: 0,
        }
    }
}

impl Store {
    /// 24 hex digits, laid out like the ObjectIds in the vendor's examples: seconds,
    /// a per-process value, a counter.
    fn next_id(&mut self, now_ms: i64) -> String {
        self.id_counter = (self.id_counter + 1) & 0xff_ffff;
        format!(
            "{:08x}{:010x}{:06x}",
            (now_ms / 1000) as u32,
            self.id_process,
            self.id_counter
        )
    }

    /// `<server ip>_<yyyyMMdd>_<HHmmss>_<millis>`, as the vendor's examples; the millis
    /// are kept strictly increasing so that every request id is new.
    fn next_request_id(&mut self, host: &str, now_ms: i64) -> String {
        let ms = now_ms.max(self.last_request_ms + 1);
        self.last_request_ms = ms;
        let local = DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .with_timezone(&Local);
        format!("{host}_{}_{ms}", local.format("%Y%m%d_%H%M%S"))
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `POST /eventopenapi/event/call/create`.
pub(super) fn create_calls(req: &Req<'_>, state: &mut State) -> Reply {
    let now = now_ms();
    let store = &mut state.quanshi;
    let request_id = store.next_request_id(req.host, now);
    let error = |code: u16, msg: &str| {
        Reply::ok(json!({
            "timeStamp": now,
            "code": code,
            "msg": msg,
            "data": null,
            "requestId": request_id,
        }))
    };
    let body = match req.body {
        Ok(body) => body,
        Err(message) => return error(400, message),
    };
    if fields::opt_str(body, "token") != Ok(Some(req.secrets.quanshi_token.as_str())) {
        return error(401, "invalid token");
    }
    let (event_id, call_list) = match read(body) {
        Ok(read) => read,
        Err(message) => return error(400, &message),
    };

    let mut success_data = Vec::new();
    let mut fail_data = Vec::new();
    let mut duplicates = 0;
    for record in &call_list {
        let echoed = echo(store.next_id(now), record);
        let numbers = store.events.entry(event_id).or_default();
        match number_key(record) {
            Some(key) if !numbers.contains(&key) => {
                numbers.insert(key);
                success_data.push(echoed);
            }
            Some(_) => {
                duplicates += 1;
                fail_data.push(echoed);
            }
            None => fail_data.push(echoed),
        }
    }
    state.stats.created(Kind::Calls, success_data.len() as u64);
    state.stats.duplicates(Kind::Calls, duplicates);
    Reply::ok(json!({
        "timeStamp": now,
        "code": 200,
        "msg": "Successfully to create the event call!",
        "data": {
            "total_count": call_list.len(),
            "success_count": success_data.len(),
            "fail_count": fail_data.len(),
            "requestId": null,
            "fail_data": fail_data,
            "success_data": success_data,
        },
        "requestId": request_id,
    }))
}

/// Checks the request as a whole; returns the event and its records.
fn read(body: &Object) -> Result<(i64, Vec<&Object>), String> {
    let event_id = fields::req_int(body, "eventId")?;
    if event_id <= 0 {
        return Err("eventId must be a positive integer".to_owned());
    }
    if let Some(minutes) = fields::opt_int(body, "beforeMinutes")? {
        if !(0..=60).contains(&minutes) {
            return Err("beforeMinutes must be between 0 and 60".to_owned());
        }
    }
    let records = fields::req_array(body, "callList")?
        .iter()
        .enumerate()
        .map(|(i, record)| {
            record
                .as_object()
                .ok_or_else(|| format!("callList[{i}] must be an object"))
        })
        .collect::<Result<_, _>>()?;
    Ok((event_id, records))
}

/// A record as the vendor echoes it: its own fields as given, `""` for absent ones.
fn echo(id: String, record: &Object) -> Value {
    let field = |name: &str| {
        record
            .get(name)
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or_else(|| json!(""))
    };
    json!({
        "id": id,
        "areaCode": field("areaCode"),
        "company": field("company"),
        "countryCode": field("countryCode"),
        "mobile": field("mobile"),
        "name": field("name"),
        "phone": field("phone"),
    })
}

/// The number a valid record reaches, as its E.164 form: the same number has one key in
/// an event however it was spelled. `None` when the record is not valid: a name, a
/// country code of 1–3 digits, and exactly one of a mobile or a landline, in the forms the
/// vendor documents — the national significant number (no `+`, country code or trunk
/// `0`), and for mainland China landlines an area code without its `0` plus the local
/// number — of a number that is valid for that country.
fn number_key(record: &Object) -> Option<String> {
    let text = |name: &str| match record.get(name) {
        None | Some(Value::Null) => Some(""),
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => None,
    };
    let (name, _company) = (text("name")?, text("company")?);
    let country = text("countryCode")?;
    let (mobile, area, phone) = (text("mobile")?, text("areaCode")?, text("phone")?);
    if name.is_empty() || !fields::is_digits(country, 1, 3) || country.starts_with('0') {
        return None;
    }
    let cc: u16 = country.parse().ok()?;
    let national = match (mobile.is_empty(), phone.is_empty(), area.is_empty()) {
        (false, true, true) => mobile.to_owned(),
        (true, false, true) if cc != CHINA => phone.to_owned(),
        (true, false, false) if cc == CHINA && !area.starts_with('0') => format!("{area}{phone}"),
        _ => return None,
    };
    let number = phone::read_wire(cc, &national)?;
    (number.national_significant == national).then_some(number.e164)
}

/// Mainland China: the only country whose landlines take an `areaCode`.
const CHINA: u16 = 86;

#[cfg(test)]
mod tests {
    use super::*;

    fn key(record: Value) -> Option<String> {
        number_key(record.as_object().expect("an object"))
    }

    #[test]
    fn valid_numbers() {
        let mobile = json!({"name": "a", "countryCode": "86", "mobile": "18100000030"});
        assert_eq!(key(mobile).as_deref(), Some("+8618100000030"));
        let landline = json!({"name": "a", "countryCode": "86", "areaCode": "10", "phone": "58512042", "mobile": ""});
        assert_eq!(key(landline).as_deref(), Some("+861058512042"));
        let taiwan = json!({"name": "a", "countryCode": "886", "mobile": "912345678"});
        assert_eq!(key(taiwan).as_deref(), Some("+886912345678"));
        let taipei = json!({"name": "a", "countryCode": "886", "phone": "223456789"});
        assert_eq!(key(taipei).as_deref(), Some("+886223456789"));
    }

    #[test]
    fn invalid_numbers() {
        for record in [
            json!({"countryCode": "86", "mobile": "18100000030"}),
            json!({"name": "a", "countryCode": "+86", "mobile": "18100000030"}),
            json!({"name": "a", "countryCode": "8601", "mobile": "18100000030"}),
            json!({"name": "a", "countryCode": "86", "mobile": "1234"}),
            json!({"name": "a", "countryCode": "86", "mobile": "1234567890123456"}),
            json!({"name": "a", "countryCode": "86", "mobile": "181-0000-0030"}),
            json!({"name": "a", "countryCode": "86", "mobile": "18100000030", "phone": "58512042"}),
            json!({"name": "a", "countryCode": "86"}),
            json!({"name": "a", "countryCode": "86", "areaCode": "10", "mobile": "18100000030"}),
            json!({"name": "a", "countryCode": "86", "areaCode": "010", "phone": "58512042"}),
            json!({"name": "a", "countryCode": 86, "mobile": "18100000030"}),
            // not the documented form: a trunk 0, the country code, a mainland landline
            // without its area code, an area code outside mainland China, or invalid
            json!({"name": "a", "countryCode": "886", "mobile": "0912345678"}),
            json!({"name": "a", "countryCode": "886", "mobile": "886912345678"}),
            json!({"name": "a", "countryCode": "86", "phone": "01058512042"}),
            json!({"name": "a", "countryCode": "886", "areaCode": "2", "phone": "23456789"}),
            json!({"name": "a", "countryCode": "86", "mobile": "10000000000"}),
        ] {
            assert_eq!(key(record.clone()), None, "{record}");
        }
    }

    #[test]
    fn request_ids_are_new_every_time() {
        let mut store = Store::default();
        let a = store.next_request_id("127.0.0.1", 1_646_816_677_951);
        let b = store.next_request_id("127.0.0.1", 1_646_816_677_951);
        assert!(a.starts_with("127.0.0.1_2022030"), "{a}");
        assert!(a.ends_with("_1646816677951"), "{a}");
        assert!(b.ends_with("_1646816677952"), "{b}");
    }

    #[test]
    fn ids_are_24_hex_digits() {
        let mut store = Store::default();
        let (a, b) = (
            store.next_id(1_646_816_678_200),
            store.next_id(1_646_816_678_200),
        );
        assert!(a.starts_with("62286da6"), "{a}");
        assert_eq!(a.len(), 24);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
