//! Data recipes: offline, seeded synthetic data from a TOML file of typed slots and Jinja
//! templates. Each record draws every slot (a phone number, a duration, a use case carrying
//! its label…), renders one of a template's prompt variants with the slots' spellings and its
//! answer with the same slots' values, so prompt and answer always agree. Every record passes
//! the recipe's checks (JSON, a JSON Schema, not an eval prompt, not a duplicate) or is counted
//! as rejected by reason; a report says how often each template and slot value was used.

mod address;
mod duration;
mod noise;
mod phone;
mod slots;
mod words;

pub use slots::{Slot, SlotKind};

use crate::eval::cases::{load_schema, Schema};
use anyhow::{anyhow, bail, Context, Result};
use minijinja::Environment;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// The record shape a recipe writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    PromptCompletion,
    Messages,
    Alpaca,
    /// `{"prompt", "chosen", "rejected"}` pairs for DPO; every template needs `rejected`.
    Preference,
    /// Eval cases `{"prompt", "expect_json", "schema"?}`: GRPO's prompts and an eval file;
    /// needs answer_json.
    Cases,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub output: Output,
    /// A system turn for `messages` output.
    #[serde(default)]
    pub system: Option<String>,
    /// Answers must be JSON; they are stored compact, in the order the template writes.
    #[serde(default)]
    pub answer_json: bool,
    /// A JSON Schema every answer must satisfy (relative to the recipe's folder).
    #[serde(default)]
    pub schema: Option<PathBuf>,
    /// Files whose prompts must never be generated (the eval file): JSONL with `prompt`.
    #[serde(default)]
    pub exclude: Vec<PathBuf>,
    /// The chance that a record's prompt gets one typo (a swapped, dropped or doubled letter).
    #[serde(default)]
    pub typos: f64,
    /// The chance that a record's prompt is written all in lowercase.
    #[serde(default)]
    pub lowercase: f64,
    /// Jinja put before every template: `{% set %}` blocks and macros they share.
    #[serde(default)]
    pub prelude: String,
    #[serde(default)]
    pub slots: BTreeMap<String, Slot>,
    #[serde(default)]
    pub templates: Vec<Template>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// A name for the report (default: its position).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "unit_weight")]
    pub weight: f64,
    /// Paraphrases of the request: one is drawn per record.
    pub prompts: Vec<String>,
    pub answer: String,
    /// The worse answer of a preference pair.
    #[serde(default)]
    pub rejected: Option<String>,
}

fn unit_weight() -> f64 {
    1.0
}

/// A recipe ready to draw from: its templates compiled, its schema and exclusions loaded.
pub struct Kitchen {
    recipe: Recipe,
    env: Environment<'static>,
    schema: Option<Schema>,
    excluded: HashSet<String>,
    /// Every choice slot's values, as `all.NAME` in the templates (to look one up by name).
    choices: Value,
    path: PathBuf,
}

/// What a run made, and how.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub records: usize,
    pub attempts: usize,
    /// Draws not kept, by reason.
    pub rejected: BTreeMap<String, usize>,
    /// Kept records per template name.
    pub templates: BTreeMap<String, usize>,
    /// Kept records per slot and drawn value or spelling ("(absent)" when left out).
    pub slots: BTreeMap<String, BTreeMap<String, usize>>,
}

impl Kitchen {
    pub fn open(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let value: toml::Value = toml::from_str(&text)
            .map_err(|e| anyhow!("{}: {}", path.display(), e.message().trim()))?;
        let recipe: Recipe = serde_path_to_error::deserialize(value).map_err(
            |e: serde_path_to_error::Error<toml::de::Error>| {
                anyhow!(
                    "{}: '{}': {}",
                    path.display(),
                    e.path(),
                    e.inner().message()
                )
            },
        )?;
        let folder = path.parent().unwrap_or(Path::new("."));
        check(&recipe).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let env = compile(&recipe).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let schema = match &recipe.schema {
            Some(p) => Some(load_schema(&folder.join(p))?),
            None => None,
        };
        let mut excluded = HashSet::new();
        for file in &recipe.exclude {
            excluded.extend(crate::data::exclude::prompts_of(&folder.join(file))?);
        }
        let choices = recipe
            .slots
            .iter()
            .filter_map(|(name, slot)| match &slot.kind {
                SlotKind::Choice { values } => Some((name.clone(), Value::from(values.clone()))),
                _ => None,
            })
            .collect::<serde_json::Map<_, _>>();
        Ok(Self {
            recipe,
            env,
            schema,
            excluded,
            choices: Value::Object(choices),
            path: path.to_path_buf(),
        })
    }

    /// The same recipe writing another record shape (preference pairs from a recipe whose
    /// templates all have a rejected answer, say).
    pub fn with_output(mut self, output: Output) -> Result<Self> {
        self.recipe.output = output;
        check(&self.recipe).map_err(|e| anyhow!("{}: {e}", self.path.display()))?;
        Ok(self)
    }

    /// `cook`, then the records written to `out` as JSONL, atomically; an existing file is
    /// refused.
    pub fn cook_into(&self, n: usize, seed: u64, out: &Path) -> Result<Report> {
        let (mut records, report) = self.cook(n, seed)?;
        if let (Output::Cases, Some(schema)) = (self.recipe.output, &self.recipe.schema) {
            let schema = schema_from(&self.path, schema, out)?;
            for record in &mut records {
                record["schema"] = Value::String(schema.clone());
            }
        }
        let lines = records
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()?;
        crate::data::jsonl::write_new_jsonl(out, &lines)?;
        Ok(report)
    }

    /// `n` records drawn with `seed` (the same recipe, n and seed give the same records), or
    /// an error when the checks keep fewer than `n` after many draws.
    pub fn cook(&self, n: usize, seed: u64) -> Result<(Vec<Value>, Report)> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut report = Report::default();
        let mut records = Vec::with_capacity(n);
        let mut seen = HashSet::new();
        let budget = n.saturating_mul(50).max(1000);
        while records.len() < n && report.attempts < budget {
            report.attempts += 1;
            match self.draw(&mut rng, &mut seen) {
                Ok((record, template, keys)) => {
                    records.push(record);
                    *report.templates.entry(template).or_default() += 1;
                    for (slot, key) in keys {
                        *report
                            .slots
                            .entry(slot)
                            .or_default()
                            .entry(key)
                            .or_default() += 1;
                    }
                }
                Err(reason) => *report.rejected.entry(reason).or_default() += 1,
            }
        }
        report.records = records.len();
        if records.len() < n {
            bail!(
                "{}: the checks kept {} of {n} records after {} draws (rejected: {}); add \
                 templates or slot values",
                self.path.display(),
                records.len(),
                report.attempts,
                rejections(&report)
            );
        }
        Ok((records, report))
    }

    /// One record, its template's name and the slots' coverage keys; Err(reason) to reject.
    fn draw(
        &self,
        rng: &mut StdRng,
        seen: &mut HashSet<String>,
    ) -> std::result::Result<Drawn, String> {
        let recipe = &self.recipe;
        let weights: Vec<f64> = recipe.templates.iter().map(|t| t.weight).collect();
        let index = weighted(rng, &weights);
        let template = &recipe.templates[index];
        let mut context = serde_json::Map::new();
        let mut keys = Vec::new();
        for (name, slot) in &recipe.slots {
            match slot.draw(rng) {
                Some((value, key)) => {
                    context.insert(name.clone(), value);
                    keys.push((name.clone(), key));
                }
                None => keys.push((name.clone(), "(absent)".into())),
            }
        }
        context.insert("all".into(), self.choices.clone());
        let context = minijinja::Value::from_serialize(&context);
        let variant = rng.random_range(0..template.prompts.len());
        let render = |name: String| -> std::result::Result<String, String> {
            let t = self.env.get_template(&name).map_err(|e| e.to_string())?;
            t.render(&context)
                .map(|s| s.trim().to_string())
                .map_err(|e| match e.kind() {
                    minijinja::ErrorKind::InvalidOperation => {
                        e.detail().unwrap_or("rejected by the template").to_string()
                    }
                    _ => format!("template error: {e}"),
                })
        };
        let prompt = noise::apply(
            rng,
            &render(format!("{index}/prompt/{variant}"))?,
            recipe.typos,
            recipe.lowercase,
        );
        let answer = self.checked_answer(render(format!("{index}/answer"))?)?;
        // The worse answer is written as the template says: it may be broken on purpose.
        let rejected = match &template.rejected {
            Some(_) => Some(compact_if_json(render(format!("{index}/rejected"))?)),
            None => None,
        };
        if prompt.is_empty() || answer.is_empty() {
            return Err("empty prompt or answer".into());
        }
        let normal = crate::data::exclude::normalise(&prompt);
        if self.excluded.contains(&normal) {
            return Err("prompt is in an exclude file".into());
        }
        if !seen.insert(normal) {
            return Err("duplicate prompt".into());
        }
        let name = template
            .name
            .clone()
            .unwrap_or_else(|| format!("#{}", index + 1));
        let record = self.record(&prompt, &answer, rejected.as_deref());
        Ok((record, name, keys))
    }

    /// A JSON answer compacted (its key order kept) and checked against the schema.
    fn checked_answer(&self, answer: String) -> std::result::Result<String, String> {
        if !self.recipe.answer_json {
            return Ok(answer);
        }
        let compact = noise::compact_json(&answer);
        let value: Value =
            serde_json::from_str(&compact).map_err(|_| "answer is not JSON".to_string())?;
        if let Some(schema) = &self.schema {
            if !schema.validator.is_valid(&value) {
                return Err("answer fails the schema".into());
            }
        }
        Ok(compact)
    }

    fn record(&self, prompt: &str, answer: &str, rejected: Option<&str>) -> Value {
        match self.recipe.output {
            Output::PromptCompletion => json!({"prompt": prompt, "completion": answer}),
            Output::Alpaca => json!({"instruction": prompt, "input": "", "output": answer}),
            Output::Preference => {
                json!({"prompt": prompt, "chosen": answer, "rejected": rejected.unwrap_or_default()})
            }
            Output::Cases => {
                // checked_answer made it compact JSON.
                let expect: Value = serde_json::from_str(answer).unwrap_or(Value::Null);
                json!({"prompt": prompt, "expect_json": expect})
            }
            Output::Messages => {
                let mut messages = Vec::new();
                if let Some(system) = &self.recipe.system {
                    messages.push(json!({"role": "system", "content": system}));
                }
                messages.push(json!({"role": "user", "content": prompt}));
                messages.push(json!({"role": "assistant", "content": answer}));
                json!({ "messages": messages })
            }
        }
    }
}

/// A kept record, its template's name, and each slot's coverage key.
type Drawn = (Value, String, Vec<(String, String)>);

fn compact_if_json(text: String) -> String {
    let compact = noise::compact_json(&text);
    if serde_json::from_str::<Value>(&compact).is_ok() {
        compact
    } else {
        text
    }
}

/// The recipe's schema as a case file at `out` names it: relative to the case file's folder,
/// which is the recipe's own folder or else the schema's absolute path.
fn schema_from(recipe_path: &Path, schema: &Path, out: &Path) -> Result<String> {
    let folder = |p: &Path| std::path::absolute(p.parent().unwrap_or(Path::new("")));
    let recipe_folder = folder(recipe_path)?;
    if folder(out)? == recipe_folder {
        return Ok(schema.display().to_string());
    }
    Ok(recipe_folder.join(schema).display().to_string())
}

fn check(recipe: &Recipe) -> Result<(), String> {
    if recipe.slots.contains_key("all") {
        return Err("slots.all: the name is taken (templates see every choice as all.NAME)".into());
    }
    if recipe.templates.is_empty() {
        return Err("the recipe has no [[templates]]".into());
    }
    for (name, slot) in &recipe.slots {
        slot.check().map_err(|e| format!("slots.{name}: {e}"))?;
    }
    for (i, t) in recipe.templates.iter().enumerate() {
        let at = format!("templates[{i}]");
        if t.prompts.is_empty() {
            return Err(format!("{at}: prompts is empty"));
        }
        if !(t.weight > 0.0 && t.weight.is_finite()) {
            return Err(format!("{at}: weight must be positive, got {}", t.weight));
        }
        if recipe.output == Output::Cases && !recipe.answer_json {
            return Err(
                "cases output needs answer_json = true: the answer becomes expect_json".into(),
            );
        }
        if recipe.output == Output::Preference && t.rejected.is_none() {
            return Err(format!("{at}: preference output needs a rejected answer"));
        }
    }
    for (what, p) in [("typos", recipe.typos), ("lowercase", recipe.lowercase)] {
        if !(0.0..=1.0).contains(&p) {
            return Err(format!("{what} must be in [0, 1], got {p}"));
        }
    }
    Ok(())
}

/// Every template under a name `draw` looks up: `I/prompt/J`, `I/answer`, `I/rejected`.
fn compile(recipe: &Recipe) -> Result<Environment<'static>, String> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    // `{{ reject("why") }}` drops a draw the template cannot use (two slots that clash).
    env.add_function(
        "reject",
        |why: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                why,
            ))
        },
    );
    for (i, t) in recipe.templates.iter().enumerate() {
        let mut sources: Vec<(String, &str)> = t
            .prompts
            .iter()
            .enumerate()
            .map(|(j, p)| (format!("{i}/prompt/{j}"), p.as_str()))
            .collect();
        sources.push((format!("{i}/answer"), &t.answer));
        if let Some(r) = &t.rejected {
            sources.push((format!("{i}/rejected"), r));
        }
        for (name, source) in sources {
            env.add_template_owned(name.clone(), format!("{}{source}", recipe.prelude))
                .map_err(|e| format!("templates[{i}]: {name} does not compile: {e}"))?;
        }
    }
    Ok(env)
}

fn weighted(rng: &mut impl Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut at = rng.random_range(0.0..total);
    for (i, w) in weights.iter().enumerate() {
        if at < *w {
            return i;
        }
        at -= w;
    }
    weights.len() - 1
}

fn rejections(report: &Report) -> String {
    if report.rejected.is_empty() {
        return "none".into();
    }
    let parts: Vec<String> = report
        .rejected
        .iter()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect();
    parts.join(", ")
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} records from {} draws; rejected: {}",
            self.records,
            self.attempts,
            rejections(self)
        )?;
        writeln!(f, "templates:")?;
        for (name, n) in &self.templates {
            writeln!(f, "  {name}: {n}")?;
        }
        for (slot, values) in &self.slots {
            let mut counts: Vec<(&String, &usize)> = values.iter().collect();
            counts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let shown: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
            writeln!(
                f,
                "slot {slot} ({} values): {}",
                values.len(),
                shown.join(", ")
            )?;
        }
        Ok(())
    }
}
