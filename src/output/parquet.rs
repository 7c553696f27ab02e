//! Parquet result files: the Arrow schema of [`schema::arrow_schema`], zstd level 3, run
//! metadata in the key-value metadata, and the batch-by-batch reader.
//!
//! Rows are appended straight into Arrow builders; every [`BATCH_ROWS`] rows become one
//! `RecordBatch`. Crash safety: while a scan runs, rows go to complete *part files* in
//! `<output>.parts/` (each [`ResultWriter::flush`] closes one, footer and all), and
//! [`ResultWriter::finish`] merges the parts into the output file (row groups of
//! [`ROW_GROUP_ROWS`]) and removes them. A scan killed at any moment leaves every part up to the
//! last flush readable: [`open_rows`] reads the parts when the output file is not there, and
//! `--resume` continues from them.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::parquet::arrow::ArrowWriter;
use ::parquet::arrow::ProjectionMask;
use ::parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use ::parquet::basic::{Compression, ZstdLevel};
use ::parquet::file::metadata::KeyValue;
use ::parquet::file::properties::WriterProperties;
use ::parquet::schema::types::ColumnPath;
use arrow_array::builder::{
    BooleanBuilder, Int32Builder, Int64Builder, ListBuilder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Int32Array, Int64Array, ListArray, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow_schema::{DataType, SchemaRef, TimeUnit};

use crate::output::row::{CellIn, CellOut, RowAssembler, cell};
use crate::output::schema::{
    self, COLUMNS, ColumnId, ColumnType, NEAR_UNIQUE_COLUMNS, SCHEMA_VERSION, TIMEZONE,
};
use crate::output::{ResultWriter, RunMetadata, WriteMode};
use crate::report::DomainReport;

/// Rows per `RecordBatch` handed to the Parquet writer (and per batch when reading).
pub const BATCH_ROWS: usize = 8192;
/// Rows per row group.
pub const ROW_GROUP_ROWS: usize = 65_536;
/// zstd level: a good ratio at a small CPU cost.
const ZSTD_LEVEL: i32 = 3;
/// Prefix of our key-value metadata keys.
pub const METADATA_PREFIX: &str = "mta_sts_scan.";

/// The key-value metadata written into every file, keys without [`METADATA_PREFIX`].
fn metadata_pairs(metadata: &RunMetadata) -> [(&'static str, &str); 7] {
    [
        ("tool_version", &metadata.tool_version),
        ("schema_version", SCHEMA_VERSION),
        ("scan_started", &metadata.scan_started),
        ("resolver", &metadata.resolver),
        ("settings", &metadata.settings),
        ("input", &metadata.input),
        ("trust_store", &metadata.trust_store),
    ]
}

/// Writes a Parquet file through part files (see the module doc).
pub struct ParquetResultWriter {
    path: PathBuf,
    parts: PathBuf,
    next_part: u32,
    properties: WriterProperties,
    /// The part being written, if any.
    // The writer buffers internally (parquet's `TrackedWrite` wraps the sink in a `BufWriter`),
    // so the file is handed over unwrapped.
    writer: Option<ArrowWriter<File>>,
    schema: SchemaRef,
    /// One builder per entry of `COLUMNS`, in order.
    builders: Vec<ColumnBuilder>,
    buffered_rows: usize,
}

/// `results.parquet` → `results.parquet.parts`.
pub fn parts_dir(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".parts");
    PathBuf::from(name)
}

/// The part files in `dir`, in the order they were written.
fn part_files(dir: &Path) -> Vec<PathBuf> {
    let mut parts: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
                .collect()
        })
        .unwrap_or_default();
    parts.sort();
    parts
}

fn part_number(path: &Path) -> Option<u32> {
    path.file_stem()?
        .to_str()?
        .strip_prefix("part-")?
        .parse()
        .ok()
}

impl ParquetResultWriter {
    /// Starts `path` anew ([`WriteMode::Create`]) or continues it ([`WriteMode::Append`]: an
    /// existing output file and readable parts are kept, a part cut short by a crash dropped).
    pub fn create(path: &Path, metadata: &RunMetadata, mode: WriteMode) -> Result<Self, String> {
        let parts = parts_dir(path);
        let io_error = |err: io::Error| format!("cannot write {}: {err}", parts.display());
        if mode == WriteMode::Create {
            // Fail now, not at the end, when the output cannot be created (and never create
            // the directories leading to it).
            File::create(path).map_err(|err| format!("cannot create {}: {err}", path.display()))?;
            let _ = std::fs::remove_file(path);
            if parts.exists() {
                std::fs::remove_dir_all(&parts).map_err(io_error)?;
            }
        }
        if mode == WriteMode::Append && path.exists() && parts.exists() {
            // The earlier run merged its parts but died before removing them: the output file
            // already holds every row, so the parts are stale and must not be merged twice.
            std::fs::remove_dir_all(&parts).map_err(io_error)?;
        }
        if !parts.is_dir() {
            std::fs::create_dir(&parts).map_err(io_error)?;
        }
        let mut next_part = 0;
        if mode == WriteMode::Append {
            for part in part_files(&parts) {
                if ParquetRows::open(&part).is_err() {
                    std::fs::remove_file(&part).map_err(io_error)?;
                } else if let Some(number) = part_number(&part) {
                    next_part = next_part.max(number + 1);
                }
            }
            if path.exists() {
                let moved = parts.join(format!("part-{next_part:05}.parquet"));
                std::fs::rename(path, &moved).map_err(io_error)?;
                next_part += 1;
            }
        }
        Ok(ParquetResultWriter {
            path: path.to_owned(),
            parts,
            next_part,
            properties: properties(metadata)?,
            writer: None,
            schema: schema::arrow_schema(),
            builders: new_builders(),
            buffered_rows: 0,
        })
    }

    /// Hands the buffered rows to the current part as one record batch.
    fn write_batch(&mut self) -> io::Result<()> {
        if self.buffered_rows == 0 {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .map(ColumnBuilder::finish)
            .collect();
        self.buffered_rows = 0;
        let batch =
            RecordBatch::try_new(Arc::clone(&self.schema), arrays).map_err(io::Error::other)?;
        let writer = match &mut self.writer {
            Some(writer) => writer,
            None => {
                let path = self
                    .parts
                    .join(format!("part-{:05}.parquet", self.next_part));
                self.next_part += 1;
                let writer = ArrowWriter::try_new(
                    File::create(path)?,
                    Arc::clone(&self.schema),
                    Some(self.properties.clone()),
                )
                .map_err(io::Error::other)?;
                self.writer.insert(writer)
            }
        };
        writer.write(&batch).map_err(io::Error::other)
    }

    /// Closes the current part (footer written, synced).
    fn close_part(&mut self) -> io::Result<()> {
        self.write_batch()?;
        if let Some(mut writer) = self.writer.take() {
            writer.flush().map_err(io::Error::other)?;
            writer.finish().map_err(io::Error::other)?;
            writer.sync()?;
        }
        Ok(())
    }

    /// Merges every part into the output file (written aside, then renamed into place).
    fn merge_parts(&self) -> io::Result<()> {
        let mut staging = self.path.as_os_str().to_owned();
        staging.push(".merging");
        let staging = PathBuf::from(staging);
        let mut merged = ArrowWriter::try_new(
            File::create(&staging)?,
            Arc::clone(&self.schema),
            Some(self.properties.clone()),
        )
        .map_err(io::Error::other)?;
        for part in part_files(&self.parts) {
            let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&part)?)
                .and_then(|builder| builder.with_batch_size(BATCH_ROWS).build())
                .map_err(io::Error::other)?;
            for batch in reader {
                let batch = batch.map_err(io::Error::other)?;
                merged.write(&batch).map_err(io::Error::other)?;
            }
        }
        merged.finish().map_err(io::Error::other)?;
        merged.sync()?;
        std::fs::rename(&staging, &self.path)?;
        std::fs::remove_dir_all(&self.parts)
    }
}

/// The rows of a Parquet output: the file, or, when a scan was stopped before it could merge,
/// its readable part files in order (a part cut short by a crash is skipped).
pub fn open_rows(
    path: &Path,
) -> Result<Box<dyn Iterator<Item = Result<DomainReport, String>> + Send>, String> {
    let parts = parts_dir(path);
    if path.exists() || !parts.is_dir() {
        return Ok(Box::new(ParquetRows::open(path)?));
    }
    Ok(Box::new(
        part_files(&parts)
            .into_iter()
            .filter_map(|part| ParquetRows::open(&part).ok())
            .flatten(),
    ))
}

pub(crate) fn properties(metadata: &RunMetadata) -> Result<WriterProperties, String> {
    let level = ZstdLevel::try_new(ZSTD_LEVEL).map_err(|err| err.to_string())?;
    let key_values = metadata_pairs(metadata)
        .into_iter()
        .map(|(key, value)| KeyValue::new(format!("{METADATA_PREFIX}{key}"), value.to_owned()))
        .collect();
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_key_value_metadata(Some(key_values));
    for column in NEAR_UNIQUE_COLUMNS {
        builder =
            builder.set_column_dictionary_enabled(ColumnPath::from(column.column().name), false);
    }
    Ok(builder.build())
}

impl ResultWriter for ParquetResultWriter {
    fn write(&mut self, report: &DomainReport) -> io::Result<()> {
        for (column, builder) in COLUMNS.iter().zip(&mut self.builders) {
            builder.append(cell(report, column.id))?;
        }
        self.buffered_rows += 1;
        if self.buffered_rows >= BATCH_ROWS {
            self.write_batch()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.close_part()
    }

    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.close_part()?;
        self.merge_parts()
    }
}

/// An Arrow builder for one column.
enum ColumnBuilder {
    Utf8(StringBuilder),
    Int64(Int64Builder),
    Int32(Int32Builder),
    Bool(BooleanBuilder),
    Utf8List(ListBuilder<StringBuilder>),
    TimestampMillis(TimestampMillisecondBuilder),
}

fn new_builders() -> Vec<ColumnBuilder> {
    COLUMNS
        .iter()
        .map(|column| ColumnBuilder::new(column.kind))
        .collect()
}

impl ColumnBuilder {
    fn new(kind: ColumnType) -> Self {
        match kind {
            ColumnType::Utf8 => {
                ColumnBuilder::Utf8(StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 16))
            }
            ColumnType::Int64 => ColumnBuilder::Int64(Int64Builder::with_capacity(BATCH_ROWS)),
            ColumnType::Int32 => ColumnBuilder::Int32(Int32Builder::with_capacity(BATCH_ROWS)),
            ColumnType::Bool => ColumnBuilder::Bool(BooleanBuilder::with_capacity(BATCH_ROWS)),
            ColumnType::Utf8List => ColumnBuilder::Utf8List(
                ListBuilder::with_capacity(StringBuilder::new(), BATCH_ROWS)
                    .with_field(Arc::new(schema::list_item_field())),
            ),
            ColumnType::TimestampMillis => ColumnBuilder::TimestampMillis(
                TimestampMillisecondBuilder::with_capacity(BATCH_ROWS).with_timezone(TIMEZONE),
            ),
        }
    }

    fn append(&mut self, value: CellOut<'_>) -> io::Result<()> {
        match (self, value) {
            (ColumnBuilder::Utf8(builder), CellOut::Utf8(text)) => builder.append_option(text),
            (ColumnBuilder::Int64(builder), CellOut::Int64(number)) => {
                builder.append_option(number)
            }
            (ColumnBuilder::Int32(builder), CellOut::Int32(number)) => {
                builder.append_option(number)
            }
            (ColumnBuilder::Bool(builder), CellOut::Bool(flag)) => builder.append_value(flag),
            (ColumnBuilder::Utf8List(builder), CellOut::Utf8List(items)) => {
                for item in items.iter() {
                    builder.values().append_value(item);
                }
                builder.append(true);
            }
            (ColumnBuilder::TimestampMillis(builder), CellOut::TimestampMillis(millis)) => {
                builder.append_value(millis)
            }
            (_, value) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("cell {value:?} does not match its column builder"),
                ));
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Utf8(builder) => Arc::new(builder.finish()),
            ColumnBuilder::Int64(builder) => Arc::new(builder.finish()),
            ColumnBuilder::Int32(builder) => Arc::new(builder.finish()),
            ColumnBuilder::Bool(builder) => Arc::new(builder.finish()),
            ColumnBuilder::Utf8List(builder) => Arc::new(builder.finish()),
            ColumnBuilder::TimestampMillis(builder) => Arc::new(builder.finish()),
        }
    }
}

/// Whether a file's Arrow type can be read as `kind`.
fn accepts(kind: ColumnType, data_type: &DataType) -> bool {
    match (kind, data_type) {
        (ColumnType::Utf8, DataType::Utf8)
        | (ColumnType::Int64, DataType::Int64)
        | (ColumnType::Int32, DataType::Int32)
        | (ColumnType::Bool, DataType::Boolean)
        | (ColumnType::TimestampMillis, DataType::Timestamp(TimeUnit::Millisecond, _)) => true,
        (ColumnType::Utf8List, DataType::List(item)) => item.data_type() == &DataType::Utf8,
        _ => false,
    }
}

/// Streams the rows of a Parquet result file, one record batch in memory at a time.
pub struct ParquetRows {
    batches: ParquetRecordBatchReader,
    current: BatchColumns,
    next_row: usize,
    assembler: RowAssembler,
    source: String,
    done: bool,
}

impl ParquetRows {
    /// Opens `path` and checks that every required column is there with a readable type.
    /// Columns this version does not know are not read.
    pub fn open(path: &Path) -> Result<Self, String> {
        let source = path.display().to_string();
        let file = File::open(path).map_err(|err| format!("cannot open {source}: {err}"))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|err| format!("{source}: not a readable Parquet file: {err}"))?;
        let mut known = Vec::with_capacity(COLUMNS.len());
        for (index, field) in builder.schema().fields().iter().enumerate() {
            let Some(column) = schema::column_by_name(field.name()) else {
                continue;
            };
            if !accepts(column.kind, field.data_type()) {
                return Err(format!(
                    "{source}: column `{}` has type {}, expected {}",
                    column.name,
                    field.data_type(),
                    schema::arrow_data_type(column.kind)
                ));
            }
            known.push((index, column.id));
        }
        crate::output::check_required_columns(&source, |id| {
            known.iter().any(|&(_, known_id)| known_id == id)
        })?;
        let projection = ProjectionMask::roots(
            builder.parquet_schema(),
            known.iter().map(|&(index, _)| index),
        );
        let batches = builder
            .with_projection(projection)
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|err| format!("{source}: {err}"))?;
        Ok(ParquetRows {
            batches,
            current: BatchColumns::default(),
            next_row: 0,
            assembler: RowAssembler::new(),
            source,
            done: false,
        })
    }

    fn assemble(&mut self, row: usize) -> Result<DomainReport, String> {
        for (column, data) in &self.current.columns {
            if let Err(err) = data.store(&mut self.assembler, *column, row) {
                self.assembler.discard();
                return Err(err);
            }
        }
        Ok(self.assembler.take())
    }
}

impl Iterator for ParquetRows {
    type Item = Result<DomainReport, String>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            if self.next_row < self.current.rows {
                let row = self.next_row;
                self.next_row += 1;
                return Some(
                    self.assemble(row)
                        .map_err(|err| format!("{}: {err}", self.source)),
                );
            }
            // Reading a batch is not resumable after an error: stop there.
            let loaded = match self.batches.next() {
                None => {
                    self.done = true;
                    return None;
                }
                Some(batch) => batch
                    .map_err(|err| err.to_string())
                    .and_then(|batch| BatchColumns::new(&batch)),
            };
            match loaded {
                Ok(columns) => {
                    self.current = columns;
                    self.next_row = 0;
                }
                Err(err) => {
                    self.done = true;
                    return Some(Err(format!("{}: {err}", self.source)));
                }
            }
        }
        None
    }
}

/// The typed columns of one record batch.
#[derive(Default)]
struct BatchColumns {
    rows: usize,
    columns: Vec<(ColumnId, ColumnData)>,
}

enum ColumnData {
    Utf8(StringArray),
    Int64(Int64Array),
    Int32(Int32Array),
    Bool(BooleanArray),
    Utf8List {
        lists: ListArray,
        items: StringArray,
    },
    TimestampMillis(TimestampMillisecondArray),
}

fn downcast<T: Array + Clone + 'static>(array: &ArrayRef) -> Option<T> {
    array.as_any().downcast_ref::<T>().cloned()
}

impl BatchColumns {
    fn new(batch: &RecordBatch) -> Result<Self, String> {
        let mut columns = Vec::with_capacity(batch.num_columns());
        for (field, array) in batch.schema_ref().fields().iter().zip(batch.columns()) {
            let Some(column) = schema::column_by_name(field.name()) else {
                continue;
            };
            let data = match column.kind {
                ColumnType::Utf8 => downcast(array).map(ColumnData::Utf8),
                ColumnType::Int64 => downcast(array).map(ColumnData::Int64),
                ColumnType::Int32 => downcast(array).map(ColumnData::Int32),
                ColumnType::Bool => downcast(array).map(ColumnData::Bool),
                ColumnType::Utf8List => downcast::<ListArray>(array).and_then(|lists| {
                    let items = downcast::<StringArray>(lists.values())?;
                    Some(ColumnData::Utf8List { lists, items })
                }),
                ColumnType::TimestampMillis => downcast(array).map(ColumnData::TimestampMillis),
            };
            let data = data.ok_or_else(|| {
                format!(
                    "column `{}` has type {}, expected {}",
                    column.name,
                    array.data_type(),
                    schema::arrow_data_type(column.kind)
                )
            })?;
            columns.push((column.id, data));
        }
        Ok(BatchColumns {
            rows: batch.num_rows(),
            columns,
        })
    }
}

impl ColumnData {
    fn store(
        &self,
        assembler: &mut RowAssembler,
        column: ColumnId,
        row: usize,
    ) -> Result<(), String> {
        let value = match self {
            ColumnData::Utf8(array) => CellIn::Utf8(array.is_valid(row).then(|| array.value(row))),
            ColumnData::Int64(array) => {
                CellIn::Int64(array.is_valid(row).then(|| array.value(row)))
            }
            ColumnData::Int32(array) => {
                CellIn::Int32(array.is_valid(row).then(|| array.value(row)))
            }
            ColumnData::Bool(array) => CellIn::Bool(array.is_valid(row).then(|| array.value(row))),
            ColumnData::TimestampMillis(array) => {
                CellIn::TimestampMillis(array.is_valid(row).then(|| array.value(row)))
            }
            ColumnData::Utf8List { lists, items } => {
                // A null list reads as an empty one; offsets index into `items`.
                let range = if lists.is_valid(row) {
                    let offsets = lists.value_offsets();
                    offsets[row] as usize..offsets[row + 1] as usize
                } else {
                    0..0
                };
                let mut values = range
                    .filter(|&index| items.is_valid(index))
                    .map(|index| items.value(index));
                return assembler.set(column, CellIn::Utf8List(&mut values));
            }
        };
        assembler.set(column, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_accept_every_column_and_match_the_schema() {
        let mut report = DomainReport::new("a.example".into(), "a.example".into(), None);
        report.mx_hosts = vec!["mx.a.example".into()];
        let mut builders = new_builders();
        for (column, builder) in COLUMNS.iter().zip(&mut builders) {
            builder
                .append(cell(&report, column.id))
                .expect("cell matches builder");
        }
        let arrays: Vec<ArrayRef> = builders.iter_mut().map(ColumnBuilder::finish).collect();
        let batch = RecordBatch::try_new(schema::arrow_schema(), arrays);
        assert!(batch.is_ok(), "{batch:?}");
    }

    #[test]
    fn every_column_type_is_accepted_from_its_own_schema() {
        for column in COLUMNS {
            assert!(
                accepts(column.kind, &schema::arrow_data_type(column.kind)),
                "{}",
                column.name
            );
        }
    }
}
