//! The report as JSON: the [`Report`] serialised as it is (its fields are
//! the schema).

use crate::analysis::Report;

/// A report as pretty JSON.
#[must_use]
pub fn report_json(r: &Report) -> String {
    let mut s =
        serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}
