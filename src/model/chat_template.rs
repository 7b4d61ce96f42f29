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

/// Gemma 3's turn format, for a Gemma 3 GGUF that ships no template (the base models' files
/// have none): the chat template of google/gemma-3-*-it's tokenizer_config.json, verbatim.
/// `<bos>`, then `<start_of_turn>{role}\n{content}<end_of_turn>\n` per message with the
/// assistant's role written `model`; a system message's content goes before the first user
/// turn's, followed by a blank line; the generation prompt is `<start_of_turn>model\n`.
pub const GEMMA_TEMPLATE: &str = concat!(
    "{{ bos_token }}\n",
    "{%- if messages[0]['role'] == 'system' -%}\n",
    "    {%- if messages[0]['content'] is string -%}\n",
    "        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}\n",
    "    {%- else -%}\n",
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}\n",
    "    {%- endif -%}\n",
    "    {%- set loop_messages = messages[1:] -%}\n",
    "{%- else -%}\n",
    "    {%- set first_user_prefix = \"\" -%}\n",
    "    {%- set loop_messages = messages -%}\n",
    "{%- endif -%}\n",
    "{%- for message in loop_messages -%}\n",
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n",
    "        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n",
    "    {%- endif -%}\n",
    "    {%- if (message['role'] == 'assistant') -%}\n",
    "        {%- set role = \"model\" -%}\n",
    "    {%- else -%}\n",
    "        {%- set role = message['role'] -%}\n",
    "    {%- endif -%}\n",
    "    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}\n",
    "    {%- if message['content'] is string -%}\n",
    "        {{ message['content'] | trim }}\n",
    "    {%- elif message['content'] is iterable -%}\n",
    "        {%- for item in message['content'] -%}\n",
    "            {%- if item['type'] == 'image' -%}\n",
    "                {{ '<start_of_image>' }}\n",
    "            {%- elif item['type'] == 'text' -%}\n",
    "                {{ item['text'] | trim }}\n",
    "            {%- endif -%}\n",
    "        {%- endfor -%}\n",
    "    {%- else -%}\n",
    "        {{ raise_exception(\"Invalid content type\") }}\n",
    "    {%- endif -%}\n",
    "    {{ '<end_of_turn>\n' }}\n",
    "{%- endfor -%}\n",
    "{%- if add_generation_prompt -%}\n",
    "    {{'<start_of_turn>model\n'}}\n",
    "{%- endif -%}\n",
);

/// Where a loaded model's chat template came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateOrigin {
    /// The model's own (GGUF `tokenizer.chat_template`, tokenizer_config.json).
    Model,
    /// The family's built-in turn format (named here), because the file has none.
    Family(&'static str),
    /// ChatML, for a model with no template and no known family format.
    ChatMlFallback,
}

/// The built-in turn format of a GGUF `general.architecture`, for a file without a template:
/// (the format's name, its Jinja source).
pub fn family_template(architecture: &str) -> Option<(&'static str, &'static str)> {
    match architecture {
        "gemma3" => Some(("Gemma 3", GEMMA_TEMPLATE)),
        _ => None,
    }
}

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
    fn gemma3_template_matches_the_official_rendering() {
        // tests/reference/make_gemma3_tokenizer_fixture.py: transformers' apply_chat_template
        // (jinja2) over the official Gemma 3 template.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/chat_template_gemma3.json"
        );
        let fixture: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(fixture["template"].as_str().unwrap(), GEMMA_TEMPLATE);
        let t = ChatTemplate::new(
            GEMMA_TEMPLATE,
            fixture["bos_token"].as_str().unwrap(),
            "<eos>",
        )
        .unwrap();
        let cases = fixture["cases"].as_array().unwrap();
        assert!(cases.len() >= 6);
        for case in cases {
            let messages: Vec<ChatMessage> =
                serde_json::from_value(case["messages"].clone()).unwrap();
            let add = case["add_generation_prompt"].as_bool().unwrap();
            assert_eq!(
                t.render(&messages, add).unwrap(),
                case["rendered"].as_str().unwrap(),
                "{messages:?}"
            );
        }
        let conversation = [
            ChatMessage::new("system", "Be brief."),
            ChatMessage::new("user", "Hi"),
            ChatMessage::new("assistant", "Hello!"),
        ];
        assert_eq!(
            t.render(&conversation, false).unwrap(),
            "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n\
             <start_of_turn>model\nHello!<end_of_turn>\n"
        );
        assert_eq!(
            t.render(&conversation[..2], true).unwrap(),
            "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n"
        );
        assert_eq!(t.end_of_turn(), Some("<end_of_turn>"));
        // Roles must alternate, as the official template says.
        let err = t
            .render(&[ChatMessage::new("assistant", "first")], true)
            .unwrap_err();
        assert!(format!("{err:#}").contains("alternate"), "{err:#}");
        assert_eq!(family_template("gemma3").unwrap().1, GEMMA_TEMPLATE);
        assert_eq!(family_template("llama"), None);
    }

    #[test]
    fn raise_exception_is_an_error() {
        let t = ChatTemplate::new("{{ raise_exception('no system role') }}", "", "").unwrap();
        let err = t.render(&[], false).unwrap_err();
        assert!(format!("{err:#}").contains("no system role"));
    }
}
