//! Eval files: JSONL, one case per line —
//! `{"prompt", "system"?, "expect_json"?, "schema"?, "must_contain"?, "any_of"?,
//! "must_not_contain"?, "reference"?}`. A schema path is relative to the eval file's folder;
//! each schema is read and compiled once. Problems are reported as `FILE:LINE: …`.

use crate::data::jsonl::{as_string, kind, read_items};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const FIELDS: [&str; 8] = [
    "prompt",
    "system",
    "expect_json",
    "schema",
    "must_contain",
    "any_of",
    "must_not_contain",
    "reference",
];

/// A compiled JSON Schema and the document it came from.
pub struct Schema {
    pub path: PathBuf,
    pub document: Value,
    pub validator: jsonschema::Validator,
}

#[derive(Clone)]
pub struct EvalCase {
    pub prompt: String,
    pub system: Option<String>,
    pub expect_json: Option<Value>,
    pub schema: Option<Arc<Schema>>,
    pub must_contain: Vec<String>,
    pub any_of: Vec<String>,
    pub must_not_contain: Vec<String>,
    pub reference: Option<String>,
    /// The 1-based line of the case in its file.
    pub line: usize,
}

impl EvalCase {
    /// Whether the reply is meant to be JSON.
    pub fn wants_json(&self) -> bool {
        self.expect_json.is_some() || self.schema.is_some()
    }

    pub fn has_text_checks(&self) -> bool {
        !(self.must_contain.is_empty()
            && self.any_of.is_empty()
            && self.must_not_contain.is_empty())
    }
}

/// Reads every case of an eval file; fails with the first problem.
pub fn load_eval_file(path: &Path) -> Result<Vec<EvalCase>> {
    let folder = path.parent().unwrap_or(Path::new("."));
    let mut schemas: BTreeMap<PathBuf, Arc<Schema>> = BTreeMap::new();
    let mut cases = Vec::new();
    for (line, value) in read_items(path)? {
        let at = |problem: String| anyhow!("{}:{line}: {problem}", path.display());
        let record = match value.map_err(at)? {
            Value::Object(record) => record,
            other => {
                return Err(at(format!(
                    "a case must be a JSON object, found {}",
                    kind(&other)
                )))
            }
        };
        let mut case = parse_case(&record, line).map_err(at)?;
        if let Some(Value::String(rel)) = record.get("schema") {
            let schema_path = folder.join(rel);
            let schema = match schemas.get(&schema_path) {
                Some(s) => s.clone(),
                None => {
                    let s = Arc::new(
                        load_schema(&schema_path)
                            .map_err(|e| at(format!("field \"schema\": {e:#}")))?,
                    );
                    schemas.insert(schema_path, s.clone());
                    s
                }
            };
            case.schema = Some(schema);
        }
        cases.push(case);
    }
    if cases.is_empty() {
        bail!("{}: no eval cases", path.display());
    }
    Ok(cases)
}

/// Reads and compiles a JSON Schema file.
pub fn load_schema(path: &Path) -> Result<Schema> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let document: Value = serde_json::from_str(&text)
        .map_err(|e| anyhow!("{}: not valid JSON: {e}", path.display()))?;
    let validator = jsonschema::validator_for(&document)
        .map_err(|e| anyhow!("{}: not a valid JSON Schema: {e}", path.display()))?;
    Ok(Schema {
        path: path.to_path_buf(),
        document,
        validator,
    })
}

fn parse_case(record: &Map<String, Value>, line: usize) -> std::result::Result<EvalCase, String> {
    if let Some(extra) = record.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "unexpected field \"{extra}\" (a case takes {})",
            FIELDS.join(", ")
        ));
    }
    let prompt = as_string(
        record.get("prompt").ok_or("missing field \"prompt\"")?,
        "\"prompt\"",
    )?;
    if prompt.trim().is_empty() {
        return Err("field \"prompt\" is empty".into());
    }
    let optional_string = |name: &str| match record.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => as_string(v, &format!("\"{name}\"")).map(Some),
    };
    let strings = |name: &str| -> std::result::Result<Vec<String>, String> {
        match record.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(i, v)| as_string(v, &format!("\"{name}\"[{i}]")))
                .collect(),
            Some(other) => Err(format!(
                "field \"{name}\" must be an array of strings, found {}",
                kind(other)
            )),
        }
    };
    if let Some(schema) = record.get("schema") {
        as_string(schema, "\"schema\"")?;
    }
    let expect_json = record.get("expect_json").cloned();
    let case = EvalCase {
        system: optional_string("system")?,
        reference: optional_string("reference")?,
        expect_json,
        schema: None,
        must_contain: strings("must_contain")?,
        any_of: strings("any_of")?,
        must_not_contain: strings("must_not_contain")?,
        prompt,
        line,
    };
    if !case.has_text_checks() && case.expect_json.is_none() && !record.contains_key("schema") {
        return Err(
            "the case has no check: give expect_json, schema, must_contain, any_of or \
             must_not_contain"
                .into(),
        );
    }
    Ok(case)
}
