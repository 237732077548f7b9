//! Turning a manifest's bytes into UTF-8 for the CSV and JSON parsers.
//!
//! Spreadsheet exports come in the local code page (GB18030/GBK, Big5) or UTF-16, and a
//! wrong guess produces mojibake that then travels to a vendor. So ferry never guesses
//! silently: a byte-order mark is trusted, `--encoding` is obeyed, and otherwise the file
//! must look like UTF-8 in its first 64 KiB, or opening fails with an error that names the
//! likely encoding. Bytes that still fail to decode later in the file are replaced by
//! U+FFFD and reported on their row (`invalid_utf8`) rather than aborting a long run.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use encoding_rs::{CoderResult, Decoder, DecoderResult};

use super::{ManifestError, Unreadable};

/// How much of the file is checked before reading starts.
pub(crate) const SNIFF_WINDOW: usize = 64 * 1024;

/// The names `--encoding` accepts, for messages.
pub const ACCEPTED_ENCODINGS: &str =
    "utf-8, gb18030, gbk, big5, utf-16, utf-16le, utf-16be, windows-1252";

/// An encoding named by `--encoding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    Utf8,
    Gb18030,
    Big5,
    /// UTF-16 whose byte order the BOM decides (little-endian without one, as Windows
    /// writes it).
    Utf16,
    Utf16Le,
    Utf16Be,
    /// Western European Excel's "CSV" (and what `latin1` means in practice, as WHATWG
    /// maps it).
    Windows1252,
}

impl Encoding {
    /// Reads an `--encoding` value: case, `-` and `_` do not matter.
    pub(crate) fn parse(name: &str) -> Result<Encoding, ManifestError> {
        let key: String = name
            .trim()
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .flat_map(char::to_lowercase)
            .collect();
        Ok(match key.as_str() {
            "utf8" => Encoding::Utf8,
            // encoding_rs decodes GBK with the GB18030 decoder, as WHATWG specifies: GBK is
            // a subset, so the one decoder reads both.
            "gb18030" | "gbk" => Encoding::Gb18030,
            "big5" => Encoding::Big5,
            "utf16" => Encoding::Utf16,
            "utf16le" => Encoding::Utf16Le,
            "utf16be" => Encoding::Utf16Be,
            "windows1252" | "cp1252" | "latin1" | "iso88591" => Encoding::Windows1252,
            _ => {
                return Err(ManifestError::UnknownEncoding {
                    name: name.to_string(),
                })
            }
        })
    }
}

/// A manifest's text as a stream of UTF-8 bytes, BOM removed.
pub(crate) struct Text {
    pub reader: Box<dyn Read + Send>,
    /// The bytes are passed through undecoded: each cell must still be checked for UTF-8.
    pub raw_utf8: bool,
    /// Set once the decoder has replaced undecodable bytes with U+FFFD.
    pub replaced: Arc<AtomicBool>,
    /// The source encoding, for messages (`UTF-8`, `GB18030`, ...).
    pub label: &'static str,
}

/// Opens `file` as text. `lossy` asks for UTF-8 to be decoded too (invalid bytes become
/// U+FFFD and set `replaced`), for parsers that cannot take invalid UTF-8 (serde_json);
/// without it UTF-8 is passed through as bytes (`raw_utf8`), for the CSV reader that
/// checks cell by cell.
pub(crate) fn open_text(
    path: &str,
    mut file: impl Read + Send + 'static,
    requested: Option<Encoding>,
    lossy: bool,
) -> Result<Text, ManifestError> {
    let mut window = Vec::with_capacity(SNIFF_WINDOW);
    (&mut file)
        .take(SNIFF_WINDOW as u64)
        .read_to_end(&mut window)
        .map_err(|source| ManifestError::Io {
            path: path.to_string(),
            source,
        })?;
    let at_eof = window.len() < SNIFF_WINDOW;
    if window.is_empty() {
        return Err(unreadable(path, Unreadable::Empty));
    }

    let (bom, bom_len) = match window.as_slice() {
        [0xEF, 0xBB, 0xBF, ..] => (Some(Encoding::Utf8), 3),
        [0xFF, 0xFE, ..] => (Some(Encoding::Utf16Le), 2),
        [0xFE, 0xFF, ..] => (Some(Encoding::Utf16Be), 2),
        _ => (None, 0),
    };
    window.drain(..bom_len);
    if window.is_empty() && at_eof {
        return Err(unreadable(path, Unreadable::OnlyByteOrderMark));
    }

    // A byte-order mark is the file's own word on its encoding, stronger than a flag.
    let encoding = match (bom, requested) {
        (Some(bom), _) => bom,
        (None, Some(Encoding::Utf16)) => Encoding::Utf16Le,
        (None, Some(requested)) => requested,
        (None, None) => {
            sniff(path, &window, at_eof)?;
            Encoding::Utf8
        }
    };

    let replaced = Arc::new(AtomicBool::new(false));
    let rest = io::Cursor::new(window).chain(file);
    let (target, label): (&'static encoding_rs::Encoding, &'static str) = match encoding {
        Encoding::Utf8 => (encoding_rs::UTF_8, "UTF-8"),
        Encoding::Gb18030 => (encoding_rs::GB18030, "GB18030"),
        Encoding::Big5 => (encoding_rs::BIG5, "Big5"),
        Encoding::Utf16 | Encoding::Utf16Le => (encoding_rs::UTF_16LE, "UTF-16LE"),
        Encoding::Utf16Be => (encoding_rs::UTF_16BE, "UTF-16BE"),
        Encoding::Windows1252 => (encoding_rs::WINDOWS_1252, "windows-1252"),
    };
    if encoding == Encoding::Utf8 && !lossy {
        return Ok(Text {
            reader: Box::new(rest),
            raw_utf8: true,
            replaced,
            label,
        });
    }
    let reader = DecodeReader::new(
        rest,
        target.new_decoder_without_bom_handling(),
        replaced.clone(),
    );
    Ok(Text {
        reader: Box::new(reader),
        raw_utf8: false,
        replaced,
        label,
    })
}

fn unreadable(path: &str, why: Unreadable) -> ManifestError {
    ManifestError::Unreadable {
        path: path.to_string(),
        why,
    }
}

/// Checks that a file opened without `--encoding` looks like UTF-8 text.
fn sniff(path: &str, window: &[u8], at_eof: bool) -> Result<(), ManifestError> {
    if window.starts_with(b"PK\x03\x04") {
        return Err(unreadable(path, Unreadable::Zip));
    }
    if window.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        return Err(unreadable(path, Unreadable::XlsBytes));
    }
    let bad_at = match std::str::from_utf8(window) {
        Ok(_) => None,
        // A character cut in two by the window's edge is not an error.
        Err(e) if e.error_len().is_none() && !at_eof => None,
        Err(e) => Some(e.valid_up_to()),
    };
    let Some(bad_at) = bad_at else {
        return check_utf16_without_bom(path, window);
    };
    let line = 1 + window[..bad_at].iter().filter(|b| **b == b'\n').count();
    Err(unreadable(
        path,
        Unreadable::NotUtf8 {
            line,
            guess: guess_cjk(window, at_eof),
            byte: window[bad_at],
        },
    ))
}

/// UTF-16 text without a BOM is valid UTF-8 (ASCII with a NUL between letters), so it
/// passes the UTF-8 check; the NULs give it away.
fn check_utf16_without_bom(path: &str, window: &[u8]) -> Result<(), ManifestError> {
    if window.len() < 4 {
        return Ok(());
    }
    let nul_even = window.iter().step_by(2).filter(|b| **b == 0).count();
    let nul_odd = window
        .iter()
        .skip(1)
        .step_by(2)
        .filter(|b| **b == 0)
        .count();
    let half = window.len() / 2;
    let order = if nul_odd * 2 > half && nul_odd > nul_even * 4 {
        "utf-16le"
    } else if nul_even * 2 > half && nul_even > nul_odd * 4 {
        "utf-16be"
    } else if (nul_even + nul_odd) * 4 > window.len() {
        return Err(unreadable(path, Unreadable::NulBytes));
    } else {
        return Ok(());
    };
    Err(unreadable(path, Unreadable::Utf16WithoutBom { order }))
}

#[derive(Debug, PartialEq, Eq)]
pub enum Guess {
    Gb18030,
    Big5,
    Windows1252,
    Either,
    Unknown,
}

/// Decides between GB18030 and Big5: the one that decodes without errors, or when both
/// do, the one whose text holds clearly more of the characters that Chinese manifests
/// are made of. Text decoded with the wrong table is a scatter of rare characters.
fn guess_cjk(window: &[u8], at_eof: bool) -> Guess {
    if looks_single_byte(window) {
        return Guess::Windows1252;
    }
    let gb = decode_strict(encoding_rs::GB18030, window, at_eof);
    let big5 = decode_strict(encoding_rs::BIG5, window, at_eof);
    match (gb, big5) {
        (None, None) => Guess::Unknown,
        (Some(_), None) => Guess::Gb18030,
        (None, Some(_)) => Guess::Big5,
        (Some(gb), Some(big5)) => {
            let (gb, big5) = (common_score(&gb), common_score(&big5));
            if gb > 0 && gb >= big5 * 2 && gb > big5 {
                Guess::Gb18030
            } else if big5 > 0 && big5 >= gb * 2 && big5 > gb {
                Guess::Big5
            } else {
                Guess::Either
            }
        }
    }
}

/// Whether the bytes past ASCII stand mostly alone (`B\xE9atrice`, `K\xF6ln`), as a
/// single-byte code page writes accented letters, rather than in the pairs and runs of
/// GB18030 or Big5 text, whose characters are two bytes each.
fn looks_single_byte(window: &[u8]) -> bool {
    let high = |i: usize| window.get(i).is_some_and(|b| *b >= 0x80);
    let (mut all, mut alone) = (0usize, 0usize);
    for i in 0..window.len() {
        if high(i) {
            all += 1;
            if !high(i + 1) && (i == 0 || !high(i - 1)) {
                alone += 1;
            }
        }
    }
    all > 0 && alone * 4 > all * 3
}

fn decode_strict(
    encoding: &'static encoding_rs::Encoding,
    bytes: &[u8],
    last: bool,
) -> Option<String> {
    let mut decoder = encoding.new_decoder_without_bom_handling();
    let capacity = decoder.max_utf8_buffer_length_without_replacement(bytes.len())?;
    let mut text = String::with_capacity(capacity);
    let (result, _read) = decoder.decode_to_string_without_replacement(bytes, &mut text, last);
    match result {
        DecoderResult::InputEmpty => Some(text),
        DecoderResult::OutputFull | DecoderResult::Malformed(_, _) => None,
    }
}

/// Frequent characters of Chinese text and of the names, places and column titles in
/// manifests, in simplified and traditional forms.
const COMMON_CJK: &str = "的一是不了人在有我他这這中大来來上国國个個到说說们們为為子和你地出道也时時年\
    得就那要下以生会會自着著去之过過家学學对對可她里裡后後小么麼心多天而能好都然没沒日于於起还還发發成事只\
    作当當想看文无無开開手十用主行方又如前所本见見经經头頭面公同三已老从從动動两兩长長知民样樣现現分将將\
    外但身些与與高意进進把法此实實回二理美点點月明其种種声聲全工己话話儿兒者向情部正名定女问問力机機给給\
    等几幾很业業最间間新什打便位因重被走电電四第门門相次东東政海口使教西再平真听聽世气氣信北少关關并內\
    加化由却卻代军軍产產入先山五太水万萬市眼体體别別处處总總才场場师師书書比住员員九笑性通目华華报報立马\
    馬命张張活难難神数數件安表原车車白应應路期叫死常提感金何更反合放做系计計司号號姓址区區省县縣镇鎮街\
    道楼樓室号码碼王李刘劉陈陳杨楊赵趙黄黃周吴吳徐孙孫胡朱高林何郭罗羅梁宋郑鄭谢謝韩韓唐冯馮于董萧蕭程\
    曹袁邓鄧许許傅沈曾彭吕呂苏蘇卢盧蒋蔣蔡贾賈丁魏薛叶葉阎閻余潘杜戴夏钟鐘汪田任姜范方石姚谭譚廖邹鄒熊\
    金陆陸郝孔白崔康毛邱秦江史顾顧侯邵孟龙龍万段雷钱錢汤湯尹黎易常武乔喬贺賀赖賴龚龔文手邮郵箱客户戶\
    联聯系统統备備注单單务務预預约約会議议议时間任务務类類型状狀态態编編码碼部门門客服电话話座席坐号\
    北京上海广廣州深圳台臺湾灣香港澳杭南成都重庆慶武汉漢西安天津苏州蘇州高雄新竹桃园園有限股份科技公司\
    集团團银銀行保险險医醫院学校大学學";

fn common_score(text: &str) -> usize {
    text.chars()
        .filter(|c| !c.is_ascii() && COMMON_CJK.contains(*c))
        .count()
}

/// A streaming decoder from any encoding_rs encoding to UTF-8 that remembers whether it
/// had to replace anything (encoding_rs_io's reader does not tell).
struct DecodeReader<R> {
    inner: R,
    decoder: Decoder,
    input: Vec<u8>,
    in_start: usize,
    in_end: usize,
    input_done: bool,
    output: Vec<u8>,
    out_start: usize,
    out_end: usize,
    finished: bool,
    replaced: Arc<AtomicBool>,
}

const DECODE_CHUNK: usize = 16 * 1024;

impl<R: Read> DecodeReader<R> {
    fn new(inner: R, decoder: Decoder, replaced: Arc<AtomicBool>) -> Self {
        DecodeReader {
            inner,
            decoder,
            input: vec![0; DECODE_CHUNK],
            in_start: 0,
            in_end: 0,
            input_done: false,
            // Room for any chunk: UTF-16 and the CJK encodings at most triple in UTF-8.
            output: vec![0; DECODE_CHUNK * 3 + 16],
            out_start: 0,
            out_end: 0,
            finished: false,
            replaced,
        }
    }
}

impl<R: Read> Read for DecodeReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.out_start < self.out_end {
                let n = buf.len().min(self.out_end - self.out_start);
                buf[..n].copy_from_slice(&self.output[self.out_start..self.out_start + n]);
                self.out_start += n;
                return Ok(n);
            }
            if self.finished || buf.is_empty() {
                return Ok(0);
            }
            if self.in_start == self.in_end && !self.input_done {
                let n = loop {
                    match self.inner.read(&mut self.input) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                };
                self.in_start = 0;
                self.in_end = n;
                self.input_done = n == 0;
            }
            let last = self.input_done;
            let (result, read, written, replaced) = self.decoder.decode_to_utf8(
                &self.input[self.in_start..self.in_end],
                &mut self.output,
                last,
            );
            self.in_start += read;
            self.out_start = 0;
            self.out_end = written;
            if replaced {
                self.replaced.store(true, Ordering::Relaxed);
            }
            if last && result == CoderResult::InputEmpty {
                self.finished = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(encoding: &'static encoding_rs::Encoding, bytes: &[u8]) -> (String, bool) {
        let flag = Arc::new(AtomicBool::new(false));
        let mut reader = DecodeReader::new(
            bytes,
            encoding.new_decoder_without_bom_handling(),
            flag.clone(),
        );
        let mut out = String::new();
        reader
            .read_to_string(&mut out)
            .expect("decoding never fails");
        (out, flag.load(Ordering::Relaxed))
    }

    #[test]
    fn decode_reader_handles_chunk_edges_and_replacements() {
        let text = "姓名,手机\n".repeat(5000);
        let (gb, _, _) = encoding_rs::GB18030.encode(&text);
        assert_eq!(decode_all(encoding_rs::GB18030, &gb), (text.clone(), false));
        let mut bad = gb.into_owned();
        bad.push(0xFF);
        let (out, replaced) = decode_all(encoding_rs::GB18030, &bad);
        assert!(replaced);
        assert!(out.ends_with('\u{FFFD}'));
        // A lone lead byte at the very end is flushed as a replacement, not lost.
        let (out, replaced) = decode_all(encoding_rs::UTF_8, b"ab\xE4");
        assert_eq!(out, "ab\u{FFFD}");
        assert!(replaced);
    }

    #[test]
    fn guesses_between_gb18030_and_big5() {
        let simplified = "姓名,手机,公司\n张三,13800138000,北京科技有限公司\n";
        let traditional = "姓名,手機,公司\n陳大文,0912345678,台北科技股份有限公司\n";
        let (gb, _, _) = encoding_rs::GB18030.encode(simplified);
        let (big5, _, _) = encoding_rs::BIG5.encode(traditional);
        assert_eq!(guess_cjk(&gb, true), Guess::Gb18030);
        assert_eq!(guess_cjk(&big5, true), Guess::Big5);
    }

    #[test]
    fn encoding_names() {
        assert_eq!(Encoding::parse("GBK").ok(), Some(Encoding::Gb18030));
        assert_eq!(Encoding::parse("UTF_16le").ok(), Some(Encoding::Utf16Le));
        assert_eq!(Encoding::parse("utf8").ok(), Some(Encoding::Utf8));
        assert_eq!(Encoding::parse("CP1252").ok(), Some(Encoding::Windows1252));
        assert_eq!(Encoding::parse("latin1").ok(), Some(Encoding::Windows1252));
        assert!(Encoding::parse("latin2").is_err());
    }
}
