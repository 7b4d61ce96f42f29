//! Data recipes: the same seed gives the same records, every record passes the recipe's
//! checks and says in its prompt what its answer says, eval prompts never appear, mistakes in
//! a recipe name their key or template, and the presets' training files share no prompt with
//! their eval files.

use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use tunelab::data::recipe::{Kitchen, Output};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn camara() -> Kitchen {
    Kitchen::open(&repo("sample_data/camara_qod/recipe.toml")).unwrap()
}

fn prompts(path: &Path) -> HashSet<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let p = v["prompt"].as_str().or(v["instruction"].as_str()).unwrap();
            p.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase()
        })
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_records() {
    let (a, _) = camara().cook(200, 7).unwrap();
    let (b, _) = camara().cook(200, 7).unwrap();
    let (c, _) = camara().cook(200, 8).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn camara_records_validate_and_agree_with_their_prompts() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo("sample_data/camara_qod/schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let (records, report) = camara().cook(1500, 1).unwrap();
    assert_eq!(records.len(), 1500);
    let mut profiles = HashSet::new();
    for r in &records {
        let prompt = r["prompt"].as_str().unwrap();
        let body: Value = serde_json::from_str(r["completion"].as_str().unwrap()).unwrap();
        assert!(validator.is_valid(&body), "{body}");
        profiles.insert(body["qosProfile"].as_str().unwrap().to_string());
        let digits: String = prompt.chars().filter(char::is_ascii_digit).collect();
        if let Some(phone) = body["device"]["phoneNumber"].as_str() {
            let national = phone.trim_start_matches('+');
            let spelled = prompt.contains(phone)
                || digits.contains(national)
                || (1..=3).any(|cc| digits.contains(national[cc..].trim_start_matches('0')));
            assert!(spelled, "{phone} not in {prompt:?}");
        }
        for address in [
            &body["applicationServer"]["ipv4Address"],
            &body["applicationServer"]["ipv6Address"],
            &body["device"]["ipv6Address"],
            &body["device"]["ipv4Address"]["publicAddress"],
        ] {
            if let Some(a) = address.as_str() {
                assert!(prompt.to_lowercase().contains(a), "{a} not in {prompt:?}");
            }
        }
        for ports in [&body["devicePorts"], &body["applicationServerPorts"]] {
            if let Some(from) = ports["ranges"][0]["from"].as_u64() {
                assert!(prompt.contains(&from.to_string()), "{prompt}");
            }
        }
    }
    assert_eq!(profiles.len(), 4);
    for slot in ["phone", "duration", "use_case", "server4"] {
        let total: usize = report.slots[slot].values().sum();
        assert_eq!(total, 1500, "{slot}");
    }
    assert!(
        report.slots["phone"].len() >= 7,
        "{:?}",
        report.slots["phone"]
    );
    assert!(report.slots["use_case"].len() >= 8);
}

#[test]
fn preference_pairs_differ_and_eval_prompts_are_never_made() {
    let kitchen = camara().with_output(Output::Preference).unwrap();
    let (pairs, _) = kitchen.cook(300, 3).unwrap();
    for p in &pairs {
        assert_ne!(p["chosen"], p["rejected"], "{p}");
    }
    let eval = prompts(&repo("sample_data/camara_qod/eval.jsonl"));
    // A recipe whose only prompt is an eval prompt makes nothing.
    let dir = scratch("synth_exclude");
    let first = std::fs::read_to_string(repo("sample_data/camara_qod/eval.jsonl")).unwrap();
    let eval_prompt: Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    std::fs::copy(
        repo("sample_data/camara_qod/eval.jsonl"),
        dir.join("eval.jsonl"),
    )
    .unwrap();
    let recipe = format!(
        "output = \"prompt_completion\"\nexclude = [\"eval.jsonl\"]\n[slots.x]\nkind = \"number\"\nmin = 1\nmax = 9\n\
         [[templates]]\nprompts = [{:?}, \"other {{{{ x.value }}}}\"]\nanswer = \"a\"\n",
        eval_prompt["prompt"].as_str().unwrap()
    );
    std::fs::write(dir.join("r.toml"), recipe).unwrap();
    let (records, report) = Kitchen::open(&dir.join("r.toml"))
        .unwrap()
        .cook(9, 1)
        .unwrap();
    assert!(records
        .iter()
        .all(|r| !eval.contains(&r["prompt"].as_str().unwrap().to_lowercase())));
    assert!(
        report.rejected["prompt is in an exclude file"] > 0,
        "{report:?}"
    );
    // Ten unique prompts cannot come from nine numbers and one excluded prompt.
    let err = Kitchen::open(&dir.join("r.toml"))
        .unwrap()
        .cook(10, 1)
        .unwrap_err();
    assert!(
        err.to_string().contains("the checks kept 9 of 10 records"),
        "{err}"
    );
}

#[test]
fn recipe_mistakes_name_their_key_or_template() {
    let dir = scratch("synth_mistakes");
    let cases = [
        ("output = \"prompt_completion\"\nanswr_json = true\n", "unknown field `answr_json`"),
        ("output = \"prompt_completion\"\n[slots.x]\nkind = \"colour\"\n", "'slots.x'"),
        ("output = \"prompt_completion\"\n[slots.x]\nkind = \"number\"\nmin = 5\nmax = 1\n[[templates]]\nprompts=[\"a\"]\nanswer=\"b\"\n", "slots.x: min 5 > max 1"),
        ("output = \"prompt_completion\"\n[[templates]]\nprompts = [\"{% if %}\"]\nanswer = \"b\"\n", "templates[0]: 0/prompt/0 does not compile"),
        ("output = \"preference\"\n[[templates]]\nprompts = [\"a\"]\nanswer = \"b\"\n", "templates[0]: preference output needs a rejected answer"),
        ("output = \"prompt_completion\"\n", "the recipe has no [[templates]]"),
    ];
    for (i, (text, wanted)) in cases.iter().enumerate() {
        let path = dir.join(format!("r{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let err = format!("{:#}", Kitchen::open(&path).err().expect("refused"));
        assert!(
            err.contains(wanted) && err.contains(&format!("r{i}.toml")),
            "case {i}: {err}"
        );
    }
}

#[test]
fn the_presets_train_on_no_eval_prompt() {
    for (preset, files) in [
        ("camara_qod", &["sft.jsonl", "preference.jsonl"][..]),
        ("oilgas", &["sft.jsonl", "preference.jsonl"][..]),
    ] {
        let eval = prompts(&repo(&format!("sample_data/{preset}/eval.jsonl")));
        for file in files {
            let train = prompts(&repo(&format!("sample_data/{preset}/{file}")));
            let shared: Vec<&String> = train.intersection(&eval).collect();
            assert!(
                shared.is_empty(),
                "{preset}/{file} holds eval prompts: {shared:?}"
            );
        }
    }
}

#[test]
fn the_cli_writes_records_and_never_overwrites() {
    let dir = scratch("synth_cli");
    let out = dir.join("sft.jsonl");
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tunelab"))
            .args(["data", "synth", "--recipe"])
            .arg(repo("sample_data/camara_qod/recipe.toml"))
            .args(["--n", "50", "--seed", "4", "--out"])
            .arg(&out)
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 50);
    let report = String::from_utf8_lossy(&first.stderr);
    assert!(
        report.contains("50 records from") && report.contains("slot phone"),
        "{report}"
    );
    let before = std::fs::read(&out).unwrap();
    let second = run();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("already exists"));
    assert_eq!(std::fs::read(&out).unwrap(), before);
}

/// The presets' files end with exactly what their recipes make (so every synthetic record
/// passed the recipe's checks, and a changed recipe must be re-run to change the data).
#[test]
fn the_presets_hold_what_their_recipes_make() {
    let cases = [
        ("camara_qod", "sft.jsonl", None, 111, 3000, 1),
        (
            "camara_qod",
            "preference.jsonl",
            Some(Output::Preference),
            72,
            600,
            2,
        ),
        ("oilgas", "sft.jsonl", None, 65, 1500, 1),
        (
            "oilgas",
            "preference.jsonl",
            Some(Output::Preference),
            64,
            600,
            2,
        ),
    ];
    for (preset, file, output, hand_made, n, seed) in cases {
        let mut kitchen =
            Kitchen::open(&repo(&format!("sample_data/{preset}/recipe.toml"))).unwrap();
        if let Some(o) = output {
            kitchen = kitchen.with_output(o).unwrap();
        }
        let (records, _) = kitchen.cook(n, seed).unwrap();
        let text = std::fs::read_to_string(repo(&format!("sample_data/{preset}/{file}"))).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), hand_made + n, "{preset}/{file}");
        for (i, (line, record)) in lines[hand_made..].iter().zip(&records).enumerate() {
            let stored: Value = serde_json::from_str(line).unwrap();
            assert_eq!(&stored, record, "{preset}/{file}:{}", hand_made + i + 1);
        }
    }
}

#[test]
fn cases_output_makes_grpo_prompts_with_their_checks() {
    use tunelab::eval::cases::load_eval_file;
    let kitchen = camara().with_output(Output::Cases).unwrap();
    // Beside the recipe the schema is named as the recipe names it; elsewhere by its path.
    let dir = scratch("synth_cases");
    let out = dir.join("prompts.jsonl");
    kitchen.cook_into(40, 3, &out).unwrap();
    let cases = load_eval_file(&out).unwrap();
    assert_eq!(cases.len(), 40);
    for case in &cases {
        let expected = case.expect_json.as_ref().expect("expect_json");
        let schema = case.schema.as_ref().expect("schema");
        assert!(schema.validator.is_valid(expected), "line {}", case.line);
        assert!(schema.path.ends_with("sample_data/camara_qod/schema.json"));
    }
    // The preset's prompt file is what the recipe makes with its seed, and no eval prompt.
    let preset = repo("sample_data/camara_qod/prompts.jsonl");
    let (records, _) = kitchen.cook(400, 3).unwrap();
    let stored: Vec<Value> = std::fs::read_to_string(&preset)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(stored.len(), records.len());
    for (s, r) in stored.iter().zip(&records) {
        assert_eq!(
            (&s["prompt"], &s["expect_json"]),
            (&r["prompt"], &r["expect_json"])
        );
        assert_eq!(s["schema"], "schema.json");
    }
    let eval = prompts(&repo("sample_data/camara_qod/eval.jsonl"));
    assert!(prompts(&preset).is_disjoint(&eval));
    // A recipe whose answers are not JSON cannot make cases.
    let oilgas = Kitchen::open(&repo("sample_data/oilgas/recipe.toml")).unwrap();
    let err = format!(
        "{:#}",
        oilgas.with_output(Output::Cases).err().expect("refused")
    );
    assert!(err.contains("cases output needs answer_json"), "{err}");
}
