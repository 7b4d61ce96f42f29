//! Seed tasks: the hand-written tasks self-instruct starts from. Two shapes are read: the
//! self-instruct repository's `seed_tasks.jsonl` (`id`, `instruction`, `instances` of
//! `input`/`output`) and alpaca rows (`instruction`, `input`, `output`), one task each.

use crate::data::jsonl::{as_string, kind, read_items};
use anyhow::{bail, Result};
use serde_json::{Map, Value};
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// The seed's own `id`, or `seed:LINE` where it has none.
    pub id: String,
    pub instruction: String,
    /// Worked examples: (input, output); the input may be empty.
    pub instances: Vec<(String, String)>,
}

/// Reads every seed task; fails with the first problem as FILE:LINE: field: reason, saying
/// how many more there are (`tunelab data validate` style lists are one line per problem).
pub fn load_seed_tasks(path: &Path) -> Result<Vec<Task>> {
    let mut tasks = Vec::new();
    let mut problems = Vec::new();
    for (line, item) in read_items(path)? {
        match item.and_then(|value| parse_task(value, line)) {
            Ok(task) => tasks.push(task),
            Err(problem) => problems.push(format!("{}:{line}: {problem}", path.display())),
        }
    }
    if let Some(first) = problems.first() {
        match problems.len() - 1 {
            0 => bail!("{first}"),
            more => bail!("{first} (and {more} more problems in the seed tasks)"),
        }
    }
    if tasks.is_empty() {
        bail!("{}: holds no seed tasks", path.display());
    }
    Ok(tasks)
}

fn parse_task(value: Value, line: usize) -> Result<Task, String> {
    let Value::Object(record) = value else {
        return Err(format!(
            "a seed task is a JSON object, found {}",
            kind(&value)
        ));
    };
    let instruction = text(&record, "instruction")?.ok_or("missing field \"instruction\"")?;
    if instruction.trim().is_empty() {
        return Err("field \"instruction\" is empty".into());
    }
    let id = match record.get("id") {
        Some(id) => as_string(id, "\"id\"")?,
        None => format!("seed:{line}"),
    };
    let instances = match record.get("instances") {
        Some(list) => instances(list)?,
        None => match text(&record, "output")? {
            Some(output) => vec![(text(&record, "input")?.unwrap_or_default(), output)],
            None => return Err("needs \"instances\" (self-instruct) or \"output\" (alpaca)".into()),
        },
    };
    Ok(Task {
        id,
        instruction: instruction.trim().to_string(),
        instances,
    })
}

fn instances(list: &Value) -> Result<Vec<(String, String)>, String> {
    let Value::Array(items) = list else {
        return Err(format!(
            "field \"instances\" must be an array, found {}",
            kind(list)
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(instance) = item else {
                return Err(format!(
                    "instances[{i}] must be an object, found {}",
                    kind(item)
                ));
            };
            let field =
                |name: &str| text(instance, name).map_err(|e| format!("instances[{i}]: {e}"));
            let output = field("output")?.ok_or(format!("instances[{i}]: missing \"output\""))?;
            Ok((field("input")?.unwrap_or_default(), output))
        })
        .collect()
}

fn text(record: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    record
        .get(name)
        .map(|v| as_string(v, &format!("\"{name}\"")))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Vec<Task>> {
        let dir = std::env::temp_dir().join(format!("tunelab-seeds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}.jsonl", text.len()));
        std::fs::write(&path, text).unwrap();
        load_seed_tasks(&path)
    }

    #[test]
    fn reads_self_instruct_and_alpaca_seeds() {
        let tasks = load(concat!(
            r#"{"id": "seed_task_0", "name": "x", "instruction": "Add.", "instances": [{"input": "1 2", "output": "3"}], "is_classification": false}"#,
            "\n",
            r#"{"instruction": "Say hi.", "input": "", "output": "hi"}"#,
            "\n"
        ))
        .unwrap();
        assert_eq!(tasks[0].id, "seed_task_0");
        assert_eq!(tasks[0].instances, vec![("1 2".into(), "3".into())]);
        assert_eq!(tasks[1].id, "seed:2");
        assert_eq!(tasks[1].instances, vec![(String::new(), "hi".into())]);
    }

    #[test]
    fn problems_name_line_and_field() {
        let err = load(concat!(
            r#"{"instruction": "ok", "output": "x"}"#,
            "\n",
            r#"{"instruction": 3, "output": "x"}"#,
            "\n",
            r#"{"instruction": "a", "instances": [{"input": "i"}]}"#,
            "\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(":2: field \"instruction\" must be a string"),
            "{err}"
        );
        assert!(
            err.ends_with("(and 1 more problems in the seed tasks)"),
            "{err}"
        );
    }
}
