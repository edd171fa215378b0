//! The CSV dialects spreadsheets write, read into rows numbered as the spreadsheet shows
//! them.
//!
//! Accepted: `,`, `;` (Excel in comma-decimal locales) or tab separated, told apart by the
//! header line or named by Excel's `sep=;` first line (which is not a row); LF, CRLF, CR-only (Excel's "CSV (Macintosh)") or mixed line endings; UTF-8
//! with or without a BOM, and UTF-16 with a BOM (Excel's "Unicode Text"), decoded first.
//! Refused: a file that is not UTF-8 is refused cell by cell (row, column and the text as
//! Windows-1252 would show it), never guessed at; UTF-16 without a BOM, and an XLSX sent as
//! CSV, are refused as a whole.
//!
//! Row numbers: a line break outside quotes starts a new row, blank lines are rows of their
//! own, and a quoted cell with line breaks in it is one row, as a spreadsheet opening the
//! file shows it.

use std::borrow::Cow;

use super::{push_row, Cell, ImportError, SheetRow, XLSX_TYPE};

/// Reads every non-empty row of a CSV file.
pub(super) fn read(body: &[u8]) -> Result<Vec<SheetRow>, ImportError> {
    let decoded = decode(body)?;
    let (separator, text) = match sep_line(&decoded) {
        Some((separator, rest)) => (separator, rest),
        None => (delimiter(&decoded), &decoded[..]),
    };
    if let Some(row) = unclosed_quote(text, separator) {
        // The csv crate reads an unclosed quote to the end of the file as one cell: rows
        // after it would be swallowed into it without a word.
        return Err(ImportError::Unreadable(format!(
            "row {row}: a quoted cell opens there and is never closed (a \" is missing)"
        )));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(separator)
        // The default terminator already ends a record at `\r`, `\n` or `\r\n`.
        .terminator(csv::Terminator::CRLF)
        .from_reader(text);
    let mut rows = Vec::new();
    let mut numbers = RowNumbers::new(text);
    let mut record = csv::ByteRecord::new();
    loop {
        let before = reader.position().byte();
        match reader.read_byte_record(&mut record) {
            Ok(false) => return Ok(rows),
            Ok(true) => {
                let start = record.position().map_or(before, |p| p.byte());
                let start = usize::try_from(start).unwrap_or(text.len());
                let inner = record.iter().map(line_breaks).sum();
                let number = numbers.row(start, inner);
                let cells = record
                    .iter()
                    .enumerate()
                    .filter_map(|(column, field)| Some((column, cell(field)?)))
                    .collect();
                push_row(&mut rows, SheetRow { number, cells })?;
            }
            Err(err) => {
                return Err(ImportError::Unreadable(format!(
                    "not readable as CSV: {err}"
                )))
            }
        }
    }
}

/// The file as UTF-8 bytes without a BOM: UTF-16 with a BOM is decoded, anything else is
/// left as it is for [`cell`] to refuse what is not UTF-8.
fn decode(body: &[u8]) -> Result<Cow<'_, [u8]>, ImportError> {
    if body.starts_with(b"PK\x03\x04") {
        return Err(ImportError::Unreadable(format!(
            "this is an XLSX workbook, not CSV; send it as {XLSX_TYPE}"
        )));
    }
    match encoding_rs::Encoding::for_bom(body) {
        Some((encoding, bom)) if encoding == encoding_rs::UTF_8 => Ok(Cow::Borrowed(&body[bom..])),
        Some((encoding, bom)) => encoding
            .decode_without_bom_handling_and_without_replacement(&body[bom..])
            .map(|text| Cow::Owned(text.into_owned().into_bytes()))
            .ok_or_else(|| {
                ImportError::Unreadable(format!(
                    "the file starts as {} text but is not valid {0}; save it as CSV UTF-8",
                    encoding.name()
                ))
            }),
        // A header such as `name` in UTF-16 without a BOM: every other byte is zero.
        None if body.len() >= 2 && (body[0] == 0) != (body[1] == 0) => {
            Err(ImportError::Unreadable(
                "the file looks like UTF-16 text without a byte order mark; save it as CSV UTF-8"
                    .into(),
            ))
        }
        None => Ok(Cow::Borrowed(body)),
    }
}

/// One field as a cell: trimmed text, nothing when blank, or a refusal when it is not
/// UTF-8 (showing the text as a Windows-1252 spreadsheet would).
fn cell(field: &[u8]) -> Option<Cell> {
    match std::str::from_utf8(field) {
        Ok(text) => {
            let trimmed = text.trim();
            (!trimmed.is_empty()).then(|| Cell::Text(trimmed.to_owned()))
        }
        Err(_) => {
            let (shown, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(field);
            Some(Cell::Unreadable(format!(
                "{:?} is not UTF-8 text (the file looks Windows-1252 or Latin-1 encoded); \
                 save the file as CSV UTF-8",
                shown.trim()
            )))
        }
    }
}

/// Excel's `sep=;` first line names the separator; Excel does not show it as a row, so it
/// is dropped before rows are counted.
fn sep_line(text: &[u8]) -> Option<(u8, &[u8])> {
    let (prefix, rest) = text.split_at_checked(4)?;
    if !prefix.eq_ignore_ascii_case(b"sep=") {
        return None;
    }
    let (&separator, rest) = rest.split_first()?;
    let rest = rest
        .strip_prefix(b"\r\n")
        .or_else(|| rest.strip_prefix(b"\r"))
        .or_else(|| rest.strip_prefix(b"\n"))?;
    Some((separator, rest))
}

/// The row (as a spreadsheet numbers it) where a quoted cell opens that the file never
/// closes; `None` when every quoted cell is closed. A quote opens a cell only at its start
/// (RFC 4180 §2.5-2.7; one inside an unquoted cell, as in `24" screen`, is text), and `""`
/// in a quoted cell is a quote.
fn unclosed_quote(text: &[u8], separator: u8) -> Option<usize> {
    let (mut row, mut opened, mut at_start, mut quoted) = (1, 1, true, false);
    let mut bytes = text.iter().copied().peekable();
    while let Some(byte) = bytes.next() {
        if quoted {
            if byte == b'"' && bytes.next_if_eq(&b'"').is_none() {
                quoted = false;
            }
            continue;
        }
        match byte {
            b'"' if at_start => (quoted, opened) = (true, row),
            b'\r' | b'\n' => {
                if byte == b'\r' {
                    bytes.next_if_eq(&b'\n');
                }
                row += 1;
                at_start = true;
                continue;
            }
            _ if byte == separator => {
                at_start = true;
                continue;
            }
            _ => {}
        }
        at_start = false;
    }
    quoted.then_some(opened)
}

/// Spreadsheets in comma-decimal locales export `;`-separated CSV, "Unicode Text" is tab
/// separated: the header line (up to its first line break of any kind) tells.
fn delimiter(text: &[u8]) -> u8 {
    let header_line = text
        .split(|&b| b == b'\n' || b == b'\r')
        .next()
        .unwrap_or(text);
    let count = |wanted: u8| header_line.iter().filter(|&&b| b == wanted).count();
    [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|&candidate| (count(candidate), candidate == b','))
        .unwrap_or(b',')
}

/// Line breaks as a spreadsheet or editor counts them: `\r\n`, a lone `\r` and a lone `\n`
/// are one each.
fn line_breaks(bytes: &[u8]) -> usize {
    let lone_lf = |at: usize| at == 0 || bytes[at - 1] != b'\r';
    bytes
        .iter()
        .enumerate()
        .filter(|&(at, &byte)| byte == b'\r' || (byte == b'\n' && lone_lf(at)))
        .count()
}

/// Spreadsheet row numbers of CSV records. A spreadsheet shows a blank line as a row and a
/// line break inside a quoted field as part of its cell, so a record's row is the previous
/// record's, plus the line breaks since its start, minus those inside its fields.
#[derive(Debug)]
struct RowNumbers<'a> {
    text: &'a [u8],
    last_start: usize,
    last_row: usize,
    last_inner: usize,
}

impl<'a> RowNumbers<'a> {
    fn new(text: &'a [u8]) -> Self {
        RowNumbers {
            text,
            last_start: 0,
            last_row: 1,
            last_inner: 0,
        }
    }

    /// `start` is where the reader began the record; the blank lines it skipped first are
    /// rows of their own.
    fn row(&mut self, start: usize, inner_line_breaks: usize) -> usize {
        let mut start = start.clamp(self.last_start, self.text.len());
        while matches!(self.text.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        let between = line_breaks(&self.text[self.last_start..start]);
        let row = (self.last_row + between)
            .saturating_sub(self.last_inner)
            .max(1);
        self.last_start = start;
        self.last_row = row;
        self.last_inner = inner_line_breaks;
        row
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::row_errors;
    use super::super::{parse, Format, ImportError};

    const BAD_PHONE: &str = "\"+47 12\" is not a valid E.164 number \
                             (+ country code and number, e.g. +4791234567)";

    /// A header, a good row, then two bad rows that a spreadsheet shows as rows 3 and 4,
    /// with `end` between lines (and after the last one when `trailing`).
    fn sheet(end: &str, trailing: bool) -> String {
        let lines = [
            "name,phone,access_type",
            "Ann,+4791234567,keypad_pin",
            "Bob,+47 12,keypad_pin",
            "Cy,+4791234567,pin",
        ];
        let mut text = lines.join(end);
        if trailing {
            text.push_str(end);
        }
        text
    }

    fn rows_3_and_4() -> [String; 2] {
        [
            format!("row 3, column phone: {BAD_PHONE}"),
            "row 4, column access_type: \"pin\" is not one of digital_key, keypad_pin, \
             dualid_tag"
                .to_owned(),
        ]
    }

    fn errors_of(text: &str) -> Vec<String> {
        row_errors(parse(Format::Csv, text.as_bytes()))
    }

    #[test]
    fn a_quote_never_closed_is_refused_with_its_row() {
        for (text, row) in [
            ("name\n\"abc\n", 2),
            (
                "name,phone\r\nAnn,+4791234567\r\n\"Bob,+4791234568\r\nCy,+4791234569\r\n",
                3,
            ),
            ("name;phone\rAnn;\"+47\r", 2),
        ] {
            match parse(Format::Csv, text.as_bytes()) {
                Err(ImportError::Unreadable(why)) => {
                    assert!(
                        why.starts_with(&format!("row {row}: a quoted cell opens")),
                        "{why}"
                    )
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
        // Closed quotes, a doubled quote and a quote inside an unquoted cell are fine.
        let fine = "name,phone\n\"Ann \"\"A\"\"\",+4791234567\nBo 24\" TV,+4791234568\n";
        assert!(parse(Format::Csv, fine.as_bytes()).is_ok());
    }

    #[test]
    fn every_line_ending_numbers_rows_as_the_sheet_shows_them() {
        for end in ["\n", "\r\n", "\r"] {
            for trailing in [true, false] {
                assert_eq!(
                    errors_of(&sheet(end, trailing)),
                    rows_3_and_4(),
                    "line ending {end:?}, trailing {trailing}"
                );
            }
        }
    }

    #[test]
    fn mixed_line_endings_count_one_row_each() {
        let text = "name,phone,access_type\r\n\
                    Ann,+4791234567,keypad_pin\r\
                    Bob,+47 12,keypad_pin\n\
                    Cy,+4791234567,pin\r";
        assert_eq!(errors_of(text), rows_3_and_4());
    }

    #[test]
    fn a_utf8_bom_is_not_part_of_the_header() {
        for end in ["\r\n", "\r"] {
            let text = format!("\u{feff}{}", sheet(end, true));
            assert_eq!(errors_of(&text), rows_3_and_4(), "{end:?}");
        }
    }

    #[test]
    fn blank_lines_are_rows_and_trailing_blank_rows_are_ignored() {
        let text = "name,phone,access_type\r\r\
                    Bob,+47 12,keypad_pin\r\
                    Cy,+4791234567,pin\r\r,,\r , ,\r\r";
        assert_eq!(errors_of(text), rows_3_and_4());
    }

    #[test]
    fn a_quoted_multi_line_cell_is_one_row() {
        // Excel shows the two-line name as one row (2), so the bad rows stay on 3 and 4.
        for end in ["\r\n", "\r", "\n"] {
            for inside in [end.to_owned(), format!("{end}{end}")] {
                let text = [
                    "name,phone,access_type",
                    &format!("\"Ann{inside}Lee\",+4791234567,keypad_pin"),
                    "Bob,+47 12,keypad_pin",
                    "Cy,+4791234567,pin",
                ]
                .join(end);
                let mut expected = vec!["row 2, column name: must not contain control \
                                         characters (newlines, tabs, escapes)"
                    .to_owned()];
                expected.extend(rows_3_and_4());
                assert_eq!(errors_of(&text), expected, "{inside:?}");
            }
        }
    }

    #[test]
    fn semicolons_and_tabs_are_told_by_the_header_line() {
        for separator in [";", "\t"] {
            for end in ["\r\n", "\r"] {
                let text = sheet(end, true).replace(',', separator);
                assert_eq!(errors_of(&text), rows_3_and_4(), "{separator:?} {end:?}");
            }
        }
        let rows = parse(
            Format::Csv,
            "\u{feff}name;phone\r\"Lee; Ann\";+4791234567\r".as_bytes(),
        )
        .expect("valid");
        assert_eq!(rows[0].name, "Lee; Ann");
        let rows = parse(Format::Csv, b"name,phone\n\"Lee, Ann\",+4791234567\n").expect("valid");
        assert_eq!(rows[0].name, "Lee, Ann");
    }

    #[test]
    fn an_excel_sep_line_names_the_separator_and_is_not_a_row() {
        for end in ["\r\n", "\r"] {
            let text = format!("sep=;{end}{}", sheet(end, true).replace(',', ";"));
            assert_eq!(errors_of(&text), rows_3_and_4(), "{end:?}");
        }
    }

    #[test]
    fn utf16_with_a_bom_is_decoded() {
        // Excel's "Unicode Text": UTF-16LE with a BOM, tab separated, CRLF.
        let text = sheet("\r\n", true).replace(',', "\t").replace("Ann", "Åse");
        let mut little = vec![0xff, 0xfe];
        let mut big = vec![0xfe, 0xff];
        for unit in text.encode_utf16() {
            little.extend_from_slice(&unit.to_le_bytes());
            big.extend_from_slice(&unit.to_be_bytes());
        }
        assert_eq!(row_errors(parse(Format::Csv, &little)), rows_3_and_4());
        assert_eq!(row_errors(parse(Format::Csv, &big)), rows_3_and_4());
        let fixed = text
            .replace("+47 12", "+4791234567")
            .replace("\tpin\r", "\tkeypad_pin\r");
        let mut body = vec![0xff, 0xfe];
        for unit in fixed.encode_utf16() {
            body.extend_from_slice(&unit.to_le_bytes());
        }
        let rows = parse(Format::Csv, &body).expect("valid");
        assert_eq!(rows[0].name, "Åse");
        assert_eq!(rows.len(), 3);
    }

    #[test]
    fn utf16_without_a_bom_and_xlsx_bodies_are_refused_as_a_whole() {
        let body: Vec<u8> = "name\r\nAnn\r\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        match parse(Format::Csv, &body) {
            Err(ImportError::Unreadable(message)) => {
                assert!(message.contains("UTF-16"), "{message}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        let workbook = super::super::template_xlsx().expect("xlsx");
        match parse(Format::Csv, &workbook) {
            Err(ImportError::Unreadable(message)) => {
                assert!(message.contains("XLSX workbook"), "{message}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn windows_1252_bytes_are_refused_at_their_row_and_column() {
        // "Bjørn" and "Åse" as Excel writes them in "CSV (Macintosh)" or Windows "CSV".
        for end in [&b"\r"[..], b"\r\n", b"\n"] {
            let mut body = Vec::new();
            for line in [
                &b"name,phone,access_type"[..],
                b"Ann,+4791234567,keypad_pin",
                b"Bj\xf8rn,+4791234567,keypad_pin",
                b"Cy,+4791234567,keypad_pin",
                b"Dan,+4791234567,\xc5se",
            ] {
                body.extend_from_slice(line);
                body.extend_from_slice(end);
            }
            assert_eq!(
                row_errors(parse(Format::Csv, &body)),
                [
                    "row 3, column name: \"Bjørn\" is not UTF-8 text (the file looks \
                     Windows-1252 or Latin-1 encoded); save the file as CSV UTF-8",
                    "row 5, column access_type: \"Åse\" is not UTF-8 text (the file looks \
                     Windows-1252 or Latin-1 encoded); save the file as CSV UTF-8",
                ],
                "{end:?}"
            );
        }
    }
}
