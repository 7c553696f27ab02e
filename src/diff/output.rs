//! Writing `diff` rows as CSV, JSON Lines or Parquet, to standard output, a local file or an
//! object store. The columns are defined once, in [`DIFF_COLUMNS`].

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::parquet::arrow::ArrowWriter;
use ::parquet::basic::{Compression, ZstdLevel};
use ::parquet::file::properties::WriterProperties;
use arrow_array::builder::{BooleanBuilder, ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::diff::{DiffRow, Snapshot};
use crate::output::Format;
use crate::output::store::{Location, is_object_url, upload_file};

/// The value type of a diff column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffColumnType {
    /// Nullable text.
    Utf8,
    /// A list of strings (CSV: joined by one space), never null.
    Utf8List,
    /// Nullable boolean (null: the domain is not in that run).
    Bool,
}

/// One cell of a diff row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffCell {
    Utf8(Option<String>),
    Utf8List(Vec<String>),
    Bool(Option<bool>),
}

macro_rules! diff_columns {
    ($( $id:ident => $name:literal, $kind:ident; )*) => {
        /// Identifies a diff column.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum DiffColumnId { $( $id, )* }

        /// Every diff column, in output order.
        pub const DIFF_COLUMNS: &[(DiffColumnId, &str, DiffColumnType)] = &[
            $( (DiffColumnId::$id, $name, DiffColumnType::$kind), )*
        ];
    };
}

diff_columns! {
    Domain => "domain", Utf8;
    Changes => "changes", Utf8List;
    OldOutcome => "old_outcome", Utf8;
    NewOutcome => "new_outcome", Utf8;
    OldMode => "old_mode", Utf8;
    NewMode => "new_mode", Utf8;
    OldStsId => "old_sts_id", Utf8;
    NewStsId => "new_sts_id", Utf8;
    OldPolicySha256 => "old_policy_sha256", Utf8;
    NewPolicySha256 => "new_policy_sha256", Utf8;
    OldMxHosts => "old_mx_hosts", Utf8List;
    NewMxHosts => "new_mx_hosts", Utf8List;
    OldMxUncovered => "old_mx_uncovered", Utf8List;
    NewMxUncovered => "new_mx_uncovered", Utf8List;
    NewlyUncovered => "newly_uncovered", Utf8List;
    OldStsRecordCname => "old_sts_record_cname", Utf8;
    NewStsRecordCname => "new_sts_record_cname", Utf8;
    OldPolicyHostCname => "old_policy_host_cname", Utf8;
    NewPolicyHostCname => "new_policy_host_cname", Utf8;
    OldTlsRpt => "old_tls_rpt", Bool;
    NewTlsRpt => "new_tls_rpt", Bool;
}

/// The value of `column` in `row`.
pub fn diff_cell(row: &DiffRow, column: DiffColumnId) -> DiffCell {
    use DiffColumnId as C;
    let text = |side: &Option<Snapshot>, get: fn(&Snapshot) -> Option<String>| {
        DiffCell::Utf8(side.as_ref().and_then(get))
    };
    let list = |side: &Option<Snapshot>, get: fn(&Snapshot) -> &Vec<String>| {
        DiffCell::Utf8List(side.as_ref().map(get).cloned().unwrap_or_default())
    };
    let (old, new) = (&row.old, &row.new);
    match column {
        C::Domain => DiffCell::Utf8(Some(row.domain.clone())),
        C::Changes => {
            DiffCell::Utf8List(row.changes.iter().map(|c| c.as_str().to_owned()).collect())
        }
        C::OldOutcome => text(old, |s| Some(s.outcome.as_str().to_owned())),
        C::NewOutcome => text(new, |s| Some(s.outcome.as_str().to_owned())),
        C::OldMode => text(old, |s| s.mode.map(str::to_owned)),
        C::NewMode => text(new, |s| s.mode.map(str::to_owned)),
        C::OldStsId => text(old, |s| s.sts_id.clone()),
        C::NewStsId => text(new, |s| s.sts_id.clone()),
        C::OldPolicySha256 => text(old, |s| s.policy_sha256.clone()),
        C::NewPolicySha256 => text(new, |s| s.policy_sha256.clone()),
        C::OldMxHosts => list(old, |s| &s.mx_hosts),
        C::NewMxHosts => list(new, |s| &s.mx_hosts),
        C::OldMxUncovered => list(old, |s| &s.mx_uncovered),
        C::NewMxUncovered => list(new, |s| &s.mx_uncovered),
        C::NewlyUncovered => DiffCell::Utf8List(row.newly_uncovered.clone()),
        C::OldStsRecordCname => text(old, |s| s.sts_record_cname.clone()),
        C::NewStsRecordCname => text(new, |s| s.sts_record_cname.clone()),
        C::OldPolicyHostCname => text(old, |s| s.policy_host_cname.clone()),
        C::NewPolicyHostCname => text(new, |s| s.policy_host_cname.clone()),
        C::OldTlsRpt => DiffCell::Bool(old.as_ref().map(|s| s.tls_rpt)),
        C::NewTlsRpt => DiffCell::Bool(new.as_ref().map(|s| s.tls_rpt)),
    }
}

/// The Arrow schema of a diff file.
pub fn diff_schema() -> SchemaRef {
    let fields: Vec<Field> = DIFF_COLUMNS
        .iter()
        .map(|(id, name, kind)| match kind {
            DiffColumnType::Utf8 => Field::new(*name, DataType::Utf8, *id != DiffColumnId::Domain),
            DiffColumnType::Bool => Field::new(*name, DataType::Boolean, true),
            DiffColumnType::Utf8List => Field::new(
                *name,
                DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, false))),
                false,
            ),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Rows per Parquet record batch.
const BATCH_ROWS: usize = 8192;

enum Encoder {
    Csv(csv::Writer<Box<dyn Write + Send>>),
    Jsonl(Box<dyn Write + Send>),
    Parquet {
        writer: ArrowWriter<File>,
        builders: Vec<CellBuilder>,
        rows: usize,
    },
}

enum CellBuilder {
    Utf8(StringBuilder),
    Utf8List(ListBuilder<StringBuilder>),
    Bool(BooleanBuilder),
}

/// Writes diff rows (see the module doc). Call [`DiffWriter::finish`].
pub struct DiffWriter {
    encoder: Encoder,
    /// The staged local file and the object it goes to, for object-store output.
    upload: Option<(PathBuf, crate::output::store::ObjectLocation)>,
}

impl DiffWriter {
    /// Opens `target` (`-` is standard output, CSV or JSON Lines only).
    pub fn create(target: &str, format: Format) -> Result<DiffWriter, String> {
        let (local, upload) = if target == "-" {
            (None, None)
        } else if is_object_url(target) {
            let Location::Object(object) = Location::parse(target)? else {
                return Err(format!("{target}: not an object URL"));
            };
            let staged = std::env::temp_dir().join(format!(
                "mta-sts-scan-diff-{}-{}.{}",
                std::process::id(),
                crate::report::now_millis(),
                format.extension()
            ));
            (Some(staged.clone()), Some((staged, object)))
        } else {
            (Some(PathBuf::from(target)), None)
        };
        let open = |path: &Path| {
            File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))
        };
        let sink = |local: &Option<PathBuf>| -> Result<Box<dyn Write + Send>, String> {
            Ok(match local {
                Some(path) => Box::new(BufWriter::new(open(path)?)),
                None => Box::new(std::io::stdout()),
            })
        };
        let encoder = match format {
            Format::Csv => {
                let mut writer = csv::Writer::from_writer(sink(&local)?);
                let header: Vec<&str> = DIFF_COLUMNS.iter().map(|(_, name, _)| *name).collect();
                writer
                    .write_record(&header)
                    .map_err(|e| format!("cannot write the diff: {e}"))?;
                Encoder::Csv(writer)
            }
            Format::Jsonl => Encoder::Jsonl(sink(&local)?),
            Format::Parquet => {
                let Some(path) = &local else {
                    return Err("Parquet output needs a file: give -o PATH, or choose csv or jsonl for stdout".into());
                };
                let level = ZstdLevel::try_new(3).map_err(|e| e.to_string())?;
                let properties = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(level))
                    .build();
                let writer = ArrowWriter::try_new(open(path)?, diff_schema(), Some(properties))
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                Encoder::Parquet {
                    writer,
                    builders: new_builders(),
                    rows: 0,
                }
            }
        };
        Ok(DiffWriter { encoder, upload })
    }

    /// Writes one row.
    pub fn write(&mut self, row: &DiffRow) -> Result<(), String> {
        let error = |e: &dyn std::fmt::Display| format!("cannot write the diff: {e}");
        match &mut self.encoder {
            Encoder::Csv(writer) => {
                let cells: Vec<String> = DIFF_COLUMNS
                    .iter()
                    .map(|(id, _, _)| match diff_cell(row, *id) {
                        DiffCell::Utf8(text) => text.unwrap_or_default(),
                        DiffCell::Utf8List(items) => items.join(" "),
                        DiffCell::Bool(flag) => flag.map(|f| f.to_string()).unwrap_or_default(),
                    })
                    .collect();
                writer.write_record(&cells).map_err(|e| error(&e))
            }
            Encoder::Jsonl(sink) => {
                let object: serde_json::Map<String, serde_json::Value> = DIFF_COLUMNS
                    .iter()
                    .map(|(id, name, _)| {
                        let value = match diff_cell(row, *id) {
                            DiffCell::Utf8(text) => text.into(),
                            DiffCell::Utf8List(items) => items.into(),
                            DiffCell::Bool(flag) => flag.into(),
                        };
                        ((*name).to_owned(), value)
                    })
                    .collect();
                let line = serde_json::to_string(&object).map_err(|e| error(&e))?;
                writeln!(sink, "{line}").map_err(|e| error(&e))
            }
            Encoder::Parquet {
                writer,
                builders,
                rows,
            } => {
                for ((id, _, _), builder) in DIFF_COLUMNS.iter().zip(builders.iter_mut()) {
                    match (builder, diff_cell(row, *id)) {
                        (CellBuilder::Utf8(b), DiffCell::Utf8(text)) => b.append_option(text),
                        (CellBuilder::Bool(b), DiffCell::Bool(flag)) => b.append_option(flag),
                        (CellBuilder::Utf8List(b), DiffCell::Utf8List(items)) => {
                            for item in items {
                                b.values().append_value(item);
                            }
                            b.append(true);
                        }
                        _ => return Err("a diff cell does not match its column".into()),
                    }
                }
                *rows += 1;
                if *rows >= BATCH_ROWS {
                    write_batch(writer, builders, rows)?;
                }
                Ok(())
            }
        }
    }

    /// Flushes, closes and (object store) uploads.
    pub fn finish(self) -> Result<(), String> {
        let error = |e: &dyn std::fmt::Display| format!("cannot write the diff: {e}");
        match self.encoder {
            Encoder::Csv(mut writer) => writer.flush().map_err(|e| error(&e))?,
            Encoder::Jsonl(mut sink) => sink.flush().map_err(|e| error(&e))?,
            Encoder::Parquet {
                mut writer,
                mut builders,
                mut rows,
            } => {
                write_batch(&mut writer, &mut builders, &mut rows)?;
                writer.close().map_err(|e| error(&e))?;
            }
        }
        if let Some((staged, object)) = self.upload {
            let uploaded = upload_file(&staged, &object);
            let _ = std::fs::remove_file(&staged);
            uploaded?;
        }
        Ok(())
    }
}

fn new_builders() -> Vec<CellBuilder> {
    DIFF_COLUMNS
        .iter()
        .map(|(_, _, kind)| match kind {
            DiffColumnType::Utf8 => CellBuilder::Utf8(StringBuilder::new()),
            DiffColumnType::Bool => CellBuilder::Bool(BooleanBuilder::new()),
            DiffColumnType::Utf8List => CellBuilder::Utf8List(
                ListBuilder::new(StringBuilder::new())
                    .with_field(Arc::new(Field::new_list_field(DataType::Utf8, false))),
            ),
        })
        .collect()
}

fn write_batch(
    writer: &mut ArrowWriter<File>,
    builders: &mut [CellBuilder],
    rows: &mut usize,
) -> Result<(), String> {
    if *rows == 0 {
        return Ok(());
    }
    let arrays: Vec<ArrayRef> = builders
        .iter_mut()
        .map(|builder| -> ArrayRef {
            match builder {
                CellBuilder::Utf8(b) => Arc::new(b.finish()),
                CellBuilder::Bool(b) => Arc::new(b.finish()),
                CellBuilder::Utf8List(b) => Arc::new(b.finish()),
            }
        })
        .collect();
    *rows = 0;
    let batch = RecordBatch::try_new(diff_schema(), arrays)
        .map_err(|e| format!("cannot write the diff: {e}"))?;
    writer
        .write(&batch)
        .map_err(|e| format!("cannot write the diff: {e}"))
}
