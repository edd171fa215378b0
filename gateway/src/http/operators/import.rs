//! Reading an operator import (CSV or XLSX) into checked operators, and writing the two
//! templates that the import accepts unchanged. Pure functions over bytes, so every rule of
//! the file format is unit tested here; the handler only reads the body and calls [`parse`].
//!
//! # Layout
//! - `from_csv` reads the CSV dialects spreadsheets write (delimiter, line endings,
//!   encodings) into numbered rows; `from_xlsx` reads a workbook's sheet into the same.
//! - This module judges those rows: the header, then each cell by its column's rule.
//!
//! Rows and columns are named as a spreadsheet shows them: a row's number is the one at the
//! left of the sheet (the header is row 1 unless blank rows precede it; a quoted cell with
//! line breaks is one row, as the spreadsheet shows it), a column is its header name (or
//! its letter when it has none). The file is all-or-nothing, so [`parse`] returns every
//! row error at once, in row order, rather than stopping at the first.

mod from_csv;
mod from_xlsx;
pub mod rows;

use std::fmt;

use serde::Serialize;
use storage::keys::AccessType;
use storage::operators::{self, NewOperator, OperatorInput};
use utoipa::ToSchema;

/// Largest import body: a few thousand rows fit many times over.
pub const MAX_BODY: usize = 1024 * 1024;
/// Most data rows (not counting the header) in one import.
pub const MAX_ROWS: usize = 5_000;
/// Most an XLSX may unpack to: a 1 MiB zip can otherwise expand a thousandfold.
pub const MAX_XLSX_UNPACKED: u64 = 32 * 1024 * 1024;
/// The columns, in template order. Only `name` is required.
pub const COLUMNS: [&str; 4] = ["name", "phone", "access_type", "send_sms_invite"];
/// The template's one example row (a valid Norwegian mobile number).
pub const EXAMPLE: [&str; 4] = ["Jane Doe", "+4791234567", "keypad_pin", "false"];

pub const CSV_TYPE: &str = "text/csv";
pub const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

impl Format {
    /// The format a `Content-Type` names (parameters such as `charset` ignored).
    pub fn from_content_type(raw: &str) -> Option<Format> {
        let essence = raw.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case(CSV_TYPE) {
            Some(Format::Csv)
        } else if essence.eq_ignore_ascii_case(XLSX_TYPE) {
            Some(Format::Xlsx)
        } else {
            None
        }
    }
}

/// One refusal, at a row and a column of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RowError {
    /// The row number the spreadsheet shows (the header is row 1 unless blank rows precede
    /// it; a quoted cell with line breaks is one row).
    pub row: usize,
    /// The column's header name, or its letter where it has no (known) header.
    pub column: String,
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "row {}, column {}: {}",
            self.row, self.column, self.message
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The file as a whole cannot be read (not CSV or XLSX, no header).
    #[error("{0}")]
    Unreadable(String),
    #[error("at most {MAX_ROWS} data rows per import (plus the header row)")]
    TooManyRows,
    #[error("the file has a header but no operator rows")]
    NoRows,
    /// Every refused cell; nothing is imported.
    #[error("{} rows have errors", .0.len())]
    Rows(Vec<RowError>),
    /// Picked row numbers that are no data row of the file (the header, a blank line, past
    /// the end).
    #[error("rows {} are not operator rows of the file", join_numbers(.0))]
    NotDataRows(Vec<usize>),
}

fn join_numbers(numbers: &[usize]) -> String {
    let shown: Vec<String> = numbers.iter().map(ToString::to_string).collect();
    shown.join(", ")
}

/// A non-empty cell as the file holds it, before its column's rule judges it.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    /// Text as typed (trimmed): every CSV field, an XLSX text cell, a formula showing text.
    Text(String),
    /// An XLSX cell typed as something other than text.
    Typed {
        kind: CellKind,
        /// The text the sheet shows for it (a date as `2024-01-06`, a number as typed).
        shown: String,
        /// The cell holds a formula and `shown` is its result.
        formula: bool,
    },
    /// A cell that cannot be read as text at all; the sentence says why, naming the cell.
    Unreadable(String),
}

/// What a typed XLSX cell holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CellKind {
    Number,
    Date,
    Duration,
    Boolean,
}

impl CellKind {
    fn noun(self) -> &'static str {
        match self {
            CellKind::Number => "a number",
            CellKind::Date => "a date",
            CellKind::Duration => "a duration",
            CellKind::Boolean => "a TRUE/FALSE value",
        }
    }
}

/// One non-empty row: its number as the sheet shows it and its cells by 0-based column.
#[derive(Debug, Clone, PartialEq)]
struct SheetRow {
    number: usize,
    cells: Vec<(usize, Cell)>,
}

/// Parses the whole file: every operator, or every error.
pub fn parse(format: Format, body: &[u8]) -> Result<Vec<NewOperator>, ImportError> {
    operators_from(&read_rows(format, body)?)
}

/// The file's non-empty rows, the header first.
fn read_rows(format: Format, body: &[u8]) -> Result<Vec<SheetRow>, ImportError> {
    match format {
        Format::Csv => from_csv::read(body),
        Format::Xlsx => from_xlsx::read(body),
    }
}

fn empty_file() -> ImportError {
    ImportError::Unreadable(format!(
        "the file is empty; it needs a header row ({})",
        COLUMNS.join(", ")
    ))
}

/// Keeps one more row than allowed, so "too many" is known without reading the rest.
fn push_row(rows: &mut Vec<SheetRow>, row: SheetRow) -> Result<(), ImportError> {
    if row.cells.is_empty() {
        return Ok(());
    }
    if rows.len() > MAX_ROWS {
        return Err(ImportError::TooManyRows);
    }
    rows.push(row);
    Ok(())
}

/// `0 -> A`, `25 -> Z`, `26 -> AA`: how a spreadsheet names a column.
pub fn column_letter(index: usize) -> String {
    let mut letters = Vec::new();
    let mut rest = index + 1;
    while rest > 0 {
        let digit = (rest - 1) % 26;
        letters.push(char::from(b'A' + digit as u8));
        rest = (rest - 1) / 26;
    }
    letters.iter().rev().collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Name,
    Phone,
    AccessType,
    SendSmsInvite,
}

impl Column {
    fn parse(header: &str) -> Option<Column> {
        match header.trim().to_ascii_lowercase().as_str() {
            "name" => Some(Column::Name),
            "phone" => Some(Column::Phone),
            "access_type" => Some(Column::AccessType),
            "send_sms_invite" => Some(Column::SendSmsInvite),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Column::Name => "name",
            Column::Phone => "phone",
            Column::AccessType => "access_type",
            Column::SendSmsInvite => "send_sms_invite",
        }
    }
}

/// The header's columns by 0-based index, or every refusal of the header.
fn header(row: &SheetRow) -> Result<Vec<(usize, Column)>, Vec<RowError>> {
    let mut columns: Vec<(usize, Column)> = Vec::new();
    let mut errors = Vec::new();
    let refuse = |column: String, message: String| RowError {
        row: row.number,
        column,
        message,
    };
    for (index, cell) in &row.cells {
        let text = match cell {
            Cell::Text(text) | Cell::Typed { shown: text, .. } => text,
            Cell::Unreadable(message) => {
                errors.push(refuse(column_letter(*index), message.clone()));
                continue;
            }
        };
        match Column::parse(text) {
            Some(column) if columns.iter().any(|(_, seen)| *seen == column) => {
                errors.push(refuse(text.clone(), "appears twice in the header".into()))
            }
            Some(column) => columns.push((*index, column)),
            None => errors.push(refuse(
                text.clone(),
                format!("unknown column; the columns are {}", COLUMNS.join(", ")),
            )),
        }
    }
    if errors.is_empty() && !columns.iter().any(|(_, column)| *column == Column::Name) {
        errors.push(refuse(
            "name".into(),
            format!(
                "the header row must name a name column (columns: {})",
                COLUMNS.join(", ")
            ),
        ));
    }
    if errors.is_empty() {
        Ok(columns)
    } else {
        Err(errors)
    }
}

fn flag(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "" | "false" | "no" | "n" | "0" => Some(false),
        "true" | "yes" | "y" | "1" | "x" => Some(true),
        _ => None,
    }
}

/// The text a column takes from a cell, or why it takes none. The text columns take text
/// only: a number, date or TRUE/FALSE cell is refused showing what the sheet shows, since
/// the spreadsheet has already changed what was typed (a phone's `+` and leading zeros are
/// gone from a number cell). The flag column reads any cell as the text it shows.
fn cell_text(column: Column, cell: &Cell, index: usize, row: usize) -> Result<String, String> {
    let (kind, shown, formula) = match cell {
        Cell::Text(text) => return Ok(text.clone()),
        Cell::Unreadable(message) => return Err(message.clone()),
        Cell::Typed { shown, .. } if column == Column::SendSmsInvite => return Ok(shown.clone()),
        Cell::Typed {
            kind,
            shown,
            formula,
        } => (*kind, shown, *formula),
    };
    let letter = column_letter(index);
    let what = if formula {
        format!("holds a formula whose result is {} ({shown})", kind.noun())
    } else {
        format!("holds {} ({shown})", kind.noun())
    };
    let fix = match column {
        Column::Phone => format!(
            "format column {letter} as Text and type the number with its + country code, e.g. {}",
            EXAMPLE[1]
        ),
        _ if formula => "make the formula's result text, or paste it as a value".to_owned(),
        _ => format!("format column {letter} as Text and type the value again"),
    };
    Err(format!("cell {letter}{row} {what}, not text; {fix}"))
}

/// One data row as an operator, or every refusal in it.
fn operator_from(
    row: &SheetRow,
    columns: &[(usize, Column)],
) -> Result<NewOperator, Vec<RowError>> {
    let mut input = OperatorInput::default();
    let mut errors = Vec::new();
    let refuse = |column: &str, message: String| RowError {
        row: row.number,
        column: column.to_owned(),
        message,
    };
    for (index, cell) in &row.cells {
        let Some((_, column)) = columns.iter().find(|(at, _)| at == index) else {
            errors.push(refuse(
                &column_letter(*index),
                "a value in a column without a header".into(),
            ));
            continue;
        };
        let text = match cell_text(*column, cell, *index, row.number) {
            Ok(text) => text,
            Err(message) => {
                errors.push(refuse(column.as_str(), message));
                continue;
            }
        };
        match column {
            Column::Name => input.name = text,
            Column::Phone => input.phone = Some(text),
            Column::AccessType => input.access_type = Some(text),
            Column::SendSmsInvite => match flag(&text) {
                Some(send) => input.send_sms_invite = send,
                None => errors.push(refuse(
                    column.as_str(),
                    format!("{text:?} is not true or false"),
                )),
            },
        }
    }
    let unreadable: Vec<&str> = errors.iter().map(|err| err.column.as_str()).collect();
    match operators::check(&input) {
        Ok(operator) if errors.is_empty() => Ok(operator),
        Ok(_) => Err(errors),
        Err(refused) => {
            let more: Vec<RowError> = refused
                .into_iter()
                // A cell already refused as unreadable is not refused again as missing.
                .filter(|err| !unreadable.contains(&err.field))
                .map(|err| refuse(err.field, err.message))
                .collect();
            errors.extend(more);
            errors.sort_by_key(|err| {
                COLUMNS
                    .iter()
                    .position(|name| *name == err.column)
                    .unwrap_or(COLUMNS.len())
            });
            Err(errors)
        }
    }
}

fn operators_from(rows: &[SheetRow]) -> Result<Vec<NewOperator>, ImportError> {
    let Some((head, data)) = rows.split_first() else {
        return Err(empty_file());
    };
    let columns = header(head).map_err(ImportError::Rows)?;
    if data.is_empty() {
        return Err(ImportError::NoRows);
    }
    if data.len() > MAX_ROWS {
        return Err(ImportError::TooManyRows);
    }
    operators_of(data, &columns)
}

/// The operators of `rows`, in row order: all of them, or every error of every row.
fn operators_of<'a>(
    rows: impl IntoIterator<Item = &'a SheetRow>,
    columns: &[(usize, Column)],
) -> Result<Vec<NewOperator>, ImportError> {
    let mut operators = Vec::new();
    let mut errors = Vec::new();
    for row in rows {
        match operator_from(row, columns) {
            Ok(operator) => operators.push(operator),
            Err(refused) => errors.extend(refused),
        }
    }
    if errors.is_empty() {
        Ok(operators)
    } else {
        Err(ImportError::Rows(errors))
    }
}

/// The CSV template: the header and one example row.
pub fn template_csv() -> Vec<u8> {
    let mut text = COLUMNS.join(",");
    text.push_str("\r\n");
    text.push_str(&EXAMPLE.join(","));
    text.push_str("\r\n");
    text.into_bytes()
}

/// The XLSX template: a bold header, one example row, a drop-down of the access types.
pub fn template_xlsx() -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{DataValidation, Format, Workbook};
    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();
    let sheet = workbook.add_worksheet();
    sheet.set_name(from_xlsx::SHEET_NAME)?;
    for (column, name) in (0u16..).zip(COLUMNS) {
        sheet.write_string_with_format(0, column, name, &bold)?;
        sheet.set_column_width(column, 22)?;
    }
    sheet.write_string(1, 0, EXAMPLE[0])?;
    // Text, not a number: a leading `+` must survive the spreadsheet.
    sheet.write_string(1, 1, EXAMPLE[1])?;
    sheet.write_string(1, 2, EXAMPLE[2])?;
    sheet.write_boolean(1, 3, false)?;
    let access_types = DataValidation::new().allow_list_strings(&[
        AccessType::DigitalKey.as_str(),
        AccessType::KeypadPin.as_str(),
        AccessType::DualidTag.as_str(),
    ])?;
    sheet.add_data_validation(1, 2, MAX_ROWS as u32, 2, &access_types)?;
    workbook.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str) -> Result<Vec<NewOperator>, ImportError> {
        parse(Format::Csv, text.as_bytes())
    }

    pub(super) fn row_errors(outcome: Result<Vec<NewOperator>, ImportError>) -> Vec<String> {
        match outcome {
            Err(ImportError::Rows(errors)) => errors.iter().map(ToString::to_string).collect(),
            other => panic!("expected row errors, got {other:?}"),
        }
    }

    #[test]
    fn content_types_pick_the_format() {
        assert_eq!(Format::from_content_type("text/csv"), Some(Format::Csv));
        assert_eq!(
            Format::from_content_type("Text/CSV; charset=utf-8"),
            Some(Format::Csv)
        );
        assert_eq!(Format::from_content_type(XLSX_TYPE), Some(Format::Xlsx));
        assert_eq!(Format::from_content_type("application/json"), None);
        assert_eq!(Format::from_content_type(""), None);
    }

    #[test]
    fn columns_are_lettered_like_a_spreadsheet() {
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
        assert_eq!(column_letter(701), "ZZ");
        assert_eq!(column_letter(702), "AAA");
    }

    #[test]
    fn the_csv_template_imports_unchanged() {
        let rows = parse(Format::Csv, &template_csv()).expect("template imports");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].name, "Jane Doe");
        assert_eq!(rows[0].phone.as_deref(), Some("+4791234567"));
        assert_eq!(rows[0].access_type, Some(AccessType::KeypadPin));
        assert!(!rows[0].send_sms_invite);
    }

    #[test]
    fn the_xlsx_template_imports_unchanged() {
        let body = template_xlsx().expect("template");
        let rows = parse(Format::Xlsx, &body).expect("template imports");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].phone.as_deref(), Some("+4791234567"));
        assert_eq!(rows[0].access_type, Some(AccessType::KeypadPin));
    }

    #[test]
    fn every_row_error_names_its_row_and_column() {
        let text = "Name,PHONE,access_type,send_sms_invite\n\
                    Ann,+4791234567,,\n\
                    ,+47 12,pin,maybe\n\
                    \n\
                    Bob,,,yes\n";
        assert_eq!(
            row_errors(csv(text)),
            [
                "row 3, column name: is required",
                "row 3, column phone: \"+47 12\" is not a valid E.164 number (+ country code and number, e.g. +4791234567)",
                "row 3, column access_type: \"pin\" is not one of digital_key, keypad_pin, dualid_tag",
                "row 3, column send_sms_invite: \"maybe\" is not true or false",
                "row 5, column phone: is required to send an SMS invitation",
            ]
        );
    }

    #[test]
    fn the_header_is_checked_first() {
        assert_eq!(
            row_errors(csv("name,email\nAnn,a@b.c\n")),
            ["row 1, column email: unknown column; the columns are name, phone, access_type, send_sms_invite"]
        );
        assert_eq!(
            row_errors(csv("phone\n+4791234567\n")),
            ["row 1, column name: the header row must name a name column (columns: name, phone, access_type, send_sms_invite)"]
        );
        assert_eq!(
            row_errors(csv("name,Name\nAnn,Ann\n")),
            ["row 1, column Name: appears twice in the header"]
        );
        assert_eq!(csv("name\n"), Err(ImportError::NoRows));
        assert!(matches!(csv(""), Err(ImportError::Unreadable(_))));
        assert_eq!(
            row_errors(csv("name\nAnn,extra\n")),
            ["row 2, column B: a value in a column without a header"]
        );
    }

    #[test]
    fn rows_count_blank_lines_but_not_quoted_line_breaks() {
        let text = "\n\
                    name,phone\r\n\
                    \"Ann\r\nLee\",+4791234567\r\n\
                    \r\n\
                    Bob,+47 12\r\n";
        // The quoted line break keeps Bob on row 5; a name with a line break in it is
        // refused on its own row (names have no control characters).
        assert_eq!(
            row_errors(csv(text)),
            [
                "row 3, column name: must not contain control characters (newlines, tabs, escapes)",
                "row 5, column phone: \"+47 12\" is not a valid E.164 number (+ country code and number, e.g. +4791234567)"
            ]
        );
    }

    #[test]
    fn row_limit_counts_data_rows_only() {
        let mut text = String::from("name\n");
        for i in 0..MAX_ROWS {
            text.push_str(&format!("op{i}\n"));
        }
        assert_eq!(csv(&text).expect("exactly at the limit").len(), MAX_ROWS);
        text.push_str("one more\n");
        assert_eq!(csv(&text), Err(ImportError::TooManyRows));
    }
}
