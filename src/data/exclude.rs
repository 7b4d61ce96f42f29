//! The prompts generated data must never hold: an eval set's, compared as a reader would
//! (case and spacing ignored), so a score on it is never a score on training data.

use anyhow::{anyhow, Result};
use serde_json::Value;
use std::path::Path;

/// Whitespace collapsed and lowercased.
pub fn normalise(prompt: &str) -> String {
    prompt
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The prompts of a JSONL file (its `prompt` or `instruction` fields), normalised.
pub fn prompts_of(path: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (line, item) in crate::data::jsonl::read_items(path)? {
        let value = item.map_err(|e| anyhow!("{}:{line}: {e}", path.display()))?;
        let prompt = ["prompt", "instruction"]
            .iter()
            .find_map(|k| value.get(*k).and_then(Value::as_str));
        if let Some(p) = prompt {
            out.push(normalise(p));
        }
    }
    Ok(out)
}
