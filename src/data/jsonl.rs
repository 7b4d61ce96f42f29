//! Reading JSON-lines (or one JSON array) data files record by record, with the line each
//! record starts on, so every problem can be reported as `FILE:LINE: …`.

use anyhow::{Context, Result};
use serde_json::Value;
use std::path::Path;

/// A JSON value of the file and the line it starts on, or why that line is not JSON.
pub type Item = (usize, std::result::Result<Value, String>);

/// The records of a JSONL file, or of a file holding one JSON array.
pub fn read_items(path: &Path) -> Result<Vec<Item>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    // Editors on Windows may save a byte-order mark, which JSON does not allow.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    Ok(if text.trim_start().starts_with('[') {
        array_items(text)
    } else {
        jsonl_items(text)
    })
}

fn jsonl_items(text: &str) -> Vec<Item> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            (
                i + 1,
                serde_json::from_str(line).map_err(|e| json_error(&e)),
            )
        })
        .collect()
}

/// The elements of a top-level array with the line each starts on. A syntax error anywhere
/// makes the whole file one problem: nothing after it can be located reliably.
fn array_items(text: &str) -> Vec<Item> {
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let line_of = |offset: usize| line_starts.partition_point(|&start| start <= offset);
    if let Err(e) = serde_json::from_str::<Value>(text) {
        return vec![(e.line(), Err(json_error(&e)))];
    }
    // The text is valid JSON, so stepping over "[", values, "," and "]" cannot fail.
    let skip_space = |pos: usize| pos + text[pos..].len() - text[pos..].trim_start().len();
    let mut items = Vec::new();
    let mut pos = skip_space(0) + 1;
    loop {
        pos = skip_space(pos);
        if text[pos..].starts_with(']') {
            return items;
        }
        let mut values = serde_json::Deserializer::from_str(&text[pos..]).into_iter::<Value>();
        let value = values.next().and_then(|v| v.ok()).unwrap_or(Value::Null);
        items.push((line_of(pos), Ok(value)));
        pos = skip_space(pos + values.byte_offset());
        if text[pos..].starts_with(',') {
            pos += 1;
        }
    }
}

/// serde_json's message without its position, which is relative to the line, not the file.
fn json_error(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let message = full.split(" at line ").next().unwrap_or(&full);
    format!("not valid JSON: {message} (column {})", e.column())
}

pub fn as_string(value: &Value, field: &str) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!(
            "field {field} must be a string, found {}",
            kind(other)
        )),
    }
}

pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
