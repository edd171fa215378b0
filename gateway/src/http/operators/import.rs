//! Reading an operator import (CSV or XLSX) into checked operators, and writing the two
//! templates that the import accepts unchanged. Pure functions over bytes, so every rule of
//! the file format is unit tested here; the handler only reads the body and calls [`parse`].
//!
//! Rows and columns are named as a spreadsheet shows them: the header is row 1, a column
//! is its header name (or its letter when it has none). The file is all-or-nothing, so
//! [`parse`] returns every row error at once rather than stopping at the first.

use std::fmt;
use std::io::{Cursor, Read};

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
    /// 1-based; the header is row 1.
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
}

/// A cell's text, or why the cell cannot be read (a spreadsheet error such as `#N/A`).
type CellText = Result<String, String>;

/// One non-empty row: its 1-based number and its non-empty cells by 0-based column.
#[derive(Debug, Clone, PartialEq)]
struct SheetRow {
    number: usize,
    cells: Vec<(usize, CellText)>,
}

/// Parses the whole file: every operator, or every error.
pub fn parse(format: Format, body: &[u8]) -> Result<Vec<NewOperator>, ImportError> {
    let rows = match format {
        Format::Csv => read_csv(body)?,
        Format::Xlsx => read_xlsx(body)?,
    };
    operators_from(&rows)
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

/// Spreadsheets in comma-decimal locales export `;`-separated CSV; the header line tells.
fn delimiter(body: &[u8]) -> u8 {
    let first_line = body.split(|&b| b == b'\n').next().unwrap_or(body);
    let count = |wanted: u8| first_line.iter().filter(|&&b| b == wanted).count();
    [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|&candidate| (count(candidate), candidate == b','))
        .unwrap_or(b',')
}

/// Spreadsheet row numbers of CSV records. A spreadsheet shows a blank line as a row and a
/// line break inside a quoted field as part of its cell, so a record's row is the previous
/// record's, plus the line breaks since its start, minus those inside its fields.
#[derive(Debug)]
struct RowNumbers<'a> {
    body: &'a [u8],
    last_start: usize,
    last_row: usize,
    last_inner: usize,
}

impl<'a> RowNumbers<'a> {
    fn new(body: &'a [u8]) -> Self {
        RowNumbers {
            body,
            last_start: 0,
            last_row: 1,
            last_inner: 0,
        }
    }

    /// `start` is where the reader began the record; the blank lines it skipped first are
    /// rows of their own.
    fn row(&mut self, start: usize, inner_line_breaks: usize) -> usize {
        let mut start = start.clamp(self.last_start, self.body.len());
        while matches!(self.body.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        let between = self.body[self.last_start..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        let row = (self.last_row + between)
            .saturating_sub(self.last_inner)
            .max(1);
        self.last_start = start;
        self.last_row = row;
        self.last_inner = inner_line_breaks;
        row
    }
}

fn read_csv(body: &[u8]) -> Result<Vec<SheetRow>, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter(body))
        .from_reader(body);
    let mut rows = Vec::new();
    let mut numbers = RowNumbers::new(body);
    let mut record = csv::StringRecord::new();
    loop {
        let before = reader.position().byte();
        match reader.read_record(&mut record) {
            Ok(false) => return Ok(rows),
            Ok(true) => {
                let start = record.position().map_or(before, |p| p.byte()) as usize;
                let inner = record.iter().map(|field| field.matches('\n').count()).sum();
                let number = numbers.row(start, inner);
                let cells = record
                    .iter()
                    .enumerate()
                    .map(|(column, text)| (column, text.trim()))
                    .filter(|(_, text)| !text.is_empty())
                    .map(|(column, text)| (column, Ok(text.to_owned())))
                    .collect();
                push_row(&mut rows, SheetRow { number, cells })?;
            }
            // A record that is not UTF-8 is a row error like any other; the reader has
            // moved past it. One that did not move the reader would loop: give up.
            Err(err) if reader.position().byte() > before => match err.kind() {
                csv::ErrorKind::Utf8 { pos, err: utf8 } => {
                    let start = pos.as_ref().map_or(before, |p| p.byte()) as usize;
                    let number = numbers.row(start, 0);
                    let cells = vec![(utf8.field(), Err("is not valid UTF-8 text".to_owned()))];
                    push_row(&mut rows, SheetRow { number, cells })?;
                }
                _ => return Err(unreadable_csv(&err)),
            },
            Err(err) => return Err(unreadable_csv(&err)),
        }
    }
}

fn unreadable_csv(err: &csv::Error) -> ImportError {
    ImportError::Unreadable(format!("not readable as CSV: {err}"))
}

/// Unpacks every entry with a budget, so a zip bomb is refused before calamine holds it in
/// memory. Sizes are measured, not taken from the (forgeable) headers.
fn check_unpacked_size(body: &[u8]) -> Result<(), ImportError> {
    let unreadable = |err: &dyn fmt::Display| {
        ImportError::Unreadable(format!("not readable as an XLSX workbook: {err}"))
    };
    let mut archive = zip::ZipArchive::new(Cursor::new(body)).map_err(|err| unreadable(&err))?;
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let entry = archive.by_index(index).map_err(|err| unreadable(&err))?;
        let budget = MAX_XLSX_UNPACKED - total;
        let unpacked = std::io::copy(&mut entry.take(budget + 1), &mut std::io::sink())
            .map_err(|err| unreadable(&err))?;
        total += unpacked;
        if total > MAX_XLSX_UNPACKED {
            return Err(ImportError::Unreadable(format!(
                "the workbook unpacks to more than {} MiB",
                MAX_XLSX_UNPACKED / (1024 * 1024)
            )));
        }
    }
    Ok(())
}

fn xlsx_text(value: &calamine::DataRef<'_>) -> Option<CellText> {
    use calamine::DataRef;
    let text = match value {
        DataRef::Empty => return None,
        DataRef::String(text) => text.clone(),
        DataRef::SharedString(text) => (*text).to_owned(),
        DataRef::Int(number) => number.to_string(),
        // A phone typed as a number arrives as a float; show it as it was typed.
        DataRef::Float(number) if number.fract() == 0.0 && number.abs() < 1e15 => {
            format!("{}", *number as i64)
        }
        DataRef::Float(number) => number.to_string(),
        DataRef::Bool(flag) => flag.to_string(),
        DataRef::DateTime(when) => when.to_string(),
        DataRef::DateTimeIso(text) | DataRef::DurationIso(text) => text.clone(),
        DataRef::Error(err) => return Some(Err(format!("the cell holds the error {err}"))),
    };
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| Ok(trimmed.to_owned()))
}

/// The first worksheet, streamed cell by cell: calamine's dense ranges would allocate
/// every cell between A1 and the farthest one, which a tiny file can place at XFD1048576.
fn read_xlsx(body: &[u8]) -> Result<Vec<SheetRow>, ImportError> {
    use calamine::Reader as _;
    check_unpacked_size(body)?;
    let unreadable = |err: calamine::XlsxError| {
        ImportError::Unreadable(format!("not readable as an XLSX workbook: {err}"))
    };
    let mut workbook = calamine::Xlsx::new(Cursor::new(body)).map_err(unreadable)?;
    let first = workbook
        .sheet_names()
        .into_iter()
        .next()
        .ok_or_else(|| ImportError::Unreadable("the workbook has no worksheet".into()))?;
    let mut cells = workbook
        .worksheet_cells_reader(&first)
        .map_err(unreadable)?;
    let mut rows = Vec::new();
    let mut current: Option<SheetRow> = None;
    while let Some(cell) = cells.next_cell().map_err(unreadable)? {
        let (row, column) = cell.get_position();
        let Some(text) = xlsx_text(cell.get_value()) else {
            continue;
        };
        let number = row as usize + 1;
        if current.as_ref().is_none_or(|open| open.number != number) {
            if let Some(done) = current.take() {
                push_row(&mut rows, done)?;
            }
            current = Some(SheetRow {
                number,
                cells: Vec::new(),
            });
        }
        if let Some(open) = current.as_mut() {
            open.cells.push((column as usize, text));
        }
    }
    if let Some(done) = current {
        push_row(&mut rows, done)?;
    }
    Ok(rows)
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
    for (index, text) in &row.cells {
        let text = match text {
            Ok(text) => text,
            Err(message) => {
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
    for (index, text) in &row.cells {
        let Some((_, column)) = columns.iter().find(|(at, _)| at == index) else {
            errors.push(refuse(
                &column_letter(*index),
                "a value in a column without a header".into(),
            ));
            continue;
        };
        let text = match text {
            Ok(text) => text.clone(),
            Err(message) => {
                errors.push(refuse(column.as_str(), message.clone()));
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
        return Err(ImportError::Unreadable(format!(
            "the file is empty; it needs a header row ({})",
            COLUMNS.join(", ")
        )));
    };
    let columns = header(head).map_err(ImportError::Rows)?;
    if data.is_empty() {
        return Err(ImportError::NoRows);
    }
    if data.len() > MAX_ROWS {
        return Err(ImportError::TooManyRows);
    }
    let mut operators = Vec::with_capacity(data.len());
    let mut errors = Vec::new();
    for row in data {
        match operator_from(row, &columns) {
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
    sheet.set_name("operators")?;
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

    fn row_errors(outcome: Result<Vec<NewOperator>, ImportError>) -> Vec<String> {
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
    fn bom_semicolons_and_quoted_fields_are_read() {
        let rows = csv("\u{feff}name;phone\r\n\"Lee; Ann\";+4791234567\r\n").expect("valid");
        assert_eq!(rows[0].name, "Lee; Ann");
        let rows = csv("name,phone\n\"Lee, Ann\",+4791234567\n").expect("valid");
        assert_eq!(rows[0].name, "Lee, Ann");
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
    fn invalid_utf8_is_a_row_error() {
        let mut body = b"name,phone\nAnn,+4791234567\n".to_vec();
        body.extend_from_slice(b"B\xffb,+4791234567\n");
        assert_eq!(
            row_errors(parse(Format::Csv, &body)),
            ["row 3, column name: is not valid UTF-8 text"]
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

    #[test]
    fn xlsx_cells_of_every_kind_are_read_as_text() {
        use rust_xlsxwriter::Workbook;
        let mut workbook = Workbook::new();
        let sheet = workbook.add_worksheet();
        for (column, name) in (0u16..).zip(COLUMNS) {
            sheet.write_string(0, column, name).expect("header");
        }
        sheet.write_string(1, 0, "Ann").expect("cell");
        sheet.write_number(1, 1, 4791234567.0).expect("cell");
        sheet.write_boolean(1, 3, true).expect("cell");
        sheet.write_string(3, 0, "Bob").expect("cell");
        sheet.write_string(3, 1, "+47 912 34 567").expect("cell");
        sheet.write_number(3, 3, 1.0).expect("cell");
        let body = workbook.save_to_buffer().expect("xlsx");
        assert_eq!(
            row_errors(parse(Format::Xlsx, &body)),
            ["row 2, column phone: \"4791234567\" is not a valid E.164 number (+ country code and number, e.g. +4791234567)"]
        );
    }

    #[test]
    fn not_a_workbook_is_unreadable() {
        assert!(matches!(
            parse(Format::Xlsx, b"name,phone\n"),
            Err(ImportError::Unreadable(_))
        ));
    }

    #[test]
    fn a_zip_bomb_is_refused_before_it_is_unpacked() {
        use std::io::Write as _;
        let mut packed = Vec::new();
        {
            let mut writer = zip::ZipWriter::new(Cursor::new(&mut packed));
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            writer
                .start_file("xl/sharedStrings.xml", options)
                .expect("entry");
            let zeros = vec![b'0'; 1024 * 1024];
            for _ in 0..40 {
                writer.write_all(&zeros).expect("write");
            }
            writer.finish().expect("zip");
        }
        assert!(packed.len() < MAX_BODY, "{} bytes", packed.len());
        match parse(Format::Xlsx, &packed) {
            Err(ImportError::Unreadable(message)) => {
                assert!(message.contains("unpacks to more than"), "{message}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
