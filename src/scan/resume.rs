//! `--resume`: what an earlier, interrupted run of the same scan already wrote. Every input row
//! already in the output is skipped once (a multiset, so duplicate lines in the list are still
//! honoured exactly), and the rows found count into the final statistics.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::output::{Format, read_results};
use crate::scan::stats::Statistics;

/// The rows an earlier run wrote.
#[derive(Debug, Default)]
pub struct Done {
    /// How many rows of each input value are written (keyed by a hash of the input).
    remaining: HashMap<u64, u32>,
    pub statistics: Statistics,
}

type FixedHasher = BuildHasherDefault<DefaultHasher>;

fn key(input: &str) -> u64 {
    FixedHasher::default().hash_one(input)
}

impl Done {
    /// Reads the output of the earlier run (nothing there: nothing done). A CSV or JSON Lines
    /// file cut mid-line by a crash is first truncated to its last whole line.
    pub fn load(path: &Path, format: Format) -> Result<Done, String> {
        if let Some(compression) = crate::compression::Compression::from_extension(path) {
            // Repairing a cut-off last line would cut the compressed stream instead.
            return Err(format!(
                "{}: --resume cannot continue a {} file (a killed scan leaves its last block unfinished): write plain text, or compress after the scan",
                path.display(),
                compression.as_str()
            ));
        }
        let mut done = Done {
            statistics: Statistics::new(),
            ..Done::default()
        };
        let object = crate::output::store::is_object_path(path);
        let earlier_output = if object {
            // An object store: the finished object, or the parts a killed run uploaded (whole
            // parts only: an upload is complete or invisible, so nothing needs repair).
            match crate::output::store::Location::parse(&path.to_string_lossy())? {
                crate::output::store::Location::Object(location) => {
                    crate::output::store::object_has_rows(&location)?
                }
                crate::output::store::Location::Local(_) => false,
            }
        } else {
            let parts = crate::output::parquet::parts_dir(path);
            path.exists() || (format == Format::Parquet && parts.is_dir())
        };
        if !earlier_output {
            return Ok(done);
        }
        if format != Format::Parquet && !object {
            truncate_partial_line(path)
                .map_err(|e| format!("cannot repair {}: {e}", path.display()))?;
            // Killed before its first flush: not even a header was written.
            if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
                return Ok(done);
            }
        }
        for row in read_results(path, Some(format))? {
            let row = row.map_err(|e| format!("cannot resume from {}: {e}", path.display()))?;
            *done.remaining.entry(key(&row.input)).or_insert(0) += 1;
            done.statistics.add(&row);
        }
        Ok(done)
    }

    /// Rows already written.
    pub fn rows(&self) -> u64 {
        self.statistics.rows
    }

    /// Whether this input value is already written (consumes one occurrence).
    pub fn take(&mut self, input: &str) -> bool {
        match self.remaining.get_mut(&key(input)) {
            Some(count) if *count > 0 => {
                *count -= 1;
                true
            }
            _ => false,
        }
    }
}

/// Cuts a text file after its last newline (a crash can leave half a line).
fn truncate_partial_line(path: &Path) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let length = file.metadata()?.len();
    let mut end = length;
    let mut chunk = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let size = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk[..size])?;
        if let Some(newline) = chunk[..size].iter().rposition(|&b| b == b'\n') {
            let keep = start + newline as u64 + 1;
            if keep < length {
                file.set_len(keep)?;
            }
            return Ok(());
        }
        end = start;
    }
    file.set_len(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_cut_and_whole_lines_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        for (content, kept) in [
            (&b"a\nb\nhalf"[..], &b"a\nb\n"[..]),
            (b"a\nb\n", b"a\nb\n"),
            (b"no newline at all", b""),
            (b"", b""),
        ] {
            let path = dir.path().join("f.csv");
            std::fs::write(&path, content).unwrap();
            truncate_partial_line(&path).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), kept);
        }
    }

    #[test]
    fn a_scan_killed_before_its_first_flush_resumes_from_nothing() {
        let dir = tempfile::tempdir().unwrap();
        for format in [Format::Csv, Format::Jsonl] {
            let path = dir.path().join(format!("out.{}", format.extension()));
            std::fs::write(&path, b"").unwrap();
            assert_eq!(Done::load(&path, format).unwrap().rows(), 0);
        }
        let missing = dir.path().join("none.parquet");
        assert_eq!(Done::load(&missing, Format::Parquet).unwrap().rows(), 0);
    }

    #[test]
    fn duplicates_are_skipped_as_often_as_they_were_written() {
        let mut done = Done::default();
        *done.remaining.entry(key("a.test")).or_insert(0) += 2;
        assert!(done.take("a.test"));
        assert!(done.take("a.test"));
        assert!(!done.take("a.test"));
        assert!(!done.take("b.test"));
    }
}
