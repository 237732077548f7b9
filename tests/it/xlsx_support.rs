//! `report.xlsx` read back the way a person meets it: its cells through calamine, and
//! what calamine does not expose (the sheet that opens, the frozen header, the
//! autofilter, the column widths) from the sheet XML in the zip. Shared by the suites
//! that check a report workbook.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};

use calamine::{Data, Reader, Xlsx};

/// A report workbook, opened.
pub struct Book {
    path: PathBuf,
    /// Sheet names in tab order, each with its XML.
    sheets: Vec<(String, String)>,
    workbook_xml: String,
}

/// The part `name` of the zip at `path`, as text.
fn part(zip: &mut zip::ZipArchive<std::fs::File>, name: &str) -> String {
    let mut text = String::new();
    zip.by_name(name)
        .unwrap_or_else(|e| panic!("no {name} in the workbook: {e}"))
        .read_to_string(&mut text)
        .expect("a UTF-8 part");
    text
}

/// Each `<tag …>` (or `<tag …/>`) in `xml`, as its attributes.
fn elements(xml: &str, tag: &str) -> Vec<Vec<(String, String)>> {
    let open = format!("<{tag} ");
    xml.match_indices(&open)
        .map(|(at, _)| {
            let rest = &xml[at + open.len()..];
            let end = rest.find('>').expect("a closed tag");
            attributes(rest[..end].trim_end_matches('/'))
        })
        .collect()
}

fn attributes(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq].trim().to_string();
        let value_end = rest[eq + 2..].find('"').expect("a quoted value");
        out.push((name, rest[eq + 2..eq + 2 + value_end].to_string()));
        rest = &rest[eq + 2 + value_end + 1..];
    }
    out
}

fn attr<'a>(element: &'a [(String, String)], name: &str) -> Option<&'a str> {
    element
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

impl Book {
    pub fn open(path: &Path) -> Book {
        let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut zip = zip::ZipArchive::new(file).expect("report.xlsx is a zip");
        let workbook_xml = part(&mut zip, "xl/workbook.xml");
        let rels = part(&mut zip, "xl/_rels/workbook.xml.rels");
        let targets = elements(&rels, "Relationship");
        let sheets = elements(&workbook_xml, "sheet")
            .iter()
            .map(|sheet| {
                let name = attr(sheet, "name").expect("a sheet name").to_string();
                let id = attr(sheet, "r:id").expect("a sheet r:id");
                let target = targets
                    .iter()
                    .find(|r| attr(r, "Id") == Some(id))
                    .and_then(|r| attr(r, "Target"))
                    .expect("the sheet's part");
                let xml = part(&mut zip, &format!("xl/{target}"));
                (name, xml)
            })
            .collect();
        Book {
            path: path.to_path_buf(),
            sheets,
            workbook_xml,
        }
    }

    pub fn sheet_names(&self) -> Vec<&str> {
        self.sheets.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn xml(&self, sheet: &str) -> &str {
        self.sheets
            .iter()
            .find(|(n, _)| n == sheet)
            .map(|(_, x)| x.as_str())
            .unwrap_or_else(|| panic!("no sheet {sheet}"))
    }

    /// The sheet the workbook opens on: the workbook's active tab, which must also be
    /// the one and only selected tab.
    pub fn active_sheet(&self) -> &str {
        let view = &elements(&self.workbook_xml, "workbookView")[0];
        let active: usize = attr(view, "activeTab").map_or(0, |t| t.parse().expect("a number"));
        let selected: Vec<&str> = self
            .sheets
            .iter()
            .filter(|(_, xml)| {
                elements(xml, "sheetView")
                    .iter()
                    .any(|v| attr(v, "tabSelected") == Some("1"))
            })
            .map(|(n, _)| n.as_str())
            .collect();
        let name = self.sheets[active].0.as_str();
        assert_eq!(selected, [name], "the selected tab is the active one");
        name
    }

    /// The top-left cell of the scrolling pane below a frozen header, if any.
    pub fn frozen_at(&self, sheet: &str) -> Option<String> {
        elements(self.xml(sheet), "pane")
            .iter()
            .find(|p| attr(p, "state") == Some("frozen"))
            .map(|p| {
                assert_eq!(attr(p, "ySplit"), Some("1"), "{sheet}: frozen below row 1");
                assert_eq!(attr(p, "xSplit"), None, "{sheet}: no column frozen");
                attr(p, "topLeftCell").expect("topLeftCell").to_string()
            })
    }

    /// The range of the sheet's autofilter, if any.
    pub fn autofilter(&self, sheet: &str) -> Option<String> {
        elements(self.xml(sheet), "autoFilter")
            .first()
            .map(|a| attr(a, "ref").expect("ref").to_string())
    }

    /// Each column's width in characters (Excel's unit, without its cell padding), as
    /// far as the widths are set: `<col min max width>` unpacked.
    pub fn widths(&self, sheet: &str) -> Vec<u32> {
        let mut widths = Vec::new();
        for col in elements(self.xml(sheet), "col") {
            let number = |name: &str| -> f64 {
                attr(&col, name)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("{sheet}: <col> without {name}"))
            };
            let (min, max) = (number("min") as usize, number("max") as usize);
            assert_eq!(min, widths.len() + 1, "{sheet}: every column has a width");
            // rust_xlsxwriter stores width w as (7w + 5) pixels, written as pixels / 7.
            let chars = (number("width") - 5.0 / 7.0).round() as u32;
            widths.extend(std::iter::repeat_n(chars, max - min + 1));
        }
        widths
    }

    /// A sheet's cells through calamine, from A1.
    pub fn cells(&self, sheet: &str) -> Vec<Vec<Data>> {
        let mut workbook: Xlsx<_> = calamine::open_workbook(&self.path).expect("report.xlsx opens");
        let range = workbook
            .worksheet_range(sheet)
            .unwrap_or_else(|e| panic!("sheet {sheet}: {e}"));
        assert_eq!(range.start(), Some((0, 0)), "sheet {sheet} starts at A1");
        range.rows().map(<[Data]>::to_vec).collect()
    }

    /// The sheet as text, after checking the cell types a person relies on: the header
    /// all text, `ferry_row` a whole number, every other cell text (or blank).
    pub fn text_cells(&self, sheet: &str) -> Vec<Vec<String>> {
        let rows = self.cells(sheet);
        let row_col = rows[0]
            .iter()
            .position(|h| *h == Data::String("ferry_row".into()));
        rows.iter()
            .enumerate()
            .map(|(r, row)| {
                row.iter()
                    .enumerate()
                    .map(|(c, cell)| match cell {
                        Data::Float(f) if r > 0 && Some(c) == row_col && f.fract() == 0.0 => {
                            format!("{f}")
                        }
                        Data::String(s) if r == 0 || Some(c) != row_col => s.clone(),
                        Data::Empty if Some(c) != row_col => String::new(),
                        other => panic!(
                            "{sheet} row {} column {}: {other:?} is not the cell type a \
                             person gets there",
                            r + 1,
                            c + 1
                        ),
                    })
                    .collect()
            })
            .collect()
    }
}

/// What a sheet of `report.xlsx` holds for a report CSV (`records`, header first, with
/// its origin columns): `ferry_row`, the message (`ferry_error`, or `ferry_warning`
/// where a table has no error), the manifest's own columns, then ferry's other columns
/// in CSV order; rows in `ferry_row` order; padded to one width as a CSV is.
pub fn person_layout(records: &[Vec<String>]) -> Vec<Vec<String>> {
    let header = &records[0];
    let at = |name: &str| header.iter().position(|h| h == name);
    let message = at("ferry_error")
        .or_else(|| at("ferry_warning"))
        .expect("a message column");
    let row = at("ferry_row").expect("ferry_row");
    let ferry = |i: &usize| header[*i].starts_with("ferry_");
    let order: Vec<usize> = [row, message]
        .into_iter()
        .chain((0..header.len()).filter(|i| !ferry(i)))
        .chain((0..header.len()).filter(|i| ferry(i) && *i != row && *i != message))
        .collect();
    let mut body: Vec<&Vec<String>> = records[1..].iter().collect();
    body.sort_by_key(|r| r[row].parse::<u64>().expect("a ferry_row"));
    std::iter::once(header)
        .chain(body)
        .map(|r| {
            order
                .iter()
                .map(|&i| r.get(i).cloned().unwrap_or_default())
                .collect()
        })
        .collect()
}

/// How wide a text shows, in characters: its longest line, East Asian wide characters
/// (CJK, Hangul, full-width forms) counting two.
pub fn shown_width(text: &str) -> u32 {
    text.split('\n')
        .map(|line| {
            line.chars()
                .map(|c| {
                    let wide = matches!(u32::from(c), 0x1100..=0x115F | 0x2E80..=0xA4CF
                        | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6
                        | 0x20000..=0x3FFFD);
                    if wide {
                        2
                    } else {
                        1
                    }
                })
                .sum()
        })
        .max()
        .unwrap_or(0)
}

/// Checks everything a person sees in one data sheet of `book` against its report CSV
/// `records` (header first, origin columns included): the person layout, cell types and
/// row order, the header frozen, the autofilter over header and rows, and each column
/// as wide as its widest text (the header's with room for its filter button), between
/// 8 and 60 characters.
/// A table wider than a sheet is cut at Excel's last column.
pub fn assert_person_sheet(book: &Book, sheet: &str, records: &[Vec<String>]) {
    let mut want = person_layout(records);
    for row in &mut want {
        row.truncate(EXCEL_COLUMNS);
    }
    let width = want[0].len();
    let mut got = book.text_cells(sheet);
    for row in &mut got {
        row.resize(width, String::new());
    }
    assert_eq!(
        got, want,
        "sheet {sheet} holds its CSV in the person layout"
    );
    assert_eq!(
        book.frozen_at(sheet).as_deref(),
        Some("A2"),
        "{sheet}: header frozen"
    );
    let last = column_name(width - 1);
    assert_eq!(
        book.autofilter(sheet),
        Some(format!("A1:{last}{}", want.len())),
        "{sheet}: filter over the header and every row"
    );
    let fit: Vec<u32> = (0..width)
        .map(|c| {
            let header = shown_width(&want[0][c]) + 2;
            let cells = want[1..].iter().map(|r| shown_width(&r[c]));
            (cells.max().unwrap_or(0).max(header) + 1).clamp(8, 60)
        })
        .collect();
    assert_eq!(
        book.widths(sheet),
        fit,
        "{sheet}: columns as wide as they need"
    );
}

/// Columns in a sheet: A to XFD.
pub const EXCEL_COLUMNS: usize = 16_384;

/// `0` → `A`, `26` → `AA`.
pub fn column_name(mut col: usize) -> String {
    let mut name = Vec::new();
    loop {
        name.push(b'A' + (col % 26) as u8);
        if col < 26 {
            break;
        }
        col = col / 26 - 1;
    }
    name.reverse();
    String::from_utf8(name).expect("ASCII")
}
