#!/usr/bin/env python3
# Makes tests/fixtures/tokenizer_gemma3.json (text -> token ids with no BOS, and the decoded
# text) and tests/fixtures/chat_template_gemma3.json (Gemma 3's official chat template rendered
# by transformers with jinja2) for the bundled model gemma3-270m (Gemma 3 270M base, Q4_K_M).
#
# Setup: the venv of tests/reference/README.md (transformers 5.23.0, tokenizers, gguf, jinja2).
# Run:
#   /opt/refenv/bin/python tests/reference/make_gemma3_tokenizer_fixture.py [path/to/gemma-3-270m-q4_k_m.gguf]
# Without an argument: $TUNELAB_HOME/models/gemma-3-270m-q4_k_m.gguf when TUNELAB_HOME is set,
# else ~/.cache/tunelab/models/gemma-3-270m-q4_k_m.gguf (`tunelab model pull gemma3-270m`).
# `--dump-backend FILE` also writes transformers' backend tokenizer.json (about 30 MB; not
# committed, for comparing pipelines by hand).
#
# Reference: transformers' GGUF tokenizer conversion, `AutoTokenizer.from_pretrained(dir,
# gguf_file=name)` (integrations/gguf/gguf_tokenizer_mapping.py: `gemma_tokenizer`), ids from
# `encode(text, add_special_tokens=False)`, decoded text from `decode(ids)` (special tokens kept).
import argparse
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
N_CASES = 1000

# Gemma 3's chat template, as google/gemma-3-*-it's tokenizer_config.json has it (the text is
# the JSON string decoded: the '\n\n' after the system content holds two real newlines).
GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}\n{%- if messages[0]['role'] == 'system' -%}\n    {%- if messages[0]['content'] is string -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}\n    {%- else -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}\n    {%- endif -%}\n"
    "    {%- set loop_messages = messages[1:] -%}\n{%- else -%}\n    {%- set first_user_prefix = \"\" -%}\n"
    "    {%- set loop_messages = messages -%}\n{%- endif -%}\n{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n"
    "    {%- endif -%}\n    {%- if (message['role'] == 'assistant') -%}\n        {%- set role = \"model\" -%}\n"
    "    {%- else -%}\n        {%- set role = message['role'] -%}\n    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n        {{ message['content'] | trim }}\n"
    "    {%- elif message['content'] is iterable -%}\n        {%- for item in message['content'] -%}\n"
    "            {%- if item['type'] == 'image' -%}\n                {{ '<start_of_image>' }}\n"
    "            {%- elif item['type'] == 'text' -%}\n                {{ item['text'] | trim }}\n"
    "            {%- endif -%}\n        {%- endfor -%}\n    {%- else -%}\n"
    "        {{ raise_exception(\"Invalid content type\") }}\n    {%- endif -%}\n"
    "    {{ '<end_of_turn>\n' }}\n{%- endfor -%}\n{%- if add_generation_prompt -%}\n"
    "    {{'<start_of_turn>model\n'}}\n{%- endif -%}\n"
)


def default_gguf_path():
    home = os.environ.get("TUNELAB_HOME")
    if home:
        return os.path.join(home, "models", GGUF_NAME)
    return os.path.join(os.path.expanduser("~"), ".cache", "tunelab", "models", GGUF_NAME)


def hand_written():
    prose = [
        "Hello, world!", "Hello world", "hello", " hello", "  hello", "Hello", "HELLO",
        "The quick brown fox jumps over the lazy dog.",
        "What is the capital of France?", "The capital of France is Paris.",
        "Gemma 3 is a family of lightweight open models from Google.",
        "QLoRA fine-tunes a 4-bit quantized model with low-rank adapters.",
        "It was the best of times, it was the worst of times.",
        "To be, or not to be: that is the question.", "A man, a plan, a canal: Panama!",
        "Mr. Smith went to Washington D.C. on Jan. 5th, 2024.", "e.g. i.e. etc. vs. a.m. p.m.",
        "UPPERCASE lowercase MiXeDcAsE camelCase snake_case kebab-case",
        "Supercalifragilisticexpialidocious antidisestablishmentarianism",
        "Hmm... well -- maybe; perhaps (not)? [yes] {no} <ok>", "!!!???...,,,;;;:::",
        "\"quoted\" 'single' `backtick` «guillemets» „German“ “curly”",
        "$100 €50 £20 ¥1000 ₹500 ₿0.5", "100% of 50% is 50%; 3 > 2 < 4 = 4 != 5",
        "a+b=c; x*y/z; 2^10; ~tilde; |pipe|; \\backslash\\",
        "user@example.com https://example.org/path?q=1&r=2#frag",
        "C:\\Users\\tunelab\\models\\gemma.gguf /home/user/.cache/tunelab",
        "I'll", "don't", "it's", "I'm", "you're", "we've", "can't", "won't", "y'all", "O'Reilly",
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore.",
    ]
    unicode = [
        "café", "naïve résumé", "Ångström", "Müller straße", "façade coöperate",
        "São Paulo, Brasília, Bogotá", "Łódź Kraków Gdańsk", "Ærøskøbing", "İstanbul ığdır",
        "Crème brûlée à la française", "Ñandú, pingüino, señor",
        "日本語のテキスト", "東京は日本の首都です。", "中文文本测试", "你好，世界！", "한국어 텍스트입니다",
        "مرحبا بالعالم", "שלום עולם", "Привет, мир!", "Съешь же ещё этих мягких французских булок.",
        "Γειά σου Κόσμε", "नमस्ते दुनिया", "สวัสดีครับ", "Xin chào thế giới", "ᚠᚢᚦᚨᚱᚲ",
        "e\u0301 (e + combining acute)", "n\u0303o", "a\u0308\u0301", "\u00e9 vs e\u0301",
        "ﬁ ligature ﬂ", "Ⅻ Ⅳ ⅷ", "½ ¼ ¾ ⅓", "x² + y³ = z⁴", "H₂O CO₂", "１２３ ＡＢＣ",
        "٠١٢٣٤٥٦٧٨٩", "\u200b zero width space", "non\u00a0breaking\u00a0space", "soft\u00adhyphen",
        "right\u200fto\u200eleft", "\ufeffBOM at start", "tab\u00a0nbsp\u2003emsp\u3000ideographic",
        "°C ± µ Ω ∑ ∫ √ ∞ ≈ ≠ ≤ ≥", "→ ← ↑ ↓ ⇒ ⇔", "♠ ♣ ♥ ♦ ★ ☆", "ℕ ℤ ℚ ℝ ℂ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕄𝕒𝕥𝕙",
        "\ufffd replacement",
    ]
    emoji = [
        "😀", "😀😃😄", "I love 🦀 Rust", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🏴‍☠️", "❤️", "❤️‍🔥",
        "🇫🇷", "🇬🇧🇺🇸🇩🇪🇯🇵", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "1️⃣ 2️⃣ #️⃣", "🧑🏿‍🚀", "✅ ❌ ⚠️", "🔥🔥🔥 hot", "emoji at end 🎉",
    ]
    # Characters the vocabulary is unlikely to hold whole, so byte fallback (<0xXX>) must cover them.
    rare = [
        "\x00", "\x01\x02\x03", "\x7f", "\x1b[31mred\x1b[0m", "bell\x07", "form\x0cfeed", "\x1c\x1d\x1e\x1f",
        "\U0001d54f\U0001d550", "\U00010348 gothic hwair", "\U0001f9ec\U0001fa90", "\U000e0041 tag A",
        "\U0010fffd private", "\ue000\uf8ff private use", "\U00012000 cuneiform", "\u2fff\u3000\u303f",
        "ꙮ multiocular o", "\U0001f1e6\U0001f1e6", "𓀀𓀁 hieroglyphs", "\u0f3a\u0f3b tibetan", "\ua9c1\ua9c2",
    ]
    numbers = [
        "0", "1", "12", "123", "1234", "12345", "1234567890", "1234567890123", "3.14159", "1,000,000",
        "-42", "+42", "1e10", "6.022e23", "0x1F", "0b1010", "007", "2024-01-15", "12:34:56", "v1.2.3",
        "1/2", "50%", "$1,234.56", "1.000.000,00", "In 1999, 42 people paid $3.50 each.", "3rd 21st 100th",
        "ISO 8601: 2025-02-07T12:00:00Z", "+46701234567", "+44 20 7946 0958", "(555) 123-4567",
        "192.168.0.1", "2001:db8::1", "fe80::1%eth0", "[2001:db8::1]:443", "MAC 00:1A:2B:3C:4D:5E",
    ]
    whitespace = [
        "", " ", "  ", "   ", "    ", "\t", "\n", "\n\n", "\n\n\n", "\r\n", "\r", " \n ", "\t\t", "  \t  ",
        "double  space", "triple   space", "tab\tseparated\tvalues", "new\nline", "two\n\nlines",
        "trailing space ", "trailing spaces   ", " leading space", "   leading spaces", "\tleading tab",
        "\nleading newline", "trailing newline\n", "mixed \t \n whitespace", "a\n\n\nb", "a \n b",
        "word\r\nword", "  both sides  ", "line1\nline2\nline3\n", " \u3000 ", "  1", "a  1", "\n\n1",
        " " * 31, " " * 32, " " * 45, "\t" * 31, "\t" * 33, "\n" * 31, "\n" * 40, " \t\n" * 5,
    ]
    code = [
        "fn main() {\n    println!(\"Hello, world!\");\n}\n",
        "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}",
        "let v: Vec<u8> = (0..10).map(|x| x * 2).collect();",
        "impl<T: Clone + Send> Foo<T> for Bar<'a, T> where T: 'static {}",
        "#[derive(Debug, Clone, PartialEq)]\nstruct Point { x: f64, y: f64 }",
        "def f(x):\n    if x > 0:\n        return x\n    else:\n        return -x\n",
        "class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n",
        "for i in range(10):\n\tprint(i)\n", "import numpy as np\nx = np.zeros((3, 4), dtype=np.float32)",
        "    indented four\n        indented eight\n", "if (a && b || !c) { x += 1; } else { y -= 2; }",
        "SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name;",
        "<div class=\"container\"><p>Hello</p></div>", "<table><tr><td>1</td></tr></table>",
        "<h1>Title</h1><strong>bold</strong> <em>it</em> <code>x</code>", "<s>strike</s> </s> <s>",
        "#include <stdio.h>\nint main(void) { return 0; }", "console.log(`template ${x}`);",
        "$ cargo test --release -- --nocapture", "// line comment\n/* block */", "```rust\nlet x = 1;\n```",
    ]
    jsons = [
        '{"device":{"phoneNumber":"+123456789"},"applicationServer":{"ipv4Address":"192.168.0.1"},"qosProfile":"QOS_E","duration":3600}',
        '{\n  "device": {\n    "phoneNumber": "+46701234567"\n  },\n  "applicationServer": {\n    "ipv4Address": "198.51.100.10"\n  },\n  "qosProfile": "QOS_E",\n  "duration": 600\n}',
        '{"device":{"ipv4Address":{"publicAddress":"203.0.113.5","publicPort":59765}},"applicationServer":{"ipv6Address":"2001:db8::1"},"qosProfile":"QOS_L","duration":86400,"sink":"https://app.example.com/notify"}',
        '{"sessionId":"3fa85f64-5717-4562-b3fc-2c963f66afa6","qosStatus":"AVAILABLE","startedAt":"2024-05-12T17:32:01Z","expiresAt":"2024-05-12T18:32:01Z"}',
        '{"qosProfile":"QOS_S","devicePorts":{"ranges":[{"from":5010,"to":5020}],"ports":[5060,5070]}}',
        '{"a":1,"b":[true,false,null],"c":{"d":"e"}}', "[]", "{}", '{"key": "value"}',
        '{"emoji":"🚀","unicode":"café","escaped":"line\\nbreak \\"q\\""}',
        '{"messages":[{"role":"user","content":"Hi"}]}',
    ]
    specials = [
        "<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "<pad>", "<unk>", "<mask>",
        "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n",
        "<bos><start_of_turn>user\nYou are terse.\n\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>\n",
        "text<end_of_turn>more text", " <end_of_turn> ", "<start_of_turn><end_of_turn>",
        "<start_of_turn", "start_of_turn>", "<start_of_turn >", "<START_OF_TURN>", "<end_of_turn>\n\n",
        "<start_of_image>", "<end_of_image>", "[multimodal]", "<unused0>", "<unused42>", "<unused99x>",
        "<|im_start|>user\nHi<|im_end|>", "<|endoftext|>",
    ]
    mixes = [
        "Mix: café 🦀 123 <end_of_turn> 2001:db8::1 \t don't\n\n  end",
        "Ünïcödé + emoji 👨‍👩‍👧 + digits 9876543210 + JSON {\"k\":[1,2]}",
        "日本語 and English and العربية and Русский in one line.", "  \tfn 𝔣() -> 中 { \"👍\" }  \n",
        "QoS QOS_E for +46701234567 at 192.168.0.1 for 10 minutes, ok? 👍",
        "The BOP (blowout preventer) on the FPSO was inspected by ROV #3 at 1,250 m depth.",
    ]
    out = []
    for group in (prose, unicode, emoji, rare, numbers, whitespace, code, jsons, specials, mixes):
        out.extend(group)
    return out


def generated(rng):
    """Endless deterministic strings of several kinds, in a fixed rotation."""
    words = ("the model adapter rank QLoRA gradient batch loss token quality session device phone "
             "network latency profile request duration server address port minutes seconds "
             "training learning rate warmup schedule checkpoint export merge evaluate prompt reply "
             "Paris Berlin Tokyo Oslo Lisbon teaching small language job").split()
    accented = "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿœßĀāĂăĄąĆćČčĎďĘęĚěĞğĪīıŁłŃńŇňŌōŐőŘřŚśŞşŠšŢţŤťŪūŮůŰűŹźŻżŽž"
    cjk = "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长"
    emoji = ["😀", "😂", "🥲", "🤖", "🦀", "🚀", "🎉", "👍🏽", "👩‍💻", "🇯🇵", "❤️", "✨", "🍣", "🧪"]
    rare_chars = [chr(c) for c in (0x01, 0x02, 0x08, 0x0e, 0x10, 0x7f, 0x80, 0x9f, 0x2028, 0xe001,
                                   0xfff0, 0x1d11e, 0x1f0a1, 0x10ffff, 0xe0020, 0x2ff0)]
    pool = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
            + list(" \t\n.,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~`") + list(accented[:20]) + list(cjk[:20])
            + emoji[:6] + ["  ", "\n\n", "<end_of_turn>", "<start_of_turn>", "e\u0301", "\x00"])
    profiles = ["QOS_E", "QOS_S", "QOS_M", "QOS_L"]
    kind = 0
    while True:
        kind = (kind + 1) % 10
        if kind == 0:  # English-like sentence
            n = rng.randint(3, 18)
            s = " ".join(rng.choice(words) for _ in range(n))
            yield s[0].upper() + s[1:] + rng.choice([".", "?", "!", "", "..."])
        elif kind == 1:  # CAMARA QoD request body
            body = ('{"device":{"phoneNumber":"+%d"},"applicationServer":{"ipv4Address":"%d.%d.%d.%d"},'
                    '"qosProfile":"%s","duration":%d}') % (
                rng.randint(10**9, 10**12), rng.randint(1, 223), rng.randint(0, 255), rng.randint(0, 255),
                rng.randint(1, 254), rng.choice(profiles), rng.choice([60, 600, 3600, 86400]))
            if rng.random() < 0.5:
                body = body.replace(",", ",\n  ").replace("{", "{\n  ")
            yield body
        elif kind == 2:  # numbers and digit runs
            yield rng.choice([
                str(rng.randint(0, 10**rng.randint(1, 15))),
                f"{rng.uniform(-1e6, 1e6):.{rng.randint(0, 6)}f}",
                f"{rng.randint(0, 10**9):,}",
                " ".join(str(rng.randint(0, 999)) for _ in range(rng.randint(2, 8))),
                "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 30))),
            ])
        elif kind == 3:  # whitespace runs around words
            ws = rng.choice([" ", "  ", "\t", "\n", "\n\n", "\r\n", " \t"]) * rng.randint(1, 6)
            lead = " " * rng.randint(0, 4)
            yield lead + rng.choice(words) + ws + rng.choice(words) + (ws if rng.random() < 0.3 else "")
        elif kind == 4:  # code lines
            name = rng.choice(words).lower()
            yield rng.choice([
                f"fn {name}(x: u32) -> u32 {{\n    x + {rng.randint(0, 99)}\n}}",
                f"def {name}(x):\n    return x * {rng.randint(2, 9)}\n",
                f"let {name} = vec![{', '.join(str(rng.randint(0, 9)) for _ in range(rng.randint(1, 6)))}];",
                f"if {name} >= {rng.randint(0, 100)} {{ return; }}",
                f"\t{name}: {rng.choice(['int', 'str', 'bool'])} = None  # {rng.choice(words)}",
            ])
        elif kind == 5:  # accented text
            yield " ".join(
                "".join(rng.choice(accented + "aeiou") for _ in range(rng.randint(2, 8)))
                for _ in range(rng.randint(1, 6)))
        elif kind == 6:  # CJK with emoji
            yield "".join(rng.choice(cjk) for _ in range(rng.randint(1, 14))) + rng.choice(["", "。", "！"] + emoji)
        elif kind == 7:  # rare bytes forcing byte fallback
            yield "".join(rng.choice(rare_chars + list("ab ")) for _ in range(rng.randint(1, 8)))
        elif kind == 8:  # special tokens in text
            yield (f"<start_of_turn>{rng.choice(['user', 'model'])}\n{rng.choice(words)} "
                   f"{rng.choice(words)}<end_of_turn>" + rng.choice(["", "\n", "\n<start_of_turn>model\n"]))
        else:  # random mixture from the pool
            yield "".join(rng.choice(pool) for _ in range(rng.randint(1, 40)))


def corpus():
    out, seen = [], set()
    for s in hand_written():
        if s not in seen:
            seen.add(s)
            out.append(s)
    for s in generated(random.Random(20260228)):
        if len(out) >= N_CASES:
            break
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


CHAT_CASES = [
    ([{"role": "user", "content": "What is the capital of France?"}], True),
    ([{"role": "user", "content": "What is the capital of France?"}], False),
    ([{"role": "system", "content": "You are a precise assistant."},
      {"role": "user", "content": "Set QoS profile QOS_E for +46701234567 for 10 minutes."}], True),
    ([{"role": "system", "content": "You are a precise assistant."},
      {"role": "user", "content": "Say hi."},
      {"role": "assistant", "content": "Hi!"}], False),
    ([{"role": "system", "content": "Answer in JSON."},
      {"role": "user", "content": "First?"},
      {"role": "assistant", "content": "{\"n\": 1}"},
      {"role": "user", "content": "  Second, with spaces around.  \n"}], True),
    ([{"role": "user", "content": "line one\nline two\n\ttabbed"},
      {"role": "assistant", "content": "```rust\nfn main() {}\n```"}], False),
    ([{"role": "user", "content": "café 日本語 🦀"}], True),
    ([{"role": "system", "content": ""}, {"role": "user", "content": ""}], True),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf", nargs="?")
    ap.add_argument("--dump-backend")
    args = ap.parse_args()
    path = args.gguf or default_gguf_path()
    if not os.path.isfile(path):
        sys.exit(f"GGUF not found: {path} (pass it as the first argument)")
    path = os.path.abspath(path)

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
    if args.dump_backend:
        tok.backend_tokenizer.save(args.dump_backend)
    texts = corpus()
    assert len(texts) == N_CASES, len(texts)
    cases = []
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False)
        cases.append({"text": text, "ids": ids, "decoded": tok.decode(ids)})
    with_bos = tok.encode("Hello", add_special_tokens=True)
    without = tok.encode("Hello", add_special_tokens=False)
    sha = C.sha256_file(path)
    C.dump_json(os.path.join(C.FIXTURES, "tokenizer_gemma3.json"), {
        "reference": f"transformers {C.ver('transformers')} AutoTokenizer.from_pretrained(dir, gguf_file=...) "
                     f"({type(tok).__name__}, tokenizers {C.ver('tokenizers')}); "
                     "ids = encode(text, add_special_tokens=False), decoded = decode(ids)",
        "gguf": {"file": GGUF_NAME, "sha256": sha},
        "add_special_tokens": False,
        "transformers_adds_bos": with_bos[:1] == [tok.bos_token_id] and with_bos[1:] == without,
        "bos_token_id": tok.bos_token_id,
        "n_cases": len(cases),
        "n_decoded_differs_from_text": sum(1 for c in cases if c["decoded"] != c["text"]),
        "cases": cases,
    })
    chat = []
    for messages, add in CHAT_CASES:
        chat.append({
            "messages": messages,
            "add_generation_prompt": add,
            "rendered": tok.apply_chat_template(messages, chat_template=GEMMA3_CHAT_TEMPLATE,
                                                tokenize=False, add_generation_prompt=add),
        })
    C.dump_json(os.path.join(C.FIXTURES, "chat_template_gemma3.json"), {
        "reference": f"transformers {C.ver('transformers')} apply_chat_template(tokenize=False) with "
                     f"jinja2 {C.ver('jinja2')}; bos_token from the GGUF ({tok.bos_token!r})",
        "template_source": "google/gemma-3-*-it tokenizer_config.json chat_template",
        "template": GEMMA3_CHAT_TEMPLATE,
        "bos_token": tok.bos_token,
        "cases": chat,
    })
    print(f"{len(cases)} tokenizer cases, {len(chat)} chat cases; BOS added by transformers: "
          f"{with_bos[:1] == [tok.bos_token_id]}; decoded != text: "
          f"{sum(1 for c in cases if c['decoded'] != c['text'])}")


if __name__ == "__main__":
    main()
