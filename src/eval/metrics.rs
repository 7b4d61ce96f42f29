//! Metrics over a set of replies: each the mean of a check over the cases it applies to.

use super::checks::Checks;
use std::collections::BTreeMap;

/// One reply's measurements beside its checks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReplyStats {
    pub tokens: usize,
    pub seconds: f64,
}

/// json_valid, schema_valid, expect_json_exact, expect_json_fields, field_accuracy/<key>,
/// hallucinated_fields, text_pass, mean_reply_tokens and tokens_per_s.
pub fn aggregate(results: &[(&Checks, ReplyStats)]) -> BTreeMap<String, f64> {
    let mut sums: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    let mut add = |name: String, value: f64| {
        let entry = sums.entry(name).or_insert((0.0, 0));
        entry.0 += value;
        entry.1 += 1;
    };
    let as_f64 = |b: bool| f64::from(u8::from(b));
    for (checks, _) in results {
        let flags = [
            ("json_valid", checks.json_valid),
            ("schema_valid", checks.schema_valid),
            ("expect_json_exact", checks.expect_json_exact),
            ("hallucinated_fields", checks.hallucinated_fields),
            ("text_pass", checks.text_pass),
        ];
        for (name, flag) in flags {
            if let Some(b) = flag {
                add(name.into(), as_f64(b));
            }
        }
        if let Some(share) = checks.expect_json_fields {
            add("expect_json_fields".into(), share);
        }
        for (key, same) in &checks.field_matches {
            add(format!("field_accuracy/{key}"), as_f64(*same));
        }
    }
    let mut out: BTreeMap<String, f64> = sums
        .into_iter()
        .map(|(k, (sum, n))| (k, sum / n as f64))
        .collect();
    if !results.is_empty() {
        let tokens: usize = results.iter().map(|(_, s)| s.tokens).sum();
        let seconds: f64 = results.iter().map(|(_, s)| s.seconds).sum();
        out.insert(
            "mean_reply_tokens".into(),
            tokens as f64 / results.len() as f64,
        );
        if seconds > 0.0 {
            out.insert("tokens_per_s".into(), tokens as f64 / seconds);
        }
    }
    out
}
