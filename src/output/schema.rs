//! The one definition of the result columns (spec §5): names, order, types and nullability.
//!
//! The CSV header, the Parquet/Arrow schema and every reader are derived from [`COLUMNS`];
//! there is no second list of column names anywhere else. The names and their order are a
//! public contract: add columns at the end and bump [`SCHEMA_VERSION`].

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Version of the column layout, written into Parquet key-value metadata.
pub const SCHEMA_VERSION: &str = "2";

/// The value type of a column, independent of the file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    Utf8,
    Int64,
    Int32,
    Bool,
    /// A list of strings (Parquet `List<Utf8>`, CSV items joined by one space).
    Utf8List,
    /// Milliseconds since the Unix epoch, UTC.
    TimestampMillis,
}

impl ColumnType {
    /// Whether the cell holds text (strings and string lists), as opposed to numbers,
    /// booleans and timestamps.
    pub const fn is_text(self) -> bool {
        matches!(self, ColumnType::Utf8 | ColumnType::Utf8List)
    }
}

/// One result column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Which field of the report the column holds; matches on it are checked for exhaustiveness.
    pub id: ColumnId,
    pub name: &'static str,
    pub kind: ColumnType,
    pub nullable: bool,
}

macro_rules! columns {
    ($( $id:ident => $name:literal, $kind:ident, $nullable:literal; )*) => {
        /// Identifies a column; `COLUMNS` gives its name, type and position.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ColumnId { $( $id, )* }

        /// Every column, in spec §5 order.
        pub const COLUMNS: &[Column] = &[
            $( Column { id: ColumnId::$id, name: $name, kind: ColumnType::$kind, nullable: $nullable }, )*
        ];
    };
}

columns! {
    Domain => "domain", Utf8, false;
    Input => "input", Utf8, false;
    Rank => "rank", Int64, true;
    Outcome => "outcome", Utf8, false;
    HasMtaSts => "has_mta_sts", Bool, false;
    StsId => "sts_id", Utf8, true;
    StsRecord => "sts_record", Utf8, true;
    PolicyUrl => "policy_url", Utf8, true;
    StsRecordCname => "sts_record_cname", Utf8, true;
    PolicyHostCname => "policy_host_cname", Utf8, true;
    PolicyHttpStatus => "policy_http_status", Int32, true;
    PolicyContentType => "policy_content_type", Utf8, true;
    PolicySha256 => "policy_sha256", Utf8, true;
    Mode => "mode", Utf8, true;
    MaxAge => "max_age", Int64, true;
    MxPatterns => "mx_patterns", Utf8List, false;
    MxHosts => "mx_hosts", Utf8List, false;
    MxUncovered => "mx_uncovered", Utf8List, false;
    DeliveryAtRisk => "delivery_at_risk", Bool, false;
    TlsRpt => "tls_rpt", Bool, false;
    TlsRptRua => "tls_rpt_rua", Utf8List, false;
    Issues => "issues", Utf8List, false;
    Severity => "severity", Utf8, false;
    Error => "error", Utf8, true;
    ScannedAt => "scanned_at", TimestampMillis, false;
    DurationMs => "duration_ms", Int64, false;
    PolicyFetch => "policy_fetch", Utf8, true;
    LookupFailures => "lookup_failures", Utf8List, false;
    MxProbed => "mx_probed", Bool, false;
    MxTlsValid => "mx_tls_valid", Utf8List, false;
    MxTlsFailed => "mx_tls_failed", Utf8List, false;
    MxTlsUnknown => "mx_tls_unknown", Utf8List, false;
    MxUncoveredClass => "mx_uncovered_class", Utf8List, false;
    DeliveryBlocked => "delivery_blocked", Bool, false;
}

/// Columns added after schema version 1, which older files lack: a missing one reads as null or
/// as an empty list, so results written by earlier versions stay readable (`stats`, `--resume`).
pub const ADDED_AFTER_VERSION_1: &[ColumnId] = &[
    ColumnId::PolicyFetch,
    ColumnId::LookupFailures,
    ColumnId::MxProbed,
    ColumnId::MxTlsValid,
    ColumnId::MxTlsFailed,
    ColumnId::MxTlsUnknown,
    ColumnId::MxUncoveredClass,
    ColumnId::DeliveryBlocked,
];

/// Columns whose values are (nearly) unique per row: dictionary encoding only costs there.
pub const NEAR_UNIQUE_COLUMNS: &[ColumnId] = &[
    ColumnId::Domain,
    ColumnId::Input,
    ColumnId::StsId,
    ColumnId::StsRecord,
    ColumnId::PolicyUrl,
    ColumnId::PolicySha256,
    ColumnId::Error,
];

impl ColumnId {
    /// The column's definition in [`COLUMNS`].
    pub fn column(self) -> &'static Column {
        // `COLUMNS` is generated from the same list as the enum, in the same order.
        &COLUMNS[self as usize]
    }
}

/// Looks a column up by its name.
pub fn column_by_name(name: &str) -> Option<&'static Column> {
    COLUMNS.iter().find(|column| column.name == name)
}

/// The field of a `List<Utf8>` column: items are never null.
pub(crate) fn list_item_field() -> Field {
    Field::new_list_field(DataType::Utf8, false)
}

/// The Arrow type of a column type.
pub fn arrow_data_type(kind: ColumnType) -> DataType {
    match kind {
        ColumnType::Utf8 => DataType::Utf8,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Int32 => DataType::Int32,
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Utf8List => DataType::List(Arc::new(list_item_field())),
        ColumnType::TimestampMillis => {
            DataType::Timestamp(TimeUnit::Millisecond, Some(TIMEZONE.into()))
        }
    }
}

/// The time zone of the `scanned_at` column.
pub const TIMEZONE: &str = "UTC";

/// The Arrow schema of a result file, derived from [`COLUMNS`].
pub fn arrow_schema() -> SchemaRef {
    let fields: Vec<Field> = COLUMNS
        .iter()
        .map(|column| Field::new(column.name, arrow_data_type(column.kind), column.nullable))
        .collect();
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_the_spec_table_in_order() {
        // Spec §5, hard-coded here only: this is the contract check.
        let spec = [
            "domain",
            "input",
            "rank",
            "outcome",
            "has_mta_sts",
            "sts_id",
            "sts_record",
            "policy_url",
            "sts_record_cname",
            "policy_host_cname",
            "policy_http_status",
            "policy_content_type",
            "policy_sha256",
            "mode",
            "max_age",
            "mx_patterns",
            "mx_hosts",
            "mx_uncovered",
            "delivery_at_risk",
            "tls_rpt",
            "tls_rpt_rua",
            "issues",
            "severity",
            "error",
            "scanned_at",
            "duration_ms",
            // Added in schema 2 (typed facts behind the statistics).
            "policy_fetch",
            "lookup_failures",
            // Spec §7 (MX transport security).
            "mx_probed",
            "mx_tls_valid",
            "mx_tls_failed",
            "mx_tls_unknown",
            "mx_uncovered_class",
            "delivery_blocked",
        ];
        let names: Vec<&str> = COLUMNS.iter().map(|column| column.name).collect();
        assert_eq!(names, spec);
    }

    #[test]
    fn spec_types_and_nullability() {
        use ColumnType::*;
        let kind = |name: &str| column_by_name(name).map(|c| (c.kind, c.nullable));
        assert_eq!(kind("rank"), Some((Int64, true)));
        assert_eq!(kind("policy_http_status"), Some((Int32, true)));
        assert_eq!(kind("max_age"), Some((Int64, true)));
        assert_eq!(kind("scanned_at"), Some((TimestampMillis, false)));
        assert_eq!(kind("duration_ms"), Some((Int64, false)));
        assert_eq!(kind("issues"), Some((Utf8List, false)));
        assert_eq!(kind("has_mta_sts"), Some((Bool, false)));
    }

    #[test]
    fn ids_index_their_own_column() {
        for column in COLUMNS {
            assert_eq!(column.id.column(), column);
        }
    }

    #[test]
    fn arrow_schema_follows_columns() {
        let schema = arrow_schema();
        assert_eq!(schema.fields().len(), COLUMNS.len());
        for (field, column) in schema.fields().iter().zip(COLUMNS) {
            assert_eq!(field.name(), column.name);
            assert_eq!(field.is_nullable(), column.nullable);
        }
        let issues = schema
            .field_with_name("issues")
            .map(|f| f.data_type().clone());
        match issues {
            Ok(DataType::List(item)) => {
                assert_eq!(item.name(), "item");
                assert_eq!(item.data_type(), &DataType::Utf8);
            }
            other => panic!("issues is {other:?}"),
        }
        let scanned_at = schema
            .field_with_name("scanned_at")
            .map(|f| f.data_type().clone());
        assert_eq!(
            scanned_at.ok(),
            Some(DataType::Timestamp(
                TimeUnit::Millisecond,
                Some("UTC".into())
            ))
        );
    }
}
