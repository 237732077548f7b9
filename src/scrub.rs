//! Scrubbing: no credential ferry knows leaves the process through a vendor's words.
//! Vendors quote what they refuse ("token X is invalid"), in their JSON (where `/` may
//! come back as `\/`), in URLs (percent-encoded) and in Basic-auth style base64; and an
//! excerpt cut at 200 characters can end in the middle of a token.
//!
//! Two rules make that hold. Every form a secret can take (raw, JSON-escaped,
//! URL-encoded, base64 at each byte alignment) is searched for, and any run of
//! [`FRAGMENT`] or more characters of any of those forms counts as the secret, so a cut
//! secret is as hidden as a whole one. And text is scrubbed *before* it is cut:
//! [`Scrubber::excerpt`] never shows the start of a secret whose end it dropped.
//!
//! `send::Sender` owns the one scrubber of a run; every vendor answer, outcome and abort
//! message passes through it before it reaches a log, a report or the summary.

use std::collections::{BTreeSet, HashSet};

use base64::Engine;

use crate::config::Secret;

/// The shortest run of a secret's characters that is treated as the secret. Shorter
/// runs are common words and digits; 8 characters of a random token are not.
pub const FRAGMENT: usize = 8;

/// How much of an answer an excerpt looks at: enough for 200 characters of text.
const EXCERPT_SCAN: usize = 16 * 1024;

/// How many characters of an answer a message quotes.
pub const EXCERPT_CHARS: usize = 200;

/// What a secret is replaced with.
const MASK: &str = "***";

/// The credentials of a run, in every form they can come back in.
#[derive(Default)]
pub struct Scrubber {
    /// Every `FRAGMENT`-byte window of every form of every secret (the whole form when
    /// it is shorter).
    windows: HashSet<Vec<u8>>,
    /// The window lengths in `windows`.
    lengths: BTreeSet<usize>,
    /// The `FRAGMENT`-byte windows of secrets of at least `FRAGMENT` characters.
    long_windows: HashSet<Vec<u8>>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scrubber(***)")
    }
}

impl Scrubber {
    pub fn new() -> Scrubber {
        Scrubber::default()
    }

    /// Learns a secret; it stays known for the life of the scrubber (a token replaced
    /// by a new login can still be quoted back).
    pub fn add(&mut self, secret: &Secret) {
        let long = secret.expose().len() >= FRAGMENT;
        for form in forms(secret.expose()) {
            let width = form.len().min(FRAGMENT);
            if width == 0 {
                continue;
            }
            self.lengths.insert(width);
            // Matched whatever the case: a vendor, or a host name, may change it.
            for window in form.to_ascii_lowercase().as_bytes().windows(width) {
                self.windows.insert(window.to_vec());
                if long {
                    self.long_windows.insert(window.to_vec());
                }
            }
        }
    }

    /// Whether `text` holds a run of [`FRAGMENT`] characters of a secret. Shorter
    /// secrets (a 4-digit token, a 6-digit login code) do not count: their digits turn
    /// up in ids by chance, and an id is data, never rewritten (see `send`).
    pub fn holds_secret(&self, text: &str) -> bool {
        let text = text.to_ascii_lowercase();
        text.as_bytes()
            .windows(FRAGMENT)
            .any(|window| self.long_windows.contains(window))
    }

    /// `text` with every run that belongs to a secret replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mask = self.mask(text.as_bytes());
        render(text, &mask, text.len())
    }

    /// `: <the first 200 characters of the body, scrubbed, on one line>`, or nothing
    /// for an empty body. Only the start of the body is read, and scrubbing happens
    /// before the cut.
    pub fn excerpt(&self, body: &[u8]) -> String {
        let read = &body[..body.len().min(EXCERPT_SCAN)];
        let text = String::from_utf8_lossy(read);
        let mask = self.mask(text.as_bytes());
        // Past the end of what was read, a secret may go on: its first few characters
        // here would be shorter than a fragment, so the last few are dropped unseen.
        let cut_early = read.len() < body.len();
        let keep = if cut_early {
            text.len().saturating_sub(FRAGMENT - 1)
        } else {
            text.len()
        };
        let scrubbed: String = render(&text, &mask, keep).chars().map(printable).collect();
        let one_line = scrubbed.split_whitespace().collect::<Vec<_>>().join(" ");
        if one_line.is_empty() {
            return String::new();
        }
        let mut chars = one_line.chars();
        let short: String = chars.by_ref().take(EXCERPT_CHARS).collect();
        if chars.next().is_some() || cut_early {
            format!(": {short}…")
        } else {
            format!(": {short}")
        }
    }

    /// Which bytes of `text` belong to a secret.
    fn mask(&self, text: &[u8]) -> Vec<bool> {
        let text = &text.to_ascii_lowercase();
        let mut mask = vec![false; text.len()];
        for &width in &self.lengths {
            if width > text.len() {
                continue;
            }
            for start in 0..=text.len() - width {
                if self.windows.contains(&text[start..start + width]) {
                    mask[start..start + width].fill(true);
                }
            }
        }
        mask
    }
}

/// A character as vendor text may show it: a control character (an escape sequence
/// that would clear or retitle the terminal that prints the message) becomes a space.
pub fn printable(c: char) -> char {
    if c.is_control() {
        ' '
    } else {
        c
    }
}

/// `text[..keep]` with each run of masked characters (a character is masked when any
/// of its bytes is) replaced by one `***`.
fn render(text: &str, mask: &[bool], keep: usize) -> String {
    let mut out = String::with_capacity(keep.min(text.len()));
    let mut hiding = false;
    for (at, c) in text.char_indices() {
        if at + c.len_utf8() > keep {
            break;
        }
        if mask[at..at + c.len_utf8()].iter().any(|&m| m) {
            if !hiding {
                out.push_str(MASK);
            }
            hiding = true;
        } else {
            out.push(c);
            hiding = false;
        }
    }
    out
}

/// Every way `secret` is spelled when a vendor quotes it back.
pub fn forms(secret: &str) -> Vec<String> {
    if secret.is_empty() {
        return Vec::new();
    }
    let mut forms = vec![secret.to_string()];
    forms.extend(json_forms(secret));
    forms.extend(url_forms(secret));
    forms.extend(base64_forms(secret));
    forms.sort();
    forms.dedup();
    forms
}

/// As a JSON string's contents: serde's escaping, PHP's `\/`, and `\uXXXX` for
/// everything outside ASCII (PHP's and Python's default).
fn json_forms(secret: &str) -> Vec<String> {
    let plain = serde_json::to_string(secret).unwrap_or_default();
    let plain = plain
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(&plain)
        .to_string();
    let ascii: String = plain
        .chars()
        .flat_map(|c| {
            if c.is_ascii() {
                vec![c.to_string()]
            } else {
                let mut units = [0u16; 2];
                c.encode_utf16(&mut units)
                    .iter()
                    .map(|u| format!("\\u{u:04x}"))
                    .collect()
            }
        })
        .collect();
    let mut out = Vec::new();
    for form in [plain, ascii] {
        out.push(form.replace('/', "\\/"));
        out.push(form);
    }
    out
}

/// Percent-encoded (upper- and lower-case hex, every byte but the unreserved ones) and
/// form-encoded (`+` for a space).
fn url_forms(secret: &str) -> Vec<String> {
    let percent = |lower: bool| -> String {
        secret
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else if lower {
                    format!("%{b:02x}")
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    vec![percent(false), percent(true), form]
}

/// Base64 (standard and URL-safe alphabets). A secret inside a longer base64 text
/// (`user:token` in a Basic header) is encoded differently depending on where it
/// starts within a 3-byte group, so each of the three alignments is kept, trimmed to
/// the characters that depend on the secret alone.
fn base64_forms(secret: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut out = vec![STANDARD.encode(secret), URL_SAFE.encode(secret)];
    for engine in [STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
        for lead in 0..3usize {
            let mut bytes = vec![0u8; lead];
            bytes.extend_from_slice(secret.as_bytes());
            let encoded = engine.encode(&bytes);
            // Characters that carry bits of the lead bytes, and a last character that
            // shares its bits with whatever follows the secret.
            let skip = [0, 2, 3][lead];
            let drop_last = usize::from(bytes.len() % 3 != 0);
            let end = encoded.len().saturating_sub(drop_last);
            if end > skip && end - skip >= FRAGMENT {
                out.push(encoded[skip..end].to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrubber(secrets: &[&str]) -> Scrubber {
        let mut s = Scrubber::new();
        for secret in secrets {
            s.add(&Secret::new(*secret));
        }
        s
    }

    /// Review of issue 9: a vendor (or a host name, which ferry prints lowercased) may
    /// change a secret's case.
    #[test]
    fn a_secret_is_hidden_whatever_its_case() {
        let s = scrubber(&["Secret-Token-XYZ42"]);
        for text in [
            "token SECRET-TOKEN-XYZ42 refused",
            "token secret-token-xyz42 refused",
            "token sEcReT-tOkEn-XyZ42 refused",
        ] {
            assert_eq!(s.scrub(text), "token *** refused", "{text}");
        }
    }

    #[test]
    fn every_form_of_a_secret_is_hidden() {
        let s = scrubber(&["tok/en+value=42é"]);
        for text in [
            "token tok/en+value=42é refused",
            "token tok\\/en+value=42\\u00e9 refused",
            "token tok%2Fen%2Bvalue%3D42%C3%A9 refused",
            "token tok%2fen%2bvalue%3d42%c3%a9 refused",
            "token dG9rL2VuK3ZhbHVlPTQyw6k= refused",
        ] {
            let out = s.scrub(text);
            assert_eq!(out, "token *** refused", "{text}");
        }
    }

    /// An id is data: a short secret's digits in it are chance, a long secret's eight
    /// characters are the secret.
    #[test]
    fn only_a_secret_of_eight_characters_or_more_is_found_in_an_id() {
        let s = scrubber(&["2026", "260100", "QsTok-5d41c4ac806c"]);
        assert!(!s.holds_secret("20260100000001"));
        assert!(!s.holds_secret("QsTok-5"));
        assert!(s.holds_secret("id-qstok-5d41c4ac-1"));
        // The message still hides the short ones.
        assert_eq!(s.scrub("code 2026 refused"), "code *** refused");
    }

    #[test]
    fn a_fragment_of_eight_characters_is_the_secret_and_seven_are_not() {
        let s = scrubber(&["abcdefghijklmnop"]);
        assert_eq!(s.scrub("x cdefghij y"), "x *** y");
        assert_eq!(s.scrub("x cdefghi y"), "x cdefghi y");
    }

    #[test]
    fn the_excerpt_is_cut_after_scrubbing() {
        let secret = "sekret-token-0123456789abcdef";
        let s = scrubber(&[secret]);
        let body = format!("{}{secret} tail", "x".repeat(190));
        let excerpt = s.excerpt(body.as_bytes());
        assert!(!excerpt.contains("sekret-t"), "{excerpt}");
        assert!(excerpt.contains("***"), "{excerpt}");
    }

    #[test]
    fn a_long_body_is_read_only_in_part_and_never_shows_a_cut_secret() {
        let secret = "sekret-token-0123456789abcdef";
        let s = scrubber(&[secret]);
        // The secret straddles the end of what the excerpt reads.
        let mut body = " ".repeat(EXCERPT_SCAN - 5);
        body.push_str(secret);
        body.push_str(&"y".repeat(1000));
        assert_eq!(s.excerpt(body.as_bytes()), "");
        // Copies of the secret back to back, the last one cut by the read after five
        // characters: each whole copy is masked, and the five are dropped.
        let lead = (EXCERPT_SCAN - 5) % secret.len();
        let body = format!("{}{}", "x".repeat(lead), secret.repeat(600));
        let excerpt = s.excerpt(body.as_bytes());
        assert_eq!(excerpt, format!(": {}***…", "x".repeat(lead)));
    }

    #[test]
    fn multibyte_text_around_a_secret_stays_valid() {
        let s = scrubber(&["令牌-sekret-value-1"]);
        assert_eq!(s.scrub("错误：令牌-sekret-value-1 无效"), "错误：*** 无效");
    }

    #[test]
    fn without_secrets_text_is_unchanged() {
        assert_eq!(Scrubber::new().scrub("anything at all"), "anything at all");
        assert_eq!(Scrubber::new().excerpt(b"  a \n b  "), ": a b");
    }
}
