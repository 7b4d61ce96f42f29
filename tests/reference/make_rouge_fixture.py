"""Writes tests/fixtures/rouge_l.json: ROUGE-L F-measures from Google's rouge_score, scored the
way self-instruct filters new instructions (RougeScorer(["rougeL"], use_stemmer=False)).

    python3 -m venv /tmp/rvenv && /tmp/rvenv/bin/pip install rouge-score==0.1.2
    /tmp/rvenv/bin/python tests/reference/make_rouge_fixture.py
"""

import json
import pathlib

from rouge_score import rouge_scorer

PAIRS = [
    ("Explain the BGP LOCAL_PREF attribute.", "What does the BGP LOCAL_PREF attribute do?"),
    ("Explain the BGP LOCAL_PREF attribute.", "Explain the BGP LOCAL_PREF attribute."),
    ("Give three tips for staying healthy.", "Write a poem about the sea."),
    ("Summarise the log below.", "summarise   THE log, below!!"),
    ("Convert 5 km to miles.", "Convert 10 miles to km."),
    ("a b c d e f", "f e d c b a"),
    ("Traduis « bonjour » en anglais.", "Traduis bonjour en anglais."),
    ("Write a haiku about 5G slicing and QoS.", "Write a haiku about QoS and 5G network slicing."),
    ("!!!", "What is BGP?"),
    ("", ""),
    ("the the the cat", "the cat the"),
    ("Why does a BGP session flap when the hold timer expires?",
     "Why would an eBGP session keep flapping after its hold timer expired?"),
]

scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
cases = [
    {"a": a, "b": b, "f": scorer.score(a, b)["rougeL"].fmeasure}
    for a, b in PAIRS
]
out = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "rouge_l.json"
out.write_text(json.dumps({"source": "rouge_score 0.1.2", "cases": cases}, indent=1) + "\n")
print(f"wrote {len(cases)} cases to {out}")
