//! The mapping between a [`DomainReport`] and the typed cells of one result row, shared by the
//! tabular formats (CSV and Parquet): [`cell`] reads a column out of a report, [`RowAssembler`]
//! rebuilds a report from cells read back.
//!
//! Both are one exhaustive `match` over [`ColumnId`], so adding a column without handling it
//! does not compile.

use crate::issues::{Issue, IssueCode, Severity};
use crate::mta_sts::mx_class::MxMismatchClass;
use crate::mta_sts::policy::Mode;
use crate::net::{FetchOutcome, LookupFailure};
use crate::output::schema::ColumnId;
#[cfg(test)]
use crate::output::schema::ColumnType;
use crate::report::{DomainReport, Outcome};

/// One cell as written: borrowed from the report, no allocation.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CellOut<'a> {
    Utf8(Option<&'a str>),
    Int64(Option<i64>),
    Int32(Option<i32>),
    Bool(bool),
    Utf8List(ListItems<'a>),
    TimestampMillis(i64),
}

impl CellOut<'_> {
    /// The column type this cell belongs to.
    #[cfg(test)]
    pub(crate) fn kind(&self) -> ColumnType {
        match self {
            CellOut::Utf8(_) => ColumnType::Utf8,
            CellOut::Int64(_) => ColumnType::Int64,
            CellOut::Int32(_) => ColumnType::Int32,
            CellOut::Bool(_) => ColumnType::Bool,
            CellOut::Utf8List(_) => ColumnType::Utf8List,
            CellOut::TimestampMillis(_) => ColumnType::TimestampMillis,
        }
    }
}

/// The items of a list cell.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ListItems<'a> {
    Strings(&'a [String]),
    /// The `issues` column holds the codes only.
    IssueCodes(&'a [Issue]),
    /// The `lookup_failures` column holds `lookup:kind` tokens.
    LookupFailures(&'a [LookupFailure]),
    /// The `mx_uncovered_class` column holds class names.
    MismatchClasses(&'a [MxMismatchClass]),
}

impl<'a> ListItems<'a> {
    pub(crate) fn iter(self) -> ListItemsIter<'a> {
        match self {
            ListItems::Strings(items) => ListItemsIter::Strings(items.iter()),
            ListItems::IssueCodes(issues) => ListItemsIter::IssueCodes(issues.iter()),
            ListItems::LookupFailures(failures) => ListItemsIter::LookupFailures(failures.iter()),
            ListItems::MismatchClasses(classes) => ListItemsIter::MismatchClasses(classes.iter()),
        }
    }
}

pub(crate) enum ListItemsIter<'a> {
    Strings(std::slice::Iter<'a, String>),
    IssueCodes(std::slice::Iter<'a, Issue>),
    LookupFailures(std::slice::Iter<'a, LookupFailure>),
    MismatchClasses(std::slice::Iter<'a, MxMismatchClass>),
}

impl<'a> Iterator for ListItemsIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        match self {
            ListItemsIter::Strings(items) => items.next().map(String::as_str),
            ListItemsIter::IssueCodes(issues) => issues.next().map(|issue| issue.code.as_str()),
            ListItemsIter::LookupFailures(failures) => {
                failures.next().map(|failure| failure.as_str())
            }
            ListItemsIter::MismatchClasses(classes) => classes.next().map(|class| class.as_str()),
        }
    }
}

/// The value of `column` for `report`.
///
/// `max_age` is at most 10 digits (RFC 8461 §3.2), so it always fits an `i64`; a larger value
/// (impossible from the parser) would be written as `i64::MAX`.
pub(crate) fn cell(report: &DomainReport, column: ColumnId) -> CellOut<'_> {
    match column {
        ColumnId::Domain => CellOut::Utf8(Some(&report.domain)),
        ColumnId::Input => CellOut::Utf8(Some(&report.input)),
        ColumnId::Rank => CellOut::Int64(report.rank),
        ColumnId::Outcome => CellOut::Utf8(Some(report.outcome.as_str())),
        ColumnId::HasMtaSts => CellOut::Bool(report.has_mta_sts),
        ColumnId::StsId => text(&report.sts_id),
        ColumnId::StsRecord => text(&report.sts_record),
        ColumnId::PolicyUrl => text(&report.policy_url),
        ColumnId::StsRecordCname => text(&report.sts_record_cname),
        ColumnId::PolicyHostCname => text(&report.policy_host_cname),
        ColumnId::PolicyHttpStatus => CellOut::Int32(report.policy_http_status.map(i32::from)),
        ColumnId::PolicyContentType => text(&report.policy_content_type),
        ColumnId::PolicySha256 => text(&report.policy_sha256),
        ColumnId::Mode => CellOut::Utf8(report.mode.map(Mode::as_str)),
        ColumnId::MaxAge => CellOut::Int64(
            report
                .max_age
                .map(|seconds| i64::try_from(seconds).unwrap_or(i64::MAX)),
        ),
        ColumnId::MxPatterns => list(&report.mx_patterns),
        ColumnId::MxHosts => list(&report.mx_hosts),
        ColumnId::MxUncovered => list(&report.mx_uncovered),
        ColumnId::DeliveryAtRisk => CellOut::Bool(report.delivery_at_risk),
        ColumnId::TlsRpt => CellOut::Bool(report.tls_rpt),
        ColumnId::TlsRptRua => list(&report.tls_rpt_rua),
        ColumnId::Issues => CellOut::Utf8List(ListItems::IssueCodes(&report.issues)),
        ColumnId::Severity => CellOut::Utf8(Some(report.severity().as_str())),
        ColumnId::Error => text(&report.error),
        ColumnId::ScannedAt => CellOut::TimestampMillis(report.scanned_at),
        ColumnId::DurationMs => CellOut::Int64(Some(report.duration_ms)),
        ColumnId::PolicyFetch => CellOut::Utf8(report.policy_fetch.map(FetchOutcome::as_str)),
        ColumnId::LookupFailures => {
            CellOut::Utf8List(ListItems::LookupFailures(&report.lookup_failures))
        }
        ColumnId::MxProbed => CellOut::Bool(report.mx_probed),
        ColumnId::MxTlsValid => list(&report.mx_tls_valid),
        ColumnId::MxTlsFailed => list(&report.mx_tls_failed),
        ColumnId::MxTlsUnknown => list(&report.mx_tls_unknown),
        ColumnId::MxUncoveredClass => {
            CellOut::Utf8List(ListItems::MismatchClasses(&report.mx_uncovered_class))
        }
        ColumnId::DeliveryBlocked => CellOut::Bool(report.delivery_blocked),
    }
}

fn text(value: &Option<String>) -> CellOut<'_> {
    CellOut::Utf8(value.as_deref())
}

fn list(items: &[String]) -> CellOut<'_> {
    CellOut::Utf8List(ListItems::Strings(items))
}

/// One cell as read back. Scalars are `None` when the cell is null (or empty in CSV).
pub(crate) enum CellIn<'a, 'items> {
    Utf8(Option<&'a str>),
    Int64(Option<i64>),
    Int32(Option<i32>),
    Bool(Option<bool>),
    Utf8List(&'items mut dyn Iterator<Item = &'a str>),
    TimestampMillis(Option<i64>),
}

/// Rebuilds one [`DomainReport`] from the cells of a row, in any order.
///
/// Issues come back with the code's default severity, lowered to the row's `severity` column
/// when that is lower: context only ever lowers a severity (`mx_not_covered` in testing mode,
/// `tlsrpt_missing` without MTA-STS), so the rebuilt report's [`DomainReport::severity`]
/// equals the file's column. Issue messages are not stored in tabular formats and come back
/// empty. Unknown issue codes (written by a newer version) are skipped.
pub(crate) struct RowAssembler {
    report: DomainReport,
    recorded_severity: Option<Severity>,
}

impl RowAssembler {
    pub(crate) fn new() -> Self {
        RowAssembler {
            report: DomainReport::new(String::new(), String::new(), None),
            recorded_severity: None,
        }
    }

    /// Stores the cell of `column`; the error names the column.
    pub(crate) fn set(&mut self, column: ColumnId, value: CellIn<'_, '_>) -> Result<(), String> {
        let name = column.column().name;
        let report = &mut self.report;
        match (column, value) {
            (ColumnId::Domain, CellIn::Utf8(text)) => set_text(&mut report.domain, text),
            (ColumnId::Input, CellIn::Utf8(text)) => set_text(&mut report.input, text),
            (ColumnId::Rank, CellIn::Int64(rank)) => report.rank = rank,
            (ColumnId::Outcome, CellIn::Utf8(text)) => {
                let text = required(name, text)?;
                report.outcome = Outcome::from_name(text)
                    .ok_or_else(|| format!("{name}: unknown outcome `{text}`"))?;
            }
            (ColumnId::HasMtaSts, CellIn::Bool(flag)) => report.has_mta_sts = required(name, flag)?,
            (ColumnId::StsId, CellIn::Utf8(text)) => set_optional(&mut report.sts_id, text),
            (ColumnId::StsRecord, CellIn::Utf8(text)) => set_optional(&mut report.sts_record, text),
            (ColumnId::PolicyUrl, CellIn::Utf8(text)) => set_optional(&mut report.policy_url, text),
            (ColumnId::StsRecordCname, CellIn::Utf8(text)) => {
                set_optional(&mut report.sts_record_cname, text)
            }
            (ColumnId::PolicyHostCname, CellIn::Utf8(text)) => {
                set_optional(&mut report.policy_host_cname, text)
            }
            (ColumnId::PolicyHttpStatus, CellIn::Int32(status)) => {
                report.policy_http_status = status
                    .map(|status| {
                        u16::try_from(status)
                            .map_err(|_| format!("{name}: {status} is not an HTTP status"))
                    })
                    .transpose()?;
            }
            (ColumnId::PolicyContentType, CellIn::Utf8(text)) => {
                set_optional(&mut report.policy_content_type, text)
            }
            (ColumnId::PolicySha256, CellIn::Utf8(text)) => {
                set_optional(&mut report.policy_sha256, text)
            }
            (ColumnId::Mode, CellIn::Utf8(text)) => {
                report.mode = text
                    .map(|text| {
                        Mode::from_name(text)
                            .ok_or_else(|| format!("{name}: unknown mode `{text}`"))
                    })
                    .transpose()?;
            }
            (ColumnId::MaxAge, CellIn::Int64(seconds)) => {
                report.max_age = seconds
                    .map(|seconds| {
                        u64::try_from(seconds).map_err(|_| format!("{name}: negative value"))
                    })
                    .transpose()?;
            }
            (ColumnId::MxPatterns, CellIn::Utf8List(items)) => {
                set_list(&mut report.mx_patterns, items)
            }
            (ColumnId::MxHosts, CellIn::Utf8List(items)) => set_list(&mut report.mx_hosts, items),
            (ColumnId::MxUncovered, CellIn::Utf8List(items)) => {
                set_list(&mut report.mx_uncovered, items)
            }
            (ColumnId::DeliveryAtRisk, CellIn::Bool(flag)) => {
                report.delivery_at_risk = required(name, flag)?
            }
            (ColumnId::TlsRpt, CellIn::Bool(flag)) => report.tls_rpt = required(name, flag)?,
            (ColumnId::TlsRptRua, CellIn::Utf8List(items)) => {
                set_list(&mut report.tls_rpt_rua, items)
            }
            (ColumnId::Issues, CellIn::Utf8List(codes)) => {
                report.issues.clear();
                report.issues.extend(
                    codes
                        .filter_map(IssueCode::from_name)
                        .map(|code| Issue::new(code, String::new())),
                );
            }
            (ColumnId::Severity, CellIn::Utf8(text)) => {
                let text = required(name, text)?;
                self.recorded_severity = Some(
                    Severity::from_name(text)
                        .ok_or_else(|| format!("{name}: unknown severity `{text}`"))?,
                );
            }
            (ColumnId::Error, CellIn::Utf8(text)) => set_optional(&mut report.error, text),
            (ColumnId::ScannedAt, CellIn::TimestampMillis(millis)) => {
                report.scanned_at = required(name, millis)?
            }
            (ColumnId::DurationMs, CellIn::Int64(millis)) => {
                report.duration_ms = required(name, millis)?
            }
            (ColumnId::PolicyFetch, CellIn::Utf8(text)) => {
                report.policy_fetch = text
                    .map(|text| {
                        FetchOutcome::from_name(text)
                            .ok_or_else(|| format!("{name}: unknown fetch outcome `{text}`"))
                    })
                    .transpose()?;
            }
            (ColumnId::MxProbed, CellIn::Bool(flag)) => report.mx_probed = flag.unwrap_or(false),
            (ColumnId::MxTlsValid, CellIn::Utf8List(items)) => {
                set_list(&mut report.mx_tls_valid, items)
            }
            (ColumnId::MxTlsFailed, CellIn::Utf8List(items)) => {
                set_list(&mut report.mx_tls_failed, items)
            }
            (ColumnId::MxTlsUnknown, CellIn::Utf8List(items)) => {
                set_list(&mut report.mx_tls_unknown, items)
            }
            (ColumnId::MxUncoveredClass, CellIn::Utf8List(names)) => {
                report.mx_uncovered_class.clear();
                for name in names {
                    report.mx_uncovered_class.push(
                        MxMismatchClass::from_name(name)
                            .ok_or_else(|| format!("{name}: unknown mismatch class `{name}`"))?,
                    );
                }
            }
            (ColumnId::DeliveryBlocked, CellIn::Bool(flag)) => {
                report.delivery_blocked = flag.unwrap_or(false)
            }
            (ColumnId::LookupFailures, CellIn::Utf8List(tokens)) => {
                report.lookup_failures.clear();
                for token in tokens {
                    report.lookup_failures.push(
                        LookupFailure::from_name(token)
                            .ok_or_else(|| format!("{name}: unknown lookup failure `{token}`"))?,
                    );
                }
            }
            (column, _) => {
                return Err(format!(
                    "{}: value does not match the column type {:?}",
                    column.column().name,
                    column.column().kind
                ));
            }
        }
        Ok(())
    }

    /// Forgets a row that failed half-way.
    pub(crate) fn discard(&mut self) {
        self.take();
    }

    /// The finished report; the assembler is ready for the next row.
    pub(crate) fn take(&mut self) -> DomainReport {
        if let Some(recorded) = self.recorded_severity.take() {
            for issue in &mut self.report.issues {
                issue.severity = issue.severity.min(recorded);
            }
        }
        std::mem::replace(
            &mut self.report,
            DomainReport::new(String::new(), String::new(), None),
        )
    }
}

fn required<T>(name: &str, value: Option<T>) -> Result<T, String> {
    value.ok_or_else(|| format!("{name}: missing value"))
}

fn set_text(target: &mut String, text: Option<&str>) {
    target.clear();
    target.push_str(text.unwrap_or_default());
}

fn set_optional(target: &mut Option<String>, text: Option<&str>) {
    *target = text.map(str::to_owned);
}

fn set_list(target: &mut Vec<String>, items: &mut dyn Iterator<Item = &str>) {
    target.clear();
    target.extend(items.map(str::to_owned));
}

/// Appends `millis` as RFC 3339 UTC with milliseconds, exactly as
/// [`crate::report::format_millis`] writes it, without allocating.
pub(crate) fn write_rfc3339_millis(out: &mut Vec<u8>, millis: i64) -> std::io::Result<()> {
    use chrono::{Datelike, Timelike};
    use std::io::Write;
    let Some(time) = chrono::DateTime::from_timestamp_millis(millis) else {
        return Ok(()); // `format_millis` writes nothing for an unrepresentable time either
    };
    let year = time.year();
    if (0..=9999).contains(&year) {
        write!(out, "{year:04}")?;
    } else {
        write!(out, "{year:+05}")?;
    }
    write!(
        out,
        "-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        time.month(),
        time.day(),
        time.hour(),
        time.minute(),
        time.second(),
        time.timestamp_subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::schema::COLUMNS;
    use crate::report::format_millis;

    fn full_report() -> DomainReport {
        let mut report = DomainReport::new("example.com".into(), "Example.com".into(), Some(7));
        report.outcome = Outcome::Valid;
        report.has_mta_sts = true;
        report.sts_id = Some("20260101".into());
        report.sts_record = Some("v=STSv1; id=20260101".into());
        report.policy_url = Some("https://mta-sts.example.com/.well-known/mta-sts.txt".into());
        report.sts_record_cname = Some("sts.provider.net".into());
        report.policy_host_cname = Some("host.provider.net".into());
        report.policy_http_status = Some(200);
        report.policy_content_type = Some("text/plain".into());
        report.policy_sha256 = Some("ab".repeat(32));
        report.mode = Some(Mode::Testing);
        report.max_age = Some(604_800);
        report.mx_patterns = vec!["*.example.com".into()];
        report.mx_hosts = vec!["mx1.example.com".into(), "mx.other.net".into()];
        report.mx_uncovered = vec!["mx.other.net".into()];
        report.tls_rpt = true;
        report.tls_rpt_rua = vec!["mailto:tls@example.com".into()];
        report.issues = vec![
            Issue::with_severity(IssueCode::MxNotCovered, Severity::Warning, "m"),
            Issue::new(IssueCode::ModeTesting, "t"),
        ];
        report.error = Some("none".into());
        report.scanned_at = 1_795_000_000_123;
        report.duration_ms = 42;
        report
    }

    #[test]
    fn every_column_yields_a_cell_of_its_declared_type() {
        let report = full_report();
        for column in COLUMNS {
            assert_eq!(
                cell(&report, column.id).kind(),
                column.kind,
                "{}",
                column.name
            );
        }
    }

    #[test]
    fn every_column_is_read_back() {
        let report = full_report();
        let mut assembler = RowAssembler::new();
        for column in COLUMNS {
            let result = match cell(&report, column.id) {
                CellOut::Utf8(text) => assembler.set(column.id, CellIn::Utf8(text)),
                CellOut::Int64(value) => assembler.set(column.id, CellIn::Int64(value)),
                CellOut::Int32(value) => assembler.set(column.id, CellIn::Int32(value)),
                CellOut::Bool(flag) => assembler.set(column.id, CellIn::Bool(Some(flag))),
                CellOut::Utf8List(items) => {
                    assembler.set(column.id, CellIn::Utf8List(&mut items.iter()))
                }
                CellOut::TimestampMillis(millis) => {
                    assembler.set(column.id, CellIn::TimestampMillis(Some(millis)))
                }
            };
            assert_eq!(result, Ok(()), "{}", column.name);
        }
        let back = assembler.take();
        let mut expected = report.clone();
        for issue in &mut expected.issues {
            issue.message.clear();
        }
        // mx_not_covered was lowered to warning; the severity column brings that back.
        assert_eq!(back, expected);
    }

    #[test]
    fn wrong_cell_type_is_an_error_not_a_panic() {
        let mut assembler = RowAssembler::new();
        assert!(
            assembler
                .set(ColumnId::Rank, CellIn::Utf8(Some("1")))
                .is_err()
        );
        assert!(
            assembler
                .set(ColumnId::Outcome, CellIn::Utf8(Some("odd")))
                .is_err()
        );
        assert!(
            assembler
                .set(ColumnId::MaxAge, CellIn::Int64(Some(-1)))
                .is_err()
        );
        assert!(
            assembler
                .set(ColumnId::PolicyHttpStatus, CellIn::Int32(Some(70_000)))
                .is_err()
        );
    }

    #[test]
    fn timestamp_text_matches_report_format_millis() {
        let samples = [
            0,
            1,
            999,
            1_795_000_000_123,
            -1,
            -62_135_596_800_000, // 0001-01-01
            253_402_300_799_999, // 9999-12-31T23:59:59.999
            253_402_300_800_000, // 10000-01-01
            -62_167_219_200_001, // just before year 0
            i64::MAX,            // unrepresentable
        ];
        let mut out = Vec::new();
        for millis in samples {
            out.clear();
            write_rfc3339_millis(&mut out, millis).expect("writing to a Vec");
            assert_eq!(
                String::from_utf8_lossy(&out),
                format_millis(millis),
                "{millis}"
            );
        }
    }
}
