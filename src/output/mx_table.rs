//! The MX table of spec §7 (`--mx-output`): one row per probed MX host, in CSV, Parquet or JSON
//! Lines, to join with the domain rows on `mx_host`. [`MX_COLUMNS`] is the one definition of its
//! columns: the CSV header, the Parquet schema and the JSON keys all follow it (a test checks
//! the serde names against it).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Int64Builder, ListBuilder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray};
use arrow_schema::{Field, Schema};
use serde::{Deserialize, Serialize};

use crate::net::smtp::MxProbe;
use crate::output::Format;
use crate::output::csv::{needs_formula_guard, strip_formula_guard};
use crate::output::schema::{ColumnType, TIMEZONE, arrow_data_type};
use crate::report::{format_millis, parse_millis};

/// The columns of the MX table, in order (spec §7).
pub const MX_COLUMNS: &[(&str, ColumnType, bool)] = &[
    ("mx_host", ColumnType::Utf8, false),
    ("address", ColumnType::Utf8, true),
    ("status", ColumnType::Utf8, false),
    ("banner", ColumnType::Utf8, true),
    ("starttls", ColumnType::Bool, false),
    ("tls_version", ColumnType::Utf8, true),
    ("cipher", ColumnType::Utf8, true),
    ("cert_subject", ColumnType::Utf8, true),
    ("cert_san", ColumnType::Utf8List, false),
    ("cert_issuer", ColumnType::Utf8, true),
    ("cert_not_before", ColumnType::TimestampMillis, true),
    ("cert_not_after", ColumnType::TimestampMillis, true),
    ("cert_sha256", ColumnType::Utf8, true),
    ("error", ColumnType::Utf8, true),
    ("domains", ColumnType::Int64, false),
    ("probed_at", ColumnType::TimestampMillis, false),
    ("duration_ms", ColumnType::Int64, false),
];

/// One row of the MX table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MxRow {
    pub mx_host: String,
    pub address: Option<String>,
    pub status: String,
    pub banner: Option<String>,
    pub starttls: bool,
    pub tls_version: Option<String>,
    pub cipher: Option<String>,
    pub cert_subject: Option<String>,
    #[serde(default)]
    pub cert_san: Vec<String>,
    pub cert_issuer: Option<String>,
    #[serde(with = "optional_time")]
    pub cert_not_before: Option<i64>,
    #[serde(with = "optional_time")]
    pub cert_not_after: Option<i64>,
    pub cert_sha256: Option<String>,
    pub error: Option<String>,
    pub domains: i64,
    #[serde(with = "time")]
    pub probed_at: i64,
    pub duration_ms: i64,
}

impl MxRow {
    /// The row of one probe, used by `domains` input domains.
    pub fn from_probe(probe: &MxProbe, domains: u64) -> Self {
        let cert = probe.cert.as_ref();
        MxRow {
            mx_host: probe.host.clone(),
            address: probe.address.map(|a| a.to_string()),
            status: probe.status.as_str().to_owned(),
            banner: probe.banner.clone(),
            starttls: probe.starttls,
            tls_version: probe.tls_version.clone(),
            cipher: probe.cipher.clone(),
            cert_subject: cert.map(|c| c.subject.clone()),
            cert_san: cert.map(|c| c.san.clone()).unwrap_or_default(),
            cert_issuer: cert.map(|c| c.issuer.clone()),
            cert_not_before: cert.map(|c| c.not_before_ms),
            cert_not_after: cert.map(|c| c.not_after_ms),
            cert_sha256: cert.map(|c| c.sha256.clone()),
            error: probe.error.clone(),
            domains: i64::try_from(domains).unwrap_or(i64::MAX),
            probed_at: probe.probed_at_ms,
            duration_ms: i64::try_from(probe.duration.as_millis()).unwrap_or(i64::MAX),
        }
    }
}

mod time {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(millis: &i64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&crate::report::format_millis(*millis))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        let text = String::deserialize(deserializer)?;
        crate::report::parse_millis(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {text}")))
    }
}

mod optional_time {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        millis: &Option<i64>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match millis {
            Some(millis) => serializer.serialize_str(&crate::report::format_millis(*millis)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<i64>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            Some(text) => crate::report::parse_millis(&text)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {text}"))),
            None => Ok(None),
        }
    }
}

/// Writes the MX table to `path` (format by extension), rows sorted by host.
pub fn write_mx_table(path: &Path, rows: &mut [MxRow]) -> Result<(), String> {
    rows.sort_by(|a, b| a.mx_host.cmp(&b.mx_host));
    let format = Format::from_path(path).ok_or_else(|| {
        format!(
            "{}: cannot tell the MX table's format from its name (.csv, .parquet or .jsonl)",
            path.display()
        )
    })?;
    let io = |e: std::io::Error| format!("cannot write the MX table {}: {e}", path.display());
    let file = File::create(path).map_err(io)?;
    match format {
        Format::Jsonl => {
            let mut out = BufWriter::new(file);
            for row in rows.iter() {
                serde_json::to_writer(&mut out, row).map_err(|e| e.to_string())?;
                out.write_all(b"\n").map_err(io)?;
            }
            out.flush().map_err(io)
        }
        Format::Csv => write_csv(BufWriter::new(file), rows).map_err(io),
        Format::Parquet => write_parquet(file, rows),
    }
}

fn text_cell(value: &str) -> String {
    if needs_formula_guard(value.as_bytes()) {
        format!("'{value}")
    } else {
        value.to_owned()
    }
}

fn write_csv<W: Write>(out: W, rows: &[MxRow]) -> std::io::Result<()> {
    let mut writer = ::csv::Writer::from_writer(out);
    writer.write_record(MX_COLUMNS.iter().map(|(name, _, _)| *name))?;
    let optional = |v: &Option<String>| v.as_deref().map(text_cell).unwrap_or_default();
    let time = |v: Option<i64>| v.map(format_millis).unwrap_or_default();
    for row in rows {
        writer.write_record([
            text_cell(&row.mx_host),
            optional(&row.address),
            row.status.clone(),
            optional(&row.banner),
            row.starttls.to_string(),
            optional(&row.tls_version),
            optional(&row.cipher),
            optional(&row.cert_subject),
            text_cell(&row.cert_san.join(" ")),
            optional(&row.cert_issuer),
            time(row.cert_not_before),
            time(row.cert_not_after),
            optional(&row.cert_sha256),
            optional(&row.error),
            row.domains.to_string(),
            format_millis(row.probed_at),
            row.duration_ms.to_string(),
        ])?;
    }
    writer.flush()
}

fn arrow_schema() -> Arc<Schema> {
    Arc::new(Schema::new(
        MX_COLUMNS
            .iter()
            .map(|(name, kind, nullable)| Field::new(*name, arrow_data_type(*kind), *nullable))
            .collect::<Vec<_>>(),
    ))
}

fn write_parquet(file: File, rows: &[MxRow]) -> Result<(), String> {
    let schema = arrow_schema();
    let strings = |f: &dyn Fn(&MxRow) -> Option<&str>| -> ArrayRef {
        let mut b = StringBuilder::new();
        for row in rows {
            b.append_option(f(row));
        }
        Arc::new(b.finish())
    };
    let times = |f: &dyn Fn(&MxRow) -> Option<i64>| -> ArrayRef {
        let mut b = TimestampMillisecondBuilder::new().with_timezone(TIMEZONE);
        for row in rows {
            b.append_option(f(row));
        }
        Arc::new(b.finish())
    };
    let ints = |f: &dyn Fn(&MxRow) -> i64| -> ArrayRef {
        let mut b = Int64Builder::new();
        for row in rows {
            b.append_value(f(row));
        }
        Arc::new(b.finish())
    };
    let mut starttls = BooleanBuilder::new();
    let mut san = ListBuilder::new(StringBuilder::new())
        .with_field(Arc::new(crate::output::schema::list_item_field()));
    for row in rows {
        starttls.append_value(row.starttls);
        for name in &row.cert_san {
            san.values().append_value(name);
        }
        san.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        strings(&|r| Some(&r.mx_host)),
        strings(&|r| r.address.as_deref()),
        strings(&|r| Some(&r.status)),
        strings(&|r| r.banner.as_deref()),
        Arc::new(starttls.finish()),
        strings(&|r| r.tls_version.as_deref()),
        strings(&|r| r.cipher.as_deref()),
        strings(&|r| r.cert_subject.as_deref()),
        Arc::new(san.finish()),
        strings(&|r| r.cert_issuer.as_deref()),
        times(&|r| r.cert_not_before),
        times(&|r| r.cert_not_after),
        strings(&|r| r.cert_sha256.as_deref()),
        strings(&|r| r.error.as_deref()),
        ints(&|r| r.domains),
        times(&|r| Some(r.probed_at)),
        ints(&|r| r.duration_ms),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())?;
    let mut writer =
        ::parquet::arrow::ArrowWriter::try_new(file, schema, None).map_err(|e| e.to_string())?;
    writer.write(&batch).map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(())
}

/// Reads an MX table written by [`write_mx_table`] (any of the three formats). Only the fields
/// the statistics use are required to be present in Parquet and CSV: `mx_host`, `status`,
/// `starttls`, `banner`, `tls_version`, `domains`.
pub fn read_mx_table(path: &Path) -> Result<Vec<MxRow>, String> {
    let format = Format::from_path(path)
        .ok_or_else(|| format!("{}: cannot tell the MX table's format", path.display()))?;
    let file = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let at = |line: usize, e: &dyn std::fmt::Display| format!("{}:{line}: {e}", path.display());
    match format {
        Format::Jsonl => {
            let mut rows = Vec::new();
            for (index, line) in BufReader::new(file).lines().enumerate() {
                let line = line.map_err(|e| at(index + 1, &e))?;
                if line.trim().is_empty() {
                    continue;
                }
                rows.push(serde_json::from_str(&line).map_err(|e| at(index + 1, &e))?);
            }
            Ok(rows)
        }
        Format::Csv => {
            let mut reader = ::csv::Reader::from_reader(file);
            let headers = reader.headers().map_err(|e| at(1, &e))?.clone();
            let column = |name: &str| headers.iter().position(|h| h == name);
            let mut rows = Vec::new();
            for (index, record) in reader.records().enumerate() {
                let record = record.map_err(|e| at(index + 2, &e))?;
                let get = |name: &str| {
                    column(name)
                        .and_then(|i| record.get(i))
                        .map(strip_formula_guard)
                        .unwrap_or("")
                };
                let optional =
                    |name: &str| Some(get(name)).filter(|v| !v.is_empty()).map(str::to_owned);
                let time = |name: &str| parse_millis(get(name));
                rows.push(MxRow {
                    mx_host: get("mx_host").to_owned(),
                    address: optional("address"),
                    status: get("status").to_owned(),
                    banner: optional("banner"),
                    starttls: get("starttls") == "true",
                    tls_version: optional("tls_version"),
                    cipher: optional("cipher"),
                    cert_subject: optional("cert_subject"),
                    cert_san: get("cert_san")
                        .split(' ')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    cert_issuer: optional("cert_issuer"),
                    cert_not_before: time("cert_not_before"),
                    cert_not_after: time("cert_not_after"),
                    cert_sha256: optional("cert_sha256"),
                    error: optional("error"),
                    domains: get("domains").parse().unwrap_or(0),
                    probed_at: time("probed_at").unwrap_or(0),
                    duration_ms: get("duration_ms").parse().unwrap_or(0),
                });
            }
            Ok(rows)
        }
        Format::Parquet => read_parquet(file).map_err(|e| format!("{}: {e}", path.display())),
    }
}

fn read_parquet(file: File) -> Result<Vec<MxRow>, String> {
    let reader = ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| e.to_string())?
        .build()
        .map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let text = |name: &str| -> Option<&StringArray> {
            batch
                .column_by_name(name)?
                .as_any()
                .downcast_ref::<StringArray>()
        };
        let hosts = text("mx_host").ok_or("no mx_host column")?;
        let status = text("status").ok_or("no status column")?;
        let banner = text("banner");
        let tls_version = text("tls_version");
        let starttls = batch
            .column_by_name("starttls")
            .and_then(|c| c.as_any().downcast_ref::<BooleanArray>());
        let domains = batch
            .column_by_name("domains")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>());
        let optional = |array: Option<&StringArray>, i: usize| {
            array
                .filter(|a| a.is_valid(i))
                .map(|a| a.value(i).to_owned())
        };
        for i in 0..batch.num_rows() {
            rows.push(MxRow {
                mx_host: hosts.value(i).to_owned(),
                address: optional(text("address"), i),
                status: status.value(i).to_owned(),
                banner: optional(banner, i),
                starttls: starttls.is_some_and(|a| a.value(i)),
                tls_version: optional(tls_version, i),
                cipher: optional(text("cipher"), i),
                cert_subject: optional(text("cert_subject"), i),
                cert_san: Vec::new(),
                cert_issuer: optional(text("cert_issuer"), i),
                cert_not_before: None,
                cert_not_after: None,
                cert_sha256: optional(text("cert_sha256"), i),
                error: optional(text("error"), i),
                domains: domains.map_or(0, |a| a.value(i)),
                probed_at: 0,
                duration_ms: 0,
            });
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<MxRow> {
        vec![
            MxRow {
                mx_host: "valid.mx.test".into(),
                address: Some("127.25.0.1".into()),
                status: "valid".into(),
                banner: Some("220 valid.mx.test ESMTP".into()),
                starttls: true,
                tls_version: Some("TLSv1_3".into()),
                cipher: Some("TLS13_AES_256_GCM_SHA384".into()),
                cert_subject: Some("CN=valid.mx.test".into()),
                cert_san: vec!["valid.mx.test".into(), "-odd.mx.test".into()],
                cert_issuer: Some("CN=root".into()),
                cert_not_before: Some(1_700_000_000_000),
                cert_not_after: Some(4_000_000_000_000),
                cert_sha256: Some("ab".repeat(32)),
                error: None,
                domains: 40,
                probed_at: 1_800_000_000_000,
                duration_ms: 12,
            },
            MxRow {
                mx_host: "greeting-421.mx.test".into(),
                address: Some("127.25.0.11".into()),
                status: "unreachable".into(),
                banner: Some("421 busy".into()),
                starttls: false,
                tls_version: None,
                cipher: None,
                cert_subject: None,
                cert_san: vec![],
                cert_issuer: None,
                cert_not_before: None,
                cert_not_after: None,
                cert_sha256: None,
                error: Some("=greeting 421".into()),
                domains: 1,
                probed_at: 1_800_000_000_000,
                duration_ms: 3,
            },
        ]
    }

    #[test]
    fn serde_names_are_the_columns() {
        let json = serde_json::to_value(&sample()[0]).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut columns: Vec<&str> = MX_COLUMNS.iter().map(|(n, _, _)| *n).collect();
        let mut keys_sorted = keys.clone();
        keys_sorted.sort_unstable();
        columns.sort_unstable();
        assert_eq!(keys_sorted, columns);
    }

    #[test]
    fn every_format_round_trips() {
        let dir = std::env::temp_dir().join(format!("mx-table-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["mx.csv", "mx.jsonl", "mx.parquet"] {
            let path = dir.join(name);
            let mut rows = sample();
            write_mx_table(&path, &mut rows).unwrap();
            let read = read_mx_table(&path).unwrap();
            assert_eq!(read.len(), 2, "{name}");
            assert_eq!(
                read[0].mx_host, "greeting-421.mx.test",
                "{name}: sorted by host"
            );
            assert_eq!(read[1].status, "valid", "{name}");
            assert_eq!(read[1].domains, 40, "{name}");
            assert!(read[1].starttls && read[1].tls_version.is_some(), "{name}");
            assert_eq!(read[0].error.as_deref(), Some("=greeting 421"), "{name}");
            if name != "mx.parquet" {
                assert_eq!(read, rows, "{name}: every field");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
