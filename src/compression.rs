//! Compressed domain lists and result files: gzip, zstd and zip (Tranco publishes
//! `top-1m.csv.zip`). Reading recognises the format by its magic bytes, whatever the name says,
//! and decompresses as a stream, so memory stays flat on lists of any length; writing (`-o
//! results.csv.gz` / `.zst`) goes by the extension.
//!
//! A zip archive keeps its directory at the end, so it must be a file (not standard input): the
//! directory is read once, then the single entry is inflated straight from the file — no
//! temporary file and no copy of the archive in memory.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Read buffer of a decompressed stream.
const BUFFER: usize = 256 * 1024;

/// A compression format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
    Zip,
}

impl Compression {
    /// The format a file name's last extension names (`.gz`, `.gzip`, `.zst`, `.zstd`, `.zip`).
    pub fn from_extension(path: &Path) -> Option<Compression> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "gz" | "gzip" => Some(Compression::Gzip),
            "zst" | "zstd" => Some(Compression::Zstd),
            "zip" => Some(Compression::Zip),
            _ => None,
        }
    }

    /// The format whose magic bytes `prefix` starts with.
    pub fn sniff(prefix: &[u8]) -> Option<Compression> {
        if prefix.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else if prefix.starts_with(b"PK\x03\x04") || prefix.starts_with(b"PK\x05\x06") {
            Some(Compression::Zip)
        } else {
            None
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Zip => "zip",
        }
    }
}

/// `path` without a compression extension: `results.csv.gz` → `results.csv` (for telling the
/// format of what is inside).
pub fn inner_name(path: &Path) -> PathBuf {
    match Compression::from_extension(path) {
        Some(_) => path.with_extension(""),
        None => path.to_path_buf(),
    }
}

/// Opens a file for reading, decompressed if its first bytes say it is compressed.
pub fn open_file(path: &Path) -> Result<Box<dyn BufRead + Send>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    read_file(file, path)
}

/// Reads an open file (named `path`), decompressed if its first bytes say it is compressed.
pub fn read_file(file: File, path: &Path) -> Result<Box<dyn BufRead + Send>, String> {
    let name = path.display().to_string();
    let mut reader = BufReader::with_capacity(BUFFER, file);
    let prefix = reader
        .fill_buf()
        .map_err(|e| format!("cannot read {name}: {e}"))?;
    let found = Compression::sniff(prefix);
    if let Some(named) = Compression::from_extension(path)
        && found.is_none()
        && !prefix.is_empty()
    {
        return Err(format!(
            "{name}: the name says {} but the content is not compressed that way",
            named.as_str()
        ));
    }
    if let Some(compression) = found {
        tracing::debug!(file = %name, compression = compression.as_str(), "decompressing");
    }
    match found {
        None => Ok(Box::new(reader)),
        Some(Compression::Zip) => open_zip(reader.into_inner(), path),
        Some(compression) => decoder(Box::new(reader), compression, &name),
    }
}

/// Decompresses a stream (standard input) when its first bytes say it is gzip or zstd.
pub fn decode_stream(
    mut reader: Box<dyn BufRead + Send>,
    name: &str,
) -> Result<Box<dyn BufRead + Send>, String> {
    let prefix = reader
        .fill_buf()
        .map_err(|e| format!("cannot read {name}: {e}"))?;
    let found = Compression::sniff(prefix);
    if let Some(compression) = found {
        tracing::debug!(
            stream = name,
            compression = compression.as_str(),
            "decompressing"
        );
    }
    match found {
        None => Ok(reader),
        Some(Compression::Zip) => Err(format!(
            "{name} is a zip archive, whose directory is at its end: pass the archive's file name instead"
        )),
        Some(compression) => decoder(reader, compression, name),
    }
}

fn decoder(
    reader: Box<dyn BufRead + Send>,
    compression: Compression,
    name: &str,
) -> Result<Box<dyn BufRead + Send>, String> {
    Ok(match compression {
        // Concatenated members (`cat a.gz b.gz`, pigz) are one stream.
        Compression::Gzip => Box::new(BufReader::with_capacity(
            BUFFER,
            flate2::bufread::MultiGzDecoder::new(reader),
        )),
        // The decoder reads every frame of the file, not only the first.
        Compression::Zstd => Box::new(BufReader::with_capacity(
            BUFFER,
            zstd::stream::read::Decoder::with_buffer(reader)
                .map_err(|e| format!("{name}: not zstd: {e}"))?,
        )),
        Compression::Zip => return Err(format!("{name}: a zip archive needs a file")),
    })
}

/// The single file of a zip archive, inflated as a stream from the archive file.
fn open_zip(file: File, path: &Path) -> Result<Box<dyn BufRead + Send>, String> {
    let name = path.display().to_string();
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| format!("{name}: not a readable zip: {e}"))?;
    let mut files = Vec::new();
    for index in 0..archive.len() {
        let entry = archive
            .by_index_raw(index)
            .map_err(|e| format!("{name}: entry {index}: {e}"))?;
        if entry.is_file() {
            files.push(index);
        }
    }
    let index = match files.as_slice() {
        [index] => *index,
        [] => return Err(format!("{name}: the archive holds no file")),
        more => {
            return Err(format!(
                "{name}: the archive holds {} files: extract the list to scan",
                more.len()
            ));
        }
    };
    let entry = archive
        .by_index_raw(index)
        .map_err(|e| format!("{name}: {e}"))?;
    if entry.encrypted() {
        return Err(format!("{name}: the archive is encrypted"));
    }
    let (start, size, method) = (
        entry.data_start(),
        entry.compressed_size(),
        entry.compression(),
    );
    drop(entry);
    let mut file = archive.into_inner();
    file.seek(SeekFrom::Start(start))
        .map_err(|e| format!("cannot read {name}: {e}"))?;
    let body = BufReader::with_capacity(BUFFER, file.take(size));
    match method {
        zip::CompressionMethod::Stored => Ok(Box::new(body)),
        zip::CompressionMethod::Deflated => Ok(Box::new(BufReader::with_capacity(
            BUFFER,
            flate2::bufread::DeflateDecoder::new(body),
        ))),
        other => Err(format!(
            "{name}: compression method {other:?} is not supported (stored and deflate are)"
        )),
    }
}

/// A compressing writer whose stream can be ended with an error reported.
trait Encoder: Write + Send {
    /// Writes the end of the stream (gzip trailer, zstd frame end).
    fn end(&mut self) -> std::io::Result<()>;
}

impl Encoder for flate2::write::GzEncoder<File> {
    fn end(&mut self) -> std::io::Result<()> {
        self.try_finish()
    }
}

impl Encoder for zstd::stream::write::Encoder<'static, File> {
    fn end(&mut self) -> std::io::Result<()> {
        self.do_finish()
    }
}

type SharedEncoder = Arc<Mutex<Option<Box<dyn Encoder>>>>;

/// The writing half of a compressed file: what the text writers write into.
struct EncoderSink(SharedEncoder);

impl Write for EncoderSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match self.0.lock().map_err(|_| poisoned())?.as_mut() {
            Some(encoder) => encoder.write(bytes),
            None => Err(std::io::Error::other("the compressed stream has ended")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.lock().map_err(|_| poisoned())?.as_mut() {
            Some(encoder) => encoder.flush(),
            None => Ok(()),
        }
    }
}

fn poisoned() -> std::io::Error {
    std::io::Error::other("a writer thread panicked")
}

/// Ends a compressed file, once everything is written: reports what dropping would swallow
/// (a full disk at the trailer).
pub struct Finisher(SharedEncoder);

impl Finisher {
    pub fn finish(self) -> std::io::Result<()> {
        let encoder = self.0.lock().map_err(|_| poisoned())?.take();
        match encoder {
            Some(mut encoder) => encoder.end(),
            None => Ok(()),
        }
    }
}

/// A writer that compresses into `file` (named `path`), and the [`Finisher`] that ends the
/// stream after the last write. Each `flush` ends a block, so the data flushed so far can be
/// decompressed even if the process dies before the finish.
pub fn encoder(
    file: File,
    compression: Compression,
    path: &Path,
) -> Result<(Box<dyn Write + Send>, Finisher), String> {
    let encoder: Box<dyn Encoder> = match compression {
        Compression::Gzip => Box::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::default(),
        )),
        Compression::Zstd => Box::new(
            zstd::stream::write::Encoder::new(file, 3)
                .map_err(|e| format!("cannot compress {}: {e}", path.display()))?,
        ),
        Compression::Zip => {
            return Err(format!(
                "{}: results cannot be written as zip: use .gz or .zst",
                path.display()
            ));
        }
    };
    let shared = Arc::new(Mutex::new(Some(encoder)));
    Ok((Box::new(EncoderSink(shared.clone())), Finisher(shared)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "1,example.com\n2,example.org\n3,example.net\n";

    fn read_all(mut reader: Box<dyn BufRead + Send>) -> String {
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        text
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn every_format_reads_back_by_its_magic_bytes_whatever_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = LIST.split_at(14);
        let mut two_members = gzip(first.as_bytes());
        two_members.extend(gzip(second.as_bytes()));
        let mut zstd_frames = zstd::encode_all(first.as_bytes(), 3).unwrap();
        zstd_frames.extend(zstd::encode_all(second.as_bytes(), 3).unwrap());
        let zipped = {
            let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            writer.add_directory("lists/", options).unwrap();
            writer.start_file("lists/top-1m.csv", options).unwrap();
            writer.write_all(LIST.as_bytes()).unwrap();
            writer.finish().unwrap().into_inner()
        };
        for (name, bytes) in [
            ("plain.csv", LIST.as_bytes().to_vec()),
            ("list.csv.gz", two_members.clone()),
            ("misnamed.csv", two_members),
            ("list.csv.zst", zstd_frames),
            ("top-1m.csv.zip", zipped),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            assert_eq!(read_all(open_file(&path).unwrap()), LIST, "{name}");
        }
    }

    #[test]
    fn streams_decode_too_but_a_zip_needs_its_file() {
        let stream: Box<dyn BufRead + Send> = Box::new(std::io::Cursor::new(gzip(LIST.as_bytes())));
        assert_eq!(read_all(decode_stream(stream, "(stdin)").unwrap()), LIST);
        let zip: Box<dyn BufRead + Send> =
            Box::new(std::io::Cursor::new(b"PK\x03\x04....".to_vec()));
        let error = decode_stream(zip, "(stdin)").err().unwrap();
        assert!(error.contains("pass the archive's file name"), "{error}");
    }

    #[test]
    fn a_name_that_lies_and_an_archive_of_several_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("list.csv.gz");
        std::fs::write(&fake, LIST).unwrap();
        let error = open_file(&fake).err().unwrap();
        assert!(error.contains("says gzip"), "{error}");
        let several = dir.path().join("two.zip");
        let mut writer = zip::ZipWriter::new(File::create(&several).unwrap());
        for file in ["a.csv", "b.csv"] {
            writer
                .start_file(file, zip::write::SimpleFileOptions::default())
                .unwrap();
            writer.write_all(LIST.as_bytes()).unwrap();
        }
        writer.finish().unwrap();
        let error = open_file(&several).err().unwrap();
        assert!(error.contains("holds 2 files"), "{error}");
    }

    #[test]
    fn written_streams_read_back_and_the_name_inside_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["out.csv.gz", "out.csv.zst"] {
            let path = dir.path().join(name);
            let compression = Compression::from_extension(&path).unwrap();
            let (mut writer, finisher) =
                encoder(File::create(&path).unwrap(), compression, &path).unwrap();
            writer.write_all(LIST.as_bytes()).unwrap();
            writer.flush().unwrap();
            // Flushed but not finished (a killed scan): what was flushed decompresses, then
            // the reader reports the unfinished stream.
            let mut reader = open_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            let (mut flushed, mut chunk) = (Vec::new(), [0u8; 16]);
            let ended_with_error = loop {
                match reader.read(&mut chunk) {
                    Ok(0) => break false,
                    Ok(n) => flushed.extend_from_slice(&chunk[..n]),
                    Err(_) => break true,
                }
            };
            assert_eq!(flushed, LIST.as_bytes(), "{name}");
            assert!(
                ended_with_error,
                "{name}: an unfinished stream is not a clean end"
            );
            finisher.finish().unwrap();
            assert!(writer.write_all(b"late").is_err(), "the stream has ended");
            drop(writer);
            assert_eq!(read_all(open_file(&path).unwrap()), LIST, "{name}");
            assert_eq!(inner_name(&path), dir.path().join("out.csv"));
        }
        assert_eq!(Compression::from_extension(Path::new("out.csv")), None);
        let zip = dir.path().join("out.csv.zip");
        assert!(encoder(File::create(&zip).unwrap(), Compression::Zip, &zip).is_err());
    }
}
