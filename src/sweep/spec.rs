//! A sweep's settings: the config's `[sweep]` table and `--grid key=[v1,v2]` flags, checked
//! before anything trains.
//!
//! ```toml
//! [sweep]
//! method = "grid"              # or "random", with trials = N
//! objective = "expect_json_fields"
//! direction = "maximize"       # or "minimize"
//! parallel = "auto"            # trials at once on one GPU, or a number
//! early_stopping = "median"    # or "none"
//! [sweep.grid]                 # lists of values (grid, and random's choices)
//! learning_rate = [2e-4, 5e-4]
//! "dpo.beta" = [0.1, 0.3]
//! [sweep.ranges]               # random only: min, max, log
//! lora_dropout = { min = 0.0, max = 0.2 }
//! ```

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Domain {
    Values(Vec<Value>),
    Range { min: f64, max: f64, log: bool },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// A config key, or `sft.KEY` / `dpo.KEY` for a stage table's.
    pub key: String,
    pub domain: Domain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Grid,
    Random { trials: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Maximize,
    Minimize,
}

impl Direction {
    /// Whether objective value `a` beats `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Direction::Maximize => a > b,
            Direction::Minimize => a < b,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SweepSpec {
    pub method: Method,
    pub params: Vec<Param>,
    pub objective: String,
    pub direction: Direction,
    /// Trials at once; None: as many as the memory estimate fits on the GPU (one on the CPU).
    pub parallel: Option<usize>,
    /// Stop a trial whose eval objective at a step is worse than the median of the other
    /// trials' at that step.
    pub median_stopping: bool,
    /// Random search draws from this seed, so a resumed sweep plans the same trials.
    pub seed: u64,
}

const SWEEP_KEYS: &[&str] = &[
    "method",
    "trials",
    "objective",
    "direction",
    "parallel",
    "early_stopping",
    "seed",
    "grid",
    "ranges",
];

impl SweepSpec {
    /// Reads the `[sweep]` table (may be absent) and the `--grid` flags, which add to or
    /// replace its grid. `config_keys` are the keys a trial may set.
    pub fn read(
        table: Option<&Value>,
        grid_flags: &[String],
        config_keys: &[String],
    ) -> Result<Self> {
        let empty = Map::new();
        let table = match table {
            None => &empty,
            Some(Value::Object(t)) => t,
            Some(_) => bail!("[sweep] must be a table"),
        };
        for key in table.keys() {
            if !SWEEP_KEYS.contains(&key.as_str()) {
                bail!(
                    "unknown key 'sweep.{key}' (known: {})",
                    SWEEP_KEYS.join(", ")
                );
            }
        }
        let mut params = Vec::new();
        for (key, values) in table_of(table, "grid")? {
            params.push(values_param(key, values)?);
        }
        for flag in grid_flags {
            let param = grid_flag(flag)?;
            params.retain(|p| p.key != param.key);
            params.push(param);
        }
        for (key, range) in table_of(table, "ranges")? {
            params.push(range_param(key, range)?);
        }
        if params.is_empty() {
            bail!("the sweep has nothing to vary: give [sweep.grid] or --grid key=[v1,v2]");
        }
        for p in &params {
            check_key(&p.key, config_keys)?;
        }
        let method = match string_of(table, "method")?.as_deref().unwrap_or("grid") {
            "grid" => {
                if let Some(p) = params
                    .iter()
                    .find(|p| matches!(p.domain, Domain::Range { .. }))
                {
                    bail!("sweep.ranges.{}: a range needs method = \"random\"", p.key);
                }
                Method::Grid
            }
            "random" => Method::Random {
                trials: count_of(table, "trials")?
                    .context("method = \"random\" needs trials = N")?,
            },
            other => bail!("sweep.method '{other}': expected grid or random"),
        };
        let direction = match string_of(table, "direction")?
            .as_deref()
            .unwrap_or("maximize")
        {
            "maximize" => Direction::Maximize,
            "minimize" => Direction::Minimize,
            other => bail!("sweep.direction '{other}': expected maximize or minimize"),
        };
        let parallel = match table.get("parallel") {
            None => None,
            Some(Value::String(s)) if s == "auto" => None,
            Some(_) => Some(count_of(table, "parallel")?.unwrap_or(1)),
        };
        let median_stopping = match string_of(table, "early_stopping")?
            .as_deref()
            .unwrap_or("none")
        {
            "median" => true,
            "none" => false,
            other => bail!("sweep.early_stopping '{other}': expected median or none"),
        };
        Ok(Self {
            method,
            params,
            objective: string_of(table, "objective")?
                .unwrap_or_else(|| "expect_json_fields".into()),
            direction,
            parallel,
            median_stopping,
            seed: count_of(table, "seed")?.unwrap_or(0) as u64,
        })
    }

    /// Whether `a` is a better objective value than `b`.
    pub fn better(&self, a: f64, b: f64) -> bool {
        self.direction.better(a, b)
    }
}

fn table_of<'a>(table: &'a Map<String, Value>, name: &str) -> Result<Vec<(&'a String, &'a Value)>> {
    match table.get(name) {
        None => Ok(vec![]),
        Some(Value::Object(t)) => Ok(t.iter().collect()),
        Some(_) => bail!("sweep.{name} must be a table of keys"),
    }
}

fn string_of(table: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match table.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => bail!("sweep.{key} must be a string, got {other}"),
    }
}

fn count_of(table: &Map<String, Value>, key: &str) -> Result<Option<usize>> {
    match table.get(key) {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 || key == "seed" => Ok(Some(n as usize)),
            _ => bail!("sweep.{key} must be a positive integer, got {v}"),
        },
    }
}

fn values_param(key: &str, values: &Value) -> Result<Param> {
    let Value::Array(list) = values else {
        bail!("sweep.grid.{key} must be a list of values, got {values}");
    };
    if list.is_empty() {
        bail!("sweep.grid.{key} is empty: give at least one value");
    }
    Ok(Param {
        key: key.to_string(),
        domain: Domain::Values(list.clone()),
    })
}

fn range_param(key: &str, range: &Value) -> Result<Param> {
    let number = |name: &str| {
        range
            .get(name)
            .and_then(Value::as_f64)
            .with_context(|| format!("sweep.ranges.{key} needs a number {name}"))
    };
    let (min, max) = (number("min")?, number("max")?);
    let log = range.get("log").and_then(Value::as_bool).unwrap_or(false);
    if min > max {
        bail!("sweep.ranges.{key}: min {min} is above max {max}");
    }
    if log && min <= 0.0 {
        bail!("sweep.ranges.{key}: a log range needs min > 0, got {min}");
    }
    Ok(Param {
        key: key.to_string(),
        domain: Domain::Range { min, max, log },
    })
}

/// `key=[v1,v2]`, the list read as TOML.
fn grid_flag(flag: &str) -> Result<Param> {
    let Some((key, list)) = flag.split_once('=') else {
        bail!("--grid {flag}: expected key=[v1,v2]");
    };
    let parsed: toml::Value = toml::from_str(&format!("v = {list}"))
        .map_err(|e| anyhow::anyhow!("--grid {flag}: {}", e.message()))?;
    let json = serde_json::to_value(&parsed["v"])?;
    values_param(key.trim(), &json).map_err(|e| anyhow::anyhow!("--grid {flag}: {e}"))
}

/// A swept key must be one a config takes (named as in the config, or a stage's name and a
/// dot before one: `dpo.beta`).
fn check_key(key: &str, config_keys: &[String]) -> Result<()> {
    let bare = crate::config::Stage::ALL
        .iter()
        .find_map(|s| key.strip_prefix(s.name())?.strip_prefix('.'))
        .unwrap_or(key);
    let fixed = ["stage", "stages", "sft", "dpo", "grpo", "output_dir"];
    if config_keys.iter().any(|k| k == bare) && !fixed.contains(&bare) {
        return Ok(());
    }
    let nearest = config_keys
        .iter()
        .filter(|k| !fixed.contains(&k.as_str()))
        .min_by_key(|k| crate::config::edit_distance(k, bare))
        .cloned()
        .unwrap_or_default();
    bail!("sweep key '{key}' is not a config key a trial can set (did you mean '{nearest}'?)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys() -> Vec<String> {
        [
            "learning_rate",
            "lora_r",
            "beta",
            "num_train_epochs",
            "output_dir",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn a_table_and_flags_make_one_spec() {
        let table = json!({
            "method": "random", "trials": 6, "objective": "schema_valid", "parallel": 3,
            "early_stopping": "median",
            "grid": { "lora_r": [8, 16] },
            "ranges": { "learning_rate": { "min": 1e-5, "max": 1e-3, "log": true } }
        });
        let spec = SweepSpec::read(Some(&table), &["dpo.beta=[0.1, 0.3]".into()], &keys()).unwrap();
        assert_eq!(spec.method, Method::Random { trials: 6 });
        assert_eq!(spec.parallel, Some(3));
        assert!(spec.median_stopping);
        let keys: Vec<&str> = spec.params.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["lora_r", "dpo.beta", "learning_rate"]);
        assert_eq!(
            spec.params[1].domain,
            Domain::Values(vec![json!(0.1), json!(0.3)])
        );
    }

    #[test]
    fn bad_settings_are_named_before_anything_trains() {
        let cases: Vec<(Value, Vec<String>, &str)> = vec![
            (
                json!({}),
                vec!["learnin_rate=[1e-4]".into()],
                "did you mean 'learning_rate'",
            ),
            (
                json!({ "grid": { "lora_r": [] } }),
                vec![],
                "sweep.grid.lora_r is empty",
            ),
            (json!({}), vec![], "nothing to vary"),
            (
                json!({ "method": "random", "trials": 2, "ranges": { "learning_rate": { "min": 1.0, "max": 0.1 } } }),
                vec![],
                "min 1 is above max 0.1",
            ),
            (
                json!({ "ranges": { "learning_rate": { "min": 0.1, "max": 1.0 } } }),
                vec![],
                "needs method = \"random\"",
            ),
            (
                json!({ "method": "random", "grid": { "lora_r": [8] } }),
                vec![],
                "needs trials",
            ),
            (
                json!({ "grid": { "output_dir": ["a"] } }),
                vec![],
                "not a config key",
            ),
            (json!({ "grd": {} }), vec![], "unknown key 'sweep.grd'"),
            (json!({}), vec!["lora_r=8".into()], "must be a list"),
        ];
        for (table, flags, expected) in cases {
            let e = SweepSpec::read(Some(&table), &flags, &keys()).unwrap_err();
            assert!(
                format!("{e:#}").contains(expected),
                "{table} {flags:?}: {e:#}"
            );
        }
    }
}
