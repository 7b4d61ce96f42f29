//! GRPO's rewards: the built-in ones, scored from each prompt's eval checks, and a user's
//! command. The command reads one JSON line per completion on stdin —
//! `{"prompt", "completion", "case": {"line", "expect_json", "schema", "must_contain",
//! "any_of", "must_not_contain", "reference"}}` — and prints one number (or `null`: no
//! reward for it) per line, in order.

use crate::config::{RewardFunc, RunConfig};
use crate::eval::cases::EvalCase;
use crate::eval::checks::check_reply;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The name the command's reward is logged under (rewards/command/mean).
pub const COMMAND_NAME: &str = "command";

/// One completion to score.
pub struct Completion<'a> {
    pub case: &'a EvalCase,
    pub text: &'a str,
    pub tokens: usize,
}

pub struct Rewards {
    funcs: Vec<RewardFunc>,
    command: Option<String>,
    timeout: Duration,
    max_completion_length: usize,
    allow_fenced: bool,
    pub weights: Vec<f64>,
}

impl Rewards {
    pub fn of(config: &RunConfig) -> Self {
        let count = config.reward_funcs.len() + usize::from(config.reward_command.is_some());
        Self {
            funcs: config.reward_funcs.clone(),
            command: config.reward_command.clone(),
            timeout: Duration::from_secs_f64(config.reward_timeout_s),
            max_completion_length: config.max_completion_length,
            allow_fenced: config.eval_allow_fenced_json,
            weights: config
                .reward_weights
                .clone()
                .unwrap_or_else(|| vec![1.0; count]),
        }
    }

    /// The rewards' names, in the order `score` gives their values.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.funcs.iter().map(|f| f.name().to_string()).collect();
        if self.command.is_some() {
            names.push(COMMAND_NAME.into());
        }
        names
    }

    /// The lines of cases no reward applies to (with no command, which may score anything).
    pub fn unscorable(&self, cases: &[EvalCase]) -> Vec<usize> {
        if self.command.is_some() {
            return Vec::new();
        }
        cases
            .iter()
            .filter(|c| self.funcs.iter().all(|&f| !applies(f, c)))
            .map(|c| c.line)
            .collect()
    }

    /// One row per completion, one value per reward (NaN where it does not apply).
    pub fn score(&self, completions: &[Completion]) -> Result<Vec<Vec<f64>>> {
        let mut rows: Vec<Vec<f64>> = completions
            .iter()
            .map(|c| {
                let checks = check_reply(c.case, c.text, self.allow_fenced);
                let flag = |b: Option<bool>| b.map_or(f64::NAN, |b| f64::from(u8::from(b)));
                self.funcs
                    .iter()
                    .map(|f| match f {
                        RewardFunc::JsonValid => flag(checks.json_valid),
                        RewardFunc::SchemaValid => flag(checks.schema_valid),
                        RewardFunc::ExpectJsonExact => flag(checks.expect_json_exact),
                        RewardFunc::ExpectJsonFields => {
                            checks.expect_json_fields.unwrap_or(f64::NAN)
                        }
                        RewardFunc::TextPass => flag(checks.text_pass),
                        RewardFunc::LengthPenalty => {
                            -(c.tokens as f64) / self.max_completion_length.max(1) as f64
                        }
                    })
                    .collect()
            })
            .collect();
        if let Some(command) = &self.command {
            let scores = run_command(command, completions, self.timeout)?;
            for (row, s) in rows.iter_mut().zip(scores) {
                row.push(s);
            }
        }
        Ok(rows)
    }
}

/// Whether a built-in reward has a check to score for this case.
fn applies(func: RewardFunc, case: &EvalCase) -> bool {
    match func {
        RewardFunc::JsonValid => case.wants_json(),
        RewardFunc::SchemaValid => case.schema.is_some(),
        RewardFunc::ExpectJsonFields | RewardFunc::ExpectJsonExact => case.expect_json.is_some(),
        RewardFunc::TextPass => case.has_text_checks(),
        RewardFunc::LengthPenalty => true,
    }
}

fn case_json(case: &EvalCase) -> Value {
    json!({
        "line": case.line,
        "expect_json": case.expect_json,
        "schema": case.schema.as_ref().map(|s| s.path.display().to_string()),
        "must_contain": case.must_contain,
        "any_of": case.any_of,
        "must_not_contain": case.must_not_contain,
        "reference": case.reference,
    })
}

/// Runs the reward command on every completion at once; its numbers, in order.
fn run_command(command: &str, completions: &[Completion], timeout: Duration) -> Result<Vec<f64>> {
    let name = format!("reward_command `{command}`");
    let mut input = String::new();
    for c in completions {
        let line =
            json!({"prompt": c.case.prompt, "completion": c.text, "case": case_json(c.case)});
        input.push_str(&line.to_string());
        input.push('\n');
    }
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("{name}: cannot start"))?;
    // Written and read on their own threads, so a command that prints before it has read
    // everything cannot block on a full pipe.
    let mut stdin = child.stdin.take().context("the command's stdin")?;
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = reader(Box::new(
        child.stdout.take().context("the command's stdout")?,
    ));
    let stderr = reader(Box::new(
        child.stderr.take().context("the command's stderr")?,
    ));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{name} took longer than reward_timeout_s ({} s) for {} completions; it was stopped",
                timeout.as_secs_f64(),
                completions.len()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = writer.join();
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("{name} failed ({status}): {}", tail.join(" | "));
    }
    parse_scores(&name, &out, completions.len())
}

/// The command's output: one number or null per completion.
fn parse_scores(name: &str, out: &str, expected: usize) -> Result<Vec<f64>> {
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() != expected {
        bail!(
            "{name} printed {} lines for {expected} completions (one number per completion, in order)",
            lines.len()
        );
    }
    lines
        .iter()
        .enumerate()
        .map(
            |(i, line)| match serde_json::from_str::<Value>(line.trim()) {
                Ok(Value::Null) => Ok(f64::NAN),
                Ok(Value::Number(n)) => n.as_f64().context("a number"),
                _ => bail!(
                    "{name}: output line {} is `{}`, not a number (or null)",
                    i + 1,
                    line.trim()
                ),
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(line: usize, expect: Option<Value>, must: &[&str]) -> EvalCase {
        EvalCase {
            prompt: format!("prompt {line}"),
            system: None,
            expect_json: expect,
            schema: None,
            must_contain: must.iter().map(|s| s.to_string()).collect(),
            any_of: Vec::new(),
            must_not_contain: Vec::new(),
            reference: None,
            line,
        }
    }

    fn rewards(config: RunConfig) -> Rewards {
        Rewards::of(&config)
    }

    #[test]
    fn built_in_rewards_come_from_the_checks() {
        let json_case = case(1, Some(json!({"a": 1, "b": 2})), &[]);
        let text_case = case(2, None, &["Dynamic Positioning"]);
        let r = rewards(RunConfig {
            reward_funcs: vec![
                RewardFunc::JsonValid,
                RewardFunc::ExpectJsonFields,
                RewardFunc::TextPass,
                RewardFunc::LengthPenalty,
            ],
            max_completion_length: 10,
            ..RunConfig::default()
        });
        let rows = r
            .score(&[
                Completion {
                    case: &json_case,
                    text: r#"{"a": 1, "b": 3}"#,
                    tokens: 5,
                },
                Completion {
                    case: &text_case,
                    text: "DP is dynamic positioning",
                    tokens: 10,
                },
            ])
            .unwrap();
        assert_eq!(&rows[0][..2], &[1.0, 0.5]);
        assert!(rows[0][2].is_nan());
        assert_eq!(rows[0][3], -0.5);
        assert!(rows[1][0].is_nan() && rows[1][1].is_nan());
        assert_eq!(&rows[1][2..], &[1.0, -1.0]);
        assert!(r.unscorable(&[json_case, text_case]).is_empty());
    }

    #[test]
    fn a_case_no_reward_applies_to_is_named() {
        let r = rewards(RunConfig {
            reward_funcs: vec![RewardFunc::TextPass],
            ..RunConfig::default()
        });
        let cases = [case(1, None, &["x"]), case(2, Some(json!({})), &[])];
        assert_eq!(r.unscorable(&cases), vec![2]);
    }

    fn command(cmd: &str, timeout_s: f64) -> Rewards {
        rewards(RunConfig {
            reward_funcs: Vec::new(),
            reward_command: Some(cmd.into()),
            reward_timeout_s: timeout_s,
            ..RunConfig::default()
        })
    }

    fn run(r: &Rewards, texts: &[&str]) -> Result<Vec<Vec<f64>>> {
        let c = case(3, None, &[]);
        let completions: Vec<Completion> = texts
            .iter()
            .map(|t| Completion {
                case: &c,
                text: t,
                tokens: 1,
            })
            .collect();
        r.score(&completions)
    }

    #[test]
    fn the_command_scores_each_line() {
        // The reward is the completion's length in characters; null for an empty one.
        let script = r#"while IFS= read -r l; do c=$(printf '%s' "$l" | sed 's/.*"completion":"\([^"]*\)".*/\1/'); if [ -z "$c" ]; then echo null; else printf '%s\n' "${#c}"; fi; done"#;
        let rows = run(&command(script, 10.0), &["abc", "", "hello"]).unwrap();
        assert_eq!(rows[0], vec![3.0]);
        assert!(rows[1][0].is_nan());
        assert_eq!(rows[2], vec![5.0]);
    }

    #[test]
    fn a_misbehaving_command_is_a_clear_error() {
        let err = |cmd: &str, timeout: f64| {
            format!(
                "{:#}",
                run(&command(cmd, timeout), &["a", "b"]).unwrap_err()
            )
        };
        let crashed = err("echo boom >&2; exit 3", 10.0);
        assert!(
            crashed.contains("failed") && crashed.contains("boom"),
            "{crashed}"
        );
        let words = err("cat >/dev/null; echo 1; echo yes", 10.0);
        assert!(words.contains("output line 2 is `yes`"), "{words}");
        let short = err("cat >/dev/null; echo 1", 10.0);
        assert!(
            short.contains("printed 1 lines for 2 completions"),
            "{short}"
        );
        let hung = err("sleep 5", 0.2);
        assert!(hung.contains("reward_timeout_s"), "{hung}");
    }
}
