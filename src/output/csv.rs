//! CSV result files: one header row from [`COLUMNS`], then one row per domain.
//!
//! Cells: null and empty lists are empty cells (so a nullable text that is `Some("")` reads back
//! as null); booleans are `true` / `false`; a list is its items joined by one space (items never
//! contain spaces: host names, patterns and URIs); `issues` holds the codes only; `scanned_at`
//! is RFC 3339 UTC with milliseconds; `severity` is the worst issue severity.
//!
//! Formula-injection guard for spreadsheet users: a text cell (strings and lists, not numbers,
//! booleans or timestamps) that begins with `=`, `+`, `-`, `@`, TAB or CR is written with a
//! leading `'`, which spreadsheets treat as "this is text" and do not display. So that the
//! round trip stays exact, a value that already begins with one or more `'` followed by one of
//! those characters gets one more `'` as well (`'=x` is written `''=x`). The reader removes
//! exactly one leading `'` from any text cell of the form `'…'` + trigger character, and leaves
//! every other cell alone: nothing is ambiguous.

use std::io::Write;
use std::path::Path;

use crate::output::ResultWriter;
use crate::output::row::{CellIn, CellOut, RowAssembler, cell, write_rfc3339_millis};
use crate::output::schema::{COLUMNS, ColumnId, ColumnType};
use crate::report::{DomainReport, parse_millis};

/// Writes CSV rows into any byte sink (a buffered file or stdout).
pub struct CsvResultWriter {
    writer: ::csv::Writer<Box<dyn Write + Send>>,
    /// Reused for joined lists, guarded text and numbers.
    scratch: Vec<u8>,
}

impl CsvResultWriter {
    /// Writes the header row at once when `with_header` (a new or empty file).
    pub fn new(sink: Box<dyn Write + Send>, with_header: bool) -> std::io::Result<Self> {
        let mut writer = ::csv::WriterBuilder::new().from_writer(sink);
        if with_header {
            writer.write_record(COLUMNS.iter().map(|column| column.name))?;
        }
        Ok(CsvResultWriter {
            writer,
            scratch: Vec::with_capacity(256),
        })
    }

    fn write_cell(&mut self, value: CellOut<'_>) -> std::io::Result<()> {
        let scratch = &mut self.scratch;
        scratch.clear();
        match value {
            CellOut::Utf8(None) | CellOut::Int64(None) | CellOut::Int32(None) => {}
            CellOut::Utf8(Some(text)) => {
                if !needs_formula_guard(text.as_bytes()) {
                    return Ok(self.writer.write_field(text)?);
                }
                scratch.push(FORMULA_GUARD);
                scratch.extend_from_slice(text.as_bytes());
            }
            CellOut::Int64(Some(number)) => write!(scratch, "{number}")?,
            CellOut::Int32(Some(number)) => write!(scratch, "{number}")?,
            CellOut::Bool(flag) => return Ok(self.writer.write_field(bool_text(flag))?),
            CellOut::Utf8List(items) => {
                // Reserve the guard byte, join, then decide whether to keep it.
                scratch.push(FORMULA_GUARD);
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        scratch.push(LIST_SEPARATOR);
                    }
                    scratch.extend_from_slice(item.as_bytes());
                }
                if !needs_formula_guard(&scratch[1..]) {
                    return Ok(self.writer.write_field(&scratch[1..])?);
                }
            }
            CellOut::TimestampMillis(millis) => write_rfc3339_millis(scratch, millis)?,
        }
        Ok(self.writer.write_field(&self.scratch)?)
    }
}

impl ResultWriter for CsvResultWriter {
    fn write(&mut self, report: &DomainReport) -> std::io::Result<()> {
        for column in COLUMNS {
            self.write_cell(cell(report, column.id))?;
        }
        Ok(self.writer.write_record(None::<&[u8]>)?)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }

    fn finish(mut self: Box<Self>) -> std::io::Result<()> {
        self.writer.flush()
    }
}

const FORMULA_GUARD: u8 = b'\'';
const LIST_SEPARATOR: u8 = b' ';

fn bool_text(flag: bool) -> &'static str {
    if flag { "true" } else { "false" }
}

/// Whether a text value must be written with a leading `'`: it begins (after any `'`) with a
/// character that makes spreadsheets evaluate the cell.
pub(crate) fn needs_formula_guard(text: &[u8]) -> bool {
    let unquoted = text.iter().position(|&byte| byte != FORMULA_GUARD);
    matches!(
        unquoted.map(|start| text[start]),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    )
}

/// Removes the guard [`CsvResultWriter`] added, if it added one.
pub(crate) fn strip_formula_guard(cell: &str) -> &str {
    if cell.as_bytes().first() == Some(&FORMULA_GUARD) && needs_formula_guard(cell.as_bytes()) {
        &cell[1..]
    } else {
        cell
    }
}

/// Streams the rows of a CSV result file, one [`DomainReport`] each.
pub struct CsvRows<R: std::io::Read> {
    reader: ::csv::Reader<R>,
    /// The column of each field of the file, `None` for columns this version does not know.
    layout: Vec<Option<ColumnId>>,
    record: ::csv::StringRecord,
    assembler: RowAssembler,
    source: String,
    done: bool,
}

impl CsvRows<Box<dyn std::io::BufRead + Send>> {
    /// Opens `path` (decompressed when it is gzip, zstd or zip) and checks its header.
    pub fn open(path: &Path) -> Result<Self, String> {
        CsvRows::new(
            crate::compression::open_file(path)?,
            path.display().to_string(),
        )
    }
}

impl<R: std::io::Read> CsvRows<R> {
    /// Reads the header of `source` (named `source_name` in errors).
    pub fn new(source: R, source_name: String) -> Result<Self, String> {
        let mut reader = ::csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(source);
        let header = reader
            .headers()
            .map_err(|err| format!("{source_name}: cannot read the CSV header: {err}"))?;
        let layout: Vec<Option<ColumnId>> = header
            .iter()
            .map(|name| crate::output::schema::column_by_name(name).map(|column| column.id))
            .collect();
        crate::output::check_required_columns(&source_name, |id| layout.contains(&Some(id)))?;
        Ok(CsvRows {
            reader,
            layout,
            record: ::csv::StringRecord::new(),
            assembler: RowAssembler::new(),
            source: source_name,
            done: false,
        })
    }

    fn assemble(&mut self) -> Result<DomainReport, String> {
        for (field, column) in self.record.iter().zip(&self.layout) {
            let Some(column) = *column else { continue };
            if let Err(err) = store_text_cell(&mut self.assembler, column, field) {
                self.assembler.discard();
                return Err(err);
            }
        }
        Ok(self.assembler.take())
    }
}

/// Parses one CSV cell by the column's type and stores it.
fn store_text_cell(
    assembler: &mut RowAssembler,
    column: ColumnId,
    field: &str,
) -> Result<(), String> {
    let definition = column.column();
    let present = (!field.is_empty()).then_some(field);
    let parse_error = |what: &str| format!("{}: `{field}` is not {what}", definition.name);
    let value = match definition.kind {
        ColumnType::Utf8 => CellIn::Utf8(present.map(strip_formula_guard)),
        ColumnType::Int64 => CellIn::Int64(
            present
                .map(|text| text.parse().map_err(|_| parse_error("an integer")))
                .transpose()?,
        ),
        ColumnType::Int32 => CellIn::Int32(
            present
                .map(|text| text.parse().map_err(|_| parse_error("an integer")))
                .transpose()?,
        ),
        ColumnType::Bool => CellIn::Bool(
            present
                .map(|text| parse_bool(text).ok_or_else(|| parse_error("true or false")))
                .transpose()?,
        ),
        ColumnType::Utf8List => {
            let mut items = strip_formula_guard(field)
                .split(LIST_SEPARATOR as char)
                .filter(|item| !item.is_empty());
            return assembler.set(column, CellIn::Utf8List(&mut items));
        }
        ColumnType::TimestampMillis => CellIn::TimestampMillis(
            present
                .map(|text| parse_millis(text).ok_or_else(|| parse_error("an RFC 3339 time")))
                .transpose()?,
        ),
    };
    assembler.set(column, value)
}

fn parse_bool(text: &str) -> Option<bool> {
    // Spreadsheets that re-save the file write TRUE / FALSE.
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

impl<R: std::io::Read> Iterator for CsvRows<R> {
    type Item = Result<DomainReport, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.reader.read_record(&mut self.record) {
            Ok(false) => {
                self.done = true;
                None
            }
            Ok(true) => Some(self.assemble().map_err(|err| {
                let line = self.record.position().map_or(0, |position| position.line());
                format!("{}: line {line}: {err}", self.source)
            })),
            Err(err) => {
                // A malformed row is reported and skipped; an I/O error ends the stream.
                if err.is_io_error() {
                    self.done = true;
                }
                Some(Err(format!("{}: {err}", self.source)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_covers_the_trigger_characters_only() {
        for text in ["=1", "+1", "-x", "@SUM(1)", "\tx", "\rx", "'=x", "''-x"] {
            assert!(needs_formula_guard(text.as_bytes()), "{text:?}");
        }
        for text in ["", "x", "'", "''", "'x", "1=2", " =x", "example.com"] {
            assert!(!needs_formula_guard(text.as_bytes()), "{text:?}");
        }
    }

    #[test]
    fn guard_round_trips_exactly() {
        for text in [
            "=cmd", "+1", "-x", "@a", "\tx", "\rx", "'=x", "''=x", "'x", "'", "x", "",
        ] {
            let written = if needs_formula_guard(text.as_bytes()) {
                format!("'{text}")
            } else {
                text.to_owned()
            };
            assert_eq!(strip_formula_guard(&written), text, "{text:?}");
        }
    }

    #[test]
    fn bad_numbers_are_row_errors() {
        let mut assembler = RowAssembler::new();
        assert!(store_text_cell(&mut assembler, ColumnId::Rank, "x").is_err());
        assert!(store_text_cell(&mut assembler, ColumnId::Rank, "").is_ok());
        assert!(store_text_cell(&mut assembler, ColumnId::TlsRpt, "yes").is_err());
        assert!(store_text_cell(&mut assembler, ColumnId::ScannedAt, "yesterday").is_err());
    }
}
