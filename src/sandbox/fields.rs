//! Reading typed fields out of a JSON request body. Every error message starts with the
//! field's name, because that is how the vendors tell a caller what to fix.

use serde_json::{Map, Value};

pub(super) type Object = Map<String, Value>;

/// Parses a request body that must be a JSON object.
pub(super) fn object(body: &[u8]) -> Result<Object, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("request body must be a JSON object".to_owned()),
        Err(e) => Err(format!("request body is not valid JSON: {e}")),
    }
}

/// A `null` is treated like a missing key: callers that leave optional fields out and
/// callers that send them as `null` get the same answer.
fn get<'a>(obj: &'a Object, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

pub(super) fn opt_str<'a>(obj: &'a Object, name: &str) -> Result<Option<&'a str>, String> {
    match get(obj, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{name} must be a string")),
    }
}

/// A required string; an empty one counts as missing.
pub(super) fn req_str<'a>(obj: &'a Object, name: &str) -> Result<&'a str, String> {
    match opt_str(obj, name)? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(format!("{name} is required")),
    }
}

/// A required string that must be one of `allowed`.
pub(super) fn req_choice<'a>(
    obj: &'a Object,
    name: &str,
    allowed: &[&str],
) -> Result<&'a str, String> {
    let value = req_str(obj, name)?;
    if allowed.contains(&value) {
        Ok(value)
    } else {
        Err(format!("{name} must be one of {}", allowed.join(", ")))
    }
}

pub(super) fn req_bool(obj: &Object, name: &str) -> Result<bool, String> {
    match get(obj, name) {
        None => Err(format!("{name} is required")),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("{name} must be a boolean")),
    }
}

pub(super) fn opt_int(obj: &Object, name: &str) -> Result<Option<i64>, String> {
    match get(obj, name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("{name} must be an integer")),
    }
}

pub(super) fn req_int(obj: &Object, name: &str) -> Result<i64, String> {
    opt_int(obj, name)?.ok_or_else(|| format!("{name} is required"))
}

/// A code that the vendor documents as a string but shows as a number in its example
/// (arctos `branch_code`, `business_code`): both forms are accepted.
pub(super) fn opt_code(obj: &Object, name: &str) -> Result<Option<String>, String> {
    match get(obj, name) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        Some(_) => Err(format!("{name} must be a string or an integer")),
    }
}

pub(super) fn req_code(obj: &Object, name: &str) -> Result<String, String> {
    opt_code(obj, name)?.ok_or_else(|| format!("{name} is required"))
}

/// An optional array of strings.
pub(super) fn opt_str_list<'a>(obj: &'a Object, name: &str) -> Result<Vec<&'a str>, String> {
    match get(obj, name) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| format!("{name} must be an array of strings")),
        Some(_) => Err(format!("{name} must be an array of strings")),
    }
}

/// An array that must be present and non-empty.
pub(super) fn req_array<'a>(obj: &'a Object, name: &str) -> Result<&'a [Value], String> {
    match get(obj, name) {
        None => Err(format!("{name} is required")),
        Some(Value::Array(items)) if items.is_empty() => Err(format!("{name} must not be empty")),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(format!("{name} must be an array")),
    }
}

pub(super) fn is_digits(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn null_is_absent_and_empty_string_is_missing() {
        let o = obj(json!({"a": null, "b": "", "c": "x"}));
        assert_eq!(opt_str(&o, "a"), Ok(None));
        assert_eq!(req_str(&o, "b"), Err("b is required".to_owned()));
        assert_eq!(req_str(&o, "c"), Ok("x"));
    }

    #[test]
    fn wrong_types_name_the_field() {
        let o = obj(json!({"n": "15", "b": "true", "l": ["1", 2], "c": 1.5}));
        assert_eq!(req_int(&o, "n"), Err("n must be an integer".to_owned()));
        assert_eq!(req_bool(&o, "b"), Err("b must be a boolean".to_owned()));
        assert_eq!(
            opt_str_list(&o, "l"),
            Err("l must be an array of strings".to_owned())
        );
        assert_eq!(
            req_code(&o, "c"),
            Err("c must be a string or an integer".to_owned())
        );
    }

    #[test]
    fn codes_accept_strings_and_integers() {
        let o = obj(json!({"s": "85", "n": 943}));
        assert_eq!(req_code(&o, "s"), Ok("85".to_owned()));
        assert_eq!(req_code(&o, "n"), Ok("943".to_owned()));
    }

    #[test]
    fn choice_lists_the_allowed_values() {
        let o = obj(json!({"t": "other"}));
        assert_eq!(
            req_choice(&o, "t", &["normal", "custom"]),
            Err("t must be one of normal, custom".to_owned())
        );
    }
}
