#!/usr/bin/env python3
# Makes tests/fixtures/tokenizer_smollm2.json (text -> token ids, no BOS/EOS added,
# special-token strings in the text parsed as the special tokens).
#
# Setup (venv outside the repo):
#   python3 -m venv /opt/refenv
#   CMAKE_ARGS="-DGGML_NATIVE=off" /opt/refenv/bin/pip install llama-cpp-python==0.3.36
#   /opt/refenv/bin/pip install gguf==0.19.0 tokenizers==0.23.3 numpy==2.4.6 \
#       transformers==5.23.0 torch==2.15.0 accelerate==1.15.0 safetensors==0.8.0 jinja2==3.1.6
# Run:
#   /opt/refenv/bin/python tests/reference/make_tokenizer_fixture.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf]
#
# Reference ids: `tokenizers` (see _common.load_reference_tokenizer). Cross-checks, printed
# and recorded under "cross_checks": llama.cpp's tokenizer on the same GGUF (llama-cpp-python,
# tokenize(add_bos=False, special=True)) and transformers' GGUF tokenizer conversion
# (AutoTokenizer.from_pretrained(dir, gguf_file=...)).
import argparse
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402


def hand_written():
    prose = [
        "Hello, world!",
        "Hello world",
        "The quick brown fox jumps over the lazy dog.",
        "What is the capital of France?",
        "Write a haiku about the sea.",
        "The capital of France is Paris.",
        "SmolLM2 is a family of compact language models.",
        "QLoRA fine-tunes a 4-bit quantized model with low-rank adapters.",
        "It was the best of times, it was the worst of times.",
        "To be, or not to be: that is the question.",
        "A man, a plan, a canal: Panama!",
        "Mr. Smith went to Washington D.C. on Jan. 5th, 2024.",
        "e.g. i.e. etc. vs. a.m. p.m.",
        "UPPERCASE lowercase MiXeDcAsE camelCase snake_case kebab-case",
        "Supercalifragilisticexpialidocious antidisestablishmentarianism",
        "Hmm... well -- maybe; perhaps (not)? [yes] {no} <ok>",
        "!!!???...,,,;;;:::",
        "\"quoted\" 'single' `backtick` «guillemets» „German“ “curly”",
        "$100 €50 £20 ¥1000 ₹500 ₿0.5",
        "100% of 50% is 50%; 3 > 2 < 4 = 4 != 5",
        "a+b=c; x*y/z; 2^10; ~tilde; |pipe|; \\backslash\\",
        "user@example.com https://example.org/path?q=1&r=2#frag",
        "C:\\Users\\tunelab\\models\\smollm2.gguf /home/user/.cache/tunelab",
        "#hashtag @mention r/rust u/someone",
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.",
    ]
    contractions = [
        "I'll", "don't", "'S", "'s", "it's", "It's", "I'm", "you're", "we've", "they'd", "can't",
        "won't", "shouldn't've", "y'all", "O'Reilly", "rock 'n' roll", "'tis", "ma'am",
        "I'LL", "DON'T", "IT'S", "WE'VE", "THEY'RE", "YOU'D", "I'M",
        "He said 'hello' and left.", "the dog's bone", "the dogs' bones", "it’s (curly apostrophe)",
        "'''triple'''", "'", "''", " 's", "'ll've",
    ]
    unicode = [
        "café", "naïve résumé", "Ångström", "Müller straße", "façade coöperate",
        "São Paulo, Brasília, Bogotá", "Łódź Kraków Gdańsk", "Ærøskøbing", "İstanbul ığdır",
        "日本語のテキスト", "東京は日本の首都です。", "中文文本测试", "你好，世界！", "한국어 텍스트입니다",
        "مرحبا بالعالم", "اللغة العربية جميلة", "שלום עולם", "Привет, мир!", "Съешь же ещё этих мягких французских булок.",
        "Γειά σου Κόσμε", "नमस्ते दुनिया", "สวัสดีครับ", "Xin chào thế giới", "ᚠᚢᚦᚨᚱᚲ",
        "e\u0301 (e + combining acute)", "n\u0303o", "a\u0308\u0301", "Z\u0351\u0352\u0353a\u0354l\u0355g\u0356o",
        "\u00e9 vs e\u0301", "ﬁ ligature ﬂ", "Ⅻ Ⅳ ⅷ", "½ ¼ ¾ ⅓", "x² + y³ = z⁴", "H₂O CO₂",
        "１２３ ＡＢＣ", "٠١٢٣٤٥٦٧٨٩", "०१२३", "\u200b zero width space", "non\u00a0breaking\u00a0space",
        "soft\u00adhyphen", "right\u200fto\u200eleft", "\ufeffBOM at start", "tab\u00a0nbsp\u2003emsp\u3000ideographic",
        "°C ± µ Ω ∑ ∫ √ ∞ ≈ ≠ ≤ ≥", "→ ← ↑ ↓ ⇒ ⇔", "♠ ♣ ♥ ♦ ★ ☆", "ℕ ℤ ℚ ℝ ℂ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕄𝕒𝕥𝕙",
        "\U0001F600", "\x7f\x01\x02 control chars", "\ufffd replacement",
    ]
    emoji = [
        "😀", "😀😃😄", "I love 🦀 Rust", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🏴‍☠️", "❤️", "❤️‍🔥",
        "🇫🇷", "🇬🇧🇺🇸🇩🇪🇯🇵", "🇳🇴 Norway flag", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "1️⃣ 2️⃣ #️⃣", "🧑🏿‍🚀", "✅ ❌ ⚠️",
        "🔥🔥🔥 hot", "🙂 smile 🙃", "emoji at end 🎉",
    ]
    numbers = [
        "0", "1", "12", "123", "1234", "12345", "1234567890", "1234567890123", "3.14159", "1,000,000",
        "-42", "+42", "1e10", "6.022e23", "0x1F", "0b1010", "007", "2024-01-15", "12:34:56", "v1.2.3",
        "1/2", "50%", "$1,234.56", "1.000.000,00", "٣.١٤", "In 1999, 42 people paid $3.50 each.",
        "3rd 21st 100th", "99 bottles", "Room 101", "ISO 8601: 2025-02-07T12:00:00Z",
    ]
    whitespace = [
        "", " ", "  ", "   ", "\t", "\n", "\n\n", "\n\n\n", "\r\n", " \n ", "\t\t", "  \t  ",
        "double  space", "triple   space", "tab\tseparated\tvalues", "new\nline", "two\n\nlines",
        "trailing space ", "trailing spaces   ", " leading space", "   leading spaces", "\tleading tab",
        "\nleading newline", "trailing newline\n", "mixed \t \n whitespace", "a\n\n\nb", "a \n b",
        "word\r\nword", "  both sides  ", "line1\nline2\nline3\n", " \u3000 ",
        # whitespace runs right before a digit / numeric char (Digits pre-tokenizer edge cases)
        "  1", "a  1", "\n\n1", "x\t\t2", "   42", "version  2", "1  2  3", " ½", "  ½", "page\n\n\n3",
    ]
    code = [
        "fn main() {\n    println!(\"Hello, world!\");\n}\n",
        "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}",
        "let v: Vec<u8> = (0..10).map(|x| x * 2).collect();",
        "impl<T: Clone + Send> Foo<T> for Bar<'a, T> where T: 'static {}",
        "#[derive(Debug, Clone, PartialEq)]\nstruct Point { x: f64, y: f64 }",
        "match x {\n    Some(v) => v,\n    None => return Err(anyhow!(\"missing\")),\n}",
        "def f(x):\n    if x > 0:\n        return x\n    else:\n        return -x\n",
        "class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.lin = nn.Linear(576, 49152)\n",
        "for i in range(10):\n\tprint(i)\n",
        "import numpy as np\nx = np.zeros((3, 4), dtype=np.float32)",
        "    indented four\n        indented eight\n",
        "if (a && b || !c) { x += 1; } else { y -= 2; }",
        "SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name;",
        "<div class=\"container\"><p>Hello</p></div>",
        "#include <stdio.h>\nint main(void) { return 0; }",
        "console.log(`template ${x}`);",
        "$ cargo test --release -- --nocapture",
        "x = [1, 2, 3]  # comment",
        "// line comment\n/* block */",
        "```rust\nlet x = 1;\n```",
    ]
    jsons = [
        '{"device":{"phoneNumber":"+123456789"},"applicationServer":{"ipv4Address":"192.168.0.1"},"qosProfile":"QOS_E","duration":3600}',
        '{\n  "device": {\n    "phoneNumber": "+46701234567"\n  },\n  "applicationServer": {\n    "ipv4Address": "198.51.100.10"\n  },\n  "qosProfile": "QOS_E",\n  "duration": 600\n}',
        '{"device":{"ipv4Address":{"publicAddress":"203.0.113.5","publicPort":59765}},"applicationServer":{"ipv6Address":"2001:db8::1"},"qosProfile":"QOS_L","duration":86400,"sink":"https://app.example.com/notify"}',
        '{"sessionId":"3fa85f64-5717-4562-b3fc-2c963f66afa6","qosStatus":"AVAILABLE","startedAt":"2024-05-12T17:32:01Z","expiresAt":"2024-05-12T18:32:01Z"}',
        '{"qosProfile":"QOS_S","devicePorts":{"ranges":[{"from":5010,"to":5020}],"ports":[5060,5070]}}',
        '{"a":1,"b":[true,false,null],"c":{"d":"e"}}',
        '[]', '{}', '{"key": "value"}', '{"emoji":"🚀","unicode":"café","escaped":"line\\nbreak \\"q\\""}',
        '{"temperature":0.7,"top_p":0.95,"max_tokens":256}',
        '{"messages":[{"role":"user","content":"Hi"}]}',
    ]
    phones_ips = [
        "+44 20 7946 0958", "+1-555-0100", "+46701234567", "+123456789", "(555) 123-4567", "+33 1 23 45 67 89",
        "tel:+1-201-555-0123", "00 49 30 901820",
        "192.168.0.1", "10.0.0.255", "255.255.255.0", "127.0.0.1:8080", "203.0.113.5/24",
        "2001:db8::1", "fe80::1%eth0", "::1", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "[2001:db8::1]:443",
        "ff02::1:ff00:0", "::ffff:192.0.2.128", "Connect to 192.168.0.1 or 2001:db8::1 now.",
        "MAC 00:1A:2B:3C:4D:5E",
    ]
    oil_gas = [
        "DP", "BOP", "ROV", "FPSO", "DP BOP ROV FPSO", "The FPSO's DP system failed; the ROV inspected the BOP.",
        "MODU", "HPHT", "ESD", "PSV", "LWD MWD", "TVD MD KOP", "bbl/d", "MMscfd", "API gravity 32°",
        "P&ID", "HAZOP", "SIMOPS", "DP2/DP3 class vessel", "BOP stack test at 15,000 psi",
    ]
    specials = [
        "<|im_start|>", "<|im_end|>", "<|endoftext|>",
        "<|im_start|>user\nHello<|im_end|>\n",
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
        "text<|endoftext|>more text", " <|im_end|> ", "<|im_start|><|im_end|>", "<|endoftext|><|endoftext|>",
        "<|im_start", "im_start|>", "<|im_start|", "<| im_start |>", "<|IM_START|>", "<|endoftext|>\n\n",
        "<repo_name>tunelab<file_sep>src/main.rs", "<filename>lib.rs", "<gh_stars>100", "<jupyter_code>x=1<jupyter_output>",
        "<empty_output>", "<issue_start>bug<issue_comment>fix<issue_closed>",
    ]
    mixes = [
        "Mix: café 🦀 123 <|im_end|> 2001:db8::1 \t don't\n\n  end",
        "Ünïcödé + emoji 👨‍👩‍👧 + digits 9876543210 + JSON {\"k\":[1,2]}",
        "日本語 and English and العربية and Русский in one line.",
        "  \tfn 𝔣() -> 中 { \"👍\" }  \n",
        "QoS QOS_E for +46701234567 at 192.168.0.1 for 10 minutes, ok? 👍",
        "The BOP (blowout preventer) on the FPSO was inspected by ROV #3 at 1,250 m depth.",
    ]
    out = []
    for group in (prose, contractions, unicode, emoji, numbers, whitespace, code, jsons, phones_ips,
                  oil_gas, specials, mixes):
        out.extend(group)
    return out


def generated():
    rng = random.Random(20250207)
    out = []
    # long numbers and digit runs with separators
    for n in (5, 9, 13, 17, 25, 40):
        out.append("".join(str((i * 7 + 3) % 10) for i in range(n)))
    for v in (3.0, 3.14159, 2.718281828, 1e-7, 123456.789, -0.5):
        out.append(repr(v))
    for n in (1000, 65536, 1000000, 2**31 - 1, 10**12):
        out.append(f"{n:,}")
        out.append(f"The value is {n} units.")
    # whitespace runs of every small length, before/after words
    for k in range(1, 9):
        out.append("a" + " " * k + "b")
        out.append(" " * k + "x")
        out.append("x" + " " * k)
        out.append("x" + "\n" * k + "y")
    for k in range(1, 5):
        out.append("a" + "\t" * k + "b")
        out.append("if x:\n" + "    " * k + "pass")
    # word × punctuation combinations
    words = ["hello", "Hello", "HELLO", "world", "tune", "lab", "don't", "café", "日本", "🦀"]
    puncts = ["", ".", ",", "!", "?", ":", ";", "...", "'s", "'ll", " ", "\n"]
    for w in words:
        for p in rng.sample(puncts, 4):
            out.append(w + p)
            out.append(" " + w + p)
    # random mixtures from a character pool (deterministic)
    pool = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
            + list(" \t\n.,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~`")
            + list("éèüößñçøåæœ") + list("日本語中文한국어") + list("привет") + list("مرحبا")
            + ["😀", "👍🏽", "👩‍💻", "🇫🇷", "e\u0301", "  ", "\n\n", "<|im_end|>", "'s", "2001:db8::1"])
    for i in range(80):
        n = rng.randint(1, 40)
        out.append("".join(rng.choice(pool) for _ in range(n)))
    # sentences assembled from vocabulary
    vocab = ["the", "model", "adapter", "rank", "QLoRA", "gradient", "batch", "loss", "token", "GGUF",
             "quantized", "4-bit", "NF4", "LoRA", "α=16", "r=8", "epoch", "lr=2e-4", "FPSO", "QOS_E"]
    for i in range(30):
        n = rng.randint(3, 15)
        s = " ".join(rng.choice(vocab) for _ in range(n))
        out.append(s[0].upper() + s[1:] + rng.choice([".", "!", "?", "", "\n"]))
    return out


def save_rebuilt(gguf_path, out_dir):
    """Writes the GGUF-rebuilt tokenizer.json + a minimal tokenizer_config.json (NOT the upstream files)."""
    os.makedirs(out_dir, exist_ok=True)
    tok = C.build_tokenizer_from_gguf(gguf_path)
    tok.save(os.path.join(out_dir, "tokenizer.json"), pretty=False)
    meta = C.read_gguf_tokenizer_meta(gguf_path)
    added = {str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                      "special": True} for i, (t, ty) in enumerate(zip(meta["tokens"], meta["token_type"])) if ty == 3}
    cfg = {
        "_note": "rebuilt by tunelab tests/reference/make_tokenizer_fixture.py from the GGUF metadata; "
                 "not the upstream HuggingFaceTB file",
        "add_bos_token": meta["add_bos"], "add_prefix_space": False, "added_tokens_decoder": added,
        "bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|im_end|>",
        "unk_token": "<|endoftext|>", "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "chat_template": meta["chat_template"], "clean_up_tokenization_spaces": False,
        "model_max_length": 8192, "tokenizer_class": "GPT2Tokenizer", "vocab_size": len(meta["tokens"]),
    }
    C.dump_json(os.path.join(out_dir, "tokenizer_config.json"), cfg)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf", nargs="?", default=None)
    ap.add_argument("--out", default=os.path.join(C.FIXTURES, "tokenizer_smollm2.json"))
    ap.add_argument("--no-crosscheck", action="store_true")
    ap.add_argument("--rebuilt-dir", default=os.path.join(C.FIXTURES, "smollm2_tokenizer_rebuilt"),
                    help="where to save the GGUF-rebuilt tokenizer.json/tokenizer_config.json ('' = don't)")
    args = ap.parse_args()
    gguf_path = C.resolve_gguf(args.gguf)

    texts, seen = [], set()
    for t in hand_written() + generated():
        if t not in seen:
            seen.add(t)
            texts.append(t)

    tok, desc = C.load_reference_tokenizer(gguf_path)
    cases = [{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids} for t in texts]

    # sanity: decode round-trip (byte-level BPE is lossless)
    bad_rt = [c["text"] for c in cases if tok.decode(c["ids"], skip_special_tokens=False) != c["text"]]

    cross = {}
    if not args.no_crosscheck:
        llm = C.llama_vocab_only(gguf_path)
        diffs = []
        for c in cases:
            got = C.llama_tokenize(llm, c["text"])
            if got != c["ids"]:
                diffs.append({"text": c["text"], "reference": c["ids"], "llamacpp": got})
        cross["llamacpp"] = {"tool": f"llama-cpp-python {C.ver('llama_cpp_python')} Llama.tokenize(add_bos=False, special=True)",
                             "n_disagree": len(diffs), "disagreements": diffs}
        try:
            from transformers import AutoTokenizer
            hf = AutoTokenizer.from_pretrained(os.path.dirname(gguf_path), gguf_file=os.path.basename(gguf_path))
            diffs = []
            for c in cases:
                got = hf.encode(c["text"], add_special_tokens=False)
                if got != c["ids"]:
                    diffs.append({"text": c["text"], "reference": c["ids"], "transformers_gguf": got})
            cross["transformers_gguf"] = {
                "tool": f"transformers {C.ver('transformers')} AutoTokenizer.from_pretrained(gguf_file=...) "
                        f"({type(hf).__name__}), encode(add_special_tokens=False)",
                "n_disagree": len(diffs), "disagreements": diffs}
        except Exception as e:  # noqa: BLE001
            cross["transformers_gguf"] = {"error": repr(e)}
        for k, v in cross.items():
            print(f"cross-check {k}: {v.get('n_disagree', v.get('error'))} disagreements", file=sys.stderr)
            for d in v.get("disagreements", [])[:40]:
                print("   ", repr(d["text"]), d, file=sys.stderr)

    obj = {
        "reference": desc,
        "gguf": {"file": os.path.basename(gguf_path), "sha256": C.sha256_file(gguf_path)},
        "add_special_tokens": False,
        "special_tokens_parsed": True,
        "n_cases": len(cases),
        "roundtrip_failures": bad_rt,
        "cross_checks": {k: {kk: vv for kk, vv in v.items()} for k, v in cross.items()},
        "cases": cases,
    }
    C.dump_json(args.out, obj)
    if args.rebuilt_dir:
        save_rebuilt(gguf_path, args.rebuilt_dir)
    print(f"wrote {args.out}: {len(cases)} cases, round-trip failures: {len(bad_rt)}", file=sys.stderr)


if __name__ == "__main__":
    main()
