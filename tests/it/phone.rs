//! The phone rules, table by table: country codes, phone cells against a row's calling
//! code, and Quanshi landlines. Real numbers throughout (the vendor's own examples where
//! it gives them), and a property test that no input of any kind makes ferry panic.

use ferry::problem::Code::{self, *};
use ferry::validate::phone::{country_code, landline, phone, Expect, Landline, Phone};
use proptest::prelude::*;

const FIELD: &str = "mobile";

fn codes(problems: &[ferry::problem::Problem]) -> Vec<Code> {
    problems.iter().map(|p| p.code).collect()
}

// ---------------------------------------------------------------------------------------
// country_code

#[test]
fn country_code_accepts_the_written_forms() {
    let table: &[(&str, u16)] = &[
        ("886", 886),
        ("+886", 886),
        ("00886", 886),
        ("(886)", 886),
        ("+ 886", 886),
        (" 886 ", 886),
        ("８８６", 886),   // full-width digits
        ("＋８８６", 886), // full-width plus
        ("86", 86),
        ("+86", 86),
        ("0086", 86),
        ("(86)", 86),
        ("（８６）", 86), // full-width brackets
        ("852", 852),
        ("1", 1),
        ("+1", 1),
        ("7", 7),
        ("44", 44),
        ("800", 800), // non-geographic: international freephone
        ("882", 882), // non-geographic: international networks
    ];
    for &(raw, want) in table {
        assert_eq!(
            country_code(raw, "countryCode"),
            Ok(want),
            "country_code({raw:?})"
        );
    }
}

#[test]
fn country_code_rejects_what_is_not_an_assigned_code() {
    let table: &[(&str, Code, &str)] = &[
        ("", CountryCodeRequired, "empty"),
        ("   ", CountryCodeRequired, "empty"),
        ("999", InvalidCountryCode, "\"999\""),
        ("0", InvalidCountryCode, "\"0\""),
        ("086", InvalidCountryCode, "leading 0"),
        ("-886", InvalidCountryCode, "no minus sign"),
        ("−886", InvalidCountryCode, "no minus sign"),
        ("+00886", InvalidCountryCode, "\"+00886\""),
        ("8610", InvalidCountryCode, "write only 86"),
        ("1684", InvalidCountryCode, "write only 1"),
        ("CN", InvalidCountryCode, "'C'"),
        ("86a", InvalidCountryCode, "'a'"),
        ("+", InvalidCountryCode, "\"+\""),
        ("8+6", InvalidCountryCode, "\"8+6\""),
        ("8.6E1", InvalidCountryCode, "\"8.6E1\""),
        ("12345678901234567890123", InvalidCountryCode, "not"),
    ];
    for &(raw, code, says) in table {
        let p = country_code(raw, "countryCode").expect_err(raw);
        assert_eq!(p.code, code, "country_code({raw:?}): {}", p.message);
        assert_eq!(p.field, "countryCode");
        assert!(
            p.message.contains(says),
            "country_code({raw:?}) message {:?} lacks {says:?}",
            p.message
        );
    }
}

// ---------------------------------------------------------------------------------------
// phone

enum Want {
    /// Accepted: the number's E.164 identity, and the warnings.
    Ok(&'static str, &'static [Code]),
    /// Rejected with these problems.
    Err(&'static [Code]),
}

use Expect::{Any, Landline as Fixed, Mobile};

/// (cell, row's calling code, column, outcome)
const PHONES: &[(&str, u16, Expect, Want)] = &[
    // mainland China mobiles, as in the Quanshi example
    ("18100000030", 86, Mobile, Want::Ok("+8618100000030", &[])),
    ("13800138000", 86, Mobile, Want::Ok("+8613800138000", &[])),
    ("138 0013 8000", 86, Any, Want::Ok("+8613800138000", &[])),
    ("181.0000.0030", 86, Mobile, Want::Ok("+8618100000030", &[])),
    (
        "181\u{a0}0000\u{3000}0030",
        86,
        Mobile,
        Want::Ok("+8618100000030", &[]),
    ), // NBSP, ideographic space
    (
        "１８１００００００３０",
        86,
        Mobile,
        Want::Ok("+8618100000030", &[]),
    ), // full-width digits
    // its own +86 matches the row: dropped, with a warning
    (
        "+86 181-0000-0030",
        86,
        Mobile,
        Want::Ok("+8618100000030", &[CountryPrefixDropped]),
    ),
    (
        "＋８６ １８１００００００３０",
        86,
        Mobile,
        Want::Ok("+8618100000030", &[CountryPrefixDropped]),
    ),
    (
        "(+86) 138 0013 8000",
        86,
        Mobile,
        Want::Ok("+8613800138000", &[CountryPrefixDropped]),
    ),
    (
        "0086 181 0000 0030",
        86,
        Mobile,
        Want::Ok("+8618100000030", &[CountryPrefixDropped]),
    ),
    // ... or another code: a mismatch, whichever way the code is written
    (
        "+852 9123 4567",
        86,
        Mobile,
        Want::Err(&[CountryCodeMismatch]),
    ),
    (
        "00852 9123 4567",
        86,
        Mobile,
        Want::Err(&[CountryCodeMismatch]),
    ),
    (
        "+86 181 0000 0030",
        1,
        Mobile,
        Want::Err(&[CountryCodeMismatch]),
    ),
    (
        "011 44 20 7946 0000",
        1,
        Any,
        Want::Err(&[CountryCodeMismatch]),
    ), // the USA's own prefix
    ("+999 123 456", 86, Mobile, Want::Err(&[InvalidNumber])), // no such code
    // mainland China: wrong column, wrong kind, wrong length
    (
        "010 5851 2042",
        86,
        Mobile,
        Want::Err(&[LandlineInMobileColumn]),
    ),
    ("400 123 4567", 86, Mobile, Want::Err(&[NotAMobile])),
    ("400 123 4567", 86, Fixed, Want::Err(&[NotALandline])),
    ("400 123 4567", 86, Any, Want::Ok("+864001234567", &[])),
    ("1810000003", 86, Mobile, Want::Err(&[InvalidNumber])),
    // a lost +: the library would silently read 86 as the country code; ferry asks
    ("8618100000030", 86, Mobile, Want::Err(&[LeadingPlusLost])),
    ("886911211211", 886, Mobile, Want::Err(&[LeadingPlusLost])),
    ("886911211211", 86, Mobile, Want::Err(&[LeadingPlusLost])), // and it is not even +86
    // Taiwan: the vendor example keeps the trunk 0
    ("0911211211", 886, Mobile, Want::Ok("+886911211211", &[])),
    ("0911-211-211", 886, Any, Want::Ok("+886911211211", &[])),
    (
        "+886911211211",
        886,
        Mobile,
        Want::Ok("+886911211211", &[CountryPrefixDropped]),
    ),
    (
        "+886 0911 211 211",
        886,
        Mobile,
        Want::Ok("+886911211211", &[CountryPrefixDropped]),
    ),
    (
        "00886 911 211 211",
        886,
        Mobile,
        Want::Ok("+886911211211", &[CountryPrefixDropped]),
    ),
    (
        "002 886 911 211 211",
        886,
        Mobile,
        Want::Ok("+886911211211", &[CountryPrefixDropped]),
    ), // Taiwan's own IDD
    ("02 2345 6789", 886, Fixed, Want::Ok("+886223456789", &[])),
    (
        "0911211211",
        886,
        Fixed,
        Want::Err(&[MobileInLandlineColumn]),
    ),
    // The national significant number (E.164 without the calling code) is how
    // international lists write a number: the same number as the national format with
    // its trunk 0, never a lost 0 (issue 7).
    ("911211211", 886, Mobile, Want::Ok("+886911211211", &[])),
    ("911 211 211", 886, Any, Want::Ok("+886911211211", &[])),
    ("223456789", 886, Fixed, Want::Ok("+886223456789", &[])),
    (
        "911211211",
        886,
        Fixed,
        Want::Err(&[MobileInLandlineColumn]),
    ),
    ("7400123456", 44, Mobile, Want::Ok("+447400123456", &[])),
    ("9012345678", 81, Mobile, Want::Ok("+819012345678", &[])),
    ("090-1234-5678", 81, Mobile, Want::Ok("+819012345678", &[])),
    ("15123456789", 49, Mobile, Want::Ok("+4915123456789", &[])),
    ("01512 3456789", 49, Mobile, Want::Ok("+4915123456789", &[])),
    // a 0 that is part of the number itself can be lost: Rome's fixed lines
    ("63456789", 39, Fixed, Want::Err(&[LeadingZeroLost])),
    ("06 345 6789", 39, Fixed, Want::Ok("+39063456789", &[])),
    (
        "+39 06 345 6789",
        39,
        Fixed,
        Want::Ok("+39063456789", &[CountryPrefixDropped]),
    ),
    // Hong Kong: 8 digits, mobiles and landlines told apart
    ("9123 4567", 852, Mobile, Want::Ok("+85291234567", &[])),
    ("2123 4567", 852, Fixed, Want::Ok("+85221234567", &[])),
    (
        "+852 9123 4567",
        852,
        Mobile,
        Want::Ok("+85291234567", &[CountryPrefixDropped]),
    ),
    (
        "2123 4567",
        852,
        Mobile,
        Want::Err(&[LandlineInMobileColumn]),
    ),
    (
        "9123 4567",
        852,
        Fixed,
        Want::Err(&[MobileInLandlineColumn]),
    ),
    // NANPA: FIXED_LINE_OR_MOBILE passes both columns
    ("(201) 555-0123", 1, Mobile, Want::Ok("+12015550123", &[])),
    ("201-555-0123", 1, Fixed, Want::Ok("+12015550123", &[])),
    (
        "+1 201 555 0123",
        1,
        Fixed,
        Want::Ok("+12015550123", &[CountryPrefixDropped]),
    ),
    ("1 201 555 0123", 1, Mobile, Want::Ok("+12015550123", &[])), // trunk 1, not a lost +
    ("800 555 0123", 1, Mobile, Want::Err(&[NotAMobile])),
    ("800 555 0123", 1, Any, Want::Ok("+18005550123", &[])),
    // United Kingdom
    ("07400 123456", 44, Mobile, Want::Ok("+447400123456", &[])),
    (
        "+44 7400 123456",
        44,
        Mobile,
        Want::Ok("+447400123456", &[CountryPrefixDropped]),
    ),
    ("020 7946 0000", 44, Fixed, Want::Ok("+442079460000", &[])),
    (
        "020 7946 0000",
        44,
        Mobile,
        Want::Err(&[LandlineInMobileColumn]),
    ),
    (
        "07400 123456",
        44,
        Fixed,
        Want::Err(&[MobileInLandlineColumn]),
    ),
    ("0800 1111", 44, Fixed, Want::Err(&[NotALandline])),
    ("0800 1111", 44, Any, Want::Ok("+448001111", &[])),
    // shared code 7: valid in Russia or Kazakhstan
    (
        "+7 701 234 5678",
        7,
        Mobile,
        Want::Ok("+77012345678", &[CountryPrefixDropped]),
    ),
    (
        "8 (912) 345-67-89",
        7,
        Mobile,
        Want::Ok("+79123456789", &[]),
    ),
    // a non-geographic code
    (
        "+800 1234 5678",
        800,
        Any,
        Want::Ok("+80012345678", &[CountryPrefixDropped]),
    ),
    ("1234 5678", 800, Any, Want::Ok("+80012345678", &[])),
    // a row code that is no code
    ("18100000030", 999, Mobile, Want::Err(&[InvalidCountryCode])),
    // spreadsheet damage: scientific notation, before any character check
    (
        "8.61810000003E+12",
        86,
        Mobile,
        Want::Err(&[ScientificNotation]),
    ),
    ("1.8E10", 86, Mobile, Want::Err(&[ScientificNotation])),
    ("1.8e10", 86, Mobile, Want::Err(&[ScientificNotation])),
    (
        "8,61810000003E+12",
        86,
        Any,
        Want::Err(&[ScientificNotation]),
    ),
    ("１.８E＋１０", 86, Any, Want::Err(&[ScientificNotation])),
    // a float's rendering: the .0 would make another, often valid, number (Austria's
    // 6641234560), so it is refused, never read as digits
    ("664123456.0", 43, Mobile, Want::Err(&[DecimalNotation])),
    ("664123456.00", 43, Mobile, Want::Err(&[DecimalNotation])),
    ("664123456,0", 43, Mobile, Want::Err(&[DecimalNotation])),
    ("+43664123456.0", 43, Mobile, Want::Err(&[DecimalNotation])),
    ("912345678.0", 886, Mobile, Want::Err(&[DecimalNotation])),
    // dotted groups are formatting, even when a group is zeros
    ("0912.345.000", 886, Mobile, Want::Ok("+886912345000", &[])),
    // dashes as word processors write them
    ("0912–345–678", 886, Mobile, Want::Ok("+886912345678", &[])),
    ("0912‐345—678", 886, Mobile, Want::Ok("+886912345678", &[])),
    ("0912−345−678", 886, Mobile, Want::Ok("+886912345678", &[])),
    // characters that are not part of a number
    (
        ";phone-context=a;tel:",
        86,
        Mobile,
        Want::Err(&[InvalidCharacters]),
    ),
    (
        "tel:+8618100000030;phone-context=+86",
        86,
        Any,
        Want::Err(&[InvalidCharacters]),
    ),
    ("abc", 86, Mobile, Want::Err(&[InvalidCharacters])),
    // A negative number cell, not a dash between digits.
    ("-912345676", 886, Mobile, Want::Err(&[InvalidCharacters])),
    (
        "−0912 345 678",
        886,
        Mobile,
        Want::Err(&[InvalidCharacters]),
    ),
    (
        "181 0000 0030 ext 5",
        86,
        Mobile,
        Want::Err(&[InvalidCharacters]),
    ),
    (
        "18100000030 😀",
        86,
        Mobile,
        Want::Err(&[InvalidCharacters]),
    ),
    (
        "\u{200b}18100000030",
        86,
        Mobile,
        Want::Err(&[InvalidCharacters]),
    ), // zero-width space
    (
        "18100000030/13800138000",
        86,
        Any,
        Want::Err(&[InvalidCharacters]),
    ),
    ("181+00000030", 86, Mobile, Want::Err(&[InvalidCharacters])),
    (
        "++8618100000030",
        86,
        Mobile,
        Want::Err(&[InvalidCharacters]),
    ),
    // nothing, or nothing usable
    ("", 86, Mobile, Want::Err(&[Required])),
    ("   ", 86, Any, Want::Err(&[Required])),
    ("--", 86, Any, Want::Err(&[InvalidNumber])),
    ("+", 86, Any, Want::Err(&[InvalidNumber])),
    (
        "123456789012345678901234567890",
        86,
        Any,
        Want::Err(&[InvalidNumber]),
    ),
];

#[test]
fn phone_table() {
    for (raw, cc, expect, want) in PHONES {
        let got = phone(raw, *cc, *expect, FIELD);
        let ctx = format!("phone({raw:?}, {cc}, {expect:?})");
        match (want, got) {
            (
                Want::Ok(e164, warnings),
                Ok(Phone {
                    number,
                    warnings: got_w,
                }),
            ) => {
                assert_eq!(&number.e164, e164, "{ctx}");
                assert_eq!(codes(&got_w), *warnings, "{ctx}: {got_w:?}");
                for w in &got_w {
                    assert_eq!(w.field, FIELD, "{ctx}");
                    assert!(
                        w.message.contains(raw.trim()),
                        "{ctx}: {:?} does not quote the cell",
                        w.message
                    );
                }
            }
            (Want::Err(want), Err(problems)) => {
                assert_eq!(codes(&problems), *want, "{ctx}: {problems:?}");
                for p in &problems {
                    assert_eq!(p.field, FIELD, "{ctx}");
                    if !raw.trim().is_empty() && raw.trim().chars().count() <= 40 && *cc != 999 {
                        assert!(
                            p.message.contains(raw.trim()),
                            "{ctx}: {:?} does not quote the cell",
                            p.message
                        );
                    }
                }
            }
            (Want::Ok(..), Err(problems)) => panic!("{ctx}: expected Ok, got {problems:?}"),
            (Want::Err(want), Ok(p)) => panic!("{ctx}: expected {want:?}, got {p:?}"),
        }
    }
}

/// Every spelling of a number is the same number: one E.164 identity and the same wire
/// forms, whatever the cell said (issue 7: a number written five ways is one record).
#[test]
fn spellings_of_one_number_are_one_number() {
    // (calling code, spellings, E.164, national significant number, national digits)
    let table: &[(u16, &[&str], &str, &str, &str)] = &[
        (
            886,
            &[
                "912345678",
                "0912345678",
                "0912-345-678",
                "+886 912 345 678",
                "+886912345678",
                "00886912345678",
                "002 886 912 345 678",
                "０９１２３４５６７８",
                "(+886) 0912 345 678",
            ],
            "+886912345678",
            "912345678",
            "0912345678",
        ),
        (
            81,
            &[
                "9012345678",
                "090-1234-5678",
                "+81 90-1234-5678",
                "0081 90 1234 5678",
                "010 81 90 1234 5678",
            ],
            "+819012345678",
            "9012345678",
            "09012345678",
        ),
        (
            44,
            &[
                "7400123456",
                "07400 123456",
                "+44 7400 123456",
                "0044 7400 123456",
                "+44 (0)7400 123456",
            ],
            "+447400123456",
            "7400123456",
            "07400123456",
        ),
        (
            49,
            &[
                "15123456789",
                "01512 3456789",
                "+49 1512 3456789",
                "0049 1512 3456789",
            ],
            "+4915123456789",
            "15123456789",
            "015123456789",
        ),
        (
            86,
            &[
                "13800138000",
                "138 0013 8000",
                "+86 138 0013 8000",
                "0086 13800138000",
                "１３８００１３８０００",
            ],
            "+8613800138000",
            "13800138000",
            "13800138000",
        ),
        (
            1,
            &[
                "2015550123",
                "(201) 555-0123",
                "1 201 555 0123",
                "+1 201-555-0123",
                "011 1 201 555 0123",
            ],
            "+12015550123",
            "2015550123",
            "2015550123",
        ),
        // Rome: the 0 belongs to the number, so it is in every form
        (
            39,
            &[
                "06 345 6789",
                "063456789",
                "+39 06 345 6789",
                "0039063456789",
            ],
            "+39063456789",
            "063456789",
            "063456789",
        ),
        // Russia's trunk prefix is 8, and its national format shows it
        (
            7,
            &[
                "9123456789",
                "8 (912) 345-67-89",
                "+7 912 345-67-89",
                "8 10 7 912 345 67 89",
            ],
            "+79123456789",
            "9123456789",
            "89123456789",
        ),
        // Hong Kong has no trunk prefix
        (
            852,
            &["91234567", "9123 4567", "+852 9123 4567", "00852 9123 4567"],
            "+85291234567",
            "91234567",
            "91234567",
        ),
    ];
    for &(cc, spellings, e164, nsn, national) in table {
        for raw in spellings {
            let p = phone(raw, cc, Any, FIELD).unwrap_or_else(|e| panic!("{raw:?} +{cc}: {e:?}"));
            let n = &p.number;
            assert_eq!(
                (
                    n.e164.as_str(),
                    n.national_significant.as_str(),
                    n.national().as_str()
                ),
                (e164, nsn, national),
                "{raw:?} +{cc}"
            );
        }
    }
}

/// The problem for one cell that is expected to fail with exactly one problem.
fn only_problem(raw: &str, cc: u16, expect: Expect) -> ferry::problem::Problem {
    let mut problems = phone(raw, cc, expect, FIELD).expect_err(raw);
    assert_eq!(problems.len(), 1, "{problems:?}");
    problems.remove(0)
}

#[test]
fn messages_give_the_hint_that_fixes_the_cell() {
    let table: &[(&str, u16, Expect, &[&str])] = &[
        (
            "8.61810000003E+12",
            86,
            Mobile,
            &[
                "scientific notation",
                "may have lost digits",
                "format the column as Text",
            ],
        ),
        (
            "63456789",
            39,
            Fixed,
            &[
                "063456789",
                "spreadsheet probably dropped",
                "format the column as Text",
            ],
        ),
        (
            "8618100000030",
            86,
            Mobile,
            &[
                "+8618100000030",
                "spreadsheet probably dropped",
                "format the column as Text",
            ],
        ),
        (
            "886911211211",
            886,
            Mobile,
            &["+886911211211", "or leave the country code out: 0911211211"],
        ),
        ("886911211211", 86, Mobile, &["+886911211211", "+886", "86"]),
        ("+852 9123 4567", 86, Mobile, &["+852", "86"]),
        (
            "010 5851 2042",
            86,
            Mobile,
            &["move it to the landline column"],
        ),
        ("9123 4567", 852, Fixed, &["move it to the mobile column"]),
        ("400 123 4567", 86, Mobile, &["shared-cost"]),
        ("abc", 86, Mobile, &["'a'", "U+0061"]),
        ("18100000030 😀", 86, Mobile, &["'😀'"]),
        ("\u{200b}18100000030", 86, Mobile, &["U+200B"]),
        ("1810000003", 86, Mobile, &["+86", "check"]),
    ];
    for &(raw, cc, expect, says) in table {
        let p = only_problem(raw, cc, expect);
        for s in says {
            assert!(
                p.message.contains(s),
                "phone({raw:?}, {cc}): {:?} lacks {s:?}",
                p.message
            );
        }
    }
    let p = phone("+86 181-0000-0030", 86, Mobile, FIELD)
        .unwrap()
        .warnings
        .remove(0);
    assert!(
        p.message.contains("+86") && p.message.contains("18100000030"),
        "{}",
        p.message
    );
}

#[test]
fn phone_context_tel_input_never_reaches_the_parser() {
    // rlibphonenumber slices out of bounds on this; ferry must reject it first.
    for raw in [
        ";phone-context=a;tel:",
        "+86;phone-context=tel:",
        "1;phone-context=+tel:",
        ";phone-context=",
    ] {
        for expect in [Mobile, Fixed, Any] {
            assert_eq!(
                codes(&phone(raw, 86, expect, FIELD).unwrap_err()),
                [InvalidCharacters]
            );
        }
        let got = landline(Some(raw), raw, 86, "areaCode", "phone").unwrap_err();
        assert!(
            codes(&got).iter().all(|c| *c == InvalidCharacters),
            "{got:?}"
        );
        assert!(country_code(raw, "countryCode").is_err());
    }
}

// ---------------------------------------------------------------------------------------
// landline

enum LWant {
    Ok(Option<&'static str>, &'static str, &'static [Code]),
    Err(&'static [Code]),
}

/// (areaCode cell, phone cell, row's calling code, outcome)
const LANDLINES: &[(Option<&str>, &str, u16, LWant)] = &[
    // the vendor's example: Beijing 10 + 58512042
    (
        Some("10"),
        "58512042",
        86,
        LWant::Ok(Some("10"), "58512042", &[]),
    ),
    (
        Some("010"),
        "5851 2042",
        86,
        LWant::Ok(Some("10"), "58512042", &[AreaCodeZeroDropped]),
    ),
    (
        Some("１０"),
        "５８５１２０４２",
        86,
        LWant::Ok(Some("10"), "58512042", &[]),
    ),
    // Xi'an 29, written with its 0
    (
        Some("029"),
        "8523 3333",
        86,
        LWant::Ok(Some("29"), "85233333", &[AreaCodeZeroDropped]),
    ),
    (
        Some("(029)"),
        "8523-3333",
        86,
        LWant::Ok(Some("29"), "85233333", &[AreaCodeZeroDropped]),
    ),
    // a three-digit area code: Shenzhen
    (
        Some("0755"),
        "8888 8888",
        86,
        LWant::Ok(Some("755"), "88888888", &[AreaCodeZeroDropped]),
    ),
    // the area code is required in mainland China
    (None, "58512042", 86, LWant::Err(&[AreaCodeRequired])),
    (Some("  "), "58512042", 86, LWant::Err(&[AreaCodeRequired])),
    (None, "010 5851 2042", 86, LWant::Err(&[AreaCodeRequired])),
    (None, "", 86, LWant::Err(&[AreaCodeRequired, Required])),
    // ... and must look like one
    (Some("0010"), "58512042", 86, LWant::Err(&[InvalidAreaCode])),
    (Some("1"), "58512042", 86, LWant::Err(&[InvalidAreaCode])),
    (Some("1010"), "58512042", 86, LWant::Err(&[InvalidAreaCode])),
    (Some("+86"), "58512042", 86, LWant::Err(&[InvalidAreaCode])),
    (Some("105"), "8512042", 86, LWant::Err(&[InvalidAreaCode])), // split in the wrong place
    (Some("x1"), "58512042", 86, LWant::Err(&[InvalidCharacters])),
    (
        Some("1.0E1"),
        "58512042",
        86,
        LWant::Err(&[ScientificNotation]),
    ),
    (
        Some("x"),
        "abc",
        86,
        LWant::Err(&[InvalidCharacters, InvalidCharacters]),
    ),
    // the local number
    (Some("10"), "", 86, LWant::Err(&[Required])),
    (Some("10"), "5851204", 86, LWant::Err(&[InvalidNumber])),
    (
        Some("10"),
        "010 5851 2042",
        86,
        LWant::Err(&[InvalidNumber]),
    ), // area code twice
    (
        Some("10"),
        "+86 10 5851 2042",
        86,
        LWant::Err(&[InvalidNumber]),
    ), // country code in it
    (
        Some("10"),
        "5851 2042 ext 12",
        86,
        LWant::Err(&[InvalidCharacters]),
    ),
    (
        Some("10"),
        "5.8512042E7",
        86,
        LWant::Err(&[ScientificNotation]),
    ),
    (
        Some("10"),
        ";phone-context=a;tel:",
        86,
        LWant::Err(&[InvalidCharacters]),
    ),
    // a mobile in the landline column
    (
        None,
        "13800138000",
        86,
        LWant::Err(&[MobileInLandlineColumn]),
    ),
    (
        Some("10"),
        "13800138000",
        86,
        LWant::Err(&[MobileInLandlineColumn]),
    ),
    // elsewhere: no area code, the phone is a landline of that country
    (None, "2123 4567", 852, LWant::Ok(None, "21234567", &[])),
    (Some(""), "2123 4567", 852, LWant::Ok(None, "21234567", &[])),
    (
        Some("10"),
        "2123 4567",
        852,
        LWant::Err(&[AreaCodeNotAllowed]),
    ),
    (
        Some("10"),
        "9123 4567",
        852,
        LWant::Err(&[AreaCodeNotAllowed, MobileInLandlineColumn]),
    ),
    (
        None,
        "9123 4567",
        852,
        LWant::Err(&[MobileInLandlineColumn]),
    ),
    (
        None,
        "+852 2123 4567",
        852,
        LWant::Ok(None, "21234567", &[CountryPrefixDropped]),
    ),
    (None, "201 555 0123", 1, LWant::Ok(None, "2015550123", &[])), // FIXED_LINE_OR_MOBILE
    (
        None,
        "020 7946 0000",
        44,
        LWant::Ok(None, "2079460000", &[]),
    ),
    (
        Some("020"),
        "7946 0000",
        44,
        LWant::Err(&[AreaCodeNotAllowed]),
    ), // together they are valid
    (
        Some("20"),
        "7946 0000",
        44,
        LWant::Err(&[AreaCodeNotAllowed]),
    ), // together they are the national significant number, also valid
    (
        None,
        "07400 123456",
        44,
        LWant::Err(&[MobileInLandlineColumn]),
    ),
    // outside mainland China the local number is the national significant number
    (None, "02 2345 6789", 886, LWant::Ok(None, "223456789", &[])),
    (None, "223456789", 886, LWant::Ok(None, "223456789", &[])),
];

#[test]
fn landline_table() {
    for (area, raw, cc, want) in LANDLINES {
        let got = landline(*area, raw, *cc, "areaCode", "phone");
        let ctx = format!("landline({area:?}, {raw:?}, {cc})");
        match (want, got) {
            (
                LWant::Ok(want_area, want_local, want_w),
                Ok(Landline {
                    area_code,
                    local,
                    warnings,
                    ..
                }),
            ) => {
                assert_eq!(area_code.as_deref(), *want_area, "{ctx}");
                assert_eq!(&local, want_local, "{ctx}");
                assert_eq!(codes(&warnings), *want_w, "{ctx}: {warnings:?}");
            }
            (LWant::Err(want), Err(problems)) => {
                assert_eq!(codes(&problems), *want, "{ctx}: {problems:?}")
            }
            (LWant::Ok(..), Err(problems)) => panic!("{ctx}: expected Ok, got {problems:?}"),
            (LWant::Err(want), Ok(l)) => panic!("{ctx}: expected {want:?}, got {l:?}"),
        }
    }
}

#[test]
fn landline_problems_blame_the_right_column_and_say_how_to_fix_it() {
    let one = |area: Option<&str>, raw: &str, cc: u16| {
        let mut p = landline(area, raw, cc, "areaCode", "phone").unwrap_err();
        assert_eq!(p.len(), 1, "{p:?}");
        p.remove(0)
    };
    let p = one(None, "010 5851 2042", 86);
    assert_eq!(p.field, "areaCode");
    assert!(
        p.message
            .contains("write 10 in areaCode and 58512042 in phone"),
        "{}",
        p.message
    );

    let p = one(Some("105"), "8512042", 86);
    assert_eq!(p.field, "areaCode");
    assert!(
        p.message
            .contains("write 10 in areaCode and 58512042 in phone"),
        "{}",
        p.message
    );

    let p = one(Some("10"), "010 5851 2042", 86);
    assert_eq!(p.field, "phone");
    assert!(p.message.contains("58512042"), "{}", p.message);

    let p = one(Some("10"), "13800138000", 86);
    assert_eq!(p.field, "phone");
    assert!(p.message.contains("mobile column"), "{}", p.message);

    let p = one(Some("10"), "2123 4567", 852);
    assert_eq!(p.field, "areaCode");
    assert!(
        p.message.contains("mainland China") && p.message.contains("\"10\""),
        "{}",
        p.message
    );

    let p = one(Some("020"), "7946 0000", 44);
    assert_eq!(p.field, "areaCode");
    assert!(
        p.message.contains("in phone, here 02079460000"),
        "{}",
        p.message
    );

    let p = one(Some("0010"), "58512042", 86);
    assert_eq!(p.field, "areaCode");
    assert!(p.message.contains("\"0010\""), "{}", p.message);

    let w = landline(Some("029"), "8523 3333", 86, "areaCode", "phone")
        .unwrap()
        .warnings
        .remove(0);
    assert_eq!(w.field, "areaCode");
    assert!(
        w.message.contains("\"029\"") && w.message.contains("29"),
        "{}",
        w.message
    );
}

// ---------------------------------------------------------------------------------------
// never a panic

/// Strings built from the pieces that trouble phone parsers.
fn nasty() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "+",
        "00",
        "0",
        "1",
        "86",
        "886",
        "9",
        ";phone-context=",
        "tel:",
        ";",
        "=",
        "E",
        "e",
        ".",
        ",",
        "-",
        "(",
        ")",
        " ",
        "\u{a0}",
        "\u{3000}",
        "８",
        "＋",
        "（",
        "ext",
        "x",
        "#",
        "*",
        "/",
        "\u{200b}",
        "😀",
        "\u{0}",
        "\n",
        "+-",
        "E+12",
        "١",
        "٣",
        "𝟙",
    ]);
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

fn any_cc() -> impl Strategy<Value = u16> {
    prop_oneof![
        prop::sample::select(vec![0u16, 1, 7, 39, 44, 86, 800, 852, 886, 979, 999]),
        any::<u16>(),
    ]
}

fn any_expect() -> impl Strategy<Value = Expect> {
    prop::sample::select(vec![Mobile, Fixed, Any])
}

fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\PC{0,30}",
        nasty(),
        "\\+?[0-9]{0,25}",
        "0{0,3}[0-9 +().-]{0,24}"
    ]
}

fn check_phone(p: &Phone) {
    let n = &p.number;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    assert!(
        digits(&n.national_significant) && digits(&n.national()),
        "{p:?}"
    );
    assert!(n.national().ends_with(&n.national_significant), "{p:?}");
    assert!(
        n.e164.starts_with('+') && n.e164.ends_with(&n.national_significant),
        "{p:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn nothing_panics(raw in cell(), area in proptest::option::of(cell()), cc in any_cc(), expect in any_expect()) {
        let _ = country_code(&raw, "countryCode");
        if let Ok(p) = phone(&raw, cc, expect, FIELD) {
            check_phone(&p);
        }
        if let Ok(l) = landline(area.as_deref(), &raw, cc, "areaCode", "phone") {
            prop_assert!(l.local.bytes().all(|b| b.is_ascii_digit()) && !l.local.is_empty(), "{:?}", l);
            if let Some(a) = &l.area_code {
                prop_assert!(cc == 86 && (2..=3).contains(&a.len()) && !a.starts_with('0'), "{:?}", l);
            }
        }
    }

    #[test]
    fn digit_strings_with_a_plus_never_panic(digits in "[0-9]{0,24}", cc in any_cc(), expect in any_expect()) {
        for raw in [digits.clone(), format!("+{digits}"), format!("00{digits}"), format!("0{digits}")] {
            if let Ok(p) = phone(&raw, cc, expect, FIELD) {
                check_phone(&p);
            }
            let _ = landline(Some(&digits), &raw, cc, "areaCode", "phone");
            let _ = landline(None, &raw, cc, "areaCode", "phone");
            let _ = country_code(&raw, "countryCode");
        }
    }

    #[test]
    fn an_accepted_country_code_is_accepted_again(raw in cell()) {
        if let Ok(cc) = country_code(&raw, "countryCode") {
            prop_assert_eq!(country_code(&cc.to_string(), "countryCode"), Ok(cc));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Differential test against libphonenumber's reference behaviour

/// Where ferry and the reference part on purpose; each is explained in the README's
/// "Phone numbers" section. The test fails on any other disagreement, and on any of these
/// that stops happening, so the list stays true.
const KNOWN_DISAGREEMENTS: &str = include_str!("../data/phone_oracle_disagreements.tsv");

/// `tests/data/phone_oracle.tsv.gz` holds 100,000+ numbers of 32 calling codes, each in up
/// to six spellings, with the verdict of Python's `phonenumbers` (the same metadata
/// version as rlibphonenumber): made by `tools/phone-oracle/generate.py`. ferry must agree
/// on validity, E.164 form and type, apart from the listed disagreements.
#[test]
fn agrees_with_the_python_phonenumbers_reference() {
    use std::io::{BufRead, BufReader};
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/phone_oracle.tsv.gz"
    );
    let file = std::fs::File::open(path).expect("the oracle fixture");
    let reader = BufReader::new(flate2::read::GzDecoder::new(file));
    let (mut lines, mut disagreements) = (0usize, Vec::new());
    for line in reader.lines() {
        let line = line.expect("a line of the fixture");
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [cc, _spelling, input, want] = fields[..] else {
            panic!("malformed fixture line {line:?}");
        };
        lines += 1;
        let got = match phone(input, cc.parse().expect("a calling code"), Any, FIELD) {
            Ok(p) => format!("{},{}", p.number.e164, p.number.kind),
            Err(problems) => format!("invalid ({})", codes(&problems)[0].as_str()),
        };
        let agrees = match want {
            "invalid" => got.starts_with("invalid"),
            valid => got == valid,
        };
        if !agrees {
            disagreements.push(format!("{cc}\t{input}\t{want}\t{got}"));
        }
    }
    assert!(lines >= 500_000, "the fixture has {lines} lines");
    let known: Vec<&str> = KNOWN_DISAGREEMENTS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    let agreement = 1.0 - disagreements.len() as f64 / lines as f64;
    assert!(
        agreement >= 0.999,
        "agreement {agreement:.5} over {lines} lines"
    );
    assert_eq!(
        disagreements, known,
        "disagreements with the reference changed (cc, input, reference, ferry)"
    );
}
