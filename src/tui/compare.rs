//! The compare screen's state: prompts (an eval file's cases and typed ones) and, per prompt,
//! the base model's and the tuned model's replies as they stream in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    Base,
    Tuned,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ReplyState {
    #[default]
    Streaming,
    Done,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    pub text: String,
    pub state: ReplyState,
}

/// A piece of a reply as the worker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyPiece {
    Text(String),
    Done,
    Failed(String),
}

#[derive(Debug, Clone, Default)]
pub struct CompareState {
    pub cases_path: Option<PathBuf>,
    pub cases_error: Option<String>,
    pub prompts: Vec<String>,
    pub selected: usize,
    /// The eval file's checks for its prompts.
    pub checks: super::checks::CaseChecks,
    /// The adapter folder the tuned column uses.
    pub adapter: Option<PathBuf>,
    pub replies: BTreeMap<(usize, Side), Reply>,
    /// The generation job whose pieces are accepted; older jobs' pieces are dropped.
    pub job: u64,
    pub busy: bool,
    /// Replies are held to the case's JSON Schema (any JSON object for a typed prompt).
    pub constrained: bool,
}

impl CompareState {
    pub fn set_cases(&mut self, path: &Path, prompts: Vec<String>) {
        self.cases_path = Some(path.to_path_buf());
        self.cases_error = None;
        self.prompts = prompts;
        self.selected = 0;
        self.replies.clear();
        self.checks = Default::default();
    }

    /// Cases where the tuned reply scores better / the same / worse than the base reply, over
    /// the cases of the eval file whose two replies are done.
    pub fn tally(&self) -> (usize, usize, usize) {
        let mut t = (0, 0, 0);
        for case in 0..self.prompts.len() {
            let done = |side| {
                self.replies
                    .get(&(case, side))
                    .filter(|r| r.state == ReplyState::Done)
            };
            let (Some(base), Some(tuned)) = (done(Side::Base), done(Side::Tuned)) else {
                continue;
            };
            let (Some(b), Some(tu)) = (
                self.checks.score(case, &base.text),
                self.checks.score(case, &tuned.text),
            ) else {
                continue;
            };
            if tu > b + 1e-9 {
                t.0 += 1;
            } else if tu < b - 1e-9 {
                t.2 += 1;
            } else {
                t.1 += 1;
            }
        }
        t
    }

    pub fn apply(&mut self, job: u64, case: usize, side: Side, piece: ReplyPiece) {
        if job != self.job {
            return;
        }
        let reply = self.replies.entry((case, side)).or_default();
        match piece {
            ReplyPiece::Text(text) => reply.text.push_str(&text),
            ReplyPiece::Done => reply.state = ReplyState::Done,
            ReplyPiece::Failed(e) => reply.state = ReplyState::Failed(e),
        }
    }
}

/// The prompts of an eval file: JSON lines each with a "prompt" string.
pub fn read_cases(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut prompts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| format!("{}:{}: not JSON ({e})", path.display(), i + 1))?;
        match value.get("prompt").and_then(|p| p.as_str()) {
            Some(p) => prompts.push(p.to_string()),
            None => {
                return Err(format!(
                    "{}:{}: no \"prompt\" string",
                    path.display(),
                    i + 1
                ))
            }
        }
    }
    Ok(prompts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_need_a_prompt_per_line() {
        let dir = std::env::temp_dir();
        let path = dir.join(format!("tunelab-cases-{}.jsonl", std::process::id()));
        std::fs::write(&path, "{\"prompt\":\"a\"}\n\n{\"prompt\":\"b\",\"x\":1}\n").unwrap();
        assert_eq!(read_cases(&path).unwrap(), vec!["a", "b"]);
        std::fs::write(&path, "{\"prompt\":\"a\"}\n{\"q\":\"b\"}\n").unwrap();
        let err = read_cases(&path).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(err.ends_with(":2: no \"prompt\" string"), "{err}");
    }

    #[test]
    fn pieces_of_an_old_job_are_dropped() {
        let mut state = CompareState {
            job: 2,
            ..Default::default()
        };
        state.apply(1, 0, Side::Base, ReplyPiece::Text("old".into()));
        state.apply(2, 0, Side::Base, ReplyPiece::Text("new".into()));
        state.apply(2, 0, Side::Base, ReplyPiece::Done);
        let reply = &state.replies[&(0, Side::Base)];
        assert_eq!(reply.text, "new");
        assert_eq!(reply.state, ReplyState::Done);
    }
}
