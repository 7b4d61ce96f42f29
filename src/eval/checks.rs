//! Checks of one reply against its case. Each check is None where it does not apply (a text
//! case has no JSON checks), so metrics average over the cases each applies to.

use super::cases::{EvalCase, Schema};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Checks {
    /// The reply, trimmed, parses as one JSON value.
    pub json_valid: Option<bool>,
    pub schema_valid: Option<bool>,
    pub expect_json_exact: Option<bool>,
    /// Share of expect_json's leaf fields present in the reply with the same value.
    pub expect_json_fields: Option<f64>,
    /// Per top-level key of expect_json: whether the reply's value is equal.
    pub field_matches: BTreeMap<String, bool>,
    /// The reply's JSON has a key path that expect_json (or else the schema) does not have;
    /// None when the reply is not JSON.
    pub hallucinated_fields: Option<bool>,
    /// The key paths that made it so.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_paths: Vec<String>,
    /// must_contain all, any_of one, must_not_contain none (case-insensitive).
    pub text_pass: Option<bool>,
    /// Why checks failed, for people.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

impl Checks {
    /// One number for "how good is this reply": the mean of the applicable checks (counting
    /// hallucinated_fields as a failure), used to tally better / same / worse.
    pub fn score(&self) -> Option<f64> {
        let mut parts: Vec<f64> = [
            self.json_valid,
            self.schema_valid,
            self.expect_json_exact,
            self.hallucinated_fields.map(|h| !h),
            self.text_pass,
        ]
        .into_iter()
        .flatten()
        .map(|b| f64::from(u8::from(b)))
        .collect();
        parts.extend(self.expect_json_fields);
        (!parts.is_empty()).then(|| parts.iter().sum::<f64>() / parts.len() as f64)
    }
}

/// The JSON value a reply holds: the whole reply, trimmed, or (only when `allow_fenced`) the
/// body of one fenced ```json block making up the reply.
pub fn parse_reply_json(reply: &str, allow_fenced: bool) -> Option<Value> {
    let trimmed = reply.trim();
    if let Ok(v) = serde_json::from_str(trimmed) {
        return Some(v);
    }
    if !allow_fenced {
        return None;
    }
    let body = trimmed.strip_prefix("```")?.strip_suffix("```")?;
    let body = body.strip_prefix("json").unwrap_or(body);
    serde_json::from_str(body.trim()).ok()
}

pub fn check_reply(case: &EvalCase, reply: &str, allow_fenced: bool) -> Checks {
    let mut checks = Checks::default();
    if case.wants_json() {
        let parsed = parse_reply_json(reply, allow_fenced);
        checks.json_valid = Some(parsed.is_some());
        if parsed.is_none() {
            checks.problems.push("the reply is not JSON".into());
        }
        if let Some(schema) = &case.schema {
            let valid = parsed
                .as_ref()
                .is_some_and(|v| schema.validator.is_valid(v));
            checks.schema_valid = Some(valid);
            if let Some(v) = parsed.as_ref().filter(|_| !valid) {
                if let Some(error) = schema.validator.iter_errors(v).next() {
                    checks
                        .problems
                        .push(format!("schema: {error} at {}", error.instance_path()));
                }
            }
        }
        if let Some(expected) = &case.expect_json {
            let got = parsed.as_ref();
            checks.expect_json_exact = Some(got == Some(expected));
            let leaves = leaf_paths(expected);
            let got_leaves = got.map(leaf_paths).unwrap_or_default();
            let equal = leaves
                .iter()
                .filter(|(path, value)| got_leaves.get(*path) == Some(value))
                .count();
            checks.expect_json_fields = Some(if leaves.is_empty() {
                f64::from(u8::from(got == Some(expected)))
            } else {
                equal as f64 / leaves.len() as f64
            });
            if let Value::Object(fields) = expected {
                for (key, value) in fields {
                    let same = got.and_then(|g| g.get(key)) == Some(value);
                    checks.field_matches.insert(key.clone(), same);
                    if !same {
                        checks.problems.push(format!("field {key} differs"));
                    }
                }
            }
        }
        if let Some(got) = &parsed {
            let allowed = match (&case.expect_json, &case.schema) {
                (Some(expected), _) => key_paths(expected),
                (None, Some(schema)) => schema_paths(schema),
                (None, None) => BTreeSet::new(),
            };
            let extra: Vec<String> = key_paths(got).difference(&allowed).cloned().collect();
            checks.hallucinated_fields = Some(!extra.is_empty());
            if !extra.is_empty() {
                checks
                    .problems
                    .push(format!("fields not asked for: {}", extra.join(", ")));
            }
            checks.extra_paths = extra;
        }
    }
    if case.has_text_checks() {
        let lower = reply.to_lowercase();
        let has = |s: &String| lower.contains(&s.to_lowercase());
        let missing: Vec<&String> = case.must_contain.iter().filter(|s| !has(s)).collect();
        let any = case.any_of.is_empty() || case.any_of.iter().any(has);
        let forbidden: Vec<&String> = case.must_not_contain.iter().filter(|s| has(s)).collect();
        checks.text_pass = Some(missing.is_empty() && any && forbidden.is_empty());
        if !missing.is_empty() {
            checks.problems.push(format!("missing {missing:?}"));
        }
        if !any {
            checks.problems.push(format!("none of {:?}", case.any_of));
        }
        if !forbidden.is_empty() {
            checks.problems.push(format!("contains {forbidden:?}"));
        }
    }
    checks
}

/// Every leaf of a JSON value by its path (`a.b[0].c`), objects and arrays walked.
fn leaf_paths(value: &Value) -> BTreeMap<String, Value> {
    fn walk(value: &Value, path: String, out: &mut BTreeMap<String, Value>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (k, v) in map {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(v, p, out);
                }
            }
            Value::Array(items) if !items.is_empty() => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, format!("{path}[{i}]"), out);
                }
            }
            leaf => {
                out.insert(path, leaf.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(value, String::new(), &mut out);
    out
}

/// Every object key path of a JSON value, array positions written `[]` (so a key allowed in
/// one item is allowed in all).
fn key_paths(value: &Value) -> BTreeSet<String> {
    fn walk(value: &Value, path: &str, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    out.insert(p.clone());
                    walk(v, &p, out);
                }
            }
            Value::Array(items) => {
                for v in items {
                    walk(v, &format!("{path}[]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(value, "", &mut out);
    out
}

/// The key paths a schema's `properties` allow, following local `$ref`s, `items` and the
/// `allOf` / `anyOf` / `oneOf` branches.
fn schema_paths(schema: &Schema) -> BTreeSet<String> {
    fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
        match node.get("$ref").and_then(Value::as_str) {
            Some(r) if r.starts_with("#/") => root.pointer(&r[1..]).unwrap_or(node),
            _ => node,
        }
    }
    fn walk(root: &Value, node: &Value, path: &str, out: &mut BTreeSet<String>, depth: usize) {
        if depth > 32 {
            return; // a recursive schema: deep enough for any reply
        }
        let node = resolve(root, node);
        if let Some(Value::Object(props)) = node.get("properties") {
            for (k, v) in props {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                out.insert(p.clone());
                walk(root, v, &p, out, depth + 1);
            }
        }
        if let Some(items) = node.get("items") {
            walk(root, items, &format!("{path}[]"), out, depth + 1);
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            if let Some(Value::Array(branches)) = node.get(key) {
                for b in branches {
                    walk(root, b, path, out, depth + 1);
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(&schema.document, &schema.document, "", &mut out, 0);
    out
}
