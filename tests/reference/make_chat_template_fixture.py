#!/usr/bin/env python3
# Makes tests/fixtures/chat_template_smollm2.json: conversations rendered with the GGUF's own
# tokenizer.chat_template through transformers' apply_chat_template(tokenize=False), plus
# the token ids of each rendered string (reference tokenizer of make_tokenizer_fixture.py,
# add_special_tokens=False, special-token strings parsed as special tokens).
#
# Setup (venv outside the repo):
#   python3 -m venv /opt/refenv
#   CMAKE_ARGS="-DGGML_NATIVE=off" /opt/refenv/bin/pip install llama-cpp-python==0.3.36
#   /opt/refenv/bin/pip install gguf==0.19.0 tokenizers==0.23.3 numpy==2.4.6 \
#       transformers==5.23.0 torch==2.15.0 accelerate==1.15.0 safetensors==0.8.0 jinja2==3.1.6
# Run:
#   /opt/refenv/bin/python tests/reference/make_chat_template_fixture.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf]
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

CONVERSATIONS = [
    # (messages, add_generation_prompt)
    ([{"role": "user", "content": "What is the capital of France?"}], True),
    ([{"role": "user", "content": "What is the capital of France?"}], False),
    ([{"role": "system", "content": "You are a concise assistant."},
      {"role": "user", "content": "Write a haiku about the sea."}], True),
    ([{"role": "system", "content": "You are a concise assistant."},
      {"role": "user", "content": "Write a haiku about the sea."}], False),
    ([{"role": "user", "content": "Hi!"},
      {"role": "assistant", "content": "Hello! How can I help you today?"},
      {"role": "user", "content": "Tell me a joke."},
      {"role": "assistant", "content": "Why did the crab never share? Because it was shellfish."},
      {"role": "user", "content": "Another one, please."}], True),
    ([{"role": "system", "content": "You convert requests to CAMARA QoD JSON."},
      {"role": "user", "content": "Convert to JSON: set QoS profile QOS_E for phone +46701234567 for 10 minutes"},
      {"role": "assistant", "content": '{"device":{"phoneNumber":"+46701234567"},"qosProfile":"QOS_E","duration":600}'}], False),
    ([{"role": "user", "content": "Traduis: « Où est la café ? » — 日本語で答えて 🙂 Привет! مرحبا"}], True),
    ([{"role": "user", "content": "Line one\nLine two\n\n  indented line\n\tTabbed\n"},
      {"role": "assistant", "content": "```python\ndef f(x):\n    return x * 2\n```\n"}], True),
    ([{"role": "system", "content": ""}, {"role": "user", "content": ""}], True),
    ([{"role": "assistant", "content": "I start the conversation."},
      {"role": "user", "content": "OK."}], True),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf", nargs="?", default=None)
    ap.add_argument("--out", default=os.path.join(C.FIXTURES, "chat_template_smollm2.json"))
    args = ap.parse_args()
    gguf_path = C.resolve_gguf(args.gguf)

    from transformers import PreTrainedTokenizerFast

    meta = C.read_gguf_tokenizer_meta(gguf_path)
    template = meta["chat_template"]
    tok, desc = C.load_reference_tokenizer(gguf_path)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                 unk_token="<|endoftext|>", pad_token="<|im_end|>")

    cases = []
    for messages, agp in CONVERSATIONS:
        rendered = hf.apply_chat_template(messages, chat_template=template, tokenize=False,
                                          add_generation_prompt=agp)
        ids = tok.encode(rendered, add_special_tokens=False).ids
        cases.append({"messages": messages, "add_generation_prompt": agp, "rendered": rendered, "ids": ids})

    # cross-check the ids with llama.cpp's tokenizer on the same GGUF
    llm = C.llama_vocab_only(gguf_path)
    mismatches = [i for i, c in enumerate(cases) if C.llama_tokenize(llm, c["rendered"]) != c["ids"]]
    print(f"llama.cpp id cross-check: {len(mismatches)} mismatches {mismatches}", file=sys.stderr)

    obj = {
        "reference": f"transformers {C.ver('transformers')} PreTrainedTokenizerFast.apply_chat_template("
                     f"tokenize=False, chat_template=<gguf template>) (jinja2 {C.ver('jinja2')}); ids: {desc}, "
                     f"add_special_tokens=False",
        "template_source": "gguf tokenizer.chat_template",
        "ids_crosscheck": f"llama-cpp-python {C.ver('llama_cpp_python')} tokenize(add_bos=False, special=True): "
                          f"{len(mismatches)} mismatches",
        "template": template,
        "gguf": {"file": os.path.basename(gguf_path), "sha256": C.sha256_file(gguf_path)},
        "cases": cases,
    }
    C.dump_json(args.out, obj)
    print(f"wrote {args.out}: {len(cases)} cases", file=sys.stderr)


if __name__ == "__main__":
    main()
