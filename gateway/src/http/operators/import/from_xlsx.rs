//! An XLSX workbook read into rows as the sheet shows them.
//!
//! The sheet read is the one named `operators` (any case), as the template names it, or
//! else the first sheet. Rows and columns are the sheet's own (a header typed on row 3 is
//! row 3). Each cell keeps its type: text, or a number, date, duration or TRUE/FALSE value
//! with the text the sheet shows for it (a date as `2024-01-06`, however the sheet formats
//! it), so a column's rule can refuse a cell that the spreadsheet has already changed. A
//! formula counts as the result the sheet last calculated. Cells that hold nothing but
//! blanks or formatting are not cells at all.

use std::fmt;
use std::io::{Cursor, Read};

use calamine::{DataRef, ExcelDateTime};

use super::{column_letter, push_row, Cell, CellKind, ImportError, SheetRow, MAX_XLSX_UNPACKED};

/// The name the template gives its sheet; a workbook with such a sheet is read from it.
pub(super) const SHEET_NAME: &str = "operators";

fn unreadable(err: &dyn fmt::Display) -> ImportError {
    ImportError::Unreadable(format!("not readable as an XLSX workbook: {err}"))
}

/// Unpacks every entry with a budget, so a zip bomb is refused before calamine holds it in
/// memory. Sizes are measured, not taken from the (forgeable) headers.
fn check_unpacked_size(body: &[u8]) -> Result<(), ImportError> {
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

/// The sheet named like the template's, or else the first one.
fn sheet_to_read(names: Vec<String>) -> Option<String> {
    let named = names
        .iter()
        .find(|name| name.trim().eq_ignore_ascii_case(SHEET_NAME))
        .cloned();
    named.or_else(|| names.into_iter().next())
}

/// The sheet's rows, streamed cell by cell: calamine's dense ranges would allocate every
/// cell between A1 and the farthest one, which a tiny file can place at XFD1048576.
pub(super) fn read(body: &[u8]) -> Result<Vec<SheetRow>, ImportError> {
    use calamine::Reader as _;
    check_unpacked_size(body)?;
    let mut workbook = calamine::Xlsx::new(Cursor::new(body)).map_err(|err| unreadable(&err))?;
    let sheet = sheet_to_read(workbook.sheet_names())
        .ok_or_else(|| ImportError::Unreadable("the workbook has no worksheet".into()))?;
    let mut cells = workbook
        .worksheet_cells_reader(&sheet)
        .map_err(|err| unreadable(&err))?;
    let mut rows = Vec::new();
    let mut current: Option<SheetRow> = None;
    while let Some(record) = cells
        .next_cell_with_formula_metadata()
        .map_err(|err| unreadable(&err))?
    {
        let (row, column) = record.pos;
        let (number, column) = (row as usize + 1, column as usize);
        let Some(cell) = cell(&record.value, record.formula.is_some(), number, column) else {
            continue;
        };
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
            open.cells.push((column, cell));
        }
    }
    if let Some(done) = current {
        push_row(&mut rows, done)?;
    }
    // Spreadsheets write rows and cells in order; a hand-made file need not.
    rows.sort_by_key(|row| row.number);
    for row in &mut rows {
        row.cells.sort_by_key(|(column, _)| *column);
    }
    Ok(rows)
}

/// A cell as its type and the text the sheet shows; nothing for a blank one.
fn cell(value: &DataRef<'_>, formula: bool, row: usize, column: usize) -> Option<Cell> {
    let at = || format!("{}{row}", column_letter(column));
    let typed = |kind: CellKind, shown: String| {
        Some(Cell::Typed {
            kind,
            shown,
            formula,
        })
    };
    match value {
        DataRef::Empty if formula => Some(Cell::Unreadable(format!(
            "cell {} holds a formula with no calculated result; open and save the file in a \
             spreadsheet, or paste the values",
            at()
        ))),
        DataRef::Empty => None,
        DataRef::String(text) => text_cell(text),
        DataRef::SharedString(text) => text_cell(text),
        DataRef::Int(number) => typed(CellKind::Number, number.to_string()),
        DataRef::Float(number) => typed(CellKind::Number, shown_number(*number)),
        DataRef::Bool(flag) => typed(CellKind::Boolean, flag.to_string().to_uppercase()),
        DataRef::DateTime(when) if when.is_duration() => {
            typed(CellKind::Duration, shown_duration(when))
        }
        DataRef::DateTime(when) => typed(CellKind::Date, shown_date(when)),
        DataRef::DateTimeIso(text) => typed(CellKind::Date, text.clone()),
        DataRef::DurationIso(text) => typed(CellKind::Duration, text.clone()),
        DataRef::Error(err) => Some(Cell::Unreadable(format!(
            "cell {} holds the error {err}",
            at()
        ))),
    }
}

fn text_cell(text: &str) -> Option<Cell> {
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| Cell::Text(trimmed.to_owned()))
}

/// A number as typed: whole numbers without a decimal point, others to ten decimals
/// without trailing zeros (as a spreadsheet's General format shows them, give or take).
fn shown_number(number: f64) -> String {
    let fixed = format!("{number:.10}");
    if fixed.contains('.') {
        fixed.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        fixed
    }
}

/// A date, a time or both, in ISO order (`2024-01-06`, `14:30`, `2024-01-06 14:30:15`).
fn shown_date(when: &ExcelDateTime) -> String {
    let (year, month, day, hour, minute, second, _) = when.to_ymd_hms_milli();
    let date = format!("{year:04}-{month:02}-{day:02}");
    let time = if second == 0 {
        format!("{hour:02}:{minute:02}")
    } else {
        format!("{hour:02}:{minute:02}:{second:02}")
    };
    if when.as_f64().abs() < 1.0 {
        time
    } else if (hour, minute, second) == (0, 0, 0) {
        date
    } else {
        format!("{date} {time}")
    }
}

/// A duration as `[h]:mm:ss` shows it (`36:30:00`).
fn shown_duration(when: &ExcelDateTime) -> String {
    // Saturates on absurd values; a duration cell cannot hold one that matters here.
    let seconds = (when.as_f64() * 86_400.0).round().abs() as u64;
    let sign = if when.as_f64() < 0.0 { "-" } else { "" };
    format!(
        "{sign}{}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use rust_xlsxwriter::{Format as Style, Formula, Workbook, Worksheet, XlsxError};

    use super::super::tests::row_errors;
    use super::super::{parse, template_xlsx, Format, ImportError, COLUMNS};
    use super::*;

    type Sheet = Result<(), XlsxError>;

    /// A workbook whose sheet has the header on row 1 and what `fill` writes under it.
    fn workbook(fill: impl FnOnce(&mut Worksheet) -> Sheet) -> Vec<u8> {
        let mut workbook = Workbook::new();
        let sheet = workbook.add_worksheet();
        for (column, name) in (0u16..).zip(COLUMNS) {
            sheet.write_string(0, column, name).expect("header");
        }
        fill(sheet).expect("cells");
        workbook.save_to_buffer().expect("xlsx")
    }

    fn errors_of(body: &[u8]) -> Vec<String> {
        row_errors(parse(Format::Xlsx, body))
    }

    fn date_style() -> Style {
        Style::new().set_num_format("dd/mm/yyyy")
    }

    #[test]
    fn a_date_in_a_text_column_is_refused_as_the_sheet_shows_it() {
        let body = workbook(|sheet| {
            sheet.write_string(1, 0, "Ann")?;
            let date = rust_xlsxwriter::ExcelDateTime::from_ymd(2024, 1, 6)?;
            sheet.write_datetime_with_format(2, 0, &date, &date_style())?;
            let time = rust_xlsxwriter::ExcelDateTime::from_hms(14, 30, 0)?;
            let hms = Style::new().set_num_format("hh:mm");
            sheet.write_datetime_with_format(3, 0, &time, &hms)?;
            let both = rust_xlsxwriter::ExcelDateTime::from_ymd(2024, 1, 6)?.and_hms(9, 5, 7)?;
            let full = Style::new().set_num_format("yyyy-mm-dd hh:mm:ss");
            sheet.write_datetime_with_format(4, 2, &both, &full)?;
            sheet.write_string(4, 0, "Dan")?;
            Ok(())
        });
        assert_eq!(
            errors_of(&body),
            [
                "row 3, column name: cell A3 holds a date (2024-01-06), not text; format \
                 column A as Text and type the value again",
                "row 4, column name: cell A4 holds a date (14:30), not text; format column A \
                 as Text and type the value again",
                "row 5, column access_type: cell C5 holds a date (2024-01-06 09:05:07), not \
                 text; format column C as Text and type the value again",
            ]
        );
    }

    #[test]
    fn a_phone_typed_as_a_number_is_refused_with_a_hint() {
        let body = workbook(|sheet| {
            sheet.write_string(1, 0, "Ann")?;
            sheet.write_number(1, 1, 4791234567.0)?;
            sheet.write_string(2, 0, "Bob")?;
            sheet.write_string(2, 1, "+4791234567")?;
            sheet.write_string(3, 0, "Cy")?;
            sheet.write_number(3, 1, 0.5)?;
            Ok(())
        });
        assert_eq!(
            errors_of(&body),
            [
                "row 2, column phone: cell B2 holds a number (4791234567), not text; format \
                 column B as Text and type the number with its + country code, e.g. \
                 +4791234567",
                "row 4, column phone: cell B4 holds a number (0.5), not text; format column B \
                 as Text and type the number with its + country code, e.g. +4791234567",
            ]
        );
    }

    #[test]
    fn numbers_booleans_and_errors_in_text_columns_are_refused() {
        let body = workbook(|sheet| {
            sheet.write_number(1, 0, 42)?;
            sheet.write_boolean(1, 2, true)?;
            sheet.write_string(2, 0, "Bob")?;
            sheet.write_formula(2, 1, Formula::new("=NA()").set_result("#N/A"))?;
            sheet.write_formula(3, 0, Formula::new("=1/0").set_result("#DIV/0!"))?;
            sheet.write_formula(3, 2, Formula::new("=B9").set_result("#REF!"))?;
            Ok(())
        });
        assert_eq!(
            errors_of(&body),
            [
                "row 2, column name: cell A2 holds a number (42), not text; format column A \
                 as Text and type the value again",
                "row 2, column access_type: cell C2 holds a TRUE/FALSE value (TRUE), not \
                 text; format column C as Text and type the value again",
                "row 3, column phone: cell B3 holds the error #N/A",
                "row 4, column name: cell A4 holds the error #DIV/0!",
                "row 4, column access_type: cell C4 holds the error #REF!",
            ]
        );
    }

    #[test]
    fn a_formula_counts_as_its_result() {
        let body = workbook(|sheet| {
            let name = Formula::new("=\"Ann\"&\" Lee\"").set_result("Ann Lee");
            sheet.write_formula(1, 0, name)?;
            sheet.write_string(2, 0, "Bob")?;
            // Without a result rust_xlsxwriter stores 0, as a program that never
            // calculated would.
            sheet.write_formula(2, 1, Formula::new("=4700000000+91234567"))?;
            sheet.write_formula(3, 0, Formula::new("=TRUE()").set_result("TRUE"))?;
            Ok(())
        });
        assert_eq!(
            errors_of(&body),
            [
                "row 3, column phone: cell B3 holds a formula whose result is a number (0), \
                 not text; format column B as Text and type the number with its + country \
                 code, e.g. +4791234567",
                "row 4, column name: cell A4 holds a formula whose result is a TRUE/FALSE \
                 value (TRUE), not text; make the formula's result text, or paste it as a value",
            ]
        );
        let fixed = workbook(|sheet| {
            let name = Formula::new("=\"Ann\"&\" Lee\"").set_result("Ann Lee");
            sheet.write_formula(1, 0, name)?;
            Ok(())
        });
        let rows = parse(Format::Xlsx, &fixed).expect("a formula showing text is text");
        assert_eq!(rows[0].name, "Ann Lee");
    }

    #[test]
    fn a_formula_without_a_result_is_refused() {
        let body = workbook(|sheet| {
            sheet.write_formula(1, 0, Formula::new("=\"Ann\"").set_result("ANN_RESULT"))?;
            Ok(())
        });
        let body = rewrite_sheet(&body, |xml| xml.replace("<v>ANN_RESULT</v>", ""));
        assert_eq!(
            errors_of(&body),
            [
                "row 2, column name: cell A2 holds a formula with no calculated result; open and \
              save the file in a spreadsheet, or paste the values"
            ]
        );
    }

    /// The workbook with its first sheet's XML changed by `edit`.
    fn rewrite_sheet(body: &[u8], edit: impl Fn(&str) -> String) -> Vec<u8> {
        use std::io::Write as _;
        let mut archive = zip::ZipArchive::new(Cursor::new(body)).expect("zip");
        let mut out = Vec::new();
        let mut writer = zip::ZipWriter::new(Cursor::new(&mut out));
        for index in 0..archive.len() {
            let mut entry = archive.by_index(index).expect("entry");
            let name = entry.name().expect("entry name").into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).expect("read");
            if name == "xl/worksheets/sheet1.xml" {
                bytes = edit(&String::from_utf8(bytes).expect("xml")).into_bytes();
            }
            let options = zip::write::SimpleFileOptions::default();
            writer.start_file(name, options).expect("entry");
            writer.write_all(&bytes).expect("write");
        }
        writer.finish().expect("zip");
        out
    }

    #[test]
    fn the_flag_column_reads_typed_cells_as_the_text_they_show() {
        let body = workbook(|sheet| {
            sheet.write_string(1, 0, "Ann")?;
            sheet.write_string(1, 1, "+4791234567")?;
            sheet.write_boolean(1, 3, true)?;
            sheet.write_string(2, 0, "Bob")?;
            sheet.write_number(2, 3, 0)?;
            sheet.write_string(3, 0, "Cy")?;
            let date = rust_xlsxwriter::ExcelDateTime::from_ymd(2024, 1, 6)?;
            sheet.write_datetime_with_format(3, 3, &date, &date_style())?;
            Ok(())
        });
        assert_eq!(
            errors_of(&body),
            ["row 4, column send_sms_invite: \"2024-01-06\" is not true or false"]
        );
    }

    #[test]
    fn formatting_only_rows_and_columns_are_not_cells() {
        let body = workbook(|sheet| {
            let bold = Style::new().set_bold();
            sheet.write_string(1, 0, "Ann")?;
            sheet.write_string(2, 0, "Bob")?;
            sheet.write_string(2, 1, "+47 12")?;
            for row in 3..40 {
                sheet.write_blank(row, 0, &bold)?;
                sheet.write_blank(row, 6, &bold)?;
            }
            sheet.write_string(40, 2, "   ")?;
            sheet.write_blank(1, 9, &bold)?;
            Ok(())
        });
        assert_eq!(
            errors_of(&body),
            [
                "row 3, column phone: \"+47 12\" is not a valid E.164 number (+ country code \
              and number, e.g. +4791234567)"
            ]
        );
    }

    #[test]
    fn rows_and_letters_are_the_sheet_s_own_where_the_table_starts_lower() {
        let mut workbook = Workbook::new();
        let sheet = workbook.add_worksheet();
        for (column, name) in (1u16..).zip(COLUMNS) {
            sheet.write_string(2, column, name).expect("header");
        }
        sheet.write_number(3, 1, 7).expect("cell");
        sheet.write_string(5, 1, "Bob").expect("cell");
        sheet.write_string(5, 3, "pin").expect("cell");
        let body = workbook.save_to_buffer().expect("xlsx");
        assert_eq!(
            errors_of(&body),
            [
                "row 4, column name: cell B4 holds a number (7), not text; format column B as \
                 Text and type the value again",
                "row 6, column access_type: \"pin\" is not one of digital_key, keypad_pin, \
                 dualid_tag",
            ]
        );
    }

    #[test]
    fn the_sheet_named_operators_is_read_or_else_the_first() {
        let mut workbook = Workbook::new();
        let notes = workbook.add_worksheet();
        notes.set_name("How to").expect("name");
        notes
            .write_string(0, 0, "Fill in the operators sheet")
            .expect("cell");
        let sheet = workbook.add_worksheet();
        sheet.set_name("Operators").expect("name");
        sheet.write_string(0, 0, "name").expect("cell");
        sheet.write_string(1, 0, "Ann").expect("cell");
        let body = workbook.save_to_buffer().expect("xlsx");
        let rows = parse(Format::Xlsx, &body).expect("the operators sheet");
        assert_eq!(rows[0].name, "Ann");
        assert_eq!(
            sheet_to_read(vec!["Sheet1".into(), "Sheet2".into()]).as_deref(),
            Some("Sheet1")
        );
    }

    #[test]
    fn shown_values_read_like_the_sheet() {
        assert_eq!(shown_number(4791234567.0), "4791234567");
        assert_eq!(shown_number(0.1 + 0.2), "0.3");
        assert_eq!(shown_number(-12.5), "-12.5");
        let kind = calamine::ExcelDateTimeType::TimeDelta;
        let duration = ExcelDateTime::new(1.5208333333, kind, false);
        assert_eq!(shown_duration(&duration), "36:30:00");
        let date = ExcelDateTime::new(45297.0, calamine::ExcelDateTimeType::DateTime, false);
        assert_eq!(shown_date(&date), "2024-01-06");
    }

    #[test]
    fn the_template_names_the_sheet_that_is_read() {
        let body = template_xlsx().expect("template");
        let workbook = calamine::Xlsx::new(Cursor::new(body)).expect("xlsx");
        use calamine::Reader as _;
        assert_eq!(workbook.sheet_names(), [SHEET_NAME]);
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
        assert!(
            packed.len() < super::super::MAX_BODY,
            "{} bytes",
            packed.len()
        );
        match parse(Format::Xlsx, &packed) {
            Err(ImportError::Unreadable(message)) => {
                assert!(message.contains("unpacks to more than"), "{message}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
