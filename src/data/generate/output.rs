//! The output file of a generation run: records appended one whole line at a time and
//! flushed, so an interrupted run keeps everything it wrote; a rerun reads them back to go on
//! where it stopped (a line cut off by a crash is dropped first).

use crate::data::jsonl::read_items;
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    /// `{"instruction", "input", "output", "metadata"}`
    Alpaca,
    /// `{"messages": [user, assistant], "metadata"}`, OpenAI's and TRL's chat layout.
    Messages,
}

impl std::str::FromStr for RecordFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "alpaca" => Ok(Self::Alpaca),
            "messages" | "openai" => Ok(Self::Messages),
            _ => Err(format!("'{s}': use alpaca or messages")),
        }
    }
}

/// One generated example and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub instruction: String,
    pub input: String,
    pub output: String,
    /// Provenance: the method, model, round and in-context tasks.
    pub metadata: Value,
}

impl Generated {
    /// The user's turn as training renders an alpaca record.
    pub fn prompt(&self) -> String {
        if self.input.trim().is_empty() {
            self.instruction.clone()
        } else {
            format!("{}\n\n{}", self.instruction, self.input)
        }
    }

    fn to_json(&self, format: RecordFormat) -> Value {
        match format {
            RecordFormat::Alpaca => json!({
                "instruction": self.instruction,
                "input": self.input,
                "output": self.output,
                "metadata": self.metadata,
            }),
            RecordFormat::Messages => {
                let mut metadata = self.metadata.clone();
                metadata["instruction"] = json!(self.instruction);
                metadata["input"] = json!(self.input);
                json!({
                    "messages": [
                        {"role": "user", "content": self.prompt()},
                        {"role": "assistant", "content": self.output},
                    ],
                    "metadata": metadata,
                })
            }
        }
    }
}

/// An open output file, the (instruction, input) of the records it already held, and a warning
/// when a cut-off last line was dropped.
pub type Opened = (OutputFile, Vec<(String, String)>, Option<String>);

pub struct OutputFile {
    path: PathBuf,
    format: RecordFormat,
    file: File,
}

impl OutputFile {
    /// Opens `path` for appending and returns the (instruction, input) of the records it
    /// already holds, with a warning when a cut-off last line was dropped; creates the file
    /// when missing.
    pub fn open(path: &Path, format: RecordFormat) -> Result<Opened> {
        let (existing, warning) = if path.exists() {
            let warning = drop_cut_line(path)?;
            (read_existing(path, format)?, warning)
        } else {
            (Vec::new(), None)
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("{}: cannot open for writing", path.display()))?;
        let output = Self {
            path: path.to_path_buf(),
            format,
            file,
        };
        Ok((output, existing, warning))
    }

    /// Appends one record as a single write and flushes it to disk.
    pub fn append(&mut self, record: &Generated) -> Result<()> {
        let mut line = serde_json::to_string(&record.to_json(self.format))?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("{}: cannot write", self.path.display()))
    }
}

/// Cuts a last line that has no newline, the record a killed run was writing, and says so.
fn drop_cut_line(path: &Path) -> Result<Option<String>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(None);
    }
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(keep as u64)?;
    file.sync_data()?;
    Ok(Some(format!(
        "{}: the last line was cut off (an interrupted run); it is dropped",
        path.display()
    )))
}

fn read_existing(path: &Path, format: RecordFormat) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (line, item) in read_items(path)? {
        let value = item.map_err(|e| anyhow!("{}:{line}: {e}", path.display()))?;
        let pair = match format {
            RecordFormat::Alpaca => (&value["instruction"], &value["input"]),
            RecordFormat::Messages => (
                &value["metadata"]["instruction"],
                &value["metadata"]["input"],
            ),
        };
        match (pair.0.as_str(), pair.1.as_str()) {
            (Some(instruction), Some(input)) => out.push((instruction.into(), input.into())),
            _ => bail!(
                "{}:{line}: not a record this command wrote in the {format:?} format (it \
                 continues only its own files); choose another --out",
                path.display()
            ),
        }
    }
    Ok(out)
}
