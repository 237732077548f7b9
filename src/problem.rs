//! What can be wrong with a row, said once: every problem and warning has a stable
//! snake_case code (reports, docs and scripts key on it), the field it blames and a
//! message that tells a person what to do.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Every per-row problem or warning ferry can report. The string form is the contract.
/// Serialised (in the state's record of a failure) by the same snake_case name
/// `as_str` gives; a test holds the two together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    // reading
    RaggedRow,
    InvalidUtf8,
    CellTooLong,
    UnclosedQuote,
    DuplicateField,
    RowTooLong,
    MergedCell,
    DuplicateCell,
    // plain values
    Required,
    NestedValue,
    InvalidInteger,
    InvalidBoolean,
    InvalidChoice,
    OutOfRange,
    InvalidTime,
    TimezoneRequired,
    InvalidEmail,
    InvalidList,
    TooManyNumbers,
    NumberTooLong,
    TaskRefRequired,
    DuplicateKey,
    // phones
    InvalidCharacters,
    ScientificNotation,
    DecimalNotation,
    LeadingZeroLost,
    LeadingPlusLost,
    InvalidCountryCode,
    CountryCodeRequired,
    CountryCodeMismatch,
    InvalidNumber,
    NotAMobile,
    NotALandline,
    MobileInLandlineColumn,
    LandlineInMobileColumn,
    ChannelConflict,
    ChannelMissing,
    AreaCodeRequired,
    AreaCodeNotAllowed,
    InvalidAreaCode,
    // warnings
    CountryPrefixDropped,
    AreaCodeZeroDropped,
    // later stages
    UnknownTask,
    VendorRejected,
    VendorError,
    HttpError,
    Transport,
    OutcomeUnknown,
    AuthRefused,
    ExistedBefore,
    VendorWarning,
    NotAttempted,
    AlreadySucceeded,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        use Code::*;
        match self {
            RaggedRow => "ragged_row",
            InvalidUtf8 => "invalid_utf8",
            CellTooLong => "cell_too_long",
            UnclosedQuote => "unclosed_quote",
            DuplicateField => "duplicate_field",
            RowTooLong => "row_too_long",
            MergedCell => "merged_cell",
            DuplicateCell => "duplicate_cell",
            Required => "required",
            NestedValue => "nested_value",
            InvalidInteger => "invalid_integer",
            InvalidBoolean => "invalid_boolean",
            InvalidChoice => "invalid_choice",
            OutOfRange => "out_of_range",
            InvalidTime => "invalid_time",
            TimezoneRequired => "timezone_required",
            InvalidEmail => "invalid_email",
            InvalidList => "invalid_list",
            TooManyNumbers => "too_many_numbers",
            NumberTooLong => "number_too_long",
            TaskRefRequired => "task_ref_required",
            DuplicateKey => "duplicate_key",
            InvalidCharacters => "invalid_characters",
            ScientificNotation => "scientific_notation",
            DecimalNotation => "decimal_notation",
            LeadingZeroLost => "leading_zero_lost",
            LeadingPlusLost => "leading_plus_lost",
            InvalidCountryCode => "invalid_country_code",
            CountryCodeRequired => "country_code_required",
            CountryCodeMismatch => "country_code_mismatch",
            InvalidNumber => "invalid_number",
            NotAMobile => "not_a_mobile",
            NotALandline => "not_a_landline",
            MobileInLandlineColumn => "mobile_in_landline_column",
            LandlineInMobileColumn => "landline_in_mobile_column",
            ChannelConflict => "channel_conflict",
            ChannelMissing => "channel_missing",
            AreaCodeRequired => "area_code_required",
            AreaCodeNotAllowed => "area_code_not_allowed",
            InvalidAreaCode => "invalid_area_code",
            CountryPrefixDropped => "country_prefix_dropped",
            AreaCodeZeroDropped => "area_code_zero_dropped",
            UnknownTask => "unknown_task",
            VendorRejected => "vendor_rejected",
            VendorError => "vendor_error",
            HttpError => "http_error",
            Transport => "transport",
            OutcomeUnknown => "outcome_unknown",
            AuthRefused => "auth_refused",
            ExistedBefore => "existed_before",
            VendorWarning => "vendor_warning",
            NotAttempted => "not_attempted",
            AlreadySucceeded => "already_succeeded",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing wrong with (or worth noting about) a row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub code: Code,
    /// The column as the manifest's header writes it (`手机`; the field's own name,
    /// `mobile`, only when the manifest has no such column), or empty for whole-row
    /// problems.
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(code: Code, field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            code,
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Problems in one line, `code: message; code: message` (warnings in reports, a row's
/// last error in the state).
pub fn summary(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.code, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A per-row note that does not stop the row (`country_prefix_dropped`, ...).
pub type Warning = Problem;

#[cfg(test)]
mod tests {
    use super::*;

    /// The state keeps failures by serde's name of each code; reports print `as_str`.
    /// Every code the README's table documents must be both.
    #[test]
    fn every_documented_code_is_stored_by_the_name_reports_give_it() {
        let readme = include_str!("../README.md");
        let table = readme
            .split("| code | meaning |")
            .find(|t| t.contains("| `required` |"))
            .expect("the README's table of codes");
        let mut names = Vec::new();
        for line in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
            let first_cell = line.split('|').nth(1).unwrap_or_default();
            names.extend(first_cell.split('`').skip(1).step_by(2));
        }
        assert!(names.len() > 40, "{names:?}");
        for name in names {
            let code: Code = serde_json::from_str(&format!("\"{name}\""))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(code.as_str(), name);
        }
    }
}
