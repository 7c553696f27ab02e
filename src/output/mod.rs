//! Result files: writing one row per domain as CSV, Parquet or JSON Lines, and reading any of
//! them back (for `stats` and `--resume`).
//!
//! The columns are defined once, in [`schema::COLUMNS`] (spec §5); the CSV header, the Parquet
//! schema and the readers derive from it. JSON Lines uses the `check --json` object instead.

pub mod csv;
pub mod jsonl;
pub mod mx_table;
pub mod parquet;
mod row;
pub mod schema;
pub mod store;

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::output::schema::{COLUMNS, ColumnId};
use crate::report::DomainReport;

/// A result file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
    Jsonl,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Csv, Format::Parquet, Format::Jsonl];

    /// Parses a format name: `csv`, `parquet`, `jsonl` (also `ndjson` and `json`), any case.
    pub fn from_name(name: &str) -> Option<Format> {
        let is = |candidate: &str| name.eq_ignore_ascii_case(candidate);
        if is("csv") {
            Some(Format::Csv)
        } else if is("parquet") {
            Some(Format::Parquet)
        } else if is("jsonl") || is("ndjson") || is("json") {
            Some(Format::Jsonl)
        } else {
            None
        }
    }

    /// The format a file name implies: `.csv`, `.parquet` / `.pq`, `.jsonl` / `.ndjson` /
    /// `.json`, any case, also under a compression extension (`.csv.gz`, `.jsonl.zst`).
    pub fn from_path(path: &Path) -> Option<Format> {
        let inner = crate::compression::inner_name(path);
        let extension = inner.extension()?.to_str()?;
        if extension.eq_ignore_ascii_case("pq") {
            return Some(Format::Parquet);
        }
        Format::from_name(extension)
    }

    /// The usual file extension, without the dot.
    pub const fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
            Format::Jsonl => "jsonl",
        }
    }

    /// The format's name, as accepted by [`Format::from_name`].
    pub const fn as_str(self) -> &'static str {
        self.extension()
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Run metadata written into Parquet key-value metadata (and available to other writers).
#[derive(Debug, Clone, Default)]
pub struct RunMetadata {
    pub tool_version: String,
    /// RFC 3339 time the scan started.
    pub scan_started: String,
    pub resolver: String,
    /// The scan settings, as the caller chooses to describe them (e.g. JSON).
    pub settings: String,
    /// The input list's name.
    pub input: String,
    /// The certificate trust store, with its version ([`crate::net::trust::describe`]).
    pub trust_store: String,
}

/// Where results go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    /// Created, or truncated if it exists. An object URL (`s3://bucket/key`) is written to the
    /// object store ([`store`]).
    File(PathBuf),
    Stdout,
}

/// One writer per format behind one trait.
pub trait ResultWriter: Send {
    fn write(&mut self, report: &DomainReport) -> std::io::Result<()>;
    /// Make everything written so far durable on disk (CSV/JSONL: flush the buffer so files hold
    /// whole lines only; Parquet: close the current row group if it holds any rows). The data is
    /// handed to the operating system; there is no fsync.
    fn flush(&mut self) -> std::io::Result<()>;
    /// Flush and close (Parquet: write the footer). Must be called; Drop is not enough.
    fn finish(self: Box<Self>) -> std::io::Result<()>;
}

/// Opens a writer for `format` on `target` (a file is created, or truncated). Parquet to stdout
/// is refused: a binary file on a terminal or pipe is never what was meant. Error messages
/// name the path.
pub fn create_writer(
    target: &OutputTarget,
    format: Format,
    metadata: &RunMetadata,
) -> Result<Box<dyn ResultWriter>, String> {
    open_writer(target, format, metadata, WriteMode::Create)
}

/// Like [`create_writer`], but continues an existing result file (`--resume`): text formats
/// append (the CSV header is written only to an empty file), Parquet adds part files next to
/// the ones already written and merges everything at [`ResultWriter::finish`].
pub fn append_writer(
    path: &Path,
    format: Format,
    metadata: &RunMetadata,
) -> Result<Box<dyn ResultWriter>, String> {
    open_writer(
        &OutputTarget::File(path.to_owned()),
        format,
        metadata,
        WriteMode::Append,
    )
}

/// Whether a writer starts a new file or continues one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    Create,
    Append,
}

fn open_writer(
    target: &OutputTarget,
    format: Format,
    metadata: &RunMetadata,
    mode: WriteMode,
) -> Result<Box<dyn ResultWriter>, String> {
    if let OutputTarget::File(path) = target
        && store::is_object_path(path)
    {
        if crate::compression::Compression::from_extension(path).is_some() {
            return Err(format!(
                "{}: compressed output to an object store is not supported: write .parquet (compressed by column), .csv or .jsonl",
                path.display()
            ));
        }
        return open_object_writer(path, format, metadata, mode);
    }
    if let OutputTarget::File(path) = target
        && let Some(compression) = crate::compression::Compression::from_extension(path)
    {
        if format == Format::Parquet {
            return Err(format!(
                "{}: Parquet compresses its columns itself (zstd): drop the .{} extension",
                path.display(),
                path.extension().and_then(|e| e.to_str()).unwrap_or("")
            ));
        }
        if compression == crate::compression::Compression::Zip {
            return Err(format!(
                "{}: results cannot be written as zip: use .gz or .zst",
                path.display()
            ));
        }
        if mode == WriteMode::Append {
            return Err(format!(
                "{}: --resume cannot continue a {} file (a killed scan leaves its last block unfinished): write plain text, or compress after the scan",
                path.display(),
                compression.as_str()
            ));
        }
    }
    match (format, target) {
        (Format::Parquet, OutputTarget::File(path)) => Ok(Box::new(
            parquet::ParquetResultWriter::create(path, metadata, mode)?,
        )),
        (Format::Parquet, OutputTarget::Stdout) => Err(
            "Parquet output needs a file: give an output path, or choose csv or jsonl for stdout"
                .to_owned(),
        ),
        (Format::Csv, _) => {
            let (sink, empty, finisher) = open_sink(target, mode)?;
            let writer = csv::CsvResultWriter::new(sink, empty)
                .map_err(|err| format!("cannot write to {}: {err}", target_name(target)))?;
            Ok(Compressed::wrap(Box::new(writer), finisher))
        }
        (Format::Jsonl, _) => {
            let (sink, _, finisher) = open_sink(target, mode)?;
            Ok(Compressed::wrap(
                Box::new(jsonl::JsonlResultWriter::new(sink)),
                finisher,
            ))
        }
    }
}

/// A writer uploading to an object store ([`store`]).
fn open_object_writer(
    path: &Path,
    format: Format,
    metadata: &RunMetadata,
    mode: WriteMode,
) -> Result<Box<dyn ResultWriter>, String> {
    match store::Location::parse(&path.to_string_lossy())? {
        store::Location::Object(object) => Ok(Box::new(store::ObjectResultWriter::create(
            object, format, metadata, mode,
        )?)),
        store::Location::Local(path) => {
            open_writer(&OutputTarget::File(path), format, metadata, mode)
        }
    }
}

/// A text writer into a compressed file: finishing it also ends the compressed stream.
struct Compressed {
    inner: Box<dyn ResultWriter>,
    finisher: crate::compression::Finisher,
}

impl Compressed {
    fn wrap(
        inner: Box<dyn ResultWriter>,
        finisher: Option<crate::compression::Finisher>,
    ) -> Box<dyn ResultWriter> {
        match finisher {
            Some(finisher) => Box::new(Compressed { inner, finisher }),
            None => inner,
        }
    }
}

impl ResultWriter for Compressed {
    fn write(&mut self, report: &DomainReport) -> std::io::Result<()> {
        self.inner.write(report)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }

    fn finish(self: Box<Self>) -> std::io::Result<()> {
        let Compressed { inner, finisher } = *self;
        inner.finish()?;
        finisher.finish()
    }
}

/// The byte sink of a text format: a file that only ever receives whole lines, a compressed
/// file (with the finisher that ends its stream), or stdout. Also says whether the sink starts
/// empty (a CSV header is due).
fn open_sink(target: &OutputTarget, mode: WriteMode) -> Result<TextSink, String> {
    Ok(match target {
        OutputTarget::File(path) => {
            let mut options = std::fs::OpenOptions::new();
            options.create(true);
            match mode {
                WriteMode::Create => options.write(true).truncate(true),
                WriteMode::Append => options.append(true),
            };
            let file = options
                .open(path)
                .map_err(|err| format!("cannot create {}: {err}", path.display()))?;
            let empty = file.metadata().map(|m| m.len() == 0).unwrap_or(true);
            // Compressed: each flush ends a block, so what was flushed decompresses; a killed
            // scan leaves the last block unfinished (readers stop there).
            match crate::compression::Compression::from_extension(path) {
                Some(compression) => {
                    let (sink, finisher) = crate::compression::encoder(file, compression, path)?;
                    (sink, empty, Some(finisher))
                }
                None => (Box::new(WholeLines::new(file)), empty, None),
            }
        }
        OutputTarget::Stdout => (Box::new(std::io::stdout()), true, None),
    })
}

/// A text format's sink, whether it starts empty, and the finisher of a compressed stream.
type TextSink = (
    Box<dyn Write + Send>,
    bool,
    Option<crate::compression::Finisher>,
);

/// A buffered file writer that hands the file complete lines only: a process killed at any
/// moment leaves whole CSV records / JSON lines on disk (records never contain a raw newline:
/// JSON escapes it, and the CSV columns that could hold one are escaped by the validator).
struct WholeLines {
    file: File,
    buffer: Vec<u8>,
    /// Set at the first failed write: nothing more is written, so a full disk cannot leave
    /// duplicated or torn lines behind.
    failed: bool,
}

/// Bytes buffered before complete lines are written out.
const WHOLE_LINES_BUFFER: usize = 1 << 16;

impl WholeLines {
    fn new(file: File) -> Self {
        WholeLines {
            file,
            buffer: Vec::with_capacity(WHOLE_LINES_BUFFER * 2),
            failed: false,
        }
    }

    /// Writes every complete line buffered so far, keeping an unfinished tail.
    fn write_complete_lines(&mut self) -> std::io::Result<()> {
        if self.failed {
            return Err(std::io::Error::other(
                "an earlier write to this file failed",
            ));
        }
        if let Some(last_newline) = self.buffer.iter().rposition(|&b| b == b'\n') {
            if let Err(error) = self.file.write_all(&self.buffer[..=last_newline]) {
                self.failed = true;
                self.buffer.clear();
                return Err(error);
            }
            self.buffer.drain(..=last_newline);
        }
        Ok(())
    }
}

impl Write for WholeLines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= WHOLE_LINES_BUFFER {
            self.write_complete_lines()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.write_complete_lines()?;
        self.file.flush()
    }
}

impl Drop for WholeLines {
    fn drop(&mut self) {
        // Whole lines only, even at the very end (every record ends in a newline anyway).
        let _ = self.write_complete_lines();
    }
}

fn target_name(target: &OutputTarget) -> String {
    match target {
        OutputTarget::File(path) => path.display().to_string(),
        OutputTarget::Stdout => "standard output".to_owned(),
    }
}

/// Read a result file of any format back (for `stats` and `--resume`): one DomainReport per row.
///
/// Streams: CSV and JSON Lines row by row, Parquet one record batch at a time. The format comes
/// from the file name ([`Format::from_path`]) unless given. A malformed row is an error item and
/// the stream goes on; an I/O error ends it.
///
/// Issues come back as `Issue { code, severity, message }`: JSON Lines carries all three; CSV and
/// Parquet carry codes only, so messages are empty and each severity is the code's default,
/// lowered to the row's `severity` column when that is lower (context only ever lowers a
/// severity), which makes [`DomainReport::severity`] match the file. Unknown issue codes are
/// skipped (forward compatibility). Columns this version does not know are ignored; a missing
/// non-nullable column is an error, a missing nullable one reads as null. The JSON-only fields
/// (`policy_version`, `tls_rpt_record`) are `None` from CSV and Parquet.
pub fn read_results(
    path: &Path,
    format: Option<Format>,
) -> Result<Box<dyn Iterator<Item = Result<DomainReport, String>> + Send>, String> {
    let format = match format {
        Some(format) => format,
        None => Format::from_path(path).ok_or_else(|| {
            format!(
                "{}: cannot tell the format from the file name (expected .csv, .parquet or .jsonl)",
                path.display()
            )
        })?,
    };
    if store::is_object_path(path) {
        return match store::Location::parse(&path.to_string_lossy())? {
            store::Location::Object(object) => store::read_object_rows(&object, format),
            store::Location::Local(local) => read_results(&local, Some(format)),
        };
    }
    Ok(match format {
        Format::Csv => Box::new(csv::CsvRows::open(path)?),
        Format::Parquet => parquet::open_rows(path)?,
        Format::Jsonl => Box::new(jsonl::JsonlRows::open(path)?),
    })
}

/// Fails when a non-nullable column of [`COLUMNS`] is not `present` in the file `source`.
fn check_required_columns(source: &str, present: impl Fn(ColumnId) -> bool) -> Result<(), String> {
    match COLUMNS.iter().find(|column| {
        !column.nullable
            && !schema::ADDED_AFTER_VERSION_1.contains(&column.id)
            && !present(column.id)
    }) {
        Some(missing) => Err(format!(
            "{source}: required column `{}` is missing",
            missing.name
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_and_paths() {
        assert_eq!(Format::from_name("CSV"), Some(Format::Csv));
        assert_eq!(Format::from_name("ndjson"), Some(Format::Jsonl));
        assert_eq!(Format::from_name("json"), Some(Format::Jsonl));
        assert_eq!(Format::from_name("xlsx"), None);
        assert_eq!(
            Format::from_path(Path::new("a/b.PQ")),
            Some(Format::Parquet)
        );
        assert_eq!(
            Format::from_path(Path::new("r.parquet")),
            Some(Format::Parquet)
        );
        assert_eq!(
            Format::from_path(Path::new("r.NDJSON")),
            Some(Format::Jsonl)
        );
        assert_eq!(Format::from_path(Path::new("r.csv.gz")), Some(Format::Csv));
        assert_eq!(
            Format::from_path(Path::new("r.jsonl.ZST")),
            Some(Format::Jsonl)
        );
        assert_eq!(Format::from_path(Path::new("r.gz")), None);
        assert_eq!(Format::from_path(Path::new("csv")), None);
        for format in Format::ALL {
            assert_eq!(Format::from_name(format.as_str()), Some(format));
            let file = format!("x.{}", format.extension());
            assert_eq!(Format::from_path(Path::new(&file)), Some(format));
        }
    }

    #[test]
    fn parquet_to_stdout_is_refused() {
        let result = create_writer(
            &OutputTarget::Stdout,
            Format::Parquet,
            &RunMetadata::default(),
        );
        let error = result.err().expect("refused");
        assert!(error.contains("Parquet"), "{error}");
    }

    #[test]
    fn errors_name_the_path() {
        let missing = Path::new("/nonexistent-dir/results.csv");
        let target = OutputTarget::File(missing.to_path_buf());
        for format in Format::ALL {
            let error = create_writer(&target, format, &RunMetadata::default()).err();
            let error = error.expect("cannot create");
            assert!(error.contains("/nonexistent-dir/results.csv"), "{error}");
            let error = read_results(missing, Some(format))
                .err()
                .expect("cannot open");
            assert!(error.contains("/nonexistent-dir/results.csv"), "{error}");
        }
        let error = read_results(Path::new("results.txt"), None)
            .err()
            .expect("unknown");
        assert!(error.contains("results.txt"), "{error}");
    }

    /// A result file of schema version 1 (without `policy_fetch` and `lookup_failures`) is
    /// still read: the new columns come back null and empty.
    #[test]
    fn version_1_csv_files_are_still_read() {
        let v1_columns: Vec<&str> = COLUMNS
            .iter()
            .filter(|c| !schema::ADDED_AFTER_VERSION_1.contains(&c.id))
            .map(|c| c.name)
            .collect();
        let mut text = v1_columns.join(",");
        text.push('\n');
        let mut cells: Vec<&str> = vec![""; v1_columns.len()];
        for (cell, name) in cells.iter_mut().zip(&v1_columns) {
            *cell = match *name {
                "domain" | "input" => "a.test",
                "outcome" => "absent",
                "has_mta_sts" | "delivery_at_risk" | "tls_rpt" => "false",
                "severity" => "info",
                "issues" => "sts_record_missing",
                "scanned_at" => "2026-11-01T00:00:00.000Z",
                "duration_ms" => "5",
                _ => "",
            };
        }
        text.push_str(&cells.join(","));
        text.push('\n');
        let dir = std::env::temp_dir().join(format!("mta-sts-scan-v1-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("v1.csv");
        std::fs::write(&path, text).unwrap();
        let rows: Vec<_> = read_results(&path, None).unwrap().collect();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(rows.len(), 1);
        let report = rows.into_iter().next().unwrap().unwrap();
        assert_eq!(report.domain, "a.test");
        assert!(report.lookup_failures.is_empty());
        assert_eq!(report.policy_fetch, None);
    }
}
