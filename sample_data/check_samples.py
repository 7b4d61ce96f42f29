#!/usr/bin/env python3
"""Checks tunelab's sample datasets. Exit status 0 when every check passes.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install jsonschema tokenizers
    /tmp/venv/bin/python sample_data/check_samples.py

jsonschema is required (CAMARA schema validation). tokenizers is optional: with it, and the
SmolLM2 tokenizer fixture in tests/fixtures, every row's chat-formatted length is checked
against max_seq_length of its config.toml.

What is checked:
  * every JSONL file: UTF-8 without BOM, one JSON object per line, newline-terminated,
    exactly the expected keys with non-empty values, no duplicate lines or prompts;
  * the files on disk equal a fresh make_samples.build() (the generator is reproducible);
  * no near-duplicate prompts inside a training set, inside an eval set, or between an eval set
    and any training file of the same example (similarity after masking identifiers/numbers);
  * CAMARA: every completion / chosen / expect_json validates against schema.json (formats
    asserted), is the compact canonical JSON with the conventional key order, one device and
    one server identifier, ports only as {"ports"} or {"ranges"}; the identifiers, ports and
    duration in the JSON are the ones the prompt states (duration re-parsed from the phrase
    independently); every rejected answer breaks exactly the one rule it was written to break;
  * Oil & Gas: coverage of each required abbreviation; answers spell out the Oil & Gas
    expansion, rejected answers never do; eval must_contain strings are taught by the training
    data and must_not_contain strings never appear in a training answer;
  * edu: system first, then user/assistant alternating, ending with the assistant;
  * config.toml files: every key present with the right type, data files exist.
"""

import difflib
import importlib.util
import ipaddress
import json
import os
import re
import sys
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

FAILURES = []


def fail(msg):
    FAILURES.append(msg)
    print("FAIL:", msg)


def ok(msg):
    print("ok:  ", msg)


# ------------------------------------------------------------------------------- files

SPEC = {  # path: (required keys, optional keys)
    "camara_qod/sft.jsonl": ({"prompt", "completion"}, set()),
    "camara_qod/eval.jsonl": ({"prompt", "expect_json", "schema"}, set()),
    "camara_qod/preference.jsonl": ({"prompt", "chosen", "rejected"}, set()),
    "oilgas/sft.jsonl": ({"instruction", "output"}, {"input"}),
    "oilgas/eval.jsonl": ({"prompt", "must_contain", "must_not_contain"}, set()),
    "oilgas/preference.jsonl": ({"prompt", "chosen", "rejected"}, set()),
    "edu/sft.jsonl": ({"messages"}, set()),
    "bgp/sft.jsonl": ({"instruction", "input", "output"}, set()),
}
MINIMUM = {
    "camara_qod/sft.jsonl": 100, "camara_qod/eval.jsonl": 25, "camara_qod/preference.jsonl": 60,
    "oilgas/sft.jsonl": 60, "oilgas/eval.jsonl": 20, "oilgas/preference.jsonl": 40,
    "edu/sft.jsonl": 12, "bgp/sft.jsonl": 20,
}


def load_jsonl(rel):
    path = os.path.join(HERE, rel)
    raw = open(path, "rb").read()
    if raw.startswith(b"\xef\xbb\xbf"):
        fail(rel + ": UTF-8 BOM")
    try:
        text = raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError as e:
        fail("%s: not UTF-8 (%s)" % (rel, e))
        return [], raw
    if not text.endswith("\n"):
        fail(rel + ": last line not newline-terminated")
    rows, seen = [], set()
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if not line.strip():
            fail("%s:%d: empty line" % (rel, n))
            continue
        if line.rstrip().endswith(","):
            fail("%s:%d: trailing comma" % (rel, n))
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            fail("%s:%d: does not parse (%s)" % (rel, n, e))
            continue
        if not isinstance(obj, dict):
            fail("%s:%d: not a JSON object" % (rel, n))
            continue
        if line in seen:
            fail("%s:%d: duplicate line" % (rel, n))
        seen.add(line)
        req, opt = SPEC[rel]
        if not req <= set(obj):
            fail("%s:%d: missing keys %s" % (rel, n, sorted(req - set(obj))))
        if set(obj) - req - opt:
            fail("%s:%d: unexpected keys %s" % (rel, n, sorted(set(obj) - req - opt)))
        for k, v in obj.items():
            if v in ("", [], {}, None) and not (rel == "bgp/sft.jsonl" and k == "input"):
                fail("%s:%d: empty value for %s" % (rel, n, k))
        rows.append(obj)
    return rows, raw


# ------------------------------------------------------------------------------- near-duplicates

IPV6_RE = re.compile(r"\b[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{0,4}){2,7}(?:/\d{1,3})?")
IPV4_RE = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?\b")
PHONE_RE = re.compile(r"(?:\+|\b00|\()?[\d()+][\d ()+\-]{6,}\d")


def normalise(text):
    t = IPV6_RE.sub(" <ip> ", text)
    t = IPV4_RE.sub(" <ip> ", t)
    t = PHONE_RE.sub(" <num> ", t)
    t = re.sub(r"\d+", "0", t.lower())
    return re.sub(r"\s+", " ", t).strip()


NEAR = 0.80  # normalised prompts this similar or more count as near-duplicates


def near_dups(label, group_a, group_b=None):
    """Max similarity within group_a (group_b None) or between the two groups; fail at >= NEAR."""
    na = [normalise(x) for x in group_a]
    nb = na if group_b is None else [normalise(x) for x in group_b]
    worst = (0.0, "", "")
    bad = 0
    for i, a in enumerate(na):
        js = range(i + 1, len(nb)) if group_b is None else range(len(nb))
        for j in js:
            b = nb[j]
            if a == b:
                s = 1.0
            else:
                sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
                s = sm.ratio() if sm.quick_ratio() >= 0.5 else sm.quick_ratio()
            if s > worst[0]:
                worst = (s, group_a[i], (group_a if group_b is None else group_b)[j])
            if s >= NEAR:
                bad += 1
                fail("%s: near-duplicate (%.2f):\n      %r\n      %r" % (
                    label, s, group_a[i], (group_a if group_b is None else group_b)[j]))
    if not bad:
        ok("%s: no near-duplicates (max similarity %.2f)" % (label, worst[0]))
    return worst


# ------------------------------------------------------------------------------- CAMARA

KEY_ORDER = ["device", "applicationServer", "devicePorts", "applicationServerPorts",
             "qosProfile", "duration"]

NUMW = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
        "nine": 9, "ten": 10, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
        "forty": 40, "forty-five": 45, "fifty": 50, "ninety": 90}
UNITS = {"h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
         "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
         "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "day": 86400, "days": 86400}
SPECIAL = {"half an hour": 1800, "a quarter of an hour": 900, "three quarters of an hour": 2700,
           "a full day": 86400, "half a day": 43200}


def parse_duration(phrase):
    """Seconds for a spoken duration, written independently of make_samples' table."""
    s = phrase.lower().strip()
    if s in SPECIAL:
        return SPECIAL[s]
    toks = re.findall(r"\d+(?:\.\d+)?|[a-z]+(?:-[a-z]+)?", s)
    total, num, from_a, last = 0.0, None, False, None
    for t in toks:
        if re.fullmatch(r"\d+(?:\.\d+)?", t):
            num, from_a = float(t), False
        elif t in NUMW:
            num, from_a = float(NUMW[t]), False
        elif t in ("a", "an"):
            if num is None:
                num, from_a = 1.0, True
        elif t == "and" or t == "of":
            continue
        elif t == "half":
            if num is not None and not from_a:
                num += 0.5
            elif last is not None:
                total += last / 2
                num = None
            else:
                raise ValueError(phrase)
        elif t in UNITS:
            total += (1.0 if num is None else num) * UNITS[t]
            last, num, from_a = UNITS[t], None, False
        else:
            raise ValueError("unknown word %r in %r" % (t, phrase))
    if num is not None:  # "4h30": a bare number after hours means minutes
        if last == 3600:
            total += num * 60
        else:
            raise ValueError(phrase)
    if total != int(total):
        raise ValueError(phrase)
    return int(total)


def compact(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def camara_conventions(obj, where):
    errs = []
    keys = list(obj)
    if keys != [k for k in KEY_ORDER if k in obj]:
        errs.append("key order %s" % keys)
    dev, srv = obj.get("device", {}), obj.get("applicationServer", {})
    if len(dev) != 1:
        errs.append("device must hold exactly one identifier")
    if "ipv4Address" in dev and list(dev["ipv4Address"]) != ["publicAddress"]:
        errs.append("device ipv4Address must be {publicAddress} only")
    if "ipv4Address" in dev:
        ipaddress.IPv4Address(dev["ipv4Address"]["publicAddress"])
    if "ipv6Address" in dev:
        ipaddress.IPv6Address(dev["ipv6Address"])
    if len(srv) != 1:
        errs.append("applicationServer must hold exactly one identifier")
    for v in srv.values():
        ipaddress.ip_network(v, strict=True)  # plain address or aligned network
    for pk in ("devicePorts", "applicationServerPorts"):
        if pk in obj:
            if len(obj[pk]) != 1:
                errs.append(pk + " must be {ports} or {ranges}")
            for r in obj[pk].get("ranges", []):
                if r["from"] > r["to"]:
                    errs.append(pk + " range from > to")
    for e in errs:
        fail("%s: %s" % (where, e))
    return not errs


def check_camara(files, meta):
    from jsonschema import Draft202012Validator
    schema = json.load(open(os.path.join(HERE, "camara_qod/schema.json"), encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    ok("camara schema.json is a valid draft 2020-12 schema")

    def schema_errors(obj):
        return sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))

    sft, ev, pref = (files["camara_qod/" + n] for n in ("sft.jsonl", "eval.jsonl", "preference.jsonl"))
    msft, mev, mpref = (meta["camara_qod/" + n] for n in ("sft.jsonl", "eval.jsonl", "preference.jsonl"))

    # positive answers
    positives = []
    for r, m in zip(sft, msft):
        positives.append(("sft", r["prompt"], json.loads(r["completion"]), r["completion"], m))
    for r, m in zip(ev, mev):
        positives.append(("eval", r["prompt"], r["expect_json"], None, m))
        if r["schema"] != "schema.json":
            fail("eval schema field %r" % r["schema"])
    for r, m in zip(pref, mpref):
        positives.append(("pref", r["prompt"], json.loads(r["chosen"]), r["chosen"], m))
    n_ok = 0
    profiles, dev_kinds, units, countries = {}, {}, set(), set()
    for src, prompt, obj, text, m in positives:
        where = "%s %r" % (src, prompt[:60])
        good = True
        errs = schema_errors(obj)
        for e in errs:
            fail("%s: schema: %s at %s" % (where, e.message, list(e.absolute_path)))
            good = False
        if text is not None and text != compact(obj):
            fail(where + ": answer is not compact canonical JSON")
            good = False
        good &= camara_conventions(obj, where)
        # the JSON carries what the prompt says
        dev = obj["device"]
        if "phoneNumber" in dev:
            nsn = m["phone"]["nsn"]
            if dev["phoneNumber"] != m["phone"]["e164"] or nsn not in re.sub(r"\D", "", prompt):
                fail(where + ": phone number not the one in the prompt")
                good = False
            countries.add(m["phone"]["cc"])
            dev_kinds[m["phone"]["style"]] = dev_kinds.get(m["phone"]["style"], 0) + 1
        else:
            v = dev.get("ipv6Address") or dev["ipv4Address"]["publicAddress"]
            if v not in prompt:
                fail(where + ": device address not in prompt")
                good = False
            kind = "ipv6" if "ipv6Address" in dev else "ipv4"
            dev_kinds[kind] = dev_kinds.get(kind, 0) + 1
        sv = list(obj["applicationServer"].values())[0]
        if sv not in prompt:
            fail(where + ": server address not in prompt")
            good = False
        prompt_numbers = set(re.findall(r"(?<![\d.:])\d+(?![\d:]|\.\d)", prompt))
        for pk in ("devicePorts", "applicationServerPorts"):
            for p in obj.get(pk, {}).get("ports", []) + [x for r in obj.get(pk, {}).get("ranges", []) for x in (r["from"], r["to"])]:
                if str(p) not in prompt_numbers:
                    fail("%s: port %d not in prompt" % (where, p))
                    good = False
        phrase = m["dur_phrase"]
        if phrase not in prompt:
            fail(where + ": duration phrase not in prompt")
            good = False
        try:
            if parse_duration(phrase) != obj["duration"]:
                fail("%s: duration %d but %r is %d s" % (where, obj["duration"], phrase, parse_duration(phrase)))
                good = False
        except ValueError as e:
            fail("%s: cannot parse duration (%s)" % (where, e))
            good = False
        units.add(phrase)
        profiles[obj["qosProfile"]] = profiles.get(obj["qosProfile"], 0) + 1
        n_ok += good
    if n_ok == len(positives):
        ok("camara: all %d completions/chosen/expect_json validate against schema.json (formats "
           "asserted), are canonical, and carry the prompt's identifiers, ports and duration" % n_ok)
    ok("camara: profiles %s; device forms %s; %d country codes; %d distinct duration phrases" % (
        dict(sorted(profiles.items())), dict(sorted(dev_kinds.items())), len(countries), len(units)))

    # rejected answers: exactly the intended mistake
    def classify(rej_text, chosen, m):
        try:
            rej = json.loads(rej_text)
        except json.JSONDecodeError:
            rej = None
        if not isinstance(rej, dict):
            a, b = rej_text.find("{"), rej_text.rfind("}")
            inner = json.loads(rej_text[a:b + 1])
            rest = (rej_text[:a] + rej_text[b + 1:]).strip()
            if inner == chosen and list(inner) == list(chosen) and rest:
                return "prose"
            return "?"
        errs = schema_errors(rej)
        diff = {k for k in set(rej) | set(chosen) if rej.get(k, KeyError) != chosen.get(k, KeyError)}
        if not errs:
            if diff == {"qosProfile"}:
                return "profile"
            if diff == {"duration"} and rej["duration"] * 60 == chosen["duration"]:
                return "dur"
            return "?"
        extra = set(rej) - set(chosen)
        if extra:
            base = {k: v for k, v in rej.items() if k not in extra}
            if (len(extra) == 1 and base == chosen and list(base) == list(chosen)
                    and all(e.validator == "additionalProperties" and not list(e.absolute_path) for e in errs)):
                return "extra"
            return "?"
        paths = {tuple(e.absolute_path) for e in errs}
        if diff == {"device"}:
            d = rej["device"]
            if ("phoneNumber" in d and "phoneNumber" in chosen["device"]
                    and re.sub(r"\D", "", d["phoneNumber"]).endswith(m["phone"]["nsn"])
                    and paths == {("device", "phoneNumber")}
                    and all(e.validator == "pattern" for e in errs)):
                return "phone"
            if (isinstance(d.get("ipv4Address"), str) and list(d) == ["ipv4Address"]
                    and chosen["device"] == {"ipv4Address": {"publicAddress": d["ipv4Address"]}}
                    and paths == {("device", "ipv4Address")}):
                return "ipv4"
            return "?"
        if diff and diff <= {"devicePorts", "applicationServerPorts"}:
            for k in diff:
                spec = chosen[k]
                flat = spec["ports"] if "ports" in spec else [spec["ranges"][0]["from"], spec["ranges"][0]["to"]]
                if rej[k] != flat:
                    return "?"
            if paths == {(k,) for k in diff} and list(rej) == list(chosen):
                return "ports"
        return "?"

    kinds, bad = {}, 0
    extras, prose_forms, wrong_profiles = set(), set(), set()
    for r, m in zip(pref, mpref):
        chosen = json.loads(r["chosen"])
        got = classify(r["rejected"], chosen, m)
        kinds[got] = kinds.get(got, 0) + 1
        if got != m["kind"]:
            bad += 1
            fail("preference %r: rejected breaks %r, meant %r" % (r["prompt"][:60], got, m["kind"]))
        if got == "extra":
            extras.update(set(json.loads(r["rejected"])) - set(chosen))
        if got == "prose":
            prose_forms.add(re.sub(r"\{.*\}", "{}", r["rejected"], flags=re.S))
        if got == "profile":
            wrong_profiles.add((chosen["qosProfile"], json.loads(r["rejected"])["qosProfile"]))
        if r["chosen"] == r["rejected"]:
            fail("preference: chosen == rejected")
    if not bad:
        ok("camara preference: every rejected answer breaks exactly its intended rule: %s" % dict(sorted(kinds.items())))
    ok("camara preference variety: %d extra-field names %s, %d prose wrappers, %d profile confusions" % (
        len(extras), sorted(extras), len(prose_forms), len(wrong_profiles)))

    # eval answers are not training answers
    train_answers = {r["completion"] for r in sft} | {r["chosen"] for r in pref}
    clash = [r["prompt"] for r in ev if compact(r["expect_json"]) in train_answers]
    if clash:
        fail("camara eval expect_json equal to a training answer: %s" % clash)
    else:
        ok("camara: no eval expect_json equals a training completion/chosen")
    idents = {}
    for src, prompt, obj, _, _ in positives:
        for v in [json.dumps(obj["device"]), json.dumps(obj["applicationServer"])]:
            idents.setdefault(v, set()).add(src)
    reused = [k for k, v in idents.items() if "eval" in v and len(v) > 1]
    if reused:
        fail("camara: eval identifiers reused in training: %s" % reused)
    else:
        ok("camara: no device or server identifier of the eval set appears in training data")

    near_dups("camara sft+preference prompts", [r["prompt"] for r in sft] + [r["prompt"] for r in pref])
    near_dups("camara eval prompts", [r["prompt"] for r in ev])
    near_dups("camara eval vs training prompts", [r["prompt"] for r in ev],
              [r["prompt"] for r in sft] + [r["prompt"] for r in pref])
    exact = {normalise(r["prompt"]) for r in ev} & {normalise(r["prompt"]) for r in sft + pref}
    if exact:
        fail("camara: eval prompt equal to a training prompt: %s" % exact)


# ------------------------------------------------------------------------------- Oil & Gas

OG = {  # abbreviation: (expansions accepted as "spelled out", forbidden confusable words)
    "DP": (["Dynamic Positioning", "drill pipe"], ["Demographic Parity", "Data Protection"]),
    "BOP": (["Blowout Preventer"], ["Balance of Payments"]),
    "ROV": (["Remotely Operated Vehicle"], ["Return on Value"]),
    "FPSO": (["Floating Production, Storage and Offloading"], ["Fixed-Price", "Fixed Price"]),
    "MWD": (["Measurement While Drilling"], ["Mean Wind Direction"]),
    "LWD": (["Logging While Drilling"], ["Lost Work Day", "Long Wave"]),
    "ESP": (["Electrical Submersible Pump"], ["Electronic Stability", "extrasensory"]),
    "GOR": (["Gas-Oil Ratio"], ["Gross Operating Revenue"]),
    "WOB": (["Weight on Bit"], ["Work Order Backlog"]),
    "ROP": (["Rate of Penetration"], ["Rules of Procedure", "Reorder Point"]),
    "TVD": (["True Vertical Depth"], ["Total Variation", "Total Volume"]),
    "NPT": (["Non-Productive Time"], ["Network Time Protocol"]),
    "P&A": (["Plug and Abandonment"], ["Prepayments", "Profit and"]),
    "EOR": (["Enhanced Oil Recovery"], ["End of Record"]),
    "BHA": (["Bottom Hole Assembly"], ["Bachelor", "Bulk Handling"]),
    "HPHT": (["High Pressure High Temperature"], ["Heat Treatment", "Hose Test"]),
    "ECD": (["Equivalent Circulating Density"], ["Estimated Completion Date", "Electron Capture"]),
    "PVT": (["Pressure-Volume-Temperature"], ["Product Verification", "photovoltaic"]),
    "API": (["American Petroleum Institute"], ["Application Programming Interface"]),
    "SURF": (["Subsea Umbilicals, Risers and Flowlines"], ["Speeded-Up"]),
}

# Terms taught by preference pairs only (DPO extends what SFT covered); not in the coverage check.
OG_EXTRA = {
    "LOT": (["Leak-Off Test"], ["batch"]),
    "FIT": (["Formation Integrity Test"], ["Fitness"]),
    "TD": (["Total Depth"], ["touchdown"]),
    "MD": (["Measured Depth"], ["Medical Doctor"]),
    "POOH": (["Pull Out Of Hole"], ["Product Owner"]),
    "RIH": (["Run In Hole"], ["Release In Hand"]),
    "BHP": (["Bottomhole Pressure"], ["brake horsepower"]),
    "ESD": (["Emergency Shutdown"], ["electrostatic"]),
    "SIDPP": (["Shut-In Drill Pipe Pressure"], ["Incident Data"]),
    "SICP": (["Shut-In Casing Pressure"], ["Compliance"]),
    "MPD": (["Managed Pressure Drilling"], ["Police"]),
    "CT": (["Coiled Tubing"], ["Computed Tomography"]),
    "DST": (["Drill Stem Test"], ["Daylight Saving"]),
    "OBM": (["Oil-Based Mud"], ["Bill of Materials"]),
    "SCSSV": (["Surface-Controlled Subsurface Safety Valve"], ["Cloud"]),
    "PI": (["Productivity Index"], ["Principal Investigator"]),
    "TLP": (["Tension Leg Platform"], ["Transport Layer"]),
    "LMRP": (["Lower Marine Riser Package"], ["Regret"]),
    "MODU": (["Mobile Offshore Drilling Unit"], ["Data Unit"]),
    "LNG": (["Liquefied Natural Gas"], ["Network Gateway"]),
    "XT": (["Christmas tree"], ["terminal"]),
    "WHP": (["Wellhead Pressure"], ["Holiday"]),
}


OG_ALL = {**OG, **OG_EXTRA}


def abbrevs_in(text, table=OG):
    return [a for a in table if re.search(r"(?<![A-Za-z&])" + re.escape(a) + r"(?![A-Za-z&])", text)]


def sentences(text):
    return len([s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9])", text.strip()) if s])


def check_oilgas(files):
    sft, ev, pref = files["oilgas/sft.jsonl"], files["oilgas/eval.jsonl"], files["oilgas/preference.jsonl"]
    cover = {a: [0, 0, 0] for a in OG}
    bad = 0
    for r in sft:
        q = r["instruction"] + " " + r.get("input", "")
        # the abbreviations asked about: those in the instruction, else those in the input
        ab = abbrevs_in(r["instruction"]) or abbrevs_in(r.get("input", ""))
        if not ab:
            fail("oilgas sft row mentions no listed abbreviation: %r" % q[:60])
        for a in ab:
            cover[a][0] += 1
            exps, wrong = OG[a]
            if not any(e.lower() in r["output"].lower() for e in exps):
                fail("oilgas sft %r: answer does not spell out %s" % (q[:60], a))
                bad += 1
        if sentences(r["output"]) > 3:
            fail("oilgas sft %r: more than 3 sentences" % q[:60])
            bad += 1
    for r in pref:
        # the abbreviation a pair is about: the one the chosen answer spells out
        asked = abbrevs_in(r["prompt"], OG_ALL)
        ab = [a for a in asked if any(e.lower() in r["chosen"].lower() for e in OG_ALL[a][0])]
        if not ab:
            fail("oilgas preference %r: chosen spells out none of %s" % (r["prompt"][:60], asked))
        for a in ab:
            if a in cover:
                cover[a][1] += 1
            exps, wrong = OG_ALL[a]
            if not any(e.lower() in r["chosen"].lower() for e in exps):
                fail("oilgas preference %r: chosen does not spell out %s" % (r["prompt"][:60], a))
                bad += 1
            if any(e.lower() in r["rejected"].lower() for e in exps):
                fail("oilgas preference %r: rejected contains the right expansion" % r["prompt"][:60])
                bad += 1
            if any(w.lower() in r["chosen"].lower() for w in wrong):
                fail("oilgas preference %r: chosen contains a confusable" % r["prompt"][:60])
                bad += 1
        for t in (r["chosen"], r["rejected"]):
            if sentences(t) > 3:
                fail("oilgas preference %r: more than 3 sentences" % r["prompt"][:60])
                bad += 1
    taught = " ".join([r["output"] for r in sft] + [r["chosen"] for r in pref]).lower()
    for r in ev:
        for a in abbrevs_in(r["prompt"]):
            cover[a][2] += 1
        for s in r["must_contain"]:
            if s.lower() not in taught:
                fail("oilgas eval %r: must_contain %r is never taught" % (r["prompt"], s))
                bad += 1
        for s in r["must_not_contain"]:
            if s.lower() in taught:
                fail("oilgas eval %r: must_not_contain %r appears in a training answer" % (r["prompt"], s))
                bad += 1
        if set(r["must_contain"]) & set(r["must_not_contain"]):
            fail("oilgas eval %r: a string is both required and forbidden" % r["prompt"])
    thin = {a: c for a, c in cover.items() if c[0] < 3 or c[1] < 2 or c[2] < 1}
    if thin:
        fail("oilgas coverage too thin (sft, preference, eval): %s" % thin)
    else:
        ok("oilgas: all %d abbreviations covered (>=3 sft, >=2 preference, >=1 eval rows each)" % len(OG))
    if not bad:
        ok("oilgas: answers spell out the Oil & Gas meaning and stay within 3 sentences; rejected "
           "answers never do; eval targets are taught and eval forbidden strings never are")
    near_dups("oilgas sft+preference prompts",
              [r["instruction"] + "\n" + r.get("input", "") for r in sft] + [r["prompt"] for r in pref])
    near_dups("oilgas eval prompts", [r["prompt"] for r in ev])
    near_dups("oilgas eval vs training prompts", [r["prompt"] for r in ev],
              [r["instruction"] + "\n" + r.get("input", "") for r in sft] + [r["prompt"] for r in pref])
    near_dups("oilgas training answers", [r["output"] for r in sft] + [r["chosen"] for r in pref])


# ------------------------------------------------------------------------------- edu / bgp

def check_edu(files):
    rows = files["edu/sft.jsonl"]
    bad = 0
    for i, r in enumerate(rows):
        msgs = r["messages"]
        roles = [m.get("role") for m in msgs]
        if any(set(m) != {"role", "content"} or not m["content"].strip() for m in msgs):
            fail("edu %d: message keys/content" % i)
            bad += 1
        if roles[0] != "system" or roles[-1] != "assistant":
            fail("edu %d: must start with system and end with assistant" % i)
            bad += 1
        if roles[1:] != ["user", "assistant"] * ((len(roles) - 1) // 2) or roles.count("user") < 2:
            fail("edu %d: user/assistant must alternate, at least two exchanges" % i)
            bad += 1
    if not bad:
        ok("edu: %d dialogues, system first, user/assistant alternating, %d-%d turns, last message "
           "always the assistant's" % (len(rows), min(len(r["messages"]) for r in rows),
                                       max(len(r["messages"]) for r in rows)))
    near_dups("edu first user messages", [r["messages"][1]["content"] for r in rows])


def check_bgp(files):
    rows = files["bgp/sft.jsonl"]
    with_input = sum(1 for r in rows if r["input"].strip())
    ok("bgp: %d rows, %d with a log/config excerpt in input" % (len(rows), with_input))
    if with_input < 8:
        fail("bgp: too few rows with input")
    near_dups("bgp prompts", [r["instruction"] + "\n" + r["input"] for r in rows])


# ------------------------------------------------------------------------------- configs, lengths

CONFIG_KEYS = {
    "model_name": str, "train_file": str, "eval_file": str, "system_prompt": str, "output_dir": str,
    "learning_rate": float, "num_train_epochs": int, "per_device_train_batch_size": int,
    "gradient_accumulation_steps": int, "warmup_ratio": float, "lr_scheduler_type": str,
    "weight_decay": float, "max_grad_norm": float, "max_seq_length": int, "lora_r": int,
    "lora_alpha": int, "lora_dropout": float, "lora_target_modules": list, "use_rslora": bool,
    "seed": int, "logging_steps": int, "save_steps": int, "eval_steps": int,
}


def check_configs():
    cfgs = {}
    for ex in ("camara_qod", "oilgas", "edu", "bgp"):
        path = os.path.join(HERE, ex, "config.toml")
        with open(path, "rb") as f:
            cfg = tomllib.load(f)
        # eval_file is optional (an empty string would name the folder itself, so examples
        # without an eval set leave the key out)
        missing = set(CONFIG_KEYS) - set(cfg) - ({"eval_file"} if ex in ("edu", "bgp") else set())
        extra = set(cfg) - set(CONFIG_KEYS)
        if missing or extra:
            fail("%s/config.toml: missing %s, unexpected %s" % (ex, sorted(missing), sorted(extra)))
        for k, t in CONFIG_KEYS.items():
            if k in cfg and not (type(cfg[k]) is t):
                fail("%s/config.toml: %s should be %s" % (ex, k, t.__name__))
        for k in ("train_file", "eval_file"):
            if k in cfg and not os.path.isfile(os.path.join(HERE, ex, cfg[k])):
                fail("%s/config.toml: %s %r does not exist" % (ex, k, cfg[k]))
        if cfg.get("output_dir") != "runs/" + ex:
            fail("%s/config.toml: output_dir %r" % (ex, cfg.get("output_dir")))
        cfgs[ex] = cfg
    ok("config.toml: all four parse, have the %d keys with the right types (eval_file left out where "
       "there is no eval set), and point at existing files" % len(CONFIG_KEYS))
    return cfgs


def check_lengths(files, cfgs):
    try:
        from tokenizers import Tokenizer
    except ImportError:
        print("skip: token lengths (python package tokenizers not installed)")
        return
    tok_path = os.path.join(ROOT, "tests/fixtures/smollm2_tokenizer_rebuilt/tokenizer.json")
    if not os.path.isfile(tok_path):
        print("skip: token lengths (no SmolLM2 tokenizer fixture)")
        return
    tok = Tokenizer.from_file(tok_path)

    def chat(msgs):
        s = "".join("<|im_start|>%s\n%s<|im_end|>\n" % (m["role"], m["content"]) for m in msgs)
        return len(tok.encode(s).ids)

    def msgs(sys_p, user, answer):
        out = [{"role": "system", "content": sys_p}] if sys_p else []
        return out + [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]

    for ex, names in (("camara_qod", ["sft", "eval", "preference"]), ("oilgas", ["sft", "eval", "preference"]),
                      ("edu", ["sft"]), ("bgp", ["sft"])):
        cfg = cfgs[ex]
        longest = 0
        for n in names:
            for r in files["%s/%s.jsonl" % (ex, n)]:
                if "messages" in r:
                    L = chat(r["messages"])
                elif "completion" in r:
                    L = chat(msgs(cfg["system_prompt"], r["prompt"], r["completion"]))
                elif "expect_json" in r:
                    L = chat(msgs(cfg["system_prompt"], r["prompt"], compact(r["expect_json"])))
                elif "chosen" in r:
                    L = max(chat(msgs(cfg["system_prompt"], r["prompt"], r["chosen"])),
                            chat(msgs(cfg["system_prompt"], r["prompt"], r["rejected"])))
                elif "must_contain" in r:
                    L = chat(msgs(cfg["system_prompt"], r["prompt"], ""))
                else:
                    user = r["instruction"] + ("\n\n" + r["input"] if r.get("input") else "")
                    L = chat(msgs(cfg["system_prompt"], user, r["output"]))
                longest = max(longest, L)
        if longest > cfg["max_seq_length"]:
            fail("%s: longest row is %d tokens > max_seq_length %d" % (ex, longest, cfg["max_seq_length"]))
        else:
            ok("%s: longest row %d tokens (SmolLM2 tokenizer, ChatML) <= max_seq_length %d"
               % (ex, longest, cfg["max_seq_length"]))


# ------------------------------------------------------------------------------- main

def main():
    sys.dont_write_bytecode = True  # leave no __pycache__ in sample_data/
    spec = importlib.util.spec_from_file_location("make_samples", os.path.join(HERE, "make_samples.py"))
    ms = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ms)
    built, meta = ms.build()

    files = {}
    for rel in SPEC:
        rows, raw = load_jsonl(rel)
        files[rel] = rows
        if len(rows) < MINIMUM[rel]:
            fail("%s: %d rows < %d" % (rel, len(rows), MINIMUM[rel]))
        if raw != ms.dump_jsonl(built[rel]).encode("utf-8"):
            fail(rel + ": differs from a fresh make_samples.build()")
        key = "prompt" if "prompt" in SPEC[rel][0] else None
        if key:
            ps = [r[key] for r in rows]
            if len(ps) != len(set(ps)):
                fail(rel + ": duplicate prompts")
    ok("all %d JSONL files: UTF-8, one object per line, expected keys, no duplicate lines or "
       "prompts, minimum row counts met, identical to a fresh build" % len(SPEC))

    check_camara(files, meta)
    check_oilgas(files)
    check_edu(files)
    check_bgp(files)
    cfgs = check_configs()
    check_lengths(files, cfgs)

    print()
    if FAILURES:
        print("%d check(s) failed" % len(FAILURES))
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
