//! Excel number formats: a number cell's text as Excel displays it.
//!
//! People keep phone numbers and IDs in spreadsheets as numbers and give the column a
//! format such as `0` or `0000000000` so that Excel shows every digit and the leading
//! zero. ferry reads what the person saw, so a report echoes `0912345678`, never
//! `912345678` or `8.613800138E+12`. Only the parts of the format language that such
//! columns (and amounts) use are rendered: digit placeholders, literals, decimals,
//! grouping, percent, scientific, sections and conditions. Anything else (fractions,
//! `[DBNum1]`, text or date codes in a number section) falls back to General rather
//! than guessing. Dates never get here: calamine reads date-formatted cells as dates.

/// A format code parsed once per cell style, then applied to every cell of that style.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum NumberFormat {
    General,
    /// One to three number sections (`pos;neg;zero`); a text section is dropped.
    Sections(Vec<Section>),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Section {
    condition: Option<Condition>,
    integer: Vec<Item>,
    /// Whether the code has a decimal point (shown even with no digits after it).
    point: bool,
    fraction: Vec<Item>,
    /// `E+`, `E-`, `e+` or `e-`, and the exponent's placeholders.
    exponent: Option<(String, Vec<Item>)>,
    /// Thousands separators in the integer part.
    grouping: bool,
    /// Powers of ten the value is scaled by: +2 per `%`, -3 per trailing comma.
    shift: i32,
}

#[derive(Clone, Debug, PartialEq)]
enum Item {
    /// `0` (shows a zero), `#` (shows nothing) or `?` (shows a space) where no digit is.
    Digit(u8),
    Literal(String),
    General,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Condition {
    op: &'static str,
    bound: f64,
}

impl Condition {
    fn holds(self, v: f64) -> bool {
        match self.op {
            "<" => v < self.bound,
            "<=" => v <= self.bound,
            ">" => v > self.bound,
            ">=" => v >= self.bound,
            "<>" => v != self.bound,
            _ => v == self.bound,
        }
    }
}

/// What the lexer sees in a format code.
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Digit(u8),
    Point,
    Comma,
    Percent,
    Exponent(String),
    Literal(String),
    General,
    Text,
    Slash,
    Condition(Condition),
}

/// Excel refuses longer format codes; a longer one is not worth rendering.
const MAX_CODE_CHARS: usize = 255;

impl NumberFormat {
    pub(crate) fn parse(code: &str) -> NumberFormat {
        if code.eq_ignore_ascii_case("general") || code.chars().count() > MAX_CODE_CHARS {
            return NumberFormat::General;
        }
        sections(code).map_or(NumberFormat::General, NumberFormat::Sections)
    }

    /// The number as Excel shows it through this format.
    pub(crate) fn format(&self, value: f64) -> String {
        let NumberFormat::Sections(sections) = self else {
            return general_number(value);
        };
        if !value.is_finite() {
            return general_number(value);
        }
        let Some((section, signed)) = choose(sections, value) else {
            return general_number(value);
        };
        let text = section.render(value.abs());
        if signed && value < 0.0 {
            format!("-{text}")
        } else {
            text
        }
    }
}

fn sections(code: &str) -> Option<Vec<Section>> {
    let mut lexed = lex(code)?;
    let text_section = lexed.last().is_some_and(|s| s.contains(&Tok::Text));
    if lexed.len() == 4 || text_section {
        lexed.pop();
    }
    if lexed.is_empty() || lexed.len() > 3 {
        return None;
    }
    lexed.iter().map(|toks| section(toks)).collect()
}

/// The section for `v`, and whether Excel puts a minus sign in front of it: not for
/// the second section, which is the negative numbers' own, unless conditions chose it.
fn choose(sections: &[Section], v: f64) -> Option<(&Section, bool)> {
    let first = sections.first()?;
    let second = sections.get(1);
    let second_condition = second.and_then(|s| s.condition);
    if first.condition.is_none() && second_condition.is_none() {
        return Some(match (second, sections.get(2)) {
            (Some(negative), _) if v < 0.0 => (negative, false),
            (_, Some(zero)) if v == 0.0 => (zero, true),
            _ => (first, true),
        });
    }
    // Conditions: the first section whose condition holds; otherwise the next one
    // without a condition of its own.
    if first.condition.is_some_and(|c| c.holds(v)) {
        return Some((first, true));
    }
    if second_condition.is_some_and(|c| c.holds(v)) {
        return second.map(|s| (s, true));
    }
    if first.condition.is_some() && second_condition.is_some() {
        return sections.get(2).map(|s| (s, true));
    }
    Some((second.unwrap_or(first), true))
}

/// Splits a code into sections of tokens; `None` for anything not understood.
fn lex(code: &str) -> Option<Vec<Vec<Tok>>> {
    let mut sections = vec![Vec::new()];
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        let tok = match c {
            ';' => {
                sections.push(Vec::new());
                continue;
            }
            '"' => Tok::Literal(until(&mut chars, '"')?),
            '\\' => Tok::Literal(chars.next()?.to_string()),
            // `_x` leaves the width of `x` blank; `*x` fills the cell with `x`.
            '_' => {
                chars.next()?;
                Tok::Literal(" ".to_string())
            }
            '*' => {
                chars.next()?;
                continue;
            }
            '[' => match bracket(&until(&mut chars, ']')?)? {
                Some(tok) => tok,
                None => continue,
            },
            '0' | '#' | '?' => Tok::Digit(c as u8),
            '.' => Tok::Point,
            ',' => Tok::Comma,
            '%' => Tok::Percent,
            '@' => Tok::Text,
            '/' => Tok::Slash,
            'E' | 'e' => {
                let sign = chars.next().filter(|s| matches!(s, '+' | '-'))?;
                Tok::Exponent(format!("{c}{sign}"))
            }
            'G' | 'g' => {
                let rest: String = chars.clone().take(6).collect();
                if !rest.eq_ignore_ascii_case("eneral") {
                    return None;
                }
                chars.nth(5);
                Tok::General
            }
            // Date and time letters, fraction denominators, and the like.
            c if c.is_ascii_alphanumeric() => return None,
            c => Tok::Literal(c.to_string()),
        };
        sections.last_mut()?.push(tok);
    }
    Some(sections)
}

/// The text up to `end`, which is consumed; `None` if it never comes.
fn until(chars: &mut impl Iterator<Item = char>, end: char) -> Option<String> {
    let mut text = String::new();
    for c in chars {
        if c == end {
            return Some(text);
        }
        text.push(c);
    }
    None
}

/// `[...]`: a condition, a colour (ignored) or a currency/locale tag (its symbol is
/// shown). `None` for anything else (`[DBNum1]`, elapsed time).
fn bracket(inner: &str) -> Option<Option<Tok>> {
    const COLOURS: [&str; 8] = [
        "black", "blue", "cyan", "green", "magenta", "red", "white", "yellow",
    ];
    let lower = inner.to_ascii_lowercase();
    if COLOURS.contains(&lower.as_str()) || lower.starts_with("color") {
        return Some(None);
    }
    if let Some(tag) = inner.strip_prefix('$') {
        let symbol = tag.split('-').next().unwrap_or_default();
        return Some(Some(Tok::Literal(symbol.to_string())));
    }
    let op = ["<=", ">=", "<>", "<", ">", "="]
        .into_iter()
        .find(|op| inner.starts_with(op))?;
    let bound = inner[op.len()..].trim().parse().ok()?;
    Some(Some(Tok::Condition(Condition { op, bound })))
}

/// Arranges one section's tokens into integer, fraction and exponent parts.
fn section(toks: &[Tok]) -> Option<Section> {
    let mut s = Section::default();
    let is_digit = |t: Option<&Tok>| matches!(t, Some(Tok::Digit(_)));
    for (i, tok) in toks.iter().enumerate() {
        match tok {
            Tok::Digit(d) => s.part().push(Item::Digit(*d)),
            Tok::Literal(text) => s.part().push(Item::Literal(text.clone())),
            Tok::Slash => s.part().push(Item::Literal("/".to_string())),
            Tok::General => s.part().push(Item::General),
            Tok::Percent => {
                s.part().push(Item::Literal("%".to_string()));
                s.shift += 2;
            }
            Tok::Comma => {
                let before = toks[..i].iter().rev().find(|t| **t != Tok::Comma);
                let after = toks[i + 1..].iter().find(|t| **t != Tok::Comma);
                match (is_digit(before), is_digit(after)) {
                    (true, true) if !s.point && s.exponent.is_none() => s.grouping = true,
                    (true, true) => return None,
                    (true, false) => s.shift -= 3,
                    (false, _) => s.part().push(Item::Literal(",".to_string())),
                }
            }
            Tok::Point if !s.point && s.exponent.is_none() => s.point = true,
            Tok::Exponent(text) if s.exponent.is_none() => {
                s.exponent = Some((text.clone(), Vec::new()));
            }
            Tok::Condition(c) if s.condition.is_none() => s.condition = Some(*c),
            Tok::Point | Tok::Exponent(_) | Tok::Condition(_) | Tok::Text => return None,
        }
    }
    let digits = |items: &[Item]| items.iter().filter(|i| matches!(i, Item::Digit(_))).count();
    let all_digits = digits(&s.integer) + digits(&s.fraction);
    // A fraction (`# ?/?`): a slash with digit placeholders on both sides.
    let any_digit = |toks: &[Tok]| toks.iter().any(|t| matches!(t, Tok::Digit(_)));
    if let Some(slash) = toks.iter().position(|t| *t == Tok::Slash) {
        if any_digit(&toks[..slash]) && any_digit(&toks[slash..]) {
            return None;
        }
    }
    if toks.contains(&Tok::General) && (all_digits > 0 || s.point || s.exponent.is_some()) {
        return None;
    }
    if let Some((_, items)) = &s.exponent {
        if digits(&s.integer) != 1 || digits(items) == 0 || s.grouping {
            return None;
        }
    }
    // Integer digits must go somewhere, even when the code has none before the point.
    if all_digits > 0 && digits(&s.integer) == 0 {
        s.integer.push(Item::Digit(b'#'));
    }
    Some(s)
}

impl Section {
    /// Where the next placeholder or literal goes.
    fn part(&mut self) -> &mut Vec<Item> {
        match (&mut self.exponent, self.point) {
            (Some((_, items)), _) => items,
            (None, true) => &mut self.fraction,
            (None, false) => &mut self.integer,
        }
    }

    /// The magnitude `a` (never negative) through this section.
    fn render(&self, a: f64) -> String {
        if self.integer.contains(&Item::General) {
            return self
                .integer
                .iter()
                .map(|item| match item {
                    Item::Literal(text) => text.clone(),
                    _ => general_number(a),
                })
                .collect();
        }
        let decimals = self
            .fraction
            .iter()
            .filter(|i| matches!(i, Item::Digit(_)))
            .count();
        let mut d = Decimal::of(a);
        d.point += self.shift;
        let mut exponent = 0;
        if self.exponent.is_some() && !d.digits.is_empty() {
            exponent = d.point - 1;
            d.point = 1;
        }
        d.round(decimals);
        if self.exponent.is_some() && d.point > 1 {
            // 9.99 rounded up to 10.0: one more power of ten.
            exponent += d.point - 1;
            d.point = 1;
        }
        let mut out = fill_integer(&self.integer, &d.integer_digits(), self.grouping);
        if self.point {
            out.push('.');
        }
        out.push_str(&fill_fraction(&self.fraction, &d.fraction_digits(decimals)));
        if let Some((text, items)) = &self.exponent {
            let mut sign = text.chars();
            out.extend(sign.next());
            if exponent < 0 {
                out.push('-');
            } else if sign.next() == Some('+') {
                out.push('+');
            }
            let digits = exponent.unsigned_abs().to_string();
            let digits = digits.trim_start_matches('0');
            out.push_str(&fill_integer(items, digits.as_bytes(), false));
        }
        out
    }
}

/// Fills integer placeholders from the right; the leftmost takes any extra digits.
fn fill_integer(items: &[Item], digits: &[u8], grouping: bool) -> String {
    let first = items.iter().position(|i| matches!(i, Item::Digit(_)));
    let mut rest = digits;
    let mut reversed: Vec<char> = Vec::new();
    let mut placed = 0;
    let mut put = |reversed: &mut Vec<char>, digit: u8| {
        if grouping && placed > 0 && placed % 3 == 0 {
            reversed.push(',');
        }
        reversed.push(char::from(digit));
        placed += 1;
    };
    for (i, item) in items.iter().enumerate().rev() {
        match item {
            Item::Literal(text) => reversed.extend(text.chars().rev()),
            Item::Digit(placeholder) => {
                let take = if Some(i) == first {
                    rest.len()
                } else {
                    rest.len().min(1)
                };
                let (left, taken) = rest.split_at(rest.len() - take);
                rest = left;
                for &digit in taken.iter().rev() {
                    put(&mut reversed, digit);
                }
                match (take, placeholder) {
                    (0, b'0') => put(&mut reversed, b'0'),
                    (0, b'?') => reversed.push(' '),
                    _ => {}
                }
            }
            Item::General => {}
        }
    }
    reversed.iter().rev().collect()
}

/// Fills fraction placeholders from the left; past the last non-zero digit, `#` shows
/// nothing and `?` a space.
fn fill_fraction(items: &[Item], digits: &[u8]) -> String {
    let significant = digits.iter().rposition(|&d| d != b'0').map_or(0, |i| i + 1);
    let mut out = String::new();
    let mut next = 0;
    for item in items {
        match item {
            Item::Literal(text) => out.push_str(text),
            Item::Digit(placeholder) => {
                let digit = digits.get(next).copied().unwrap_or(b'0');
                match placeholder {
                    _ if next < significant => out.push(char::from(digit)),
                    b'0' => out.push('0'),
                    b'?' => out.push(' '),
                    _ => {}
                }
                next += 1;
            }
            Item::General => {}
        }
    }
    out
}

/// A non-negative number as decimal digits: `0.{digits} × 10^point`.
struct Decimal {
    /// ASCII digits, no leading or trailing zeros; empty for zero.
    digits: Vec<u8>,
    point: i32,
}

impl Decimal {
    /// Whole numbers that f64 holds exactly are taken digit for digit; anything else to
    /// 15 significant digits, Excel's precision, so `2.675` is `2.675` and not
    /// `2.67499999999999982236431605997495353221893310546875`.
    fn of(a: f64) -> Decimal {
        const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
        let (mut digits, point) = if a == 0.0 {
            (Vec::new(), 0)
        } else if a.fract() == 0.0 && a <= EXACT {
            let text = format!("{a:.0}");
            let point = text.len() as i32;
            (text.into_bytes(), point)
        } else {
            let text = format!("{a:.14e}");
            let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
            let digits = mantissa.bytes().filter(u8::is_ascii_digit).collect();
            (digits, exponent.parse::<i32>().unwrap_or(0) + 1)
        };
        while digits.last() == Some(&b'0') {
            digits.pop();
        }
        Decimal { digits, point }
    }

    /// Rounds half away from zero to `decimals` places.
    fn round(&mut self, decimals: usize) {
        let keep = i64::from(self.point) + decimals as i64;
        if keep < 0 {
            self.digits.clear();
            return;
        }
        let keep = keep as usize;
        if keep >= self.digits.len() {
            return;
        }
        let up = self.digits[keep] >= b'5';
        self.digits.truncate(keep);
        if up {
            while self.digits.last() == Some(&b'9') {
                self.digits.pop();
            }
            match self.digits.last_mut() {
                Some(last) => *last += 1,
                None => {
                    // All nines, or nothing kept: 0.96 → 1.0, 0.6 → 1.
                    self.digits.push(b'1');
                    self.point += 1;
                }
            }
        }
        while self.digits.last() == Some(&b'0') {
            self.digits.pop();
        }
    }

    fn integer_digits(&self) -> Vec<u8> {
        if self.digits.is_empty() {
            return Vec::new();
        }
        (0..self.point.max(0) as usize)
            .map(|i| self.digits.get(i).copied().unwrap_or(b'0'))
            .collect()
    }

    fn fraction_digits(&self, decimals: usize) -> Vec<u8> {
        (0..decimals as i32)
            .map(|i| {
                usize::try_from(self.point + i)
                    .ok()
                    .and_then(|at| self.digits.get(at).copied())
                    .unwrap_or(b'0')
            })
            .collect()
    }
}

/// A number as Excel's General format shows it: whole numbers of up to 11 digits in
/// full, longer ones in scientific form with at most 12 significant digits
/// (`8.61810000003E+12`), fractions to 15 significant digits (Excel's precision), so
/// that `0.1 + 0.2` reads `0.3`.
pub(crate) fn general_number(f: f64) -> String {
    if !f.is_finite() {
        return f.to_string();
    }
    if f.fract() == 0.0 {
        if f.abs() < 1e11 {
            // In range for i64, and `-0.0` becomes `0`.
            return (f as i64).to_string();
        }
        return scientific(f);
    }
    let rounded: f64 = format!("{f:.14e}").parse().unwrap_or(f);
    rounded.to_string()
}

fn scientific(f: f64) -> String {
    let text = format!("{f:.11e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((text.as_str(), "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.trim_end_matches('0').trim_end_matches('.')
    } else {
        mantissa
    };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}E{sign}{:02}", exponent.abs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numbers_read_as_excel_general_shows_them() {
        for (value, shown) in [
            (911211211.0, "911211211"),
            (99_999_999_999.0, "99999999999"),
            (861_810_000_003.0, "8.61810000003E+11"),
            (8_618_100_000_030.0, "8.61810000003E+12"),
            (8_613_800_138_000.0, "8.613800138E+12"),
            (9_999_999_999_999.0, "1E+13"),
            (-0.0, "0"),
            (-42.0, "-42"),
            (0.1 + 0.2, "0.3"),
            (3.25, "3.25"),
            (1e-7, "0.0000001"),
        ] {
            assert_eq!(general_number(value), shown, "{value}");
        }
    }

    /// Each `(code, value, shown)`: `value` through the number format `code` reads as
    /// Excel shows it.
    fn assert_shown(cases: &[(&str, f64, &str)]) {
        for &(code, value, shown) in cases {
            assert_eq!(
                NumberFormat::parse(code).format(value),
                shown,
                "{code} on {value}"
            );
        }
    }

    #[test]
    fn numbers_shown_through_their_format_phone_and_id_columns() {
        assert_shown(&[
            ("0000000000", 912_345_678.0, "0912345678"),
            ("0", 8_613_800_138_000.0, "8613800138000"),
            ("0", 13_800_138_000.0, "13800138000"),
            ("0", 9_007_199_254_740_993.0, "9007199254740992"),
            ("0", 123_456_789_012_345_680_000.0, "123456789012346000000"),
            ("000-0000-0000", 13_800_138_000.0, "138-0013-8000"),
            ("000-0000-0000", 800_138_000.0, "008-0013-8000"),
            ("\"+\"0", 8_613_800_138_000.0, "+8613800138000"),
            ("\\+0", 86.0, "+86"),
            ("(000) 000-0000", 4_155_551_234.0, "(415) 555-1234"),
            ("(###) ###-####", 5_551_234.0, "() 555-1234"),
            (
                "[<=9999999]###-####;(###) ###-####",
                5_551_234.0,
                "555-1234",
            ),
            (
                "[<=9999999]###-####;(###) ###-####",
                4_155_551_234.0,
                "(415) 555-1234",
            ),
            ("#", 0.0, ""),
            ("???", 7.0, "  7"),
            ("@", 8_613_800_138_000.0, "8.613800138E+12"),
            ("0;@", 42.0, "42"),
            ("General", 0.5, "0.5"),
            ("\"Tel \"General", 42.0, "Tel 42"),
        ]);
    }

    #[test]
    fn numbers_shown_through_their_format_amounts() {
        assert_shown(&[
            ("0.00", 1.23456, "1.23"),
            ("0.00", 2.675, "2.68"),
            ("0.00", 0.125, "0.13"),
            ("0.00", -0.125, "-0.13"),
            ("0", 2.5, "3"),
            ("0", -2.5, "-3"),
            ("0.0", 9.96, "10.0"),
            ("0", 0.4, "0"),
            ("#.##", 1.0, "1."),
            ("#.##", 0.5, ".5"),
            ("0.0#", 1.5, "1.5"),
            ("0.0#", 1.25, "1.25"),
            ("0.0?", 1.5, "1.5 "),
            (".00", 12.5, "12.50"),
            ("#,##0", 1_234_567.0, "1,234,567"),
            ("#,##0", 0.0, "0"),
            ("#,##0", 999.0, "999"),
            ("#,##0.00", 1_234.5, "1,234.50"),
            ("#,##0.00", -1_234.5, "-1,234.50"),
            ("0,000", 5.0, "0,005"),
            ("#,##0,\"K\"", 1_234_567.0, "1,235K"),
            ("0.0,,", 12_345_678.0, "12.3"),
            ("0%", 0.25, "25%"),
            ("0.0%", 0.1234, "12.3%"),
            ("0%", 0.07, "7%"),
            ("0%", 0.0, "0%"),
            ("0.0,", 0.0, "0.0"),
            ("¥#,##0.00", 1_234.0, "¥1,234.00"),
            ("[$€-407]#,##0.00", 1_234.0, "€1,234.00"),
            ("0.00\" 元\"", 5.0, "5.00 元"),
        ]);
    }

    #[test]
    fn numbers_shown_through_their_format_scientific() {
        assert_shown(&[
            ("0.00E+00", 8_613_800_138_000.0, "8.61E+12"),
            ("0.00E+00", 0.000_123, "1.23E-04"),
            ("0.00E-00", 12_345.0, "1.23E04"),
            ("0.00E+00", 0.0, "0.00E+00"),
            ("0.0E+0", 9.96, "1.0E+1"),
            ("0.00E+00", -12_345.0, "-1.23E+04"),
        ]);
    }

    #[test]
    fn numbers_shown_through_their_format_sections_colours_padding_and_fill() {
        assert_shown(&[
            ("0.00;(0.00)", -5.0, "(5.00)"),
            ("0.00;(0.00)", 5.0, "5.00"),
            ("0;-0;\"zero\"", 0.0, "zero"),
            ("0;-0;\"zero\";@", -3.0, "-3"),
            ("0;;", -3.0, ""),
            ("[Red]0.00", 1.5, "1.50"),
            ("0;[Red]0", -7.0, "7"),
            ("[Color 10]0", 7.0, "7"),
            ("[Blue][>100]0;[Red]0", 7.0, "7"),
            (
                "_(* #,##0_);_(* (#,##0);_(* \"-\"_);_(@_)",
                1_234.0,
                " 1,234 ",
            ),
            (
                "_(* #,##0_);_(* (#,##0);_(* \"-\"_);_(@_)",
                -1_234.0,
                " (1,234)",
            ),
            ("_(* #,##0_);_(* (#,##0);_(* \"-\"_);_(@_)", 0.0, " - "),
            ("**0", 5.0, "5"),
        ]);
    }

    /// A format ferry does not understand shows the number as General does, never a
    /// made-up rendering.
    #[test]
    fn formats_not_understood_show_as_general() {
        assert_shown(&[
            ("# ?/?", 0.5, "0.5"),
            ("[DBNum1]0", 12.0, "12"),
            ("0 yy", 12.0, "12"),
            ("0.0.0", 12.0, "12"),
            ("\"unclosed", 12.0, "12"),
            ("[Red", 12.0, "12"),
            ("0;0;0;0;0", 12.0, "12"),
            ("00.0E+0", 8_613_800_138_000.0, "8.613800138E+12"),
            ("0", f64::INFINITY, "inf"),
        ]);
    }

    proptest! {
        #[test]
        fn never_panics_on_any_format(code in ".{0,40}", value in any::<f64>()) {
            NumberFormat::parse(&code).format(value);
        }

        #[test]
        fn never_panics_on_format_like_codes(
            code in r#"[0#?.,%E+\-;"\\_*@\[\]<>=$a-zA-Z 0-9/()]{0,30}"#,
            value in prop_oneof![any::<f64>(), -1e20..1e20f64, -1e3..1e3f64],
        ) {
            NumberFormat::parse(&code).format(value);
        }
    }
}
