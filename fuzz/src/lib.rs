//! What the fuzz targets share: a manifest's bytes through ferry's reader
//! (`manifest::open_reader`, as `ferry validate -` reads standard input), every row
//! checked against the reader's promises, then through the validator of every kind.

use std::collections::HashMap;
use std::io::{Cursor, Write};
use std::path::PathBuf;
use std::sync::LazyLock;

use ferry::config::Config;
use ferry::kinds::{Columns, Ctx, Kind, Validator};
use ferry::manifest::{open_reader, Format, RawRow, Source};

pub const FORMATS: [Format; 5] = [
    Format::Csv,
    Format::Tsv,
    Format::Json,
    Format::Jsonl,
    Format::Xlsx,
];

/// The names `--encoding` accepts (`manifest::ACCEPTED_ENCODINGS`).
pub const ENCODINGS: [&str; 8] = [
    "utf-8",
    "gb18030",
    "gbk",
    "big5",
    "utf-16",
    "utf-16le",
    "utf-16be",
    "windows-1252",
];

/// The settings `validate` runs with: a time zone and a country code, as a real config
/// gives (the proptest in tests/it/manifest.rs uses the same).
static CONFIG: LazyLock<Config> = LazyLock::new(|| {
    Config::parse("[defaults]\ntimezone = \"Asia/Taipei\"\ncountry_code = \"886\"")
        .expect("the fuzz config parses")
});

/// A manifest's first byte chooses how the rest is read: the format (`byte % 5`) and,
/// for odd `byte / 5`, an `--encoding` (otherwise the encoding is detected).
pub fn choose(selector: u8) -> (Format, Option<&'static str>) {
    let format = FORMATS[usize::from(selector) % FORMATS.len()];
    let rest = usize::from(selector) / FORMATS.len();
    let encoding = (rest % 2 == 1).then(|| ENCODINGS[(rest / 2) % ENCODINGS.len()]);
    (format, encoding)
}

/// Reads `bytes` as a whole manifest and validates its rows as every kind. Panics
/// (which the fuzzer reports) on a panic inside ferry, or where the reader breaks a
/// promise of `manifest::RawRow` / `manifest::Manifest`. Returns how many rows the
/// validators checked (all kinds together), to see what a seed reaches.
pub fn read_and_validate(bytes: &[u8], format: Format, encoding: Option<&str>) -> usize {
    let source = Source {
        path: PathBuf::from("-"),
        format: Some(format),
        encoding: encoding.map(str::to_string),
        sheet: None,
    };
    let manifest = match open_reader(&source, Cursor::new(bytes)) {
        Ok(manifest) => manifest,
        Err(e) => {
            let _ = e.to_string();
            return 0;
        }
    };
    let header = manifest.header;
    let mut rows: Vec<RawRow> = Vec::new();
    let mut stream = manifest.rows;
    for row in stream.by_ref() {
        match row {
            Ok(row) => {
                assert_eq!(
                    row.cells.len(),
                    header.len(),
                    "row {} has {} cells for a header of {}",
                    row.row,
                    row.cells.len(),
                    header.len()
                );
                if let Some(last) = rows.last() {
                    assert!(row.row > last.row, "row {} after row {}", row.row, last.row);
                }
                rows.push(row);
            }
            Err(e) => {
                let _ = e.to_string();
                break;
            }
        }
    }
    assert!(stream.next().is_none(), "rows went on after an error");
    validate_every_kind(&header, &rows)
}

/// Each kind's validator over the rows: the header mapped as `validate` maps it, and,
/// where that fails (as it mostly does for fuzzed headers), mapped by position, so the
/// rules run on fuzzed cells whatever the header says.
fn validate_every_kind(header: &[String], rows: &[RawRow]) -> usize {
    let mut checked = 0;
    for kind in Kind::ALL {
        let aliases = CONFIG.columns.get(&kind).cloned().unwrap_or_default();
        let columns = Columns::map(kind, header, &aliases, &["eventId"]).or_else(|_| {
            let by_position: HashMap<String, Vec<String>> = kind
                .fields()
                .iter()
                .zip(header)
                .map(|(field, name)| (field.to_string(), vec![name.clone()]))
                .collect();
            Columns::map(kind, header, &by_position, &["eventId"])
        });
        let Ok(columns) = columns else {
            continue;
        };
        let ctx = Ctx {
            timezone: CONFIG.timezone,
            country_code: CONFIG.country_code,
            event_id: Some(542_818),
        };
        let mut validator = Validator::new(columns, ctx);
        checked += rows.len();
        for row in rows {
            match validator.check(row.row, &row.cells, row.defects.clone()) {
                Ok(valid) => {
                    let _ = format!("{valid:?}");
                }
                Err(rejected) => {
                    assert!(
                        !rejected.problems.is_empty(),
                        "row {} rejected without a problem",
                        row.row
                    );
                }
            }
        }
    }
    checked
}

/// Sheet XML, then optionally shared strings and styles, split at 0xFF (a byte UTF-8
/// text never holds), as the `xlsx_parts` target reads its input.
pub const PART_SEPARATOR: u8 = 0xFF;

/// A workbook of one sheet whose parts are `parts` (sheet, shared strings, styles; at
/// most three are used), the rest of the package valid, stored uncompressed.
pub fn xlsx_from_parts<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut parts = parts.into_iter();
    let sheet = parts.next().unwrap_or_default();
    let shared = parts.next();
    let styles = parts.next();
    let mut types = String::from(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>"#,
    );
    let mut rels = String::from(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>"#,
    );
    if shared.is_some() {
        types.push_str(r#"<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>"#);
        rels.push_str(r#"<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>"#);
    }
    if styles.is_some() {
        types.push_str(r#"<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>"#);
        rels.push_str(r#"<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>"#);
    }
    types.push_str("</Types>");
    rels.push_str("</Relationships>");
    let mut files: Vec<(&str, &[u8])> = vec![
        ("[Content_Types].xml", types.as_bytes()),
        (
            "_rels/.rels",
            br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
        ),
        (
            "xl/workbook.xml",
            br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
        ),
        ("xl/_rels/workbook.xml.rels", rels.as_bytes()),
        ("xl/worksheets/sheet1.xml", sheet),
    ];
    if let Some(shared) = shared {
        files.push(("xl/sharedStrings.xml", shared));
    }
    if let Some(styles) = styles {
        files.push(("xl/styles.xml", styles));
    }
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in files {
        zip.start_file(name, options).expect("zip entry");
        zip.write_all(bytes).expect("zip write");
    }
    zip.finish().expect("zip finish").into_inner()
}
