//! `report.xlsx`: the CSV tables as sheets plus a summary sheet, every cell stored as
//! text so phone numbers, ids and leading zeros survive a round trip through Excel.
//! Built from the finished CSVs in constant-memory mode, so its size does not grow
//! ferry's memory.

use std::path::Path;

use rust_xlsxwriter::{Format, Workbook, XlsxError};

use super::{Summary, Table};

/// Excel's limits: a sheet has at most 1,048,576 rows, a cell at most 32,767 characters.
const MAX_ROWS: u32 = 1_048_576;
const MAX_CELL_CHARS: usize = 32_767;

pub fn write(dir: &Path, tables: &[Table], summary: &Summary, out: &Path) -> Result<(), XlsxError> {
    let mut workbook = Workbook::new();
    let text = Format::new().set_num_format("@");
    for table in tables {
        let sheet = workbook.add_worksheet_with_constant_memory()?;
        sheet.set_name(table.name())?;
        let path = dir.join(format!("{}.csv", table.name()));
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_path(&path)
            .map_err(|e| XlsxError::IoError(std::io::Error::other(e.to_string())))?;
        let mut record = csv::StringRecord::new();
        let mut row = 0u32;
        while reader
            .read_record(&mut record)
            .map_err(|e| XlsxError::IoError(std::io::Error::other(e.to_string())))?
        {
            if row == MAX_ROWS - 1 {
                let note = format!(
                    "… more rows than a sheet can hold; see {}.csv",
                    table.name()
                );
                sheet.write_string_with_format(row, 0, note, &text)?;
                break;
            }
            for (col, cell) in record.iter().enumerate() {
                let cell = if row == 0 && col == 0 {
                    cell.trim_start_matches('\u{feff}')
                } else {
                    cell
                };
                // The CSV's formula guard is for CSV readers; a text cell is never a formula.
                let cell = super::unguard_formula(cell);
                let cell = truncate_chars(cell, MAX_CELL_CHARS);
                sheet.write_string_with_format(row, col as u16, cell, &text)?;
            }
            row += 1;
        }
    }
    let sheet = workbook.add_worksheet();
    sheet.set_name("summary")?;
    let value =
        serde_json::to_value(summary).map_err(|e| XlsxError::ParameterError(e.to_string()))?;
    let mut rows = Vec::new();
    flatten("", &value, &mut rows);
    for (i, (key, val)) in rows.iter().enumerate() {
        sheet.write_string_with_format(i as u32, 0, key, &text)?;
        sheet.write_string_with_format(i as u32, 1, val, &text)?;
    }
    workbook.save(out)
}

fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `{"counts": {"total": 3}}` → `counts.total = 3`.
fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        serde_json::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        serde_json::Value::Null => out.push((prefix.to_string(), String::new())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}
