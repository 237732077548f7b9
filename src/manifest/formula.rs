//! The formula guard, one rule both ways: a report cell a spreadsheet would run as a
//! formula is written with a leading `'`, and a report fed back as a manifest has that
//! `'` taken off again, so a fixed `failed.csv` reads like the original.

/// A cell a spreadsheet would run as a formula gets a leading `'`. Phone numbers in
/// international form (`+886 911 211 211`) and plain negative numbers are data, not
/// formulas, and stay as they are.
pub fn guard(cell: &str) -> std::borrow::Cow<'_, str> {
    let Some(first) = cell.chars().next() else {
        return cell.into();
    };
    let risky = matches!(
        first,
        '=' | '+' | '-' | '@' | '\t' | '\r' | '＝' | '＋' | '－' | '＠'
    );
    if !risky || looks_like_number(cell) {
        return cell.into();
    }
    format!("'{cell}").into()
}

/// The inverse of `guard`, for reading a report back as a manifest: a `'` that
/// the guard would have added is taken off again.
pub fn unguard(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if guard(rest) != rest => rest,
        _ => cell,
    }
}

fn looks_like_number(cell: &str) -> bool {
    let rest = &cell[cell.chars().next().map_or(0, char::len_utf8)..];
    let sign_ok = cell.starts_with('+') || cell.starts_with('-');
    sign_ok
        && !rest.is_empty()
        && rest.chars().any(|c| c.is_ascii_digit())
        && rest
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_guard_neutralises_formulas_but_keeps_phone_numbers() {
        let cases = [
            ("=1+1", "'=1+1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
            ("-2+3", "'-2+3"),
            ("\tx", "'\tx"),
            ("+886911211211", "+886911211211"),
            ("+886 911-211 211", "+886 911-211 211"),
            ("-12.5", "-12.5"),
            ("plain", "plain"),
            ("", ""),
            ("+", "'+"),
        ];
        for (input, want) in cases {
            assert_eq!(guard(input), want, "input {input:?}");
        }
    }
}
