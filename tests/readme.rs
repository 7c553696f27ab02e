//! The README's tables are the code's definitions: the issue-code table must equal what
//! `IssueCode::ALL` says, the schema table what `output::schema::COLUMNS` says. On a mismatch the
//! test prints the table to paste.

use mta_sts_scan::issues::IssueCode;
use mta_sts_scan::output::schema::COLUMNS;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

fn issue_table() -> String {
    let mut table = String::from("| code | severity | when |\n|---|---|---|\n");
    for code in IssueCode::ALL {
        let severity = match code {
            IssueCode::MxNotCovered => "error in enforce, warning in testing".to_owned(),
            IssueCode::TlsrptMissing => "warning with MTA-STS, info without".to_owned(),
            IssueCode::MxStarttlsMissing | IssueCode::MxTlsInvalid => {
                "error in enforce, warning otherwise".to_owned()
            }
            other => other.default_severity().as_str().to_owned(),
        };
        let invalidates = if code.invalidates_policy() {
            " (outcome invalid)"
        } else {
            ""
        };
        table.push_str(&format!(
            "| `{}` | {severity} | {}{invalidates} |\n",
            code.as_str(),
            code.when().replace('|', "\\|")
        ));
    }
    table
}

fn schema_table() -> String {
    let mut table = String::from("| column | type | nullable |\n|---|---|---|\n");
    for column in COLUMNS {
        table.push_str(&format!(
            "| `{}` | {:?} | {} |\n",
            column.name,
            column.kind,
            if column.nullable { "yes" } else { "no" }
        ));
    }
    table
}

#[test]
fn readme_issue_table_matches_the_catalogue() {
    let table = issue_table();
    assert!(
        readme().contains(&table),
        "README.md needs this issue table:\n\n{table}"
    );
}

#[test]
fn readme_schema_table_matches_the_schema() {
    let table = schema_table();
    assert!(
        readme().contains(&table),
        "README.md needs this schema table:\n\n{table}"
    );
}

#[test]
fn readme_names_the_test_command_that_ci_runs() {
    let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run")).unwrap();
    assert!(readme().contains("cargo test"));
    assert!(ci.contains("cargo test"));
}
