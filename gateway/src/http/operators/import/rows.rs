//! An import row by row: the preview that shows every data row of a file with what the
//! sheet holds and what is wrong with it, and the import of only the rows a person picked
//! (the valid ones of a file with errors). The console's bulk upload is these two steps; the
//! whole-file import of [`super::parse`] stays all-or-nothing.

use std::collections::BTreeSet;

use serde::Serialize;
use storage::operators::NewOperator;
use utoipa::ToSchema;

use super::{
    header, operator_from, operators_of, read_rows, Cell, Column, Format, ImportError, RowError,
};

/// One data row as the preview shows it: the text of each known column as the sheet shows
/// it (absent when the cell is empty or unreadable) and every error of the row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PreviewRow {
    /// The row number the spreadsheet shows.
    pub row: usize,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub access_type: Option<String>,
    pub send_sms_invite: Option<String>,
    /// Empty when the row would import.
    pub errors: Vec<RowError>,
}

/// Every data row of the file with its errors. A file that cannot be read, or whose header
/// is wrong, is refused as a whole (the rows mean nothing without their columns).
pub fn preview(format: Format, body: &[u8]) -> Result<Vec<PreviewRow>, ImportError> {
    let rows = read_rows(format, body)?;
    let (head, data) = split(&rows)?;
    let columns = header(head).map_err(ImportError::Rows)?;
    Ok(data
        .iter()
        .map(|row| {
            let shown = |wanted: Column| {
                let (index, _) = columns.iter().find(|(_, column)| *column == wanted)?;
                row.cells
                    .iter()
                    .find(|(at, _)| at == index)
                    .and_then(|(_, cell)| match cell {
                        Cell::Text(text) | Cell::Typed { shown: text, .. } => Some(text.clone()),
                        Cell::Unreadable(_) => None,
                    })
            };
            PreviewRow {
                row: row.number,
                name: shown(Column::Name),
                phone: shown(Column::Phone),
                access_type: shown(Column::AccessType),
                send_sms_invite: shown(Column::SendSmsInvite),
                errors: operator_from(row, &columns).err().unwrap_or_default(),
            }
        })
        .collect())
}

/// The operators of the picked rows only (numbers as the sheet shows them), in row order:
/// all of them, or every error of the picked rows. The other rows, and their errors, are
/// left out. A number that is not a data row of the file is refused naming it.
pub fn parse_picked(
    format: Format,
    body: &[u8],
    picked: &BTreeSet<usize>,
) -> Result<Vec<NewOperator>, ImportError> {
    let rows = read_rows(format, body)?;
    let (head, data) = split(&rows)?;
    let columns = header(head).map_err(ImportError::Rows)?;
    let unknown: Vec<usize> = picked
        .iter()
        .copied()
        .filter(|number| !data.iter().any(|row| row.number == *number))
        .collect();
    if !unknown.is_empty() {
        return Err(ImportError::NotDataRows(unknown));
    }
    operators_of(
        data.iter().filter(|row| picked.contains(&row.number)),
        &columns,
    )
}

/// `2,3,7-9` as row numbers; `None` for anything else (a row is at least 2: row 1 at the
/// earliest is the header).
pub fn row_numbers(raw: &str) -> Option<BTreeSet<usize>> {
    let mut numbers = BTreeSet::new();
    for part in raw.split(',') {
        let part = part.trim();
        let (first, last) = match part.split_once('-') {
            Some((first, last)) => (first.trim().parse().ok()?, last.trim().parse().ok()?),
            None => {
                let number: usize = part.parse().ok()?;
                (number, number)
            }
        };
        if first < 2 || last < first || last - first >= super::MAX_ROWS {
            return None;
        }
        numbers.extend(first..=last);
    }
    (!numbers.is_empty() && numbers.len() <= super::MAX_ROWS).then_some(numbers)
}

fn split(rows: &[super::SheetRow]) -> Result<(&super::SheetRow, &[super::SheetRow]), ImportError> {
    let Some((head, data)) = rows.split_first() else {
        return Err(super::empty_file());
    };
    if data.is_empty() {
        return Err(ImportError::NoRows);
    }
    if data.len() > super::MAX_ROWS {
        return Err(ImportError::TooManyRows);
    }
    Ok((head, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "name,phone,access_type,send_sms_invite\n\
                        Ann,+4791234567,keypad_pin,no\n\
                        ,+47 12,pin,maybe\n\
                        \n\
                        Bo,,,\n";

    #[test]
    fn the_preview_shows_every_row_with_what_the_sheet_holds_and_its_errors() {
        let rows = preview(Format::Csv, FILE.as_bytes()).expect("preview");
        let numbers: Vec<usize> = rows.iter().map(|row| row.row).collect();
        assert_eq!(numbers, [2, 3, 5], "blank line 4 is no row, but counts");
        assert_eq!(rows[0].name.as_deref(), Some("Ann"));
        assert_eq!(rows[0].access_type.as_deref(), Some("keypad_pin"));
        assert!(rows[0].errors.is_empty());
        assert_eq!(rows[1].name, None);
        assert_eq!(rows[1].phone.as_deref(), Some("+47 12"));
        let columns: Vec<&str> = rows[1].errors.iter().map(|e| e.column.as_str()).collect();
        assert_eq!(columns, ["name", "phone", "access_type", "send_sms_invite"]);
        assert!(rows[1].errors.iter().all(|error| error.row == 3));
        assert!(rows[2].errors.is_empty());
    }

    #[test]
    fn a_wrong_header_refuses_the_preview_as_a_whole() {
        let refused = preview(Format::Csv, b"name,colour\nAnn,red\n");
        assert!(matches!(refused, Err(ImportError::Rows(errors)) if errors[0].row == 1));
        assert_eq!(
            preview(Format::Csv, b"name\n"),
            Err(ImportError::NoRows),
            "a header alone has nothing to preview"
        );
    }

    #[test]
    fn only_the_picked_rows_are_imported_and_judged() {
        let picked = BTreeSet::from([2, 5]);
        let operators = parse_picked(Format::Csv, FILE.as_bytes(), &picked).expect("valid rows");
        let names: Vec<&str> = operators.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["Ann", "Bo"]);
        let refused = parse_picked(Format::Csv, FILE.as_bytes(), &BTreeSet::from([2, 3]));
        assert!(
            matches!(refused, Err(ImportError::Rows(errors)) if errors.iter().all(|e| e.row == 3))
        );
        let refused = parse_picked(Format::Csv, FILE.as_bytes(), &BTreeSet::from([2, 4, 9]));
        assert_eq!(refused, Err(ImportError::NotDataRows(vec![4, 9])));
    }

    #[test]
    fn row_numbers_read_lists_and_ranges() {
        assert_eq!(
            row_numbers("2, 5,7-9"),
            Some(BTreeSet::from([2, 5, 7, 8, 9]))
        );
        for refused in ["", "1", "0", "a", "3-2", "2,,3", "-4", "2-999999"] {
            assert_eq!(row_numbers(refused), None, "{refused:?}");
        }
    }
}
