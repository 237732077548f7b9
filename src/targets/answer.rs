//! Reading a vendor's answer into its serde type, as tolerantly as a person reading it
//! would: vendors send numbers as strings (`"status": "1"`), nulls, wrong types and
//! fields nobody documented, and none of that may turn a created record into an error.
//!
//! So every field of an answer type is read with one of the readers below: each takes
//! whatever JSON the field holds and keeps what ferry can use (`None` or empty for the
//! rest); none of them fails. Only a body that is not JSON at all is unreadable.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, DeserializeOwned, Deserializer, IgnoredAny, MapAccess};
use serde::de::{SeqAccess, Visitor};
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
        Value::Number(n) => Some(whole(&n)),
        _ => None,
    })
}

/// A number as text, a whole number written as a float (`1.0`, `200.0`, `0.0`, as some
/// serializers write every number) without its fraction: read as `"1.0"`, arctos's
/// status 1 was "unknown", and AICC's return code 0 a final failure that the next run
/// would send again.
fn whole(n: &serde_json::Number) -> String {
    match n.as_f64() {
        Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => (f as i64).to_string(),
        _ => n.to_string(),
    }
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
pub fn nested<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Lenient::deserialize(d)?.0)
}

/// Like [`nested`], but remembers that the field was there at all, even as `null`
/// (Quanshi's `data`: absent is unreadable, present but empty lists no records).
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Ok(Some(Lenient::deserialize(d)?.0))
}

/// A list of objects, each read into `T`; empty when the field is not a list.
pub fn list<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    d.deserialize_any(ListOf(PhantomData))
}

// The two readers below read nested objects and lists as they stream by, not through
// a `Value` tree (a Quanshi answer lists every number of its request: the tree was 5%
// of a calls run). A key written twice inside fails the straight read of the whole
// answer, which `parse` then reads through a `Value` (the last one kept), as before.

/// An object read into `T`; any other JSON value, `T`'s defaults.
struct Lenient<T>(T);

impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ObjectOr(PhantomData))
    }
}

struct ObjectOr<T>(PhantomData<T>);

/// Any value but the one wanted reads as the default, and is stepped over whole.
macro_rules! others_as_default {
    ($default:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok($default)
        }
    };
}

impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for ObjectOr<T> {
    type Value = Lenient<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Lenient)
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Lenient(T::default()))
    }

    others_as_default!(Lenient(T::default()));
}

/// A list read item by item ([`Lenient`]); any other JSON value, an empty list.
struct ListOf<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for ListOf<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(Lenient(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(items)
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Vec::new())
    }

    others_as_default!(Vec::new());
}

/// The most characters of a vendor's own message that ferry keeps: it is copied into
/// every row of a batch, so a 4 MiB `msg` must not become 100 × 4 MiB of reports.
const VENDOR_TEXT_CHARS: usize = 500;

/// A vendor's message field, cut to a length a report cell and a person can use; empty
/// when absent or not a string.
pub(crate) fn vendor_text(value: Option<&Value>) -> String {
    let text = value.and_then(Value::as_str).unwrap_or("");
    // Control characters become spaces: an escape sequence from a vendor would
    // otherwise reach the terminal that prints the message, and clear or retitle it.
    let mut chars = text.chars().map(crate::scrub::printable);
    let kept: String = chars.by_ref().take(VENDOR_TEXT_CHARS).collect();
    if chars.next().is_some() {
        // Scrubbing comes later, and sees only what is kept: the last characters could
        // be the start of a secret cut off here, too short to be known as one.
        let kept: String = kept
            .chars()
            .take(VENDOR_TEXT_CHARS - (crate::scrub::FRAGMENT - 1))
            .collect();
        format!("{kept}… (cut at {VENDOR_TEXT_CHARS} characters)")
    } else {
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// A hostile vendor's escape sequence would reach the terminal that prints the
    /// message; and a secret that starts just before the cut would show its first
    /// characters, too few for the scrubber to know them.
    #[test]
    fn a_vendor_message_is_printable_and_never_ends_in_a_cut_secret() {
        let hostile = serde_json::json!("\u{1b}[2J\u{1b}]0;owned\u{7}refused");
        assert_eq!(vendor_text(Some(&hostile)), " [2J ]0;owned refused");
        let text = format!("{}ArcTok-9f8e7d6c", "m".repeat(VENDOR_TEXT_CHARS - 7));
        let cut = vendor_text(Some(&serde_json::json!(text)));
        assert!(!cut.contains("ArcT"), "{cut}");
        let scrubbed = crate::scrub::Scrubber::new().excerpt(b"\x1b[31mred\x1b[0m");
        assert_eq!(scrubbed, ": [31mred [0m");
    }

    #[test]
    fn a_whole_number_written_as_a_float_reads_as_the_whole_number() {
        #[derive(Deserialize, Default)]
        struct Code {
            #[serde(default, deserialize_with = "number_or_string")]
            code: Option<String>,
        }
        for (body, want) in [
            (r#"{"code": 1.0}"#, "1"),
            (r#"{"code": 200.0}"#, "200"),
            (r#"{"code": 0.0}"#, "0"),
            (r#"{"code": -0.0}"#, "0"),
            (r#"{"code": 1.5}"#, "1.5"),
            (r#"{"code": 1}"#, "1"),
            (r#"{"code": " 1 "}"#, "1"),
        ] {
            let read: Code = parse(body.as_bytes()).unwrap();
            assert_eq!(read.code.as_deref(), Some(want), "{body}");
        }
    }

    /// Review of issue 9: a 4 MiB `msg` was copied into every row of a batch.
    #[test]
    fn a_vendor_message_is_cut_to_a_length_a_report_can_hold() {
        let long = serde_json::json!("x".repeat(4 * 1024 * 1024));
        let cut = vendor_text(Some(&long));
        assert!(cut.starts_with(&"x".repeat(VENDOR_TEXT_CHARS - 7)));
        assert!(!cut.starts_with(&"x".repeat(VENDOR_TEXT_CHARS - 6)));
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
                    status: Some("2".into()),
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
            (
                // Stepped over whole: lists and objects where an object or a list was
                // wanted, at any depth; a key twice inside a list's object.
                r#"{"items": [{"code": "a", "code": "b"}, [1, [2]], {"x": {"y": [1]}}], "data": [1, {"a": 2}], "info": "s", "message": {"m": [3]}}"#,
                Probe {
                    items: vec![inner("b"), Inner::default(), Inner::default()],
                    data: Some(Inner::default()),
                    ..Probe::default()
                },
            ),
            (
                r#"{"items": {"code": "a", "more": [1, {"b": 2}]}, "status": "3"}"#,
                Probe {
                    status: Some("3".into()),
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

    /// Without a key written twice, an object's answer is read straight, never through
    /// the slower `Value` tree, whatever odd values its fields hold.
    #[test]
    fn odd_values_are_read_straight_without_a_value_tree() {
        for body in [
            r#"{"items": [{"code": "a"}, [1, [2]], {"x": {"y": [1]}}, null, 4], "data": [1, {"a": 2}]}"#,
            r#"{"items": {"code": "a", "more": [1, {"b": 2}]}, "info": [{"code": "c"}], "data": "x"}"#,
            r#"{"info": {"code": {"deep": [true]}}, "data": {"code": "d", "extra": {}}, "items": []}"#,
        ] {
            let straight: Probe = serde_json::from_str(body).expect(body);
            let through_value = serde_json::from_str(body).map(object::<Probe>);
            assert_eq!(straight, through_value.expect("JSON"), "{body}");
        }
    }
}
