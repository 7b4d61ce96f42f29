//! The model's own Jinja chat template, rendered with minijinja the way transformers'
//! `apply_chat_template` renders it (trim_blocks, lstrip_blocks, loop controls, Python
//! string methods, `raise_exception`).

use anyhow::{Context, Result};
use minijinja::{context, Environment, Error, ErrorKind};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: &str) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// ChatML, used when a model ships no template of its own.
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// The most steps (minijinja instructions) one render may take: a real chat template needs a
/// few dozen per message, so this bounds a template that loops for ever (or nearly: a
/// `range(100000)` nested in another) to well under a second.
pub const TEMPLATE_FUEL: u64 = 1_000_000;

/// The deepest a render may nest (macros, loops, includes, each counting minijinja's way), so
/// a recursive macro fails with an error instead of overflowing the stack. minijinja caps it
/// at 500 without its `stacker` feature; this stays below so threads with smaller stacks
/// (test threads: 2 MiB) are safe too.
pub const TEMPLATE_RECURSION_LIMIT: usize = 200;

/// End-of-turn markers of the common template families, in the order they are looked for.
const END_OF_TURN_MARKERS: &[&str] = &[
    "<|im_end|>",
    "<|eot_id|>",
    "<end_of_turn>",
    "<|end|>",
    "</s>",
];

pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// Compiles `source`; a syntax error names the template's line.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.set_recursion_limit(TEMPLATE_RECURSION_LIMIT);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<String, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_template_owned("chat", source.to_string())
            .context("the model's chat template does not compile")?;
        Ok(Self {
            env,
            source: source.to_string(),
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The text the template's `bos_token` variable holds.
    pub fn bos_token(&self) -> &str {
        &self.bos_token
    }

    /// The text the template's `eos_token` variable holds.
    pub fn eos_token(&self) -> &str {
        &self.eos_token
    }

    /// Renders a conversation; with `add_generation_prompt` the text ends where the
    /// assistant's reply begins.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        let template = self.env.get_template("chat")?;
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(|e| {
                let why = match e.kind() {
                    ErrorKind::OutOfFuel => Some(format!(
                        "the chat template did not finish within {TEMPLATE_FUEL} steps \
                         (does it loop for ever?)"
                    )),
                    ErrorKind::InvalidOperation if e.to_string().contains("recursion limit") => {
                        Some(format!(
                            "the chat template nests deeper than {TEMPLATE_RECURSION_LIMIT} \
                             levels (endless recursion?)"
                        ))
                    }
                    _ => None,
                };
                match why {
                    Some(why) => anyhow::Error::new(e).context(why),
                    None => anyhow::Error::new(e),
                }
            })
            .context("rendering the chat template")
    }

    /// The token the template closes each turn with, if it uses a known one.
    pub fn end_of_turn(&self) -> Option<&'static str> {
        END_OF_TURN_MARKERS
            .iter()
            .copied()
            .find(|m| self.source.contains(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_chatml_with_generation_prompt() {
        let t = ChatTemplate::new(CHATML_TEMPLATE, "", "").unwrap();
        let out = t.render(&[ChatMessage::new("user", "Hi")], true).unwrap();
        assert_eq!(
            out,
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(t.end_of_turn(), Some("<|im_end|>"));
    }

    #[test]
    fn endless_templates_are_refused() {
        // Nested loops of 10^5 × 10^5 steps: fuel runs out long before.
        let t = ChatTemplate::new(
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "",
            "",
        )
        .unwrap();
        let start = std::time::Instant::now();
        let err = format!("{:#}", t.render(&[], false).unwrap_err());
        assert!(err.contains("did not finish within"), "{err}");
        assert!(start.elapsed() < std::time::Duration::from_secs(10));

        // A macro calling itself for ever: the recursion limit stops it, not the stack.
        let t = ChatTemplate::new(
            "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
            "",
            "",
        )
        .unwrap();
        let err = format!("{:#}", t.render(&[], false).unwrap_err());
        assert!(err.contains("nests deeper than"), "{err}");
    }

    #[test]
    fn smollm2_template_renders_within_the_limits() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/chat_template_smollm2.json"
        );
        let fixture: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let t = ChatTemplate::new(fixture["template"].as_str().unwrap(), "", "").unwrap();
        let cases = fixture["cases"].as_array().unwrap();
        assert!(!cases.is_empty());
        for case in cases {
            let messages: Vec<ChatMessage> =
                serde_json::from_value(case["messages"].clone()).unwrap();
            let add = case["add_generation_prompt"].as_bool().unwrap();
            assert_eq!(
                t.render(&messages, add).unwrap(),
                case["rendered"].as_str().unwrap()
            );
        }
        // A long conversation stays far inside the fuel budget.
        let long: Vec<ChatMessage> = (0..2000)
            .map(|i| ChatMessage::new(if i % 2 == 0 { "user" } else { "assistant" }, "text"))
            .collect();
        assert!(t.render(&long, true).is_ok());
    }

    #[test]
    fn raise_exception_is_an_error() {
        let t = ChatTemplate::new("{{ raise_exception('no system role') }}", "", "").unwrap();
        let err = t.render(&[], false).unwrap_err();
        assert!(format!("{err:#}").contains("no system role"));
    }
}
