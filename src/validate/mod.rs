//! The rule library: plain values, time, lists, e-mail and phones. Each rule lives here
//! once; the kinds say which rule applies to which field. The rules read a row through
//! [`Cells`], so they know nothing of kinds, headers or columns. Nothing here does I/O.

pub mod phone;

use chrono::{DateTime, NaiveDateTime, TimeZone};

use crate::problem::{Code, Problem, Warning};

/// A row as the rules read it, field by field (`F` is a kind's field type).
pub trait Cells<F> {
    /// The field's cell, trimmed; `None` when the column is absent or the cell empty.
    fn cell(&self, field: F) -> Option<&str>;
    /// What problems blame and messages say for the field: the column as the manifest's
    /// header names it (`手机`), so that a person finds it in their sheet.
    fn name(&self, field: F) -> &str;
}

/// Collects every problem of one row while its fields are read, so a row with several
/// problems reports them all.
pub struct Checker<'r, F> {
    row: &'r dyn Cells<F>,
    problems: Vec<Problem>,
    warnings: Vec<Warning>,
}

/// Whether an empty cell is a problem.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Required,
    Optional,
}

impl<'r, F: Copy> Checker<'r, F> {
    pub fn new(row: &'r dyn Cells<F>) -> Self {
        Checker {
            row,
            problems: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub fn finish(self) -> (Vec<Problem>, Vec<Warning>) {
        (self.problems, self.warnings)
    }

    /// The field as problems and messages name it (see [`Cells::name`]).
    pub fn name(&self, field: F) -> &'r str {
        self.row.name(field)
    }

    pub fn problem(&mut self, field: F, code: Code, message: impl Into<String>) {
        let name = self.name(field);
        self.problems.push(Problem::new(code, name, message));
    }

    pub fn push_problems(&mut self, problems: impl IntoIterator<Item = Problem>) {
        self.problems.extend(problems);
    }

    pub fn push_warnings(&mut self, warnings: impl IntoIterator<Item = Warning>) {
        self.warnings.extend(warnings);
    }

    /// The raw cell, trimmed, or `None` when empty.
    pub fn cell(&self, field: F) -> Option<&'r str> {
        self.row.cell(field)
    }

    /// Text as given; a required empty cell is a problem, and so is a control character
    /// (a NUL left by a broken export would be sent, and can cut a key short at the
    /// vendor); tabs and line breaks are text.
    pub fn text(&mut self, field: F, need: Need) -> Option<String> {
        self.checked_text(field, need).map(str::to_string)
    }

    /// `text` without its copy, for the rules that only read the cell.
    fn checked_text(&mut self, field: F, need: Need) -> Option<&'r str> {
        match self.cell(field) {
            Some(v) => {
                let control = v
                    .chars()
                    .find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'));
                if let Some(c) = control {
                    let name = self.name(field);
                    self.problem(
                        field,
                        Code::InvalidCharacters,
                        format!(
                            "{name} contains the invisible control character U+{:04X}, which cannot be sent: remove it (broken exports leave them)",
                            u32::from(c)
                        ),
                    );
                    return None;
                }
                // A JSON manifest's object value arrives as its JSON text: sent, it would
                // be a name or an id nobody wrote.
                if v.starts_with('{') && serde_json::from_str::<serde_json::Map<_, _>>(v).is_ok() {
                    let name = self.name(field);
                    self.problem(
                        field,
                        Code::NestedValue,
                        format!(
                            "{name} holds a JSON object, not a value: give the value itself (text, a number or true/false)"
                        ),
                    );
                    return None;
                }
                Some(v)
            }
            None => {
                if need == Need::Required {
                    self.required(field);
                }
                None
            }
        }
    }

    /// An identifier (a task number, an id card number): text, unless a spreadsheet
    /// showed it in scientific notation (`2.02402221235E+14`, as Excel shows a number of
    /// 12 digits or more in a General column). Its digits are lost then, and two ids
    /// would become one: sent, it would name the wrong record.
    pub fn id(&mut self, field: F, need: Need) -> Option<String> {
        let v = self.checked_text(field, need)?;
        // The exponent's sign as Excel writes it: a code like `12E45` may be meant.
        let signed = v
            .split_once(['e', 'E'])
            .is_some_and(|(_, exponent)| exponent.starts_with(['+', '-']));
        if signed && is_scientific(v) {
            let name = self.name(field);
            self.problem(
                field,
                Code::ScientificNotation,
                format!(
                    "{name} {v:?}: a spreadsheet shows this number in scientific notation, \
                     which loses digits; format the column as Text (or with the number format \
                     0, so that every digit shows), check the values, and save it again"
                ),
            );
            return None;
        }
        Some(v.to_string())
    }

    pub fn required(&mut self, field: F) {
        let name = self.name(field);
        self.problem(
            field,
            Code::Required,
            format!("{name} is required; fill it in"),
        );
    }

    /// A whole number, optionally within a range.
    pub fn integer(&mut self, field: F, need: Need, range: Option<(i64, i64)>) -> Option<i64> {
        let raw = self.checked_text(field, need)?;
        match parse_integer(raw) {
            Some(n) => match range {
                Some((lo, hi)) if n < lo || n > hi => {
                    let name = self.name(field);
                    self.problem(
                        field,
                        Code::OutOfRange,
                        format!("{name} must be between {lo} and {hi}, got {raw:?}"),
                    );
                    None
                }
                _ => Some(n),
            },
            None => {
                let name = self.name(field);
                self.problem(
                    field,
                    Code::InvalidInteger,
                    format!("{name} must be a whole number, got {raw:?}"),
                );
                None
            }
        }
    }

    /// `true/false/1/0/yes/no/y/n`, any case.
    pub fn boolean(&mut self, field: F, need: Need) -> Option<bool> {
        let raw = self.checked_text(field, need)?;
        match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "y" => Some(true),
            "false" | "0" | "no" | "n" => Some(false),
            _ => {
                let name = self.name(field);
                self.problem(
                    field,
                    Code::InvalidBoolean,
                    format!("{name} must be true or false (also 1/0, yes/no, y/n), got {raw:?}"),
                );
                None
            }
        }
    }

    /// One of a fixed set of values, matched ignoring case; returns the canonical one.
    pub fn choice(
        &mut self,
        field: F,
        need: Need,
        options: &[&'static str],
    ) -> Option<&'static str> {
        let raw = self.checked_text(field, need)?;
        if let Some(found) = options.iter().find(|o| o.eq_ignore_ascii_case(raw)) {
            return Some(found);
        }
        let name = self.name(field);
        self.problem(
            field,
            Code::InvalidChoice,
            format!("{name} must be one of {}, got {raw:?}", options.join(", ")),
        );
        None
    }

    /// A point in time, as Unix seconds. Accepts Unix seconds, RFC 3339, or
    /// `YYYY-MM-DD HH:MM[:SS]` in the configured time zone.
    pub fn time(&mut self, field: F, need: Need, tz: Option<chrono_tz::Tz>) -> Option<i64> {
        let raw = self.checked_text(field, need)?;
        match parse_time(raw, tz) {
            Ok(t) => Some(t),
            Err(why) => {
                let name = self.name(field);
                self.problem(field, why.code(), format!("{name} {raw:?}: {why}"));
                None
            }
        }
    }

    /// A syntactically valid e-mail address.
    pub fn email(&mut self, field: F) -> Option<String> {
        let raw = self.text(field, Need::Optional)?;
        let bare = email_address::Options::default().without_display_text();
        if email_address::EmailAddress::parse_with_options(&raw, bare).is_ok() {
            return Some(raw);
        }
        let name = self.name(field);
        self.problem(
            field,
            Code::InvalidEmail,
            format!("{name} {raw:?} is not a valid e-mail address (expected name@example.com)"),
        );
        None
    }

    /// A list of numbers: a JSON array, or one cell separated by `,` `;` or spaces;
    /// at most `max_items`, each all digits and at most `max_digits` long.
    pub fn number_list(
        &mut self,
        field: F,
        max_items: usize,
        max_digits: usize,
    ) -> Option<Vec<String>> {
        let raw = self.text(field, Need::Optional)?;
        let name = self.name(field);
        let items = match split_list(&raw) {
            Ok(items) => items,
            Err(why) => {
                self.problem(field, Code::InvalidList, format!("{name} {raw:?}: {why}"));
                return None;
            }
        };
        if items.is_empty() {
            return None;
        }
        if items.iter().any(String::is_empty) {
            self.problem(
                field,
                Code::InvalidList,
                format!("{name} {raw:?}: has an empty item; remove it"),
            );
            return None;
        }
        let mut ok = true;
        if items.len() > max_items {
            ok = false;
            self.problem(
                field,
                Code::TooManyNumbers,
                format!("{name} has {} numbers; the vendor takes at most {max_items}: split them or drop some", items.len()),
            );
        }
        for item in &items {
            ok &= self.check_digits(field, item, max_digits);
        }
        ok.then_some(items)
    }

    /// A single number of at most `max_digits` digits.
    pub fn short_number(&mut self, field: F, max_digits: usize) -> Option<String> {
        let raw = self.text(field, Need::Optional)?;
        self.check_digits(field, &raw, max_digits).then_some(raw)
    }

    fn check_digits(&mut self, field: F, value: &str, max_digits: usize) -> bool {
        let name = self.name(field);
        if !value.bytes().all(|b| b.is_ascii_digit()) {
            self.problem(
                field,
                Code::InvalidCharacters,
                format!("{name}: {value:?} must be digits only"),
            );
            false
        } else if value.len() > max_digits {
            self.problem(
                field,
                Code::NumberTooLong,
                format!(
                    "{name}: {value:?} has {} digits; the vendor takes at most {max_digits}",
                    value.len()
                ),
            );
            false
        } else {
            true
        }
    }
}

/// `8.61810000003E+12`, `1.8E10`, `1,8e10`: what a spreadsheet shows for a long number in
/// a General-formatted column.
pub fn is_scientific(s: &str) -> bool {
    let Some((mantissa, exponent)) = s.split_once(['e', 'E']) else {
        return false;
    };
    let mantissa = mantissa.strip_prefix(['+', '-']).unwrap_or(mantissa);
    let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    let (whole, fraction) = mantissa.split_once(['.', ',']).unwrap_or((mantissa, ""));
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    !whole.is_empty()
        && all_digits(whole)
        && all_digits(fraction)
        && (1..=3).contains(&exponent.len())
        && all_digits(exponent)
}

/// Whole numbers as people and spreadsheets write them: `15`, `+15`, `15.0`.
pub fn parse_integer(raw: &str) -> Option<i64> {
    let s = raw.trim();
    let s = s.strip_suffix(".0").unwrap_or(s);
    s.parse::<i64>().ok()
}

/// Why a cell is not a point in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("too large")]
    TooLarge,
    #[error("looks like milliseconds; write Unix seconds (divide by 1000)")]
    Milliseconds,
    #[error("not a time; write Unix seconds, RFC 3339 (2024-02-22T14:00:00+08:00) or YYYY-MM-DD HH:MM[:SS]")]
    NotATime,
    #[error("has no UTC offset and no time zone is configured; add an offset (+08:00) or set defaults.timezone in ferry.toml")]
    NoTimeZone,
    /// A local time the zone skips or repeats.
    #[error("does not exist or is ambiguous in {0} (a daylight-saving change); add an explicit UTC offset")]
    Ambiguous(chrono_tz::Tz),
}

impl TimeError {
    /// The problem code a report gives it.
    pub fn code(self) -> Code {
        match self {
            TimeError::NoTimeZone => Code::TimezoneRequired,
            TimeError::TooLarge
            | TimeError::Milliseconds
            | TimeError::NotATime
            | TimeError::Ambiguous(_) => Code::InvalidTime,
        }
    }
}

/// Unix seconds from any accepted form.
pub fn parse_time(raw: &str, tz: Option<chrono_tz::Tz>) -> Result<i64, TimeError> {
    let s = raw.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = s.parse().map_err(|_| TimeError::TooLarge)?;
        // Thirteen digits is almost always milliseconds, which would land in year 50,000.
        if s.len() > 11 {
            return Err(TimeError::Milliseconds);
        }
        return Ok(secs);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp());
    }
    let local = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .ok_or(TimeError::NotATime)?;
    let tz = tz.ok_or(TimeError::NoTimeZone)?;
    tz.from_local_datetime(&local)
        .single()
        .map(|t| t.timestamp())
        .ok_or(TimeError::Ambiguous(tz))
}

/// Why a list cell cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("not a valid JSON array ({0})")]
    Json(#[from] serde_json::Error),
    /// An item of a JSON array that is neither a number nor a string, as written.
    #[error("list items must be numbers or strings, got {0}")]
    NotNumberOrString(String),
}

/// A list cell: a JSON array of strings or numbers, or values separated by `,`, `;`,
/// full-width `，`/`；` or white space.
pub fn split_list(raw: &str) -> Result<Vec<String>, ListError> {
    let s = raw.trim();
    if s.starts_with('[') {
        // Raw, so that a number item is checked as written (`1e3`, not `1000.0`).
        let values: Vec<&serde_json::value::RawValue> = serde_json::from_str(s)?;
        return values
            .into_iter()
            .map(|v| match v.get().as_bytes().first() {
                Some(b'"') => Ok(serde_json::from_str::<String>(v.get())?.trim().to_string()),
                Some(b'-' | b'0'..=b'9') => Ok(v.get().to_string()),
                _ => Err(ListError::NotNumberOrString(v.get().to_string())),
            })
            .collect();
    }
    Ok(
        s.split(|c: char| matches!(c, ',' | ';' | '，' | '；') || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_that_cannot_be_read_says_why_and_under_which_code() {
        let taipei = Some(chrono_tz::Asia::Taipei);
        let new_york = Some(chrono_tz::America::New_York);
        for (raw, tz, code, why) in [
            ("99999999999999999999", taipei, Code::InvalidTime, "too large"),
            ("1708581600000", taipei, Code::InvalidTime, "looks like milliseconds; write Unix seconds (divide by 1000)"),
            ("tomorrow", taipei, Code::InvalidTime, "not a time; write Unix seconds, RFC 3339 (2024-02-22T14:00:00+08:00) or YYYY-MM-DD HH:MM[:SS]"),
            ("2024-02-22 14:00", None, Code::TimezoneRequired, "has no UTC offset and no time zone is configured; add an offset (+08:00) or set defaults.timezone in ferry.toml"),
            ("2024-03-10 02:30", new_york, Code::InvalidTime, "does not exist or is ambiguous in America/New_York (a daylight-saving change); add an explicit UTC offset"),
        ] {
            let err = parse_time(raw, tz).expect_err(raw);
            assert_eq!((err.code(), err.to_string().as_str()), (code, why), "{raw}");
        }
        assert_eq!(parse_time("2024-02-22 14:00", taipei), Ok(1_708_581_600));
    }

    #[test]
    fn a_list_that_cannot_be_read_says_why() {
        let err = split_list("[1, true]").expect_err("a boolean item");
        assert_eq!(
            err.to_string(),
            "list items must be numbers or strings, got true"
        );
        let err = split_list("[1, 2").expect_err("not closed");
        assert!(
            err.to_string().starts_with("not a valid JSON array ("),
            "{err}"
        );
    }
}
