//! Native allocation sites (`memtrail run --native`) in reports: the
//! findings of census source `native`, whose keys memtrail named
//! `function (file:line) ← caller ← ...` when it read the recording.

use memtrail_diff::{Finding, ProcessVerdict, Verdict};

/// The series prefix of native allocation sites.
const PREFIX: &str = "census:native:";

/// Most sites shown per process.
pub(crate) const MAX_SITES: usize = 10;

/// A process's native allocation sites that leak or grow, leaks first,
/// then by growth.
pub(crate) fn sites(p: &ProcessVerdict) -> Vec<&Finding> {
    let mut out: Vec<&Finding> = p
        .findings
        .iter()
        .filter(|f| f.series.starts_with(PREFIX))
        .collect();
    out.sort_by(|a, b| {
        (b.verdict == Verdict::Leak)
            .cmp(&(a.verdict == Verdict::Leak))
            .then(b.growth_per_hour.total_cmp(&a.growth_per_hour))
    });
    out.truncate(MAX_SITES);
    out
}

/// The site's name: the function, its file:line and its callers.
pub(crate) fn site(f: &Finding) -> &str {
    f.series.strip_prefix(PREFIX).unwrap_or(&f.series)
}
