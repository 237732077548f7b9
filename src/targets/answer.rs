//! Reading a vendor's answer into its serde type, as tolerantly as a person reading it
//! would: vendors send numbers as strings (`"status": "1"`), nulls, wrong types and
//! fields nobody documented, and none of that may turn a created record into an error.
//!
//! So every field of an answer type is read with one of the readers below: each takes
//! whatever JSON the field holds and keeps what ferry can use (`None` or empty for the
//! rest); none of them fails. Only a body that is not JSON at all is unreadable.

use serde::de::{Deserialize, DeserializeOwned, Deserializer};
use serde_json::Value;

/// A JSON answer read into `T`. A JSON value that is not an object (an array, a string)
/// reads as an answer with every field absent, and a key written twice keeps its last
/// value instead of refusing the whole answer.
///
/// An object is read straight into `T` first: every field of an answer type takes any
/// JSON, so only a key written twice can fail there, and the answer is then read again
/// through a `Value`. (Going through a `Value` every time was a tenth of a calls run.)
pub fn parse<T: DeserializeOwned + Default>(body: &[u8]) -> serde_json::Result<T> {
    let object_first = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if object_first {
        if let Ok(answer) = serde_json::from_slice(body) {
            return Ok(answer);
        }
    }
    serde_json::from_slice(body).map(object)
}

/// `value` read into `T` when it is an object; `T`'s defaults otherwise.
fn object<T: DeserializeOwned + Default>(value: Value) -> T {
    match value {
        Value::Object(_) => T::deserialize(value).unwrap_or_default(),
        _ => T::default(),
    }
}

/// A field that vendors send as a number or a string (`"status": 1` or `" 1 "`), as
/// trimmed text; `None` for anything else.
pub fn number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// A field that counts only as a string (a login's code or token), as sent.
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        _ => None,
    })
}

/// A vendor's message (`msg`, `message`, `returnDesc`), cut by [`vendor_text`].
pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(vendor_text(Some(&Value::deserialize(d)?)))
}

/// A nested object read into `T`; `T`'s defaults when it is not an object.
pub fn nested<'de, D: Deserializer<'de>, T: DeserializeOwned + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(object(Value::deserialize(d)?))
}

/// Like [`nested`], but remembers that the field was there at all, even as `null`
/// (Quanshi's `data`: absent is unreadable, present but empty lists no records).
pub fn present<'de, D: Deserializer<'de>, T: DeserializeOwned + Default>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Ok(Some(object(Value::deserialize(d)?)))
}

/// A list of objects, each read into `T`; empty when the field is not a list.
pub fn list<'de, D: Deserializer<'de>, T: DeserializeOwned + Default>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items.into_iter().map(object).collect(),
        _ => Vec::new(),
    })
}

/// The most characters of a vendor's own message that ferry keeps: it is copied into
/// every row of a batch, so a 4 MiB `msg` must not become 100 × 4 MiB of reports.
const VENDOR_TEXT_CHARS: usize = 500;

/// A vendor's message field, cut to a length a report cell and a person can use; empty
/// when absent or not a string.
pub(crate) fn vendor_text(value: Option<&Value>) -> String {
    let text = value.and_then(Value::as_str).unwrap_or("");
    let mut chars = text.chars();
    let kept: String = chars.by_ref().take(VENDOR_TEXT_CHARS).collect();
    if chars.next().is_some() {
        format!("{kept}… (cut at {VENDOR_TEXT_CHARS} characters)")
    } else {
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// Review of issue 9: a 4 MiB `msg` was copied into every row of a batch.
    #[test]
    fn a_vendor_message_is_cut_to_a_length_a_report_can_hold() {
        let long = serde_json::json!("x".repeat(4 * 1024 * 1024));
        let cut = vendor_text(Some(&long));
        assert!(cut.starts_with(&"x".repeat(VENDOR_TEXT_CHARS)));
        assert!(
            cut.ends_with("… (cut at 500 characters)"),
            "{}",
            &cut[cut.len() - 40..]
        );
        assert_eq!(vendor_text(Some(&serde_json::json!("ok"))), "ok");
        assert_eq!(vendor_text(Some(&serde_json::json!(42))), "");
        assert_eq!(vendor_text(None), "");
    }

    #[derive(Deserialize, Default, Debug, PartialEq)]
    #[serde(default)]
    struct Probe {
        #[serde(deserialize_with = "number_or_string")]
        status: Option<String>,
        #[serde(deserialize_with = "text")]
        message: String,
        #[serde(deserialize_with = "nested")]
        info: Inner,
        #[serde(deserialize_with = "present")]
        data: Option<Inner>,
        #[serde(deserialize_with = "list")]
        items: Vec<Inner>,
    }

    #[derive(Deserialize, Default, Debug, PartialEq)]
    #[serde(default)]
    struct Inner {
        #[serde(deserialize_with = "string")]
        code: Option<String>,
    }

    fn probe(body: &str) -> Probe {
        parse(body.as_bytes()).expect("JSON")
    }

    #[test]
    fn odd_answers_read_as_absent_fields_never_as_errors() {
        let inner = |c: &str| Inner {
            code: Some(c.into()),
        };
        let table: &[(&str, Probe)] = &[
            ("[1, \"m\"]", Probe::default()),
            ("\"status\"", Probe::default()),
            ("null", Probe::default()),
            (
                r#"{"status": " 1 ", "message": 7, "info": [], "data": null, "items": {}}"#,
                Probe {
                    status: Some("1".into()),
                    data: Some(Inner::default()),
                    ..Probe::default()
                },
            ),
            (
                r#"{"status": 2.0, "message": "m", "info": {"code": 5}, "items": [{"code": "a"}, 3, null]}"#,
                Probe {
                    status: Some("2.0".into()),
                    message: "m".into(),
                    items: vec![inner("a"), Inner::default(), Inner::default()],
                    ..Probe::default()
                },
            ),
            (
                r#"  {"status": true, "status": 0, "info": {"code": " c "}, "data": {"code": "d"}}"#,
                Probe {
                    status: Some("0".into()),
                    info: inner(" c "),
                    data: Some(inner("d")),
                    ..Probe::default()
                },
            ),
        ];
        for (body, want) in table {
            assert_eq!(&probe(body), want, "{body}");
            // The straight read and the one through a `Value` agree.
            let through_value = serde_json::from_str(body).map(object::<Probe>);
            assert_eq!(&through_value.expect("JSON"), want, "{body}");
        }
        assert!(parse::<Probe>(b"<html>").is_err());
    }
}
