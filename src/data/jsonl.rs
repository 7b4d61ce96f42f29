//! Reading JSON-lines (or one JSON array) data files record by record, with the line each
//! record starts on, so every problem can be reported as `FILE:LINE: …`.

use anyhow::{Context, Result};
use serde_json::Value;
use std::path::Path;

/// A JSON value of the file and the line it starts on, or why that line is not JSON.
pub type Item = (usize, std::result::Result<Value, String>);

/// The records of a JSONL file, or of a `.json` file holding one JSON array. A line that is
/// not UTF-8 is a problem of that line; a `.jsonl` file that opens an array is refused (its
/// records would be read as one JSON value per line).
pub fn read_items(path: &Path) -> Result<Vec<Item>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    // Editors on Windows may save a byte-order mark, which JSON does not allow.
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&bytes);
    let opens_array = bytes.trim_ascii_start().starts_with(b"[");
    let is_jsonl = path.extension().is_some_and(|e| e == "jsonl");
    if opens_array && is_jsonl {
        let skipped = bytes.len() - bytes.trim_ascii_start().len();
        let line = 1 + bytes[..skipped].iter().filter(|&&b| b == b'\n').count();
        return Ok(vec![(
            line,
            Err(
                "a .jsonl file holds one JSON object per line, and this one opens a JSON \
                 array; name the file .json to read the array's elements as records"
                    .into(),
            ),
        )]);
    }
    if !opens_array {
        return Ok(jsonl_items(bytes));
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(array_items(text)),
        Err(e) => {
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            Ok(vec![(line, Err(utf8_problem(&bytes[..e.valid_up_to()])))])
        }
    }
}

fn jsonl_items(bytes: &[u8]) -> Vec<Item> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.trim_ascii().is_empty())
        .map(|(i, line)| {
            let value = match std::str::from_utf8(line) {
                Ok(text) => serde_json::from_str(text).map_err(|e| json_error(&e)),
                Err(e) => Err(utf8_problem(&line[..e.valid_up_to()])),
            };
            (i + 1, value)
        })
        .collect()
}

/// Where the first byte that is not UTF-8 sits, given the valid text before it on its line.
fn utf8_problem(valid_before: &[u8]) -> String {
    let line_start = valid_before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&valid_before[line_start..])
        .chars()
        .count()
        + 1;
    format!("not valid UTF-8 (column {column}); save the file as UTF-8")
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

/// Refuses to write over a file that exists: data files are the user's work, and a command
/// run twice by mistake must not replace one.
pub fn refuse_existing(path: &Path) -> Result<()> {
    if path.exists() {
        anyhow::bail!(
            "{}: already exists; nothing is overwritten, so choose another output or remove it",
            path.display()
        );
    }
    Ok(())
}

/// Writes JSONL lines (each without its newline) to a new file, atomically: the file appears
/// whole or not at all, and an existing one is refused.
pub fn write_new_jsonl<L: AsRef<[u8]>>(path: &Path, lines: &[L]) -> Result<()> {
    refuse_existing(path)?;
    crate::fsutil::write_file_atomically_with(path, |out| {
        use std::io::Write;
        for line in lines {
            out.write_all(line.as_ref())?;
            out.write_all(b"\n")?;
        }
        Ok(())
    })
}
