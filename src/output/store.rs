//! Result files in object storage (`s3://bucket/key`, any S3-compatible server): writing them
//! crash-safely, reading them back, globs over local paths and object keys, and the output-path
//! placeholders `{date}`, `{shard}`, `{run_id}` of scheduled runs.
//!
//! A local path and an object URL are both a [`Location`]. Writing an object goes through local
//! staging: rows are written by the ordinary local writer into a *part* file; each
//! [`ResultWriter::flush`] uploads the part as the object `<key>.parts/part-NNNNN.<ext>`;
//! [`ResultWriter::finish`] merges the parts into `<key>` (Parquet: through `AsyncArrowWriter`
//! as a multipart upload of complete row groups; CSV/JSON Lines: streamed as a multipart upload)
//! and deletes the parts. Nothing a reader would take for a result exists before the merge is
//! complete: an upload either completes or stays invisible. A scan killed mid-way leaves its
//! complete parts, which [`read_location`] reads and `--resume` continues from, as it does with
//! local `.parts` directories. Memory stays bounded: parts are streamed from and to disk, and
//! the merge holds one record batch and one row group at a time.
//!
//! Credentials, region and endpoint come from the usual environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, …) through `AmazonS3Builder::from_env`. An `http://` endpoint is allowed
//! (S3-compatible servers on a private network).

use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::parquet::arrow::AsyncArrowWriter;
use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::AsyncWriteExt;

use crate::output::{Format, ResultWriter, RunMetadata, WriteMode, create_writer, read_results};
use crate::report::DomainReport;

/// URL schemes taken as object-store locations.
const OBJECT_SCHEMES: [&str; 2] = ["s3://", "s3a://"];
/// Schemes the `object_store` crate knows but this build does not include.
const UNSUPPORTED_SCHEMES: [&str; 6] = [
    "gs://", "az://", "abfs://", "abfss://", "azure://", "adl://",
];

/// Objects no larger than this are uploaded with one PUT, larger ones as a multipart upload.
const SINGLE_PUT_BYTES: u64 = 8 * 1024 * 1024;
/// Multipart parts uploaded at once.
const UPLOAD_CONCURRENCY: usize = 4;
/// Bytes read from a staged file at a time.
const CHUNK_BYTES: usize = 1024 * 1024;

/// Where a result file lives: on the local disk or in an object store.
#[derive(Debug, Clone)]
pub enum Location {
    Local(PathBuf),
    Object(ObjectLocation),
}

/// One object in an object store.
#[derive(Clone)]
pub struct ObjectLocation {
    store: Arc<dyn ObjectStore>,
    /// `s3://bucket/`: prefix of every URL in this store.
    base: String,
    path: ObjectPath,
}

impl std::fmt::Debug for ObjectLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url())
    }
}

/// Whether `text` names an object-store location (rather than a local path).
pub fn is_object_url(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    OBJECT_SCHEMES
        .iter()
        .chain(&UNSUPPORTED_SCHEMES)
        .any(|scheme| lower.starts_with(scheme))
}

/// [`is_object_url`] for a path argument.
pub fn is_object_path(path: &Path) -> bool {
    path.to_str().is_some_and(is_object_url)
}

impl Location {
    /// A local path, or an object URL (`s3://bucket/key`) with the store configured from the
    /// environment. Builds the client only; nothing is sent (see [`Location::check_writable`]).
    pub fn parse(text: &str) -> Result<Location, String> {
        if !is_object_url(text) {
            return Ok(Location::Local(PathBuf::from(text)));
        }
        let lower = text.to_ascii_lowercase();
        if UNSUPPORTED_SCHEMES.iter().any(|s| lower.starts_with(s)) {
            return Err(format!(
                "{text}: only s3:// object stores are built in; GCS and most others speak S3 too \
                 (set AWS_ENDPOINT_URL, e.g. https://storage.googleapis.com with HMAC keys)"
            ));
        }
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("{text}: not a URL"))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{text}: the URL names no bucket (s3://BUCKET/KEY)"));
        }
        let store = s3_store(bucket)?;
        let path =
            ObjectPath::parse(key).map_err(|e| format!("{text}: not a valid object key: {e}"))?;
        Ok(Location::Object(ObjectLocation {
            store,
            base: format!("{scheme}://{bucket}/"),
            path,
        }))
    }

    /// The path or URL, for messages.
    pub fn display(&self) -> String {
        match self {
            Location::Local(path) => path.display().to_string(),
            Location::Object(object) => object.url(),
        }
    }
}

/// An S3 client for `bucket`, configured from the `AWS_*` environment variables.
fn s3_store(bucket: &str) -> Result<Arc<dyn ObjectStore>, String> {
    let endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
        .iter()
        .find_map(|name| std::env::var(name).ok());
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some(endpoint) = endpoint {
        if endpoint.to_ascii_lowercase().starts_with("http://") {
            builder = builder.with_allow_http(true);
        }
        builder = builder.with_endpoint(endpoint);
    }
    if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none()
    {
        builder = builder.with_region("us-east-1");
    }
    let store = builder
        .build()
        .map_err(|e| format!("cannot set up the S3 client for bucket {bucket}: {e}"))?;
    Ok(Arc::new(store))
}

impl ObjectLocation {
    /// `s3://bucket/key`.
    pub fn url(&self) -> String {
        format!("{}{}", self.base, self.path)
    }

    /// Another object of the same store.
    fn sibling(&self, path: ObjectPath) -> ObjectLocation {
        ObjectLocation {
            store: Arc::clone(&self.store),
            base: self.base.clone(),
            path,
        }
    }

    /// `<key>.parts/`: where the parts of an unfinished upload live.
    fn parts_prefix(&self) -> ObjectPath {
        ObjectPath::from(format!("{}.parts", self.path))
    }

    fn part_path(&self, number: u32, format: Format) -> ObjectPath {
        self.parts_prefix()
            .join(format!("part-{number:05}.{}", format.extension()))
    }

    /// The complete parts of an unfinished upload, in the order they were written.
    async fn list_parts(&self) -> Result<Vec<(u32, ObjectPath)>, String> {
        let prefix = self.parts_prefix();
        let mut listing = self.store.list(Some(&prefix));
        let mut parts = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| describe_error(&self.url(), "list the parts of", &e))?;
            let number = meta
                .location
                .filename()
                .and_then(|name| name.strip_prefix("part-"))
                .and_then(|name| name.split('.').next())
                .and_then(|digits| digits.parse::<u32>().ok());
            if let Some(number) = number {
                parts.push((number, meta.location));
            }
        }
        parts.sort();
        Ok(parts)
    }

    async fn exists(&self) -> Result<bool, String> {
        match self.store.head(&self.path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(describe_error(&self.url(), "read", &e)),
        }
    }

    /// Proves now, before any domain is scanned, that the credentials can write here and the
    /// bucket exists: a small object is written next to the output and deleted again.
    pub async fn check_writable(&self) -> Result<(), String> {
        // Listing fails on a missing bucket everywhere (some servers create one on a PUT), and
        // the writer lists the parts of earlier runs anyway.
        if let Some(Err(error)) = self.store.list(Some(&self.parts_prefix())).next().await {
            return Err(describe_error(&self.url(), "list objects next to", &error));
        }
        let probe = self.parts_prefix().join(".write-check");
        self.store
            .put(
                &probe,
                PutPayload::from_static(b"mta-sts-scan write check\n"),
            )
            .await
            .map_err(|e| describe_error(&self.url(), "write", &e))?;
        self.store
            .delete(&probe)
            .await
            .map_err(|e| describe_error(&self.url(), "delete a check object next to", &e))
    }

    /// Uploads a local file as this object (one PUT, or a multipart upload for large files).
    async fn upload_file(&self, local: &Path) -> Result<(), String> {
        let url = self.url();
        let read_error = |e: std::io::Error| format!("cannot read {}: {e}", local.display());
        let size = std::fs::metadata(local).map_err(read_error)?.len();
        if size <= SINGLE_PUT_BYTES {
            let bytes = std::fs::read(local).map_err(read_error)?;
            self.store
                .put(&self.path, PutPayload::from(bytes))
                .await
                .map_err(|e| describe_error(&url, "write", &e))?;
            return Ok(());
        }
        let file = std::fs::File::open(local).map_err(read_error)?;
        let mut upload = MultipartObject::start(self).await?;
        let mut reader = BufReader::with_capacity(CHUNK_BYTES, file);
        loop {
            let chunk = reader.fill_buf().map_err(read_error)?;
            if chunk.is_empty() {
                break;
            }
            let length = chunk.len();
            upload.write(chunk).await?;
            reader.consume(length);
        }
        upload.finish().await
    }

    /// Streams this object into a local file.
    async fn download_to(&self, local: &Path) -> Result<(), String> {
        let url = self.url();
        let result = self
            .store
            .get(&self.path)
            .await
            .map_err(|e| describe_error(&url, "read", &e))?;
        let mut file = tokio::fs::File::create(local)
            .await
            .map_err(|e| format!("cannot create {}: {e}", local.display()))?;
        let mut stream = result.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| describe_error(&url, "read", &e))?;
            file.write_all(&chunk)
                .await
                .map_err(|e| format!("cannot write {}: {e}", local.display()))?;
        }
        file.flush()
            .await
            .map_err(|e| format!("cannot write {}: {e}", local.display()))
    }

    /// Writes `bytes` as this object.
    pub async fn put_bytes(&self, bytes: Vec<u8>) -> Result<(), String> {
        self.store
            .put(&self.path, PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| describe_error(&self.url(), "write", &e))
    }
}

/// A multipart upload that aborts itself unless finished.
struct MultipartObject {
    upload: Option<WriteMultipart>,
    url: String,
}

impl MultipartObject {
    async fn start(target: &ObjectLocation) -> Result<Self, String> {
        let url = target.url();
        let upload = target
            .store
            .put_multipart(&target.path)
            .await
            .map_err(|e| describe_error(&url, "start an upload to", &e))?;
        Ok(MultipartObject {
            upload: Some(WriteMultipart::new(upload)),
            url,
        })
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        let Some(upload) = &mut self.upload else {
            return Err(format!("the upload to {} is closed", self.url));
        };
        upload
            .wait_for_capacity(UPLOAD_CONCURRENCY)
            .await
            .map_err(|e| describe_error(&self.url, "upload to", &e))?;
        upload.write(bytes);
        Ok(())
    }

    async fn finish(mut self) -> Result<(), String> {
        match self.upload.take() {
            Some(upload) => upload
                .finish()
                .await
                .map(|_| ())
                .map_err(|e| describe_error(&self.url, "complete the upload to", &e)),
            None => Ok(()),
        }
    }
}

impl Drop for MultipartObject {
    fn drop(&mut self) {
        // Not finished: abort, so no orphaned parts are billed (best effort, in the background).
        if let (Some(upload), Ok(handle)) =
            (self.upload.take(), tokio::runtime::Handle::try_current())
        {
            handle.spawn(async move {
                let _ = upload.abort().await;
            });
        }
    }
}

/// A one-line explanation of an object-store error, with what to check.
fn describe_error(url: &str, action: &str, error: &object_store::Error) -> String {
    let hint = match error {
        object_store::Error::NotFound { .. } => {
            " (does the bucket exist? check the URL and AWS_ENDPOINT_URL)"
        }
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => {
            " (check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the bucket's permissions)"
        }
        _ => {
            let text = error.to_string();
            if text.contains("NoSuchBucket") {
                " (the bucket does not exist)"
            } else if text.contains("InvalidAccessKeyId")
                || text.contains("SignatureDoesNotMatch")
                || text.contains("AccessDenied")
            {
                " (check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the bucket's permissions)"
            } else {
                ""
            }
        }
    };
    format!("cannot {action} {url}: {error}{hint}")
}

/// Runs an object-store future to completion from synchronous code (the writers and readers are
/// synchronous): on the current multi-threaded runtime, or on a runtime of its own outside one.
pub(crate) fn block_on<F: Future>(future: F) -> Result<F::Output, String> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread {
                return Err(
                    "object-store input and output need the multi-threaded tokio runtime".into(),
                );
            }
            Ok(tokio::task::block_in_place(|| handle.block_on(future)))
        }
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|runtime| runtime.block_on(future))
            .map_err(|e| format!("cannot start an async runtime: {e}")),
    }
}

/// A private staging directory, removed when dropped.
struct Staging {
    dir: PathBuf,
}

impl Staging {
    fn new() -> Result<Self, String> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "mta-sts-scan-staging-{}-{}-{}",
            std::process::id(),
            crate::report::now_millis(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create the staging directory {}: {e}", dir.display()))?;
        Ok(Staging { dir })
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes a result object through uploaded parts (see the module doc).
pub struct ObjectResultWriter {
    target: ObjectLocation,
    format: Format,
    metadata: RunMetadata,
    staging: Staging,
    /// The local writer of the part being filled, and its file.
    current: Option<(Box<dyn ResultWriter>, PathBuf)>,
    next_part: u32,
}

impl ObjectResultWriter {
    /// Starts the object anew ([`WriteMode::Create`]: parts of an earlier run are deleted, and
    /// so is an earlier object of that name) or continues it ([`WriteMode::Append`]: its parts
    /// are kept, and a finished object becomes the first part).
    pub fn create(
        target: ObjectLocation,
        format: Format,
        metadata: &RunMetadata,
        mode: WriteMode,
    ) -> Result<Self, String> {
        let next_part = block_on(prepare(&target, format, mode))??;
        Ok(ObjectResultWriter {
            target,
            format,
            metadata: metadata.clone(),
            staging: Staging::new()?,
            current: None,
            next_part,
        })
    }

    /// Closes the part being filled and uploads it.
    fn upload_current_part(&mut self) -> std::io::Result<()> {
        let Some((writer, local)) = self.current.take() else {
            return Ok(());
        };
        writer.finish()?;
        let part = self
            .target
            .sibling(self.target.part_path(self.next_part, self.format));
        block_on(part.upload_file(&local))
            .and_then(|uploaded| uploaded)
            .map_err(std::io::Error::other)?;
        self.next_part += 1;
        let _ = std::fs::remove_file(&local);
        Ok(())
    }
}

/// Clears or adopts what an earlier run left; returns the next part number.
async fn prepare(target: &ObjectLocation, format: Format, mode: WriteMode) -> Result<u32, String> {
    let parts = target.list_parts().await?;
    let finished = target.exists().await?;
    let delete = |path: ObjectPath| async move {
        target
            .store
            .delete(&path)
            .await
            .map_err(|e| describe_error(&target.url(), "delete an earlier part of", &e))
    };
    match mode {
        WriteMode::Create => {
            for (_, path) in parts {
                delete(path).await?;
            }
            if finished {
                delete(target.path.clone()).await?;
            }
            Ok(0)
        }
        WriteMode::Append if finished => {
            // Parts next to a finished object were merged already (the run died before deleting
            // them): merging them again would duplicate rows.
            for (_, path) in parts {
                delete(path).await?;
            }
            let first = target.part_path(0, format);
            target
                .store
                .copy(&target.path, &first)
                .await
                .map_err(|e| describe_error(&target.url(), "copy", &e))?;
            delete(target.path.clone()).await?;
            Ok(1)
        }
        WriteMode::Append => Ok(parts.last().map_or(0, |(number, _)| number + 1)),
    }
}

impl ResultWriter for ObjectResultWriter {
    fn write(&mut self, report: &DomainReport) -> std::io::Result<()> {
        let writer = match &mut self.current {
            Some((writer, _)) => writer,
            None => {
                let local = self.staging.file(&format!(
                    "part-{:05}.{}",
                    self.next_part,
                    self.format.extension()
                ));
                let writer = create_writer(
                    &crate::output::OutputTarget::File(local.clone()),
                    self.format,
                    &self.metadata,
                )
                .map_err(std::io::Error::other)?;
                &mut self.current.insert((writer, local)).0
            }
        };
        writer.write(report)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.upload_current_part()
    }

    fn finish(mut self: Box<Self>) -> std::io::Result<()> {
        self.upload_current_part()?;
        block_on(merge_parts(
            &self.target,
            self.format,
            &self.metadata,
            &self.staging,
        ))
        .and_then(|merged| merged)
        .map_err(std::io::Error::other)
    }
}

/// Merges the uploaded parts into the final object, then deletes them.
async fn merge_parts(
    target: &ObjectLocation,
    format: Format,
    metadata: &RunMetadata,
    staging: &Staging,
) -> Result<(), String> {
    let parts = target.list_parts().await?;
    let local = staging.file(&format!("merging.{}", format.extension()));
    match format {
        Format::Parquet => {
            let properties = crate::output::parquet::properties(metadata)?;
            let sink = BufWriter::new(Arc::clone(&target.store), target.path.clone());
            let mut writer = AsyncArrowWriter::try_new(
                sink,
                crate::output::schema::arrow_schema(),
                Some(properties),
            )
            .map_err(|e| format!("cannot write {}: {e}", target.url()))?;
            for (_, part) in &parts {
                target.sibling(part.clone()).download_to(&local).await?;
                let file = std::fs::File::open(&local)
                    .map_err(|e| format!("cannot read {}: {e}", local.display()))?;
                let batches = ParquetRecordBatchReaderBuilder::try_new(file)
                    .and_then(|b| {
                        b.with_batch_size(crate::output::parquet::BATCH_ROWS)
                            .build()
                    })
                    .map_err(|e| format!("cannot read the part {}{part}: {e}", target.base))?;
                for batch in batches {
                    let batch = batch
                        .map_err(|e| format!("cannot read the part {}{part}: {e}", target.base))?;
                    if let Err(e) = writer.write(&batch).await {
                        // Dropping the writer leaves the multipart upload incomplete, that is
                        // invisible; abort it so its parts are not kept.
                        let mut sink = writer.into_inner();
                        let _ = sink.abort().await;
                        return Err(format!("cannot upload {}: {e}", target.url()));
                    }
                }
            }
            writer
                .close()
                .await
                .map_err(|e| format!("cannot complete the upload to {}: {e}", target.url()))?;
        }
        Format::Csv | Format::Jsonl => {
            let mut upload = MultipartObject::start(target).await?;
            let mut header_written = false;
            for (_, part) in &parts {
                target.sibling(part.clone()).download_to(&local).await?;
                let file = std::fs::File::open(&local)
                    .map_err(|e| format!("cannot read {}: {e}", local.display()))?;
                let mut reader = BufReader::with_capacity(CHUNK_BYTES, file);
                if format == Format::Csv {
                    // Every part starts with the header: keep the first one only.
                    let mut header = Vec::new();
                    reader
                        .read_until(b'\n', &mut header)
                        .map_err(|e| format!("cannot read {}: {e}", local.display()))?;
                    if !header_written {
                        upload.write(&header).await?;
                        header_written = true;
                    }
                }
                let mut chunk = vec![0; CHUNK_BYTES];
                loop {
                    let read = reader
                        .read(&mut chunk)
                        .map_err(|e| format!("cannot read {}: {e}", local.display()))?;
                    if read == 0 {
                        break;
                    }
                    upload.write(&chunk[..read]).await?;
                }
            }
            if format == Format::Csv && !header_written {
                upload.write(csv_header().as_bytes()).await?;
            }
            upload.finish().await?;
        }
    }
    let _ = std::fs::remove_file(&local);
    for (_, part) in parts {
        target
            .store
            .delete(&part)
            .await
            .map_err(|e| describe_error(&target.url(), "delete a merged part of", &e))?;
    }
    Ok(())
}

/// The CSV header line of an empty result.
fn csv_header() -> String {
    let names: Vec<&str> = crate::output::schema::COLUMNS
        .iter()
        .map(|c| c.name)
        .collect();
    format!("{}\n", names.join(","))
}

/// The rows stored at an object location: the object, or, when a scan was stopped before it
/// could merge, its parts in order. Each object is downloaded to a staging file and read by the
/// local reader of its format, one object at a time.
pub fn read_object_rows(
    location: &ObjectLocation,
    format: Format,
) -> Result<Box<dyn Iterator<Item = Result<DomainReport, String>> + Send>, String> {
    let objects: Vec<ObjectLocation> = block_on(async {
        if location.exists().await? {
            return Ok(vec![location.clone()]);
        }
        let parts = location.list_parts().await?;
        if parts.is_empty() {
            return Err(format!("{}: no such object", location.url()));
        }
        Ok(parts
            .into_iter()
            .map(|(_, path)| location.sibling(path))
            .collect())
    })??;
    Ok(Box::new(DownloadedRows {
        objects: objects.into_iter(),
        format,
        staging: Staging::new()?,
        current: None,
        failed: false,
    }))
}

/// Whether an object or its unfinished parts exist (for `--resume`).
pub fn object_has_rows(location: &ObjectLocation) -> Result<bool, String> {
    block_on(async { Ok(location.exists().await? || !location.list_parts().await?.is_empty()) })?
}

/// Rows of a sequence of objects, downloading the next one when the previous is read.
struct DownloadedRows {
    objects: std::vec::IntoIter<ObjectLocation>,
    format: Format,
    staging: Staging,
    current: Option<Box<dyn Iterator<Item = Result<DomainReport, String>> + Send>>,
    failed: bool,
}

impl Iterator for DownloadedRows {
    type Item = Result<DomainReport, String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.failed {
                return None;
            }
            if let Some(row) = self.current.as_mut().and_then(Iterator::next) {
                return Some(row);
            }
            self.current = None;
            let object = self.objects.next()?;
            // Keep the object's name: its extensions say the format and any compression.
            let name = object.path.filename().unwrap_or("object").to_owned();
            let local = self.staging.file(&format!("download-{name}"));
            let opened = block_on(object.download_to(&local))
                .and_then(|downloaded| downloaded)
                .and_then(|()| read_results(&local, Some(self.format)))
                .map_err(|e| e.replace(&local.display().to_string(), &object.url()));
            match opened {
                Ok(rows) => {
                    let url = object.url();
                    let local = local.display().to_string();
                    self.current = Some(Box::new(
                        rows.map(move |row| row.map_err(|e| e.replace(&local, &url))),
                    ));
                }
                Err(error) => {
                    self.failed = true;
                    return Some(Err(error));
                }
            }
        }
    }
}

/// Uploads a finished local file to `target` (used by writers that stage a whole file, e.g.
/// `diff` output and summaries).
pub fn upload_file(local: &Path, target: &ObjectLocation) -> Result<(), String> {
    block_on(target.upload_file(local))?
}

/// Writes `bytes` to a local path or an object.
pub fn write_bytes(location: &Location, bytes: Vec<u8>) -> Result<(), String> {
    match location {
        Location::Local(path) => {
            std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        Location::Object(object) => block_on(object.put_bytes(bytes))?,
    }
}

/// Checks before a long run that a location can be written (local: the file can be created;
/// object: a check object can be put and deleted).
pub async fn check_writable(location: &Location) -> Result<(), String> {
    match location {
        Location::Local(path) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map(|_| ())
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
        Location::Object(object) => object.check_writable().await,
    }
}

/// Expands a source argument of `stats`/`diff` into the result files it names: a local path or
/// object URL as is; with `*`, `?` or `**` in it, every matching file or object, sorted (`*` and
/// `?` stay within one path segment, `**` spans any number). Part directories of unfinished
/// uploads are not matched by a glob; name the output itself to read them.
pub fn expand_sources(pattern: &str) -> Result<Vec<String>, String> {
    if !has_wildcard(pattern) {
        return Ok(vec![pattern.to_owned()]);
    }
    let matches = if is_object_url(pattern) {
        let Location::Object(base) = Location::parse(&literal_prefix_dir(pattern))? else {
            return Err(format!("{pattern}: not an object URL"));
        };
        let key_pattern = pattern
            .get(base.base.len()..)
            .ok_or_else(|| format!("{pattern}: not an object URL"))?
            .to_owned();
        let prefix = (!base.path.as_ref().is_empty()).then(|| base.path.clone());
        block_on(async {
            let mut listing = base.store.list(prefix.as_ref());
            let mut keys = Vec::new();
            while let Some(meta) = listing.next().await {
                let meta = meta.map_err(|e| describe_error(&base.url(), "list", &e))?;
                let key = meta.location.to_string();
                if glob_matches(&key_pattern, &key) {
                    keys.push(format!("{}{key}", base.base));
                }
            }
            Ok::<_, String>(keys)
        })??
    } else {
        let root = literal_prefix_dir(pattern);
        let root = if root.is_empty() {
            ".".to_owned()
        } else {
            root
        };
        // Only as deep as the pattern reaches, unless `**` asks for any depth.
        let depth = if pattern.contains("**") {
            usize::MAX
        } else {
            pattern[root.len().min(pattern.len())..]
                .matches('/')
                .count()
        };
        let mut found = Vec::new();
        walk_local(Path::new(&root), depth, &mut |path| {
            let text = path.to_string_lossy();
            let text = text
                .strip_prefix("./")
                .filter(|_| !pattern.starts_with("./"));
            let text = text.map_or_else(|| path.to_string_lossy().into_owned(), str::to_owned);
            if glob_matches(pattern, &text) {
                found.push(text);
            }
        });
        found
    };
    let mut matches = matches;
    matches.sort();
    if matches.is_empty() {
        return Err(format!("{pattern}: no file matches"));
    }
    Ok(matches)
}

fn has_wildcard(text: &str) -> bool {
    text.contains(['*', '?'])
}

/// The part of a pattern before the segment holding its first wildcard (`s3://b/x/y*/z` →
/// `s3://b/x/`).
fn literal_prefix_dir(pattern: &str) -> String {
    let first_wildcard = pattern.find(['*', '?']).unwrap_or(pattern.len());
    match pattern[..first_wildcard].rfind('/') {
        Some(slash) => pattern[..=slash].to_owned(),
        None => String::new(),
    }
}

/// Every file below `dir` down to `depth` directories further, depth first (symbolic links to
/// directories are not followed).
fn walk_local(dir: &Path, depth: usize, visit: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => {
                if depth > 0 {
                    walk_local(&path, depth - 1, visit);
                }
            }
            Ok(_) => visit(&path),
            Err(_) => {}
        }
    }
}

/// Glob matching: `*` any run of characters but `/`, `?` one character but `/`, `**` any run
/// including `/` (`a/**/b` also matches `a/b`).
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    fn matches(pattern: &[u8], text: &[u8]) -> bool {
        match pattern {
            [] => text.is_empty(),
            [b'*', b'*', b'/', rest @ ..] => {
                matches(rest, text)
                    || (0..text.len()).any(|i| text[i] == b'/' && matches(rest, &text[i + 1..]))
            }
            [b'*', b'*', rest @ ..] => (0..=text.len()).any(|i| matches(rest, &text[i..])),
            [b'*', rest @ ..] => {
                let segment_end = text.iter().position(|&b| b == b'/').unwrap_or(text.len());
                (0..=segment_end).any(|i| matches(rest, &text[i..]))
            }
            [b'?', rest @ ..] => {
                text.first().is_some_and(|&b| b != b'/') && matches(rest, &text[1..])
            }
            [literal, rest @ ..] => text.first() == Some(literal) && matches(rest, &text[1..]),
        }
    }
    matches(pattern.as_bytes(), text.as_bytes())
}

/// Values of the output-path placeholders of a scheduled run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholders {
    /// `{date}`: the UTC day the scan started, `YYYY-MM-DD`.
    pub date: String,
    /// `{shard}`: `K-of-N` (`0-of-1` without `--shard`).
    pub shard: String,
    /// `{run_id}`: the run's name (`--run-id`, else the UTC start time `YYYYMMDDTHHMMSSZ`).
    pub run_id: String,
}

impl Placeholders {
    /// The values for a run starting at `started_millis` (Unix epoch, UTC).
    pub fn new(started_millis: i64, shard: Option<(u64, u64)>, run_id: Option<&str>) -> Self {
        let started = chrono::DateTime::from_timestamp_millis(started_millis).unwrap_or_default();
        Placeholders {
            date: started.format("%Y-%m-%d").to_string(),
            shard: match shard {
                Some((index, count)) => format!("{index}-of-{count}"),
                None => "0-of-1".to_owned(),
            },
            run_id: run_id.map_or_else(
                || started.format("%Y%m%dT%H%M%SZ").to_string(),
                str::to_owned,
            ),
        }
    }

    /// Replaces `{date}`, `{shard}` and `{run_id}`; any other `{…}` is an error.
    pub fn expand(&self, template: &str) -> Result<String, String> {
        let mut out = String::with_capacity(template.len() + 16);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("{template}: unclosed `{{` in the path"))?;
            out.push_str(match &after[..close] {
                "date" => &self.date,
                "shard" => &self.shard,
                "run_id" => &self.run_id,
                other => {
                    return Err(format!(
                        "{template}: unknown placeholder {{{other}}} (use {{date}}, {{shard}} or {{run_id}})"
                    ));
                }
            });
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// Whether a path template uses `{shard}` (then the `.shard-K-of-N` suffix is not added).
pub fn mentions_shard(template: &str) -> bool {
    template.contains("{shard}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_matches("a/*.parquet", "a/x.parquet"));
        assert!(!glob_matches("a/*.parquet", "a/b/x.parquet"));
        assert!(glob_matches("a/**/x.parquet", "a/b/c/x.parquet"));
        assert!(glob_matches("a/**/x.parquet", "a/x.parquet"));
        assert!(glob_matches(
            "dt=*/part-?-of-3.csv",
            "dt=2026-11-30/part-2-of-3.csv"
        ));
        assert!(!glob_matches(
            "dt=*/part-?-of-3.csv",
            "dt=2026-11-30/part-12-of-3.csv"
        ));
        assert!(!glob_matches(
            "r.parquet",
            "r.parquet.parts/part-00000.parquet"
        ));
        assert_eq!(literal_prefix_dir("s3://b/x/y*/z"), "s3://b/x/");
        assert_eq!(literal_prefix_dir("*.csv"), "");
    }

    #[test]
    fn placeholders_expand_and_unknown_ones_are_refused() {
        // 2026-11-30T02:40:05Z
        let values = Placeholders::new(1_796_006_405_000, Some((3, 8)), None);
        assert_eq!(
            values.expand("s3://lake/dt={date}/part-{shard}.parquet"),
            Ok("s3://lake/dt=2026-11-30/part-3-of-8.parquet".to_owned())
        );
        assert_eq!(
            values.expand("run={run_id}/r.csv"),
            Ok("run=20261130T024005Z/r.csv".to_owned())
        );
        let named = Placeholders::new(0, None, Some("weekly-48"));
        assert_eq!(
            named.expand("{run_id}/{shard}"),
            Ok("weekly-48/0-of-1".to_owned())
        );
        assert!(
            values
                .expand("x/{dat}/r.csv")
                .unwrap_err()
                .contains("{dat}")
        );
        assert!(values.expand("x/{date/r.csv").is_err());
        assert!(mentions_shard("p-{shard}.parquet"));
    }

    #[test]
    fn urls_are_told_from_paths() {
        assert!(is_object_url("s3://bucket/key.parquet"));
        assert!(is_object_url("S3A://bucket/key.parquet"));
        assert!(!is_object_url("results/s3:/x.csv"));
        assert!(
            Location::parse("gs://bucket/x.csv")
                .unwrap_err()
                .contains("S3")
        );
        assert!(
            Location::parse("s3:///x.csv")
                .unwrap_err()
                .contains("bucket")
        );
        assert!(matches!(
            Location::parse("out/r.csv"),
            Ok(Location::Local(_))
        ));
    }
}
