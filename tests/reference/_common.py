"""Shared helpers for the tunelab reference-fixture scripts (not a fixture maker itself).

GGUF location, in order: the path given on the command line; else
$TUNELAB_HOME/models/SmolLM2-135M-Instruct.Q4_1.gguf when TUNELAB_HOME is set;
else ~/.cache/tunelab/models/SmolLM2-135M-Instruct.Q4_1.gguf.
"""

import hashlib
import json
import os
import sys
from importlib import metadata

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(REPO, "tests", "fixtures")
REAL_TOKENIZER_DIR = os.path.join(FIXTURES, "smollm2_tokenizer")


def default_gguf_path():
    home = os.environ.get("TUNELAB_HOME")
    if home:
        return os.path.join(home, "models", GGUF_NAME)
    return os.path.join(os.path.expanduser("~"), ".cache", "tunelab", "models", GGUF_NAME)


def resolve_gguf(arg):
    path = arg or default_gguf_path()
    if not os.path.isfile(path):
        sys.exit(f"GGUF not found: {path} (pass it as the first argument)")
    return os.path.abspath(path)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ver(pkg):
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def read_gguf_tokenizer_meta(gguf_path):
    """Vocab, merges, token types, special ids and chat template from the GGUF metadata."""
    from gguf import GGUFReader

    r = GGUFReader(gguf_path)
    f = r.fields
    meta = {
        "tokens": list(f["tokenizer.ggml.tokens"].contents()),
        "merges": list(f["tokenizer.ggml.merges"].contents()),
        "token_type": list(f["tokenizer.ggml.token_type"].contents()),
        "bos": int(f["tokenizer.ggml.bos_token_id"].contents()),
        "eos": int(f["tokenizer.ggml.eos_token_id"].contents()),
        "add_bos": bool(f["tokenizer.ggml.add_bos_token"].contents()),
        "pre": f["tokenizer.ggml.pre"].contents(),
        "model": f["tokenizer.ggml.model"].contents(),
        "chat_template": f["tokenizer.chat_template"].contents(),
    }
    return meta


def build_tokenizer_from_gguf(gguf_path):
    """A `tokenizers.Tokenizer` with SmolLM's HF pipeline, vocab/merges taken from the GGUF.

    Pipeline (as in HuggingFaceTB/SmolLM*-Instruct tokenizer.json and llama.cpp's
    'smollm' pre-tokenizer): no normalizer; pre-tokenizer = Sequence[Digits(individual),
    ByteLevel(add_prefix_space=False, use_regex=True)]; BPE model; ByteLevel decoder;
    control tokens (token_type 3) registered as special added tokens.
    """
    from tokenizers import Tokenizer, AddedToken, decoders, models, pre_tokenizers, processors

    m = read_gguf_tokenizer_meta(gguf_path)
    vocab = {t: i for i, t in enumerate(m["tokens"])}
    merges = [tuple(x.split(" ", 1)) for x in m["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, dropout=None, unk_token=None,
                               fuse_unk=False, byte_fallback=False))
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    tok.post_processor = processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True)
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    specials = [AddedToken(t, special=True, normalized=False, lstrip=False, rstrip=False, single_word=False)
                for t, ty in zip(m["tokens"], m["token_type"]) if ty == 3]
    tok.add_special_tokens(specials)
    return tok


def load_reference_tokenizer(gguf_path):
    """Returns (tokenizers.Tokenizer, description).

    Prefers a real HF tokenizer.json in tests/fixtures/smollm2_tokenizer/ when present,
    else the GGUF reconstruction above.
    """
    from tokenizers import Tokenizer

    real = os.path.join(REAL_TOKENIZER_DIR, "tokenizer.json")
    if os.path.isfile(real):
        return Tokenizer.from_file(real), f"tokenizers {ver('tokenizers')} loading {os.path.relpath(real, REPO)}"
    return build_tokenizer_from_gguf(gguf_path), (
        f"tokenizers {ver('tokenizers')} with SmolLM's HF pipeline (Digits(individual)+ByteLevel BPE) "
        f"rebuilt from the GGUF's tokenizer.ggml.tokens/merges")


def llama_vocab_only(gguf_path):
    from llama_cpp import Llama

    return Llama(model_path=gguf_path, vocab_only=True, verbose=False)


def llama_tokenize(llm, text):
    # add_bos=False, special=True => parse_special: control-token strings become control tokens
    return list(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))


def dump_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")
