//! Findings (SPEC §3): what a scan concluded, each with a stable kebab-case
//! id that users grep and diff, a severity, a sentence and its evidence.

use serde::Serialize;

/// How bad a finding is, least first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable id, e.g. `cert-expired`, `weak-cipher-offered`.
    pub id: &'static str,
    pub severity: Severity,
    /// One sentence for a person.
    pub message: String,
    /// What was seen that proves it (a date, a name, a suite, an alert).
    pub evidence: String,
}

impl Finding {
    pub fn new(id: &'static str, severity: Severity, message: impl Into<String>, evidence: impl Into<String>) -> Self {
        Self {
            id,
            severity,
            message: message.into(),
            evidence: evidence.into(),
        }
    }
}
