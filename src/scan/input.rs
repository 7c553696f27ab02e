//! Streaming input: domain lists as CSV (Tranco `rank,domain`, a header row with a `domain`
//! column, or one domain per line), read line by line so memory never grows with the list.
//!
//! One physical line is one row: blank lines and `#` comments are skipped, everything else
//! yields exactly one [`InputRow`], with a `problem` when the line cannot give a domain (not
//! UTF-8, over-long, an unbalanced quote, a missing field), so the scan can still write its row.

use std::io::BufRead;

/// Longest line kept; longer lines are cut here and reported as a problem.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// One data line of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRow {
    /// 1-based line number in the input.
    pub line: u64,
    pub rank: Option<i64>,
    /// The domain field as read (lossily decoded when the line is not UTF-8).
    pub value: String,
    /// Why this row cannot give a domain, if it cannot.
    pub problem: Option<String>,
}

/// How the list is laid out, decided from its first data line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `rank,domain` without a header (Tranco, Umbrella).
    Ranked,
    /// A header row; the domain is in `column`, the rank (if any) in `rank`.
    Header { column: usize, rank: Option<usize> },
    /// One domain per line (extra fields ignored).
    Plain,
}

/// Reads rows from any buffered reader.
pub struct InputReader<R> {
    reader: R,
    wanted_column: Option<String>,
    layout: Option<Layout>,
    line: u64,
    buffer: Vec<u8>,
    fields: Vec<String>,
}

impl<R: BufRead> InputReader<R> {
    /// `column`: the header column holding the domain (`--column`); without it a column named
    /// `domain` (any case) is used when the first line is a header.
    pub fn new(reader: R, column: Option<String>) -> Self {
        InputReader {
            reader,
            wanted_column: column,
            layout: None,
            line: 0,
            buffer: Vec::with_capacity(256),
            fields: Vec::new(),
        }
    }

    /// The layout, once the first data line has been read.
    pub fn layout(&self) -> Option<Layout> {
        self.layout
    }

    /// The next row; `Err` only for what stops the whole scan (I/O errors, a `--column` that is
    /// not in the header).
    pub fn next_row(&mut self) -> Result<Option<InputRow>, String> {
        loop {
            let too_long = match read_capped_line(&mut self.reader, &mut self.buffer) {
                Ok(None) => return Ok(None),
                Ok(Some(too_long)) => too_long,
                Err(error) => return Err(format!("cannot read the input: {error}")),
            };
            self.line += 1;
            let mut bytes = self.buffer.as_slice();
            if self.line == 1 {
                bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            }
            while let [rest @ .., b'\n' | b'\r'] = bytes {
                bytes = rest;
            }
            let (text, utf8_problem) = match std::str::from_utf8(bytes) {
                Ok(text) => (std::borrow::Cow::Borrowed(text), None),
                Err(error) => (
                    String::from_utf8_lossy(bytes),
                    Some(format!(
                        "line is not valid UTF-8 (at byte {})",
                        error.valid_up_to()
                    )),
                ),
            };
            let trimmed = text.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let quote_problem = split_fields(trimmed, &mut self.fields);
            let layout = match self.layout {
                Some(layout) => layout,
                None => {
                    let layout = self.detect_layout()?;
                    self.layout = Some(layout);
                    if matches!(layout, Layout::Header { .. }) {
                        continue; // the header row is not a data row
                    }
                    layout
                }
            };
            let (rank, field) = match layout {
                Layout::Ranked => (
                    self.fields.first().and_then(|f| f.parse::<i64>().ok()),
                    self.fields.get(1),
                ),
                Layout::Header { column, rank } => (
                    rank.and_then(|r| self.fields.get(r))
                        .and_then(|f| f.parse::<i64>().ok()),
                    self.fields.get(column),
                ),
                Layout::Plain => (None, self.fields.first()),
            };
            let value = field.cloned().unwrap_or_else(|| trimmed.to_owned());
            let problem = if too_long {
                Some(format!("line longer than {MAX_LINE_BYTES} bytes"))
            } else if let Some(problem) = utf8_problem {
                Some(problem)
            } else if let Some(problem) = quote_problem {
                Some(problem.to_owned())
            } else if field.is_none() {
                Some("the line has no domain field".to_owned())
            } else {
                None
            };
            return Ok(Some(InputRow {
                line: self.line,
                rank,
                value,
                problem,
            }));
        }
    }

    fn detect_layout(&self) -> Result<Layout, String> {
        let rank = self
            .fields
            .iter()
            .position(|f| f.eq_ignore_ascii_case("rank") || f.eq_ignore_ascii_case("globalrank"));
        if let Some(wanted) = &self.wanted_column {
            return match self
                .fields
                .iter()
                .position(|f| f.eq_ignore_ascii_case(wanted))
            {
                Some(column) => Ok(Layout::Header { column, rank }),
                None => Err(format!(
                    "column {wanted:?} is not in the header row ({})",
                    self.fields.join(", ")
                )),
            };
        }
        if let Some(column) = self
            .fields
            .iter()
            .position(|f| f.eq_ignore_ascii_case("domain"))
        {
            return Ok(Layout::Header { column, rank });
        }
        let ranked = self.fields.len() >= 2 && self.fields[0].parse::<i64>().is_ok();
        Ok(if ranked {
            Layout::Ranked
        } else {
            Layout::Plain
        })
    }
}

impl<R: BufRead> Iterator for InputReader<R> {
    type Item = Result<InputRow, String>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_row().transpose()
    }
}

/// Reads one line into `buffer` (cleared first), keeping at most [`MAX_LINE_BYTES`]; returns
/// `None` at the end, `Some(true)` when the line was cut.
fn read_capped_line<R: BufRead>(
    reader: &mut R,
    buffer: &mut Vec<u8>,
) -> std::io::Result<Option<bool>> {
    buffer.clear();
    let mut too_long = false;
    let mut read_any = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if available.is_empty() {
            return Ok(read_any.then_some(too_long));
        }
        read_any = true;
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..=end], true),
            None => (available, false),
        };
        let room = MAX_LINE_BYTES.saturating_sub(buffer.len());
        if chunk.len() > room {
            too_long = true;
        }
        buffer.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let consumed = chunk.len();
        reader.consume(consumed);
        if done {
            return Ok(Some(too_long));
        }
    }
}

/// Splits a CSV line into trimmed fields (RFC 4180 quoting); returns a problem for an
/// unbalanced quote.
fn split_fields(line: &str, fields: &mut Vec<String>) -> Option<&'static str> {
    fields.clear();
    if !line.contains('"') {
        fields.extend(line.split(',').map(|f| f.trim().to_owned()));
        return None;
    }
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field).trim().to_owned()),
            (c, _) => field.push(c),
        }
    }
    fields.push(field.trim().to_owned());
    quoted.then_some("unbalanced quote in the line")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &[u8], column: Option<&str>) -> Vec<(u64, Option<i64>, String, Option<String>)> {
        InputReader::new(text, column.map(str::to_owned))
            .map(|row| row.unwrap())
            .map(|r| (r.line, r.rank, r.value, r.problem))
            .collect()
    }

    #[test]
    fn layouts() {
        let tranco = rows(b"1,google.com\n2,example.org\r\n", None);
        assert_eq!(
            tranco,
            [
                (1, Some(1), "google.com".into(), None),
                (2, Some(2), "example.org".into(), None)
            ]
        );
        let header = rows(b"\xEF\xBB\xBFGlobalRank,Domain,TLD\n1,a.com,com\n", None);
        assert_eq!(header, [(2, Some(1), "a.com".into(), None)]);
        let picked = rows(b"name,host\nx,b.org\n", Some("host"));
        assert_eq!(picked, [(2, None, "b.org".into(), None)]);
        let plain = rows(b"# suppliers\n\nexample.com\n  other.net  \n", None);
        assert_eq!(
            plain,
            [
                (3, None, "example.com".into(), None),
                (4, None, "other.net".into(), None)
            ]
        );
        let quoted = rows(b"\"1\",\"quoted.com\"\n", None);
        assert_eq!(quoted, [(1, Some(1), "quoted.com".into(), None)]);
    }

    #[test]
    fn missing_column_stops_the_scan() {
        let mut reader = InputReader::new(&b"a,b\n1,2\n"[..], Some("domain".to_owned()));
        assert!(reader.next_row().unwrap_err().contains("\"domain\""));
    }

    #[test]
    fn every_bad_line_is_still_one_row() {
        let mut input = b"1,ok.com\n2,\"unbalanced.com\n3,\xff\xfe.com\n4\n".to_vec();
        input.extend_from_slice(b"5,");
        input.extend(std::iter::repeat_n(b'a', MAX_LINE_BYTES * 2));
        input.extend_from_slice(b"\n6,last.com");
        let all = rows(&input, None);
        let problems: Vec<_> = all.iter().map(|r| r.3.clone()).collect();
        assert_eq!(all.len(), 6);
        assert_eq!(problems[0], None);
        assert!(problems[1].as_deref().unwrap().contains("quote"));
        assert!(problems[2].as_deref().unwrap().contains("UTF-8"));
        assert!(problems[3].as_deref().unwrap().contains("no domain"));
        assert!(problems[4].as_deref().unwrap().contains("longer"));
        assert_eq!(all[5].2, "last.com");
        assert!(all[4].2.len() <= MAX_LINE_BYTES);
    }
}
