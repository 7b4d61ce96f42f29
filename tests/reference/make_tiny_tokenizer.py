# A 96-token byte-level BPE tokenizer and ChatML tokenizer_config.json for the tiny Llama of
# tests/fixtures/lora_tiny (vocab 96), so that export tests can write and read a complete model.
#
# Run (from the repository root; tokenizers==0.23.3 as pinned in README.md; deterministic):
#   /opt/refenv/bin/python tests/reference/make_tiny_tokenizer.py
# Writes tests/fixtures/lora_tiny/tokenizer/{tokenizer.json,tokenizer_config.json}.
#
# Ids 0-2 are the special tokens <|endoftext|>, <|im_start|>, <|im_end|> (config.json of the base
# names bos 1 and eos 2). Ids 3-95: the byte-level symbols of space (Ġ) and newline (Ċ), a-z,
# A-Z, 0-9, 25 punctuation marks, then merges for "Ġt", "he", "Ġthe", "in". The pre-tokenizer is
# plain ByteLevel (llama.cpp's "gpt2"), so the same tokenizer also travels through GGUF.
import json
import os

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(REPO, "tests", "fixtures", "lora_tiny", "tokenizer")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

symbols = ["Ġ", "Ċ"]
symbols += [chr(c) for c in range(ord("a"), ord("z") + 1)]
symbols += [chr(c) for c in range(ord("A"), ord("Z") + 1)]
symbols += [chr(c) for c in range(ord("0"), ord("9") + 1)]
symbols += list(".,!?:;'\"-()[]{}/=_+*#@&%<")
merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n")]
tokens = SPECIALS + symbols + ["".join(m) for m in merges]
assert len(tokens) == 96, len(tokens)
vocab = {t: i for i, t in enumerate(tokens)}

tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
tok.decoder = decoders.ByteLevel()
tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
assert tok.encode("the the tin").tokens == ["t", "he", "Ġthe", "Ġt", "in"], tok.encode("the the tin").tokens

os.makedirs(OUT, exist_ok=True)
tok.save(os.path.join(OUT, "tokenizer.json"))
config = {
    "tokenizer_class": "PreTrainedTokenizerFast",
    "bos_token": "<|im_start|>",
    "eos_token": "<|im_end|>",
    "pad_token": "<|endoftext|>",
    "chat_template": CHATML,
}
with open(os.path.join(OUT, "tokenizer_config.json"), "w") as f:
    json.dump(config, f, indent=2)
    f.write("\n")
print("wrote", OUT)
