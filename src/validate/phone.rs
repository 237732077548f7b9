//! Phone numbers and country calling codes: the one place that knows how a phone cell is
//! cleaned, which spreadsheet damage it can show, and what libphonenumber has to say about
//! it. The kinds call [`country_code`], [`phone`] and [`landline`]; the sandbox calls
//! [`read_wire`]; nothing else in ferry talks to the phone library.
//!
//! A phone number is an identity, not a string: every spelling of one number (its
//! national significant number, its national format with a trunk `0`, `+cc`, `00cc`, a
//! country's own international prefix, full-width digits) gives the same [`Number`], whose
//! E.164 form is the record key and whose vendor forms are what is sent.
//!
//! Two rules shape the code. Only ASCII digits with at most one leading `+` ever reach
//! rlibphonenumber: its parser panics on some `;phone-context=` input, and anything that is
//! not a plain number is a mistake a person should see anyway. And a valid number costs one
//! parse: the "put back a `0` or `+`" guesses that explain spreadsheet damage are only tried
//! once the number has failed as given.

use std::fmt::Write as _;

use rlibphonenumber::enums::Region;
use rlibphonenumber::{
    CountryCodeSource, PhoneNumber, PhoneNumberFormat, PhoneNumberType, PHONE_NUMBER_UTIL as LIB,
};

use crate::problem::{Code, Problem};

/// Which kind of number a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// MOBILE, or FIXED_LINE_OR_MOBILE where a country's numbers don't tell them apart.
    Mobile,
    /// FIXED_LINE, or FIXED_LINE_OR_MOBILE.
    Landline,
    /// Any valid number (toll-free, VoIP, ... included).
    Any,
}

/// A valid phone number: its identity and the forms the vendors want, however the cell
/// wrote it.
#[derive(Clone, Debug, PartialEq)]
pub struct Number {
    /// `+886912345678`: the number's identity, used for record keys.
    pub e164: String,
    /// `912345678`: E.164 without the calling code, no trunk prefix (Quanshi's form).
    pub national_significant: String,
    /// libphonenumber's name for the number's type: `MOBILE`, `FIXED_LINE`, ...
    pub kind: &'static str,
    parsed: PhoneNumber,
}

impl Number {
    /// `0912345678`: the digits of the national format, trunk prefix included where the
    /// country's national format has one (arctos's form). Formatting costs more than the
    /// parse, so it is done only for the kinds that send this form.
    pub fn national(&self) -> String {
        let national = national_digits(&self.parsed);
        // Some national formats add more than a trunk prefix (Argentina's mobile `15`):
        // those are dialling instructions, not the number, so the plain number is sent.
        if national.ends_with(self.national_significant.as_str()) {
            national
        } else {
            self.national_significant.clone()
        }
    }
}

/// A checked phone cell.
#[derive(Clone, Debug, PartialEq)]
pub struct Phone {
    pub number: Number,
    pub warnings: Vec<Problem>,
}

/// A checked Quanshi landline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Landline {
    /// Mainland China only, without its leading `0` (`10` for Beijing).
    pub area_code: Option<String>,
    /// The local number: no country code, no area code (in mainland China), no extension.
    pub local: String,
    /// The whole number's identity, `+861058512042`.
    pub e164: String,
    pub warnings: Vec<Problem>,
}

/// Mainland China: the only country whose landlines the vendor takes with an `areaCode`.
const CHINA: u16 = 86;
/// NANPA's national prefix `1` is also its calling code, so `1 201 555 0123` is a normal
/// national way to write a number, not a calling code that lost its `+`.
const NANPA: u16 = 1;
/// E.164 numbers have at most 15 digits; this leaves room for an international prefix and
/// a trunk `0` while keeping absurd cells away from the parser.
const MAX_DIGITS: usize = 20;
/// How much of a cell a message quotes.
const QUOTE_CHARS: usize = 40;

/// `"886"`, `"+886"`, `"00886"`, `"(886)"`, `"+ 886"`, full-width digits → `886`, if it is
/// an assigned ITU-T E.164 calling code (one the phone library has numbering data for,
/// non-geographic codes such as 800 or 882 included).
pub fn country_code(raw: &str, field: &str) -> Result<u16, Problem> {
    let shown = raw.trim();
    if shown.starts_with(['-', '\u{2212}']) {
        return Err(Problem::new(
            Code::InvalidCountryCode,
            field,
            format!(
                "{} is not a country calling code: a calling code has no minus sign; write it as digits, like 86 for mainland China or 886 for Taiwan",
                quote(shown)
            ),
        ));
    }
    if shown.is_empty() {
        return Err(Problem::new(
            Code::CountryCodeRequired,
            field,
            "the country calling code is empty: write it as digits, like 86 for mainland China or 886 for Taiwan",
        ));
    }
    let invalid = |why: String| Problem::new(Code::InvalidCountryCode, field, why);
    let cleaned = match clean(shown) {
        Ok(c) => c,
        Err(Dirt::BadChar(ch)) => {
            return Err(invalid(format!(
                "{} is not a country calling code: it contains {}; write the calling code as digits, like 86 for mainland China or 1 for the USA",
                quote(shown),
                describe(ch)
            )))
        }
        Err(_) => {
            return Err(invalid(format!(
                "{} is not a country calling code: write it as digits, like 86 for mainland China or 886 for Taiwan",
                quote(shown)
            )))
        }
    };
    let digits = if cleaned.plus {
        cleaned.digits.as_str()
    } else {
        cleaned.digits.strip_prefix("00").unwrap_or(&cleaned.digits)
    };
    if let Some(code) = whole_calling_code(digits) {
        return Ok(code);
    }
    let q = quote(shown);
    let why = match leading_calling_code(digits) {
        Some(code) if digits.len() > 3 => format!(
            "{q} is not an assigned ITU calling code, but starts with the calling code {code}: write only {code} here and the rest of the number in the phone column"
        ),
        _ => format!(
            "{q} is not an assigned ITU calling code: write the country's calling code without a leading 0, like 86 for mainland China, 852 for Hong Kong or 44 for the UK"
        ),
    };
    Err(invalid(why))
}

/// One phone cell, checked against the row's calling code `cc`.
pub fn phone(raw: &str, cc: u16, expect: Expect, field: &str) -> Result<Phone, Vec<Problem>> {
    let shown = raw.trim();
    if shown.is_empty() {
        return Err(vec![Problem::new(
            Code::Required,
            field,
            "the phone number is empty: write the number",
        )]);
    }
    let cleaned = clean(shown).map_err(|d| vec![phone_dirt(d, shown, field)])?;
    let Some(region) = region_of(cc) else {
        return Err(vec![unknown_row_code(cc, field)]);
    };
    let cell = Cell {
        shown,
        field,
        cc,
        expect,
    };
    if cleaned.plus {
        return cell.international(&cleaned.digits, "+");
    }
    // `00` is the international prefix of most of the world (China included): followed by
    // the row's code it counts as a `+`. Other prefixes (Taiwan's `002`, the USA's `011`)
    // and `00` before another code are left to the library, which knows each country's.
    if let Some(rest) = cleaned.digits.strip_prefix("00") {
        if rest.starts_with(cc.to_string().as_str()) {
            return cell.international(rest, "00");
        }
    }
    cell.national(&cleaned.digits, region)
}

/// The valid number that bare `digits` are under calling code `cc`, as a vendor would
/// read a request: the sandbox checks with it that what ferry sends is canonical.
pub fn read_wire(cc: u16, digits: &str) -> Option<Number> {
    if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let number = LIB.parse(format!("+{cc}{digits}"), None).ok()?;
    let ty = number.get_type();
    (number.country_code == i32::from(cc) && ty != PhoneNumberType::Unknown)
        .then(|| canonical(&number, ty))
}

/// A Quanshi landline: `areaCode` (mainland China only) plus the local number. For other
/// countries the phone is checked as a landline of that country and must come without an
/// area code.
pub fn landline(
    area_raw: Option<&str>,
    phone_raw: &str,
    cc: u16,
    area_field: &str,
    phone_field: &str,
) -> Result<Landline, Vec<Problem>> {
    let area_shown = area_raw.map(str::trim).filter(|s| !s.is_empty());
    if cc == CHINA {
        return china_landline(area_shown, phone_raw.trim(), area_field, phone_field);
    }
    let checked = phone(phone_raw, cc, Expect::Landline, phone_field);
    let Some(area) = area_shown else {
        return checked.map(|p| Landline {
            area_code: None,
            local: p.number.national_significant,
            e164: p.number.e164,
            warnings: p.warnings,
        });
    };
    let mut message = format!(
        "area code {} given for a +{cc} number, but the vendor takes area codes for mainland China (+86) landlines only: leave {area_field} empty and write the whole national number in {phone_field}",
        quote(area)
    );
    let mut problems = Vec::new();
    match checked {
        Ok(_) => {}
        // The area code may just be the front of the number: then say what the whole is.
        Err(more) => match phone(
            &format!("{area} {}", phone_raw.trim()),
            cc,
            Expect::Landline,
            phone_field,
        ) {
            Ok(whole) => {
                let _ = write!(message, ", here {}", whole.number.national());
            }
            Err(_) => problems = more,
        },
    }
    problems.insert(
        0,
        Problem::new(Code::AreaCodeNotAllowed, area_field, message),
    );
    Err(problems)
}

// ---------------------------------------------------------------------------------------
// Cleaning a cell

/// A phone-like cell reduced to ASCII digits and whether a `+` led them.
struct Cleaned {
    plus: bool,
    digits: String,
}

/// Why a cell could not be cleaned; each caller turns it into its own problem.
enum Dirt {
    Scientific,
    Decimal,
    BadChar(char),
    /// `-912345676`: a negative number (a number cell, or a sign typed by mistake), not a
    /// dash between digits.
    Negative,
    MisplacedPlus,
    NoDigits,
    TooLong(usize),
}

/// Folds full-width digits and `+` to ASCII, drops spaces and `-` `.` `(` `)` (and their
/// full-width forms), and refuses everything else.
fn clean(shown: &str) -> Result<Cleaned, Dirt> {
    // Sized up front: collected from a filter, the string would grow a step at a time.
    let mut folded = String::with_capacity(shown.len());
    folded.extend(shown.chars().filter(|c| !c.is_whitespace()).map(fold));
    // Before the character check: the `E` and `.` would otherwise hide what happened.
    if super::is_scientific(&folded) {
        return Err(Dirt::Scientific);
    }
    // `664123456.0` is a float's rendering, not a dotted number: read as digits it is
    // another, often valid, number (`6641234560`), so the wrong person would be called.
    if is_decimal(&folded) {
        return Err(Dirt::Decimal);
    }
    let mut plus = false;
    let mut digits = String::with_capacity(folded.len());
    for ch in folded.chars() {
        match ch {
            '0'..='9' => digits.push(ch),
            '+' if plus || !digits.is_empty() => return Err(Dirt::MisplacedPlus),
            '+' => plus = true,
            '-' if digits.is_empty() && !plus && is_negative(&folded) => {
                return Err(Dirt::Negative)
            }
            '-' | '.' | '(' | ')' => {}
            other => return Err(Dirt::BadChar(other)),
        }
    }
    if digits.is_empty() {
        return Err(Dirt::NoDigits);
    }
    if digits.len() > MAX_DIGITS {
        return Err(Dirt::TooLong(digits.len()));
    }
    Ok(Cleaned { plus, digits })
}

fn fold(ch: char) -> char {
    match ch {
        // Hyphens, dashes and the minus sign, as word processors write them.
        '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
        '\u{FF10}'..='\u{FF19}' => char::from(b'0' + (ch as u32 - 0xFF10) as u8),
        '\u{FF0B}' => '+',
        '\u{FF0D}' => '-',
        '\u{FF0E}' => '.',
        '\u{FF08}' => '(',
        '\u{FF09}' => ')',
        other => other,
    }
}

/// `-912345676`: a minus sign right before the first digit, as a negative number shows.
fn is_negative(s: &str) -> bool {
    s.strip_prefix('-')
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

/// `664123456.0`, `664123456.00`, `664123456,0`: digits (after an optional `+`) with one
/// decimal separator and one or two zeros after it, as a spreadsheet shows a number cell
/// formatted `0.0`, or a float column is exported. A dotted number (`0912.345.678`) has
/// more than one dot or other digits after it.
fn is_decimal(s: &str) -> bool {
    let s = s.strip_prefix('+').unwrap_or(s);
    let Some((whole, fraction)) = s.split_once(['.', ',']) else {
        return false;
    };
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && (1..=2).contains(&fraction.len())
        && fraction.bytes().all(|b| b == b'0')
}

fn phone_dirt(dirt: Dirt, shown: &str, field: &str) -> Problem {
    match dirt {
        Dirt::Scientific => Problem::new(
            Code::ScientificNotation,
            field,
            format!(
                "{}: a spreadsheet turned this number into scientific notation and may have lost digits; format the column as Text and re-enter it",
                quote(shown)
            ),
        ),
        Dirt::Decimal => Problem::new(
            Code::DecimalNotation,
            field,
            format!(
                "{}: a spreadsheet turned this number into a decimal (the .0 is not part of it); format the column as Text and re-enter the number",
                quote(shown)
            ),
        ),
        Dirt::Negative => Problem::new(
            Code::InvalidCharacters,
            field,
            format!(
                "{} is a negative number, not a phone number: remove the leading - (a number cell's sign, or a typo) and check the digits",
                quote(shown)
            ),
        ),
        Dirt::BadChar(ch) => Problem::new(
            Code::InvalidCharacters,
            field,
            format!(
                "{} contains {}, which cannot be part of a phone number: write only digits, with an optional leading + and spaces, dashes, dots or brackets",
                quote(shown),
                describe(ch)
            ),
        ),
        Dirt::MisplacedPlus => Problem::new(
            Code::InvalidCharacters,
            field,
            format!(
                "{} has a + that is not at the start: a + may only come once, before the country code; write one number per cell",
                quote(shown)
            ),
        ),
        Dirt::NoDigits => Problem::new(
            Code::InvalidNumber,
            field,
            format!("{} has no digits: write the phone number", quote(shown)),
        ),
        Dirt::TooLong(n) => Problem::new(
            Code::InvalidNumber,
            field,
            format!(
                "{} has {n} digits, too many for one phone number: write a single number (at most 15 digits after the country code), without an extension",
                quote(shown)
            ),
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Checking a number

/// The cell being checked, so that every message can quote it.
struct Cell<'a> {
    shown: &'a str,
    field: &'a str,
    cc: u16,
    expect: Expect,
}

impl Cell<'_> {
    /// A number written with its own calling code (`rest` follows the `+` or `00`).
    fn international(&self, rest: &str, prefix: &str) -> Result<Phone, Vec<Problem>> {
        let code = self.cc.to_string();
        if !rest.starts_with(code.as_str()) {
            return Err(vec![match leading_calling_code(rest) {
                Some(other) => self.mismatch(other),
                None => self.problem(
                    Code::InvalidNumber,
                    format!(
                        "{}: no country calling code follows the {prefix}; write the number with the row's code +{} or without any",
                        quote(self.shown),
                        self.cc
                    ),
                ),
            }]);
        }
        // Calling codes are prefix-free, so `rest` really belongs to the row's code.
        let number = LIB
            .parse(format!("+{rest}"), None)
            .map_err(|_| vec![self.invalid()])?;
        let number = self.accept(&number, number.get_type())?;
        let written = match prefix {
            "+" => String::new(),
            other => format!(" (written {other}{})", self.cc),
        };
        let warning = self.own_code_dropped(&written, &number);
        Ok(Phone {
            number,
            warnings: vec![warning],
        })
    }

    /// A number written without a calling code: the row's code applies. The national
    /// significant number (`912345678`) and the national format with its trunk prefix
    /// (`0912345678`) are the same number; libphonenumber strips the prefix.
    fn national(&self, digits: &str, region: Region) -> Result<Phone, Vec<Problem>> {
        let Some((number, source)) = parse_national(digits, self.cc, region) else {
            return Err(vec![self.explain_invalid(digits, region)]);
        };
        if source == CountryCodeSource::FromNumberWithIdd
            && number.country_code != i32::from(self.cc)
        {
            return Err(vec![self.mismatch(number.country_code)]);
        }
        // The type costs as much as the parse: it is found once.
        let ty = number.get_type();
        if ty == PhoneNumberType::Unknown {
            return Err(vec![self.explain_invalid(digits, region)]);
        }
        match source {
            // The library quietly reads `8618100000030` as +86 181…; ferry does not guess.
            CountryCodeSource::FromNumberWithoutPlusSign if self.cc != NANPA => {
                let mut p = self.plus_lost(digits);
                let _ = write!(
                    p.message,
                    ", or leave the country code out: {}",
                    national_digits(&number)
                );
                Err(vec![p])
            }
            // A country's own international prefix, like Taiwan's `002`.
            CountryCodeSource::FromNumberWithIdd => {
                let number = self.accept(&number, ty)?;
                let warning = self.own_code_dropped(" (after the international prefix)", &number);
                Ok(Phone {
                    number,
                    warnings: vec![warning],
                })
            }
            _ => Ok(Phone {
                number: self.accept(&number, ty)?,
                warnings: Vec::new(),
            }),
        }
    }

    /// A parsed number of the row's code, of type `ty`, that must be valid and of the
    /// column's type.
    fn accept(&self, number: &PhoneNumber, ty: PhoneNumberType) -> Result<Number, Vec<Problem>> {
        if ty == PhoneNumberType::Unknown {
            return Err(vec![self.invalid()]);
        }
        self.check_type(ty).map_err(|p| vec![p])?;
        Ok(canonical(number, ty))
    }

    fn own_code_dropped(&self, written: &str, number: &Number) -> Problem {
        self.problem(
            Code::CountryPrefixDropped,
            format!(
                "{}: its own country code +{}{written} is the row's, so it was read as {} (nothing to do)",
                quote(self.shown),
                self.cc,
                number.e164
            ),
        )
    }

    /// The number is invalid as given: say whether a spreadsheet's lost `0` or `+`
    /// explains it, else that it is invalid.
    fn explain_invalid(&self, digits: &str, region: Region) -> Problem {
        // A `0` in front of a `0` would make an international prefix, and calling codes
        // never start with `0`: neither guess applies to such digits.
        if let Some(rest) = digits.strip_prefix("00") {
            return match leading_calling_code(rest) {
                Some(other) => self.mismatch(other),
                None => self.invalid(),
            };
        }
        if digits.starts_with('0') {
            return self.invalid();
        }
        if region != Region::World {
            let with_zero = format!("0{digits}");
            if let Ok(n) = LIB.parse_and_keep_raw_input(&with_zero, Some(region)) {
                // Only a `0` that is part of the number itself (Italy's fixed lines) can
                // be lost this way: a trunk `0` is never needed, so it is never missing.
                if n.country_code_source() == CountryCodeSource::FromDefaultCountry
                    && n.get_national_significant_number().starts_with('0')
                    && n.get_type() != PhoneNumberType::Unknown
                {
                    return self.zero_lost(&with_zero);
                }
            }
        }
        if let Ok(n) = LIB.parse(format!("+{digits}"), None) {
            if n.get_type() != PhoneNumberType::Unknown {
                let mut p = self.plus_lost(digits);
                if n.country_code != i32::from(self.cc) {
                    let _ = write!(
                        p.message,
                        "; note that +{} is not the row's country code {}: fix whichever is wrong",
                        n.country_code, self.cc
                    );
                }
                return p;
            }
        }
        self.invalid()
    }

    fn check_type(&self, ty: PhoneNumberType) -> Result<(), Problem> {
        use PhoneNumberType::{FixedLine, FixedLineOrMobile, Mobile};
        // Quoted only for a message: every valid number passes through here.
        let q = || quote(self.shown);
        match (self.expect, ty) {
            (Expect::Any, _)
            | (Expect::Mobile, Mobile | FixedLineOrMobile)
            | (Expect::Landline, FixedLine | FixedLineOrMobile) => Ok(()),
            (Expect::Mobile, FixedLine) => Err(self.problem(
                Code::LandlineInMobileColumn,
                format!("{} is a landline number, not a mobile: move it to the landline column", q()),
            )),
            (Expect::Landline, Mobile) => Err(self.problem(
                Code::MobileInLandlineColumn,
                format!("{} is a mobile number, not a landline: move it to the mobile column", q()),
            )),
            (Expect::Mobile, other) => Err(self.problem(
                Code::NotAMobile,
                format!(
                    "{} is {}, not a mobile: the vendor can only call a mobile here; give the person's mobile number",
                    q(),
                    type_name(other)
                ),
            )),
            (Expect::Landline, other) => Err(self.problem(
                Code::NotALandline,
                format!(
                    "{} is {}, not a landline: give the person's landline (or their mobile, in the mobile column)",
                    q(),
                    type_name(other)
                ),
            )),
        }
    }

    fn problem(&self, code: Code, message: String) -> Problem {
        Problem::new(code, self.field, message)
    }

    fn invalid(&self) -> Problem {
        self.problem(
            Code::InvalidNumber,
            format!(
                "{} is not a valid phone number for country code +{}: check the digits and the country code",
                quote(self.shown),
                self.cc
            ),
        )
    }

    fn mismatch(&self, own: i32) -> Problem {
        self.problem(
            Code::CountryCodeMismatch,
            format!(
                "{} carries the country code +{own}, but the row's country code is {}: correct whichever is wrong",
                quote(self.shown),
                self.cc
            ),
        )
    }

    fn zero_lost(&self, with_zero: &str) -> Problem {
        self.problem(
            Code::LeadingZeroLost,
            format!(
                "{} lacks the leading 0 of {with_zero}: a spreadsheet probably dropped it; format the column as Text and write {with_zero}",
                quote(self.shown)
            ),
        )
    }

    fn plus_lost(&self, digits: &str) -> Problem {
        self.problem(
            Code::LeadingPlusLost,
            format!(
                "{} starts with a country code but has no +: a spreadsheet probably dropped it; format the column as Text and write +{digits}",
                quote(self.shown)
            ),
        )
    }
}

/// Parses digits written without a calling code as a number of `cc`; also tells where the
/// library found a calling code (a number may still carry one, without `+`).
fn parse_national(
    digits: &str,
    cc: u16,
    region: Region,
) -> Option<(PhoneNumber, CountryCodeSource)> {
    if region == Region::World {
        // Non-geographic codes (800, 882, ...) have no region to parse in.
        let n = LIB.parse(format!("+{cc}{digits}"), None).ok()?;
        return Some((n, CountryCodeSource::FromDefaultCountry));
    }
    let n = LIB.parse_and_keep_raw_input(digits, Some(region)).ok()?;
    let source = n.country_code_source();
    Some((n, source))
}

/// The identity and wire forms of a valid number.
fn canonical(number: &PhoneNumber, ty: PhoneNumberType) -> Number {
    Number {
        e164: number.format_as(PhoneNumberFormat::E164).into_owned(),
        national_significant: number.get_national_significant_number(),
        kind: kind_name(ty),
        parsed: number.clone(),
    }
}

fn national_digits(number: &PhoneNumber) -> String {
    number
        .format_as(PhoneNumberFormat::National)
        .chars()
        .filter(char::is_ascii_digit)
        .collect()
}

fn region_of(cc: u16) -> Option<Region> {
    LIB.get_region_for_country_code(i32::from(cc))
}

fn is_calling_code(code: u16) -> bool {
    region_of(code).is_some()
}

/// `digits` as a whole, when it is an assigned calling code.
fn whole_calling_code(digits: &str) -> Option<u16> {
    if digits.is_empty() || digits.len() > 3 || digits.starts_with('0') {
        return None;
    }
    digits.parse().ok().filter(|&code| is_calling_code(code))
}

/// The calling code `digits` start with. E.164 codes are prefix-free: at most one fits.
fn leading_calling_code(digits: &str) -> Option<i32> {
    (1..=3.min(digits.len()))
        .find_map(|len| whole_calling_code(&digits[..len]))
        .map(i32::from)
}

fn unknown_row_code(cc: u16, field: &str) -> Problem {
    Problem::new(
        Code::InvalidCountryCode,
        field,
        format!("the row's country code {cc} is not an assigned ITU calling code: correct the country code"),
    )
}

/// libphonenumber's own name for a type, as its other ports print it.
fn kind_name(ty: PhoneNumberType) -> &'static str {
    match ty {
        PhoneNumberType::FixedLine => "FIXED_LINE",
        PhoneNumberType::Mobile => "MOBILE",
        PhoneNumberType::FixedLineOrMobile => "FIXED_LINE_OR_MOBILE",
        PhoneNumberType::TollFree => "TOLL_FREE",
        PhoneNumberType::PremiumRate => "PREMIUM_RATE",
        PhoneNumberType::SharedCost => "SHARED_COST",
        PhoneNumberType::VoIP => "VOIP",
        PhoneNumberType::PersonalNumber => "PERSONAL_NUMBER",
        PhoneNumberType::Pager => "PAGER",
        PhoneNumberType::UAN => "UAN",
        PhoneNumberType::VoiceMail => "VOICEMAIL",
        _ => "UNKNOWN",
    }
}

fn type_name(ty: PhoneNumberType) -> &'static str {
    match ty {
        PhoneNumberType::FixedLine => "a landline number",
        PhoneNumberType::Mobile => "a mobile number",
        PhoneNumberType::FixedLineOrMobile => "a landline or mobile number",
        PhoneNumberType::TollFree => "a toll-free number",
        PhoneNumberType::PremiumRate => "a premium-rate number",
        PhoneNumberType::SharedCost => "a shared-cost number",
        PhoneNumberType::VoIP => "a VoIP number",
        PhoneNumberType::PersonalNumber => "a personal (forwarding) number",
        PhoneNumberType::Pager => "a pager number",
        PhoneNumberType::UAN => "a company (UAN) number",
        PhoneNumberType::VoiceMail => "a voicemail number",
        _ => "a number of unknown type",
    }
}

// ---------------------------------------------------------------------------------------
// Mainland China landlines

fn china_landline(
    area_shown: Option<&str>,
    phone_shown: &str,
    area_field: &str,
    phone_field: &str,
) -> Result<Landline, Vec<Problem>> {
    let cells = ChinaCells {
        area_shown,
        phone_shown,
        area_field,
        phone_field,
    };
    let (area, local, warnings) = cells.parts()?;
    cells.whole(area, local, warnings)
}

/// The two cells of a mainland China landline, so that every message can quote them.
struct ChinaCells<'a> {
    area_shown: Option<&'a str>,
    phone_shown: &'a str,
    area_field: &'a str,
    phone_field: &'a str,
}

impl ChinaCells<'_> {
    /// The area code (without its `0`) and the local number, each read on its own, with
    /// the warnings of doing so; or every problem of both cells.
    fn parts(&self) -> Result<(String, String, Vec<Problem>), Vec<Problem>> {
        let (area_field, phone_field) = (self.area_field, self.phone_field);
        let mut problems = Vec::new();
        let (local, local_problem) = match local_number(self.phone_shown, phone_field) {
            Ok(local) => (Some(local), None),
            Err(p) => (None, Some(p)),
        };
        let mut warnings = Vec::new();
        let area = match self.area_shown {
            None => {
                problems.push(missing_area(
                    local.as_deref(),
                    self.phone_shown,
                    area_field,
                    phone_field,
                ));
                None
            }
            Some(shown) => match area_code(shown, area_field) {
                Ok((area, dropped_zero)) => {
                    if dropped_zero {
                        warnings.push(Problem::new(
                            Code::AreaCodeZeroDropped,
                            area_field,
                            format!(
                                "area code {}: the leading 0 was dropped, the vendor wants {area} (nothing to do)",
                                quote(shown)
                            ),
                        ));
                    }
                    Some(area)
                }
                Err(p) => {
                    problems.push(p);
                    None
                }
            },
        };
        problems.extend(local_problem);
        match (area, local, problems.is_empty()) {
            (Some(area), Some(local), true) => Ok((area, local, warnings)),
            _ => Err(problems),
        }
    }

    /// The area code and local number together: a mainland landline, split where the
    /// numbering plan splits it.
    fn whole(
        &self,
        area: String,
        local: String,
        warnings: Vec<Problem>,
    ) -> Result<Landline, Vec<Problem>> {
        let (area_field, phone_field) = (self.area_field, self.phone_field);
        let shown = format!("0{area} {local}");
        let number = LIB
            .parse_and_keep_raw_input(format!("0{area}{local}"), Some(Region::CN))
            .ok()
            .filter(|n| n.country_code_source() == CountryCodeSource::FromDefaultCountry);
        let ty = number
            .as_ref()
            .map_or(PhoneNumberType::Unknown, PhoneNumber::get_type);
        match ty {
            PhoneNumberType::FixedLine | PhoneNumberType::FixedLineOrMobile => {
                let split = number.as_ref().map_or(0, PhoneNumber::get_length_of_geographical_area_code);
                if let Some(p) = self.split_elsewhere(&area, &local, split) {
                    return Err(vec![p]);
                }
                // E.164 of a mainland landline: +86, the area code without its `0`, the local number.
                let e164 = format!("+{CHINA}{area}{local}");
                Ok(Landline { area_code: Some(area), local, e164, warnings })
            }
            PhoneNumberType::Mobile => Err(vec![Problem::new(
                Code::MobileInLandlineColumn,
                phone_field,
                format!(
                    "{} is a mobile number, not a landline: write it in the mobile column and leave {area_field} empty",
                    quote(&shown)
                ),
            )]),
            PhoneNumberType::Unknown => {
                Err(vec![invalid_china_landline(&area, &local, self.phone_shown, area_field, phone_field)])
            }
            other => Err(vec![Problem::new(
                Code::NotALandline,
                phone_field,
                format!(
                    "{} is {}, not a landline: give the person's landline (or their mobile, in the mobile column)",
                    quote(&shown),
                    type_name(other)
                ),
            )]),
        }
    }

    /// The problem when the numbering plan puts the end of the area code `split` digits
    /// in, not where the cells do (`0` for a number without a geographic area code).
    fn split_elsewhere(&self, area: &str, local: &str, split: usize) -> Option<Problem> {
        if split == 0 || split == area.len() {
            return None;
        }
        let nsn = format!("{area}{local}");
        let (a, l) = (nsn.get(..split)?, nsn.get(split..)?);
        let (area_field, phone_field) = (self.area_field, self.phone_field);
        Some(Problem::new(
            Code::InvalidAreaCode,
            area_field,
            format!(
                "area code {} and local number {} are split in the wrong place: the number is area code {a} with local number {l}; write {a} in {area_field} and {l} in {phone_field}",
                quote(self.area_shown.unwrap_or_default()),
                quote(self.phone_shown)
            ),
        ))
    }
}

/// The `phone` cell of a mainland China landline: plain digits, no country code.
fn local_number(shown: &str, field: &str) -> Result<String, Problem> {
    if shown.is_empty() {
        return Err(Problem::new(
            Code::Required,
            field,
            "the landline number is empty: write the local number, like 58512042",
        ));
    }
    let cleaned = clean(shown).map_err(|d| phone_dirt(d, shown, field))?;
    if cleaned.plus || cleaned.digits.starts_with("00") {
        return Err(Problem::new(
            Code::InvalidNumber,
            field,
            format!(
                "{} carries a country code: for a mainland China landline write only the local number (like 58512042), with the area code in its own column and the country code 86 in the country code column",
                quote(shown)
            ),
        ));
    }
    Ok(cleaned.digits)
}

/// The area code without its leading `0`, and whether there was one to drop.
fn area_code(shown: &str, field: &str) -> Result<(String, bool), Problem> {
    let malformed = || {
        Problem::new(
            Code::InvalidAreaCode,
            field,
            format!(
                "{} is not a mainland China area code: write 2 or 3 digits, like 10 for Beijing or 29 for Xi'an (a leading 0 is allowed)",
                quote(shown)
            ),
        )
    };
    let cleaned = match clean(shown) {
        Ok(c) => c,
        Err(
            d @ (Dirt::Scientific
            | Dirt::Decimal
            | Dirt::BadChar(_)
            | Dirt::Negative
            | Dirt::MisplacedPlus),
        ) => return Err(phone_dirt(d, shown, field)),
        Err(Dirt::NoDigits | Dirt::TooLong(_)) => return Err(malformed()),
    };
    if cleaned.plus {
        return Err(malformed());
    }
    let (area, dropped_zero) = match cleaned.digits.strip_prefix('0') {
        Some(rest) => (rest, true),
        None => (cleaned.digits.as_str(), false),
    };
    if !(2..=3).contains(&area.len()) || area.starts_with('0') {
        return Err(malformed());
    }
    Ok((area.to_owned(), dropped_zero))
}

/// Why a mainland China landline without an area code fails, using what the phone cell
/// holds (only on this error path does the number get a parse of its own).
fn missing_area(
    local: Option<&str>,
    phone_shown: &str,
    area_field: &str,
    phone_field: &str,
) -> Problem {
    let required = |extra: String| {
        Problem::new(
            Code::AreaCodeRequired,
            area_field,
            format!(
                "a mainland China landline needs its area code in {area_field}, like 10 for Beijing or 29 for Xi'an{extra}"
            ),
        )
    };
    let Some(number) = local.and_then(|l| LIB.parse(l, Some(Region::CN)).ok()) else {
        return required(String::new());
    };
    match number.get_type() {
        PhoneNumberType::Mobile => Problem::new(
            Code::MobileInLandlineColumn,
            phone_field,
            format!(
                "{} is a mobile number, not a landline: write it in the mobile column",
                quote(phone_shown)
            ),
        ),
        PhoneNumberType::FixedLine | PhoneNumberType::FixedLineOrMobile => {
            match split_area(&number) {
                Some((a, l)) => required(format!(
                    "; {} reads as area code {a} with local number {l}: write {a} in {area_field} and {l} in {phone_field}",
                    quote(phone_shown)
                )),
                None => required(String::new()),
            }
        }
        _ => required(String::new()),
    }
}

fn invalid_china_landline(
    area: &str,
    local: &str,
    phone_shown: &str,
    area_field: &str,
    phone_field: &str,
) -> Problem {
    let alone = LIB.parse(local, Some(Region::CN)).ok();
    let message = match alone.as_ref().map(|n| (n.get_type(), n)) {
        Some((PhoneNumberType::Mobile, _)) => {
            return Problem::new(
                Code::MobileInLandlineColumn,
                phone_field,
                format!(
                    "{} is a mobile number, not a landline: write it in the mobile column and leave {area_field} empty",
                    quote(phone_shown)
                ),
            )
        }
        Some((PhoneNumberType::FixedLine | PhoneNumberType::FixedLineOrMobile, n)) => {
            match split_area(n) {
                Some((a, l)) => format!(
                    "{} already holds an area code ({a}): write only the local number {l} in {phone_field} and {a} in {area_field}",
                    quote(phone_shown)
                ),
                None => format!(
                    "{} already holds an area code: write only the local number in {phone_field}",
                    quote(phone_shown)
                ),
            }
        }
        _ => format!(
            "area code {area} with local number {} is not a valid mainland China landline: check both (a local number has 7 or 8 digits, without area code or extension)",
            quote(phone_shown)
        ),
    };
    Problem::new(Code::InvalidNumber, phone_field, message)
}

/// A mainland China fixed-line number split into area code (no `0`) and local number.
fn split_area(number: &PhoneNumber) -> Option<(String, String)> {
    let nsn = number.get_national_significant_number();
    let len = number.get_length_of_geographical_area_code();
    if len == 0 {
        return None;
    }
    Some((nsn.get(..len)?.to_owned(), nsn.get(len..)?.to_owned()))
}

// ---------------------------------------------------------------------------------------
// Messages

/// A cell as a message quotes it: in double quotes, control characters escaped, long
/// values cut.
fn quote(shown: &str) -> String {
    let mut out = String::from('"');
    for (i, ch) in shown.chars().enumerate() {
        if i == QUOTE_CHARS {
            out.push('…');
            break;
        }
        if ch.is_control() {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
    }
    out.push('"');
    out
}

/// A character as a message names it: visible ones as themselves, all with their code
/// point so that invisible ones can be found.
fn describe(ch: char) -> String {
    let code = format!("U+{:04X}", u32::from(ch));
    if ch.is_control() || is_invisible(ch) {
        format!("the invisible character {code}")
    } else {
        format!("the character '{ch}' ({code})")
    }
}

fn is_invisible(ch: char) -> bool {
    matches!(ch, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{AD}')
}
