//! `scan --fail-on`: which rows make a completed scan exit with status 1, so a supplier list can
//! fail a CI job. Decided from the scan's statistics (the summary's own counts), after every row
//! has been written.

use std::fmt;

use crate::issues::IssueCode;
use crate::report::Outcome;
use crate::scan::stats::Statistics;

/// One condition of `--fail-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailCondition {
    /// Any row with this outcome (`invalid`, `error`, `absent`, `input-error`).
    Outcome(Outcome),
    /// Any row with `delivery_at_risk`.
    DeliveryAtRisk,
    /// Any row carrying this issue code.
    Issue(IssueCode),
}

impl FailCondition {
    /// Parses one name: an outcome, `delivery-at-risk`, or an issue code (`-` and `_` alike).
    pub fn parse(name: &str) -> Result<FailCondition, String> {
        let normal = name.trim().to_ascii_lowercase().replace('-', "_");
        if normal == "delivery_at_risk" {
            return Ok(FailCondition::DeliveryAtRisk);
        }
        if let Some(outcome) = Outcome::from_name(&normal).filter(|o| *o != Outcome::Valid) {
            return Ok(FailCondition::Outcome(outcome));
        }
        if let Some(code) = IssueCode::from_name(&normal) {
            return Ok(FailCondition::Issue(code));
        }
        Err(format!(
            "--fail-on {name:?}: expected invalid, error, absent, input-error, delivery-at-risk \
             or an issue code (see `mta-sts-scan check --help` and the README)"
        ))
    }

    /// Rows of `statistics` that meet the condition.
    pub fn matching(self, statistics: &Statistics) -> u64 {
        match self {
            FailCondition::Outcome(outcome) => statistics.outcome_count(outcome),
            FailCondition::DeliveryAtRisk => statistics.delivery_at_risk,
            FailCondition::Issue(code) => statistics.issue_count(code),
        }
    }
}

impl fmt::Display for FailCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailCondition::Outcome(outcome) => f.write_str(&outcome.as_str().replace('_', "-")),
            FailCondition::DeliveryAtRisk => f.write_str("delivery-at-risk"),
            FailCondition::Issue(code) => f.write_str(code.as_str()),
        }
    }
}

/// The `--fail-on` list (comma-separated, repeatable); empty means never fail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailOn(Vec<FailCondition>);

impl FailOn {
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<FailOn, String> {
        let mut conditions = Vec::new();
        for name in names
            .iter()
            .flat_map(|n| n.as_ref().split(','))
            .filter(|n| !n.trim().is_empty())
        {
            let condition = FailCondition::parse(name)?;
            if !conditions.contains(&condition) {
                conditions.push(condition);
            }
        }
        Ok(FailOn(conditions))
    }

    /// The conditions met, each with its number of rows (empty: the scan passes).
    pub fn failures(&self, statistics: &Statistics) -> Vec<(FailCondition, u64)> {
        self.0
            .iter()
            .map(|c| (*c, c.matching(statistics)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issues::Issue;
    use crate::report::DomainReport;

    #[test]
    fn names_parse_with_dashes_or_underscores_and_unknown_ones_are_refused() {
        for (name, expected) in [
            ("invalid", Some(FailCondition::Outcome(Outcome::Invalid))),
            (
                "input-error",
                Some(FailCondition::Outcome(Outcome::InputError)),
            ),
            ("delivery_at_risk", Some(FailCondition::DeliveryAtRisk)),
            ("Delivery-At-Risk", Some(FailCondition::DeliveryAtRisk)),
            (
                "mx-not-covered",
                Some(FailCondition::Issue(IssueCode::MxNotCovered)),
            ),
            ("valid", None),
            ("everything", None),
        ] {
            assert_eq!(FailCondition::parse(name).ok(), expected, "{name}");
        }
        let list = FailOn::parse(&["invalid,error", "invalid", ""]).unwrap();
        assert_eq!(list.0.len(), 2);
        assert!(FailOn::parse(&["invalid,bogus"]).is_err());
    }

    #[test]
    fn only_conditions_some_row_meets_are_failures() {
        let mut statistics = Statistics::new();
        let mut invalid = DomainReport::new("a.test".into(), String::new(), None);
        invalid.outcome = Outcome::Invalid;
        invalid
            .issues
            .push(Issue::new(IssueCode::PolicySyntax, "x"));
        statistics.add(&invalid);
        let fail_on = FailOn::parse(&["error,delivery-at-risk,policy_syntax,invalid"]).unwrap();
        assert_eq!(
            fail_on.failures(&statistics),
            [
                (FailCondition::Issue(IssueCode::PolicySyntax), 1),
                (FailCondition::Outcome(Outcome::Invalid), 1)
            ]
        );
        assert!(FailOn::default().failures(&statistics).is_empty());
    }
}
