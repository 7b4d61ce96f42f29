//! The trials of a sweep: every combination of a grid, or `trials` draws (a value from each
//! list, a number from each range, log-uniform where asked) from the sweep's seed.

use super::spec::{Domain, Method, SweepSpec};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::collections::BTreeMap;

/// One trial's settings: swept key → value, in the spec's order of keys.
pub type Settings = BTreeMap<String, Value>;

pub fn plan(spec: &SweepSpec) -> Vec<Settings> {
    match spec.method {
        Method::Grid => grid(spec),
        Method::Random { trials } => {
            let mut rng = StdRng::seed_from_u64(spec.seed);
            (0..trials)
                .map(|_| {
                    spec.params
                        .iter()
                        .map(|p| (p.key.clone(), draw(&p.domain, &mut rng)))
                        .collect()
                })
                .collect()
        }
    }
}

/// The cartesian product, the last key varying fastest.
fn grid(spec: &SweepSpec) -> Vec<Settings> {
    let mut trials = vec![Settings::new()];
    for p in &spec.params {
        let Domain::Values(values) = &p.domain else {
            continue;
        };
        trials = trials
            .into_iter()
            .flat_map(|t| {
                values.iter().map(move |v| {
                    let mut t = t.clone();
                    t.insert(p.key.clone(), v.clone());
                    t
                })
            })
            .collect();
    }
    trials
}

fn draw(domain: &Domain, rng: &mut StdRng) -> Value {
    match domain {
        Domain::Values(values) => values[rng.random_range(0..values.len())].clone(),
        Domain::Range { min, max, log } => {
            let u: f64 = rng.random();
            let x = if *log {
                (min.ln() + u * (max.ln() - min.ln())).exp()
            } else {
                min + u * (max - min)
            };
            serde_json::json!(x)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::spec::{Direction, Param};
    use serde_json::json;

    fn spec(method: Method, params: Vec<Param>) -> SweepSpec {
        SweepSpec {
            method,
            params,
            objective: "schema_valid".into(),
            direction: Direction::Maximize,
            parallel: None,
            median_stopping: false,
            seed: 7,
        }
    }

    fn values(key: &str, v: Vec<Value>) -> Param {
        Param {
            key: key.into(),
            domain: Domain::Values(v),
        }
    }

    #[test]
    fn a_grid_is_every_combination_once() {
        let s = spec(
            Method::Grid,
            vec![
                values("learning_rate", vec![json!(1e-4), json!(5e-4)]),
                values("num_train_epochs", vec![json!(3), json!(6), json!(12)]),
            ],
        );
        let trials = plan(&s);
        assert_eq!(trials.len(), 6);
        let distinct: std::collections::BTreeSet<String> = trials
            .iter()
            .map(|t| serde_json::to_string(t).unwrap())
            .collect();
        assert_eq!(distinct.len(), 6);
        assert_eq!(
            trials[1]["num_train_epochs"],
            json!(6),
            "the last key varies fastest"
        );
    }

    #[test]
    fn random_draws_stay_in_range_and_repeat_from_the_seed() {
        let range = Param {
            key: "learning_rate".into(),
            domain: Domain::Range {
                min: 1e-5,
                max: 1e-3,
                log: true,
            },
        };
        let s = spec(
            Method::Random { trials: 200 },
            vec![range, values("lora_r", vec![json!(8), json!(16)])],
        );
        let trials = plan(&s);
        assert_eq!(trials, plan(&s), "the same seed plans the same trials");
        let lrs: Vec<f64> = trials
            .iter()
            .map(|t| t["learning_rate"].as_f64().unwrap())
            .collect();
        assert!(lrs.iter().all(|&x| (1e-5..=1e-3).contains(&x)));
        // Log-uniform: about half the draws fall below the geometric middle, 1e-4.
        let below = lrs.iter().filter(|&&x| x < 1e-4).count();
        assert!((70..130).contains(&below), "{below} of 200 below 1e-4");
        assert!(trials.iter().any(|t| t["lora_r"] == json!(8)));
        assert!(trials.iter().any(|t| t["lora_r"] == json!(16)));
    }
}
