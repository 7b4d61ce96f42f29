//! The checks shown as badges beside each compare reply: the eval file's own checks (JSON,
//! schema, expected fields, invented fields, text) when the prompt is one of its cases, JSON
//! validity for a typed prompt; and the tally of cases the tuned reply does better on.

use crate::eval::cases::EvalCase;
use crate::eval::checks::{check_reply, parse_reply_json, Checks};
use crate::eval::run::Constrain;
use crate::model::constrain::Constraint;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Badge {
    pub label: String,
    pub pass: bool,
}

/// The eval cases of the loaded file, by prompt index (typed prompts come after them).
#[derive(Clone, Default)]
pub struct CaseChecks(Option<Arc<Vec<EvalCase>>>);

impl std::fmt::Debug for CaseChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CaseChecks({} cases)",
            self.0.as_ref().map_or(0, |c| c.len())
        )
    }
}

impl CaseChecks {
    pub fn new(cases: Vec<EvalCase>) -> Self {
        Self(Some(Arc::new(cases)))
    }

    fn checks(&self, case: usize, reply: &str) -> Option<Checks> {
        let c = self.0.as_ref()?.get(case)?;
        Some(check_reply(c, reply, false))
    }

    /// What the constraint toggle holds prompt `case` to: its schema, else any JSON object.
    pub fn constraint(&self, case: usize) -> Constraint {
        self.0
            .as_ref()
            .and_then(|cases| cases.get(case))
            .and_then(|c| Constrain::Schema(None).for_case(c))
            .unwrap_or(Constraint::Json)
    }

    /// The badges of a finished reply to prompt `case`.
    pub fn badges(&self, case: usize, reply: &str) -> Vec<Badge> {
        let Some(checks) = self.checks(case, reply) else {
            return vec![Badge {
                label: "json".into(),
                pass: parse_reply_json(reply, false).is_some(),
            }];
        };
        let mut out = Vec::new();
        let mut flag = |label: &str, pass: Option<bool>| {
            if let Some(pass) = pass {
                out.push(Badge {
                    label: label.into(),
                    pass,
                });
            }
        };
        flag("json", checks.json_valid);
        flag("schema", checks.schema_valid);
        flag("no extra", checks.hallucinated_fields.map(|h| !h));
        flag("text", checks.text_pass);
        if let Some(share) = checks.expect_json_fields {
            out.push(Badge {
                label: format!("fields {:.0}%", share * 100.0),
                pass: share >= 1.0,
            });
        }
        out
    }

    /// How good a reply is (the mean of its checks), for the tally; None for a typed prompt.
    pub fn score(&self, case: usize, reply: &str) -> Option<f64> {
        self.checks(case, reply)?.score()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_validity_for_typed_prompts() {
        let none = CaseChecks::default();
        assert!(none.badges(0, " {\"a\": [1, 2]}\n")[0].pass);
        assert!(!none.badges(0, "Sure! {\"a\": 1}")[0].pass);
        assert!(!none.badges(0, "")[0].pass);
        assert_eq!(none.score(0, "{}"), None);
    }

    #[test]
    fn an_eval_case_gets_its_own_checks() {
        let path =
            std::env::temp_dir().join(format!("tunelab-badges-{}.jsonl", std::process::id()));
        std::fs::write(
            &path,
            r#"{"prompt": "p", "expect_json": {"a": 1, "b": 2}, "must_contain": ["1"]}"#,
        )
        .unwrap();
        let checks = CaseChecks::new(crate::eval::cases::load_eval_file(&path).unwrap());
        let labels = |reply: &str| -> Vec<(String, bool)> {
            checks
                .badges(0, reply)
                .into_iter()
                .map(|b| (b.label, b.pass))
                .collect()
        };
        assert_eq!(
            labels(r#"{"a": 1, "c": 3}"#),
            vec![
                ("json".into(), true),
                ("no extra".into(), false),
                ("text".into(), true),
                ("fields 50%".into(), false)
            ]
        );
        assert!(checks.score(0, r#"{"a": 1, "b": 2}"#) > checks.score(0, "no"));
    }
}
