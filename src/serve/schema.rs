//! The JSON Schema of the report document (`check --json`, the REST answer, the MCP tool's
//! structured content), written once and used twice: as the MCP tool's output schema and in the
//! OpenAPI document. A test holds it to what [`DomainReport`](crate::report::DomainReport)
//! serialises, field by field, so the published contract cannot drift from the code.

use serde_json::{Value, json};

use crate::issues::{IssueCode, Severity};
use crate::net::FetchOutcome;
use crate::report::Outcome;

fn nullable(kind: &str, description: &str) -> Value {
    json!({ "type": [kind, "null"], "description": description })
}

fn strings(description: &str) -> Value {
    json!({ "type": "array", "items": { "type": "string" }, "description": description })
}

/// The schema of one report (JSON Schema 2020-12, which OpenAPI 3.1 uses as is).
pub fn report_schema() -> Value {
    let outcomes: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
    let severities: Vec<&str> = [
        Severity::None,
        Severity::Info,
        Severity::Warning,
        Severity::Error,
    ]
    .iter()
    .map(|s| s.as_str())
    .collect();
    let codes: Vec<&str> = IssueCode::ALL.iter().map(|c| c.as_str()).collect();
    let modes = json!(["enforce", "testing", "none", null]);
    let mut fetch_outcomes: Vec<Value> = FetchOutcome::ALL
        .iter()
        .map(|outcome| json!(outcome.as_str()))
        .collect();
    fetch_outcomes.push(Value::Null);
    let mut schema = json!({
        "type": "object",
        "description": "The MTA-STS (RFC 8461) and TLS-RPT (RFC 8460) check of one domain: the hosted endpoint's fields, then every column of the scan output.",
        "required": [
            "domain", "has_mta_sts", "dns_record", "policy", "mode", "policy_url", "tls_rpt",
            "issues", "recommendations", "outcome", "severity", "input", "rank", "sts_id",
            "sts_record", "sts_record_cname", "policy_host_cname", "policy_http_status",
            "policy_content_type", "policy_sha256", "max_age", "mx_patterns", "mx_hosts",
            "mx_uncovered", "delivery_at_risk", "tls_rpt_rua", "error", "policy_fetch",
            "lookup_failures", "mx_probed", "mx_tls_valid", "mx_tls_failed", "mx_tls_unknown",
            "mx_uncovered_class", "delivery_blocked", "scanned_at", "duration_ms"
        ],
        "properties": {
            "domain": { "type": "string", "description": "The domain, normalised to A-labels (empty when the input is not a domain name)." },
            "has_mta_sts": { "type": "boolean", "description": "A v=STSv1 TXT record is published at _mta-sts." },
            "dns_record": {
                "type": ["object", "null"],
                "description": "The _mta-sts TXT record, or null when there is none.",
                "properties": {
                    "version": { "type": "string" },
                    "id": { "type": ["string", "null"] },
                    "record": { "type": "string" },
                    "cname": { "type": ["string", "null"] }
                }
            },
            "policy": {
                "type": ["object", "null"],
                "description": "The policy file as fetched, or null when it was not fetched.",
                "properties": {
                    "version": { "type": ["string", "null"] },
                    "mode": { "type": ["string", "null"] },
                    "mx": { "type": "array", "items": { "type": "string" } },
                    "max_age": { "type": ["integer", "null"] }
                }
            },
            "mode": { "type": ["string", "null"], "enum": modes, "description": "The policy's mode." },
            "policy_url": nullable("string", "Where the policy is fetched from."),
            "tls_rpt": {
                "type": ["object", "null"],
                "description": "The TLS-RPT record, or null when there is none.",
                "properties": {
                    "record": { "type": ["string", "null"] },
                    "rua": { "type": "array", "items": { "type": "string" } }
                }
            },
            "issues": {
                "type": "array",
                "description": "Every finding: a stable code, its severity here, and what exactly is wrong.",
                "items": {
                    "type": "object",
                    "required": ["code", "severity", "message"],
                    "properties": {
                        "code": { "type": "string", "enum": codes },
                        "severity": { "type": "string", "enum": severities },
                        "message": { "type": "string" }
                    }
                }
            },
            "recommendations": strings("What to do, worst problem first."),
            "outcome": { "type": "string", "enum": outcomes, "description": "The verdict: valid, invalid (senders ignore the policy), absent, error (no verdict), input_error." },
            "severity": { "type": "string", "enum": severities, "description": "The worst severity among the issues." },
            "input": { "type": "string", "description": "The value as given." },
            "rank": nullable("integer", "Rank in the input list (scans only)."),
            "sts_id": nullable("string", "The record's id."),
            "sts_record": nullable("string", "The raw v=STSv1 record(s), joined with \" | \"."),
            "sts_record_cname": nullable("string", "Where _mta-sts is delegated by CNAME."),
            "policy_host_cname": nullable("string", "Where the mta-sts host is delegated by CNAME."),
            "policy_http_status": nullable("integer", "HTTP status of the policy fetch."),
            "policy_content_type": nullable("string", "Content-Type of the policy."),
            "policy_sha256": nullable("string", "SHA-256 of the policy body."),
            "max_age": nullable("integer", "The policy's max_age in seconds."),
            "mx_patterns": strings("The policy's mx patterns."),
            "mx_hosts": strings("The domain's MX hosts."),
            "mx_uncovered": strings("MX hosts no mx pattern covers."),
            "delivery_at_risk": { "type": "boolean", "description": "An enforced policy leaves an MX host uncovered: senders will not deliver to it." },
            "tls_rpt_rua": strings("Where TLS-RPT reports go."),
            "error": nullable("string", "Why a lookup failed."),
            "policy_fetch": { "type": ["string", "null"], "enum": fetch_outcomes, "description": "How far the policy fetch got (null: not attempted)." },
            "lookup_failures": strings("Lookups that could not be completed, as lookup:kind (e.g. mta_sts_txt:timeout)."),
            "scanned_at": { "type": "string", "format": "date-time" },
            "duration_ms": { "type": "integer" }
        }
    });
    // The MX probe's columns (spec §7), in a second part: one json! of everything is too deep
    // for the macro.
    let probe_columns = json!({
        "mx_probed": { "type": "boolean", "description": "The MX hosts were probed over SMTP (probe_mx)." },
        "mx_tls_valid": strings("MX hosts whose STARTTLS certificate is valid for their name."),
        "mx_tls_failed": strings("`host status` for each MX host with a definite TLS failure (an enforcing sender refuses it)."),
        "mx_tls_unknown": strings("MX hosts that could not be probed (unreachable, forbidden address)."),
        "mx_uncovered_class": {
            "type": "array",
            "items": { "type": "string", "enum": ["label_depth", "tld", "typo", "other_domain"] },
            "description": "The mismatch class of each mx_uncovered host, in the same order."
        },
        "delivery_blocked": { "type": "boolean", "description": "Valid, enforced, and every MX host refused by the probe: MTA-STS senders cannot deliver at all." }
    });
    if let (Some(properties), Value::Object(probe_columns)) =
        (schema["properties"].as_object_mut(), probe_columns)
    {
        properties.extend(probe_columns);
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issues::Issue;
    use crate::report::DomainReport;

    fn type_matches(declared: &Value, value: &Value) -> bool {
        let kinds: Vec<&str> = match declared {
            Value::String(kind) => vec![kind.as_str()],
            Value::Array(kinds) => kinds.iter().filter_map(Value::as_str).collect(),
            _ => return true,
        };
        kinds.iter().any(|kind| match *kind {
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            "null" => value.is_null(),
            _ => false,
        })
    }

    fn check_against_schema(report: &DomainReport) {
        let schema = report_schema();
        let properties = schema["properties"].as_object().unwrap();
        let document = serde_json::to_value(report).unwrap();
        let document = document.as_object().unwrap();
        let mut serialised: Vec<&String> = document.keys().collect();
        let mut declared: Vec<&String> = properties.keys().collect();
        serialised.sort();
        declared.sort();
        assert_eq!(serialised, declared, "the schema must name every field");
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(required.len(), declared.len());
        for (name, value) in document {
            let property = &properties[name];
            if let Some(allowed) = property.get("enum") {
                assert!(
                    allowed.as_array().unwrap().contains(value),
                    "{name}: {value} not in {allowed}"
                );
            } else {
                assert!(
                    type_matches(&property["type"], value),
                    "{name}: {value} is not {}",
                    property["type"]
                );
            }
        }
    }

    #[test]
    fn the_schema_names_every_field_with_its_type() {
        let mut full = DomainReport::new("example.com".into(), "example.com".into(), Some(7));
        full.outcome = Outcome::Valid;
        full.has_mta_sts = true;
        full.sts_id = Some("1".into());
        full.sts_record = Some("v=STSv1; id=1".into());
        full.policy_sha256 = Some("00".into());
        full.mode = Some(crate::mta_sts::policy::Mode::Enforce);
        full.max_age = Some(604_800);
        full.policy_http_status = Some(200);
        full.tls_rpt = true;
        full.policy_fetch = Some(FetchOutcome::Fetched);
        full.issues.push(Issue::new(IssueCode::ModeTesting, "x"));
        check_against_schema(&full);
        check_against_schema(&DomainReport::new(String::new(), String::new(), None));
        check_against_schema(&DomainReport::input_error("x y".into(), None, "bad".into()));
    }
}
