//! The filters self-instruct applies before a generated task joins the pool: too similar to
//! one already there (ROUGE-L), too short or too long, a word the model cannot act on (an
//! image, a file), or text that does not start like an English instruction. Each refusal has
//! a reason, so a run can report what it threw away.

use super::rouge::{rouge_l, tokens};

/// The paper's words (bootstrap_instructions.py) plus the ones Stanford Alpaca added.
pub const DEFAULT_REJECT_WORDS: &[&str] = &[
    "image",
    "images",
    "graph",
    "graphs",
    "picture",
    "pictures",
    "file",
    "files",
    "map",
    "maps",
    "draw",
    "plot",
    "go to",
    "video",
    "audio",
    "music",
    "flowchart",
    "diagram",
];

/// Why a generated instruction or example was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reject {
    /// ROUGE-L at or above the threshold against an instruction in the pool.
    Similar,
    TooShort,
    TooLong,
    RejectWord,
    /// Starts with punctuation or a character outside ASCII, or is mostly not words
    /// (`8. 7. 7. 7.`, the loop a small model falls into).
    NotAnInstruction,
    /// The instance reply held no example with an output.
    NoExample,
    EmptyOutput,
    OutputIsInput,
    /// The same instruction and input as a kept record.
    Duplicate,
    /// The prompt is one of an exclude file's (an eval set's).
    Excluded,
    NotJson,
    FailsSchema,
    /// The last item of a reply that ran into max_tokens, or an input or output ending in a
    /// colon: unfinished, as self-instruct judges them.
    CutOff,
    /// A request that failed after its retries, or whose answer was not an OpenAI reply.
    RequestFailed,
}

impl Reject {
    pub fn name(self) -> &'static str {
        match self {
            Self::Similar => "similar",
            Self::TooShort => "too short",
            Self::TooLong => "too long",
            Self::RejectWord => "reject word",
            Self::NotAnInstruction => "not an instruction",
            Self::NoExample => "no example",
            Self::EmptyOutput => "empty output",
            Self::OutputIsInput => "output is input",
            Self::Duplicate => "duplicate",
            Self::Excluded => "in exclude file",
            Self::NotJson => "not JSON",
            Self::FailsSchema => "fails schema",
            Self::CutOff => "cut off",
            Self::RequestFailed => "request failed",
        }
    }
}

/// The instructions kept so far, tokenised once for the similarity filter.
#[derive(Default)]
pub struct Pool {
    tokens: Vec<Vec<String>>,
}

impl Pool {
    pub fn add(&mut self, instruction: &str) {
        self.tokens.push(tokens(instruction));
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The highest ROUGE-L of `instruction` against the pool.
    pub fn max_similarity(&self, instruction: &str) -> f64 {
        let new = tokens(instruction);
        self.tokens
            .iter()
            .map(|old| rouge_l(&new, old))
            .fold(0.0, f64::max)
    }
}

pub struct InstructionFilter {
    /// Refuse at or above this ROUGE-L (the paper: 0.7).
    pub max_similarity: f64,
    pub reject_words: Vec<String>,
}

impl InstructionFilter {
    /// Why `instruction` may not join `pool`, or None when it may. The cheap checks run first.
    pub fn check(&self, instruction: &str, pool: &Pool) -> Option<Reject> {
        let words = instruction.split_whitespace().count();
        let first = instruction.chars().next()?;
        if words <= 3 {
            Some(Reject::TooShort)
        } else if words > 150 {
            Some(Reject::TooLong)
        } else if first.is_ascii_punctuation() || !first.is_ascii() || !mostly_words(instruction) {
            Some(Reject::NotAnInstruction)
        } else if self.has_reject_word(instruction) || instruction.starts_with("Write a program") {
            Some(Reject::RejectWord)
        } else if pool.max_similarity(instruction) >= self.max_similarity {
            Some(Reject::Similar)
        } else {
            None
        }
    }

    /// Whether a reject word (or phrase) occurs as whole words, case-insensitively.
    fn has_reject_word(&self, instruction: &str) -> bool {
        let text = format!(" {} ", words_only(instruction));
        self.reject_words
            .iter()
            .map(|w| format!(" {} ", words_only(w)))
            .any(|w| !w.trim().is_empty() && text.contains(&w))
    }
}

/// Whether at least half of the whitespace-separated words hold a letter.
fn mostly_words(text: &str) -> bool {
    let (mut words, mut total) = (0, 0);
    for word in text.split_whitespace() {
        total += 1;
        words += usize::from(word.chars().any(char::is_alphabetic));
    }
    2 * words >= total
}

/// Lowercase words separated by single spaces, punctuation dropped.
fn words_only(text: &str) -> String {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> InstructionFilter {
        InstructionFilter {
            max_similarity: 0.7,
            reject_words: DEFAULT_REJECT_WORDS.iter().map(|w| w.to_string()).collect(),
        }
    }

    #[test]
    fn each_rule_gives_its_reason() {
        let mut pool = Pool::default();
        pool.add("Explain the BGP LOCAL_PREF attribute.");
        let f = filter();
        let cases = [
            ("Explain LOCAL_PREF.", Some(Reject::TooShort)),
            (
                "- Explain the MED attribute in BGP.",
                Some(Reject::NotAnInstruction),
            ),
            (
                "Élucidez l'attribut MED en BGP.",
                Some(Reject::NotAnInstruction),
            ),
            ("8. 7. 7. 7. 7. 7. 7.", Some(Reject::NotAnInstruction)),
            (
                "Draw the topology of this network.",
                Some(Reject::RejectWord),
            ),
            ("Write a route-map that sets MED.", Some(Reject::RejectWord)),
            ("Tell me how to go to the lab.", Some(Reject::RejectWord)),
            (
                "What does the BGP LOCAL_PREF attribute do?",
                Some(Reject::Similar),
            ),
            ("Explain how the MED attribute is compared.", None),
            ("Explain how mapping tables are built.", None),
        ];
        for (text, want) in cases {
            assert_eq!(f.check(text, &pool), want, "{text}");
        }
        let long = vec!["word"; 151].join(" ");
        assert_eq!(f.check(&long, &pool), Some(Reject::TooLong));
    }
}
