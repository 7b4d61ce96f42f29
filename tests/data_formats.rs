//! Data formats other tools write (OpenAI chat and preference JSONL, ShareGPT, alpaca, TRL's
//! messages and preference pairs): reading them, converting between them without losing a
//! record, OpenAI's weight-0 replies in the loss mask, and `tunelab data validate / convert /
//! split / stats` through the real binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tunelab::data::convert::{convert_file, Target};
use tunelab::data::dataset::{DataKind, Dataset};
use tunelab::data::preference::{load_preference_file, PreferencePair};
use tunelab::data::sft::{load_sft_file, tokenize_record, SftFormat, SftRecord};
use tunelab::data::split::split;
use tunelab::data::stats::{stats, Repeats};
use tunelab::model::ChatMessage;
use tunelab::train::loss::IGNORE_INDEX;

fn fixture(name: &str) -> PathBuf {
    common::fixture(&format!("data_formats/{name}"))
}

fn msg(role: &str, content: &str) -> ChatMessage {
    ChatMessage::new(role, content)
}

fn tunelab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tunelab"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running tunelab")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn sft_records(path: &Path) -> Vec<SftRecord> {
    load_sft_file(path).unwrap().records
}

/// What training sees of a record: the conversation and which replies it learns.
fn trained_view(records: &[SftRecord]) -> Vec<(Vec<ChatMessage>, Vec<bool>)> {
    records
        .iter()
        .map(|r| (r.conversation(None), r.trained_replies()))
        .collect()
}

/// Converts `input` to `target` under `dir`; the written file, or the problems.
fn convert_to(input: &Path, target: Target, dir: &Path) -> Result<PathBuf, Vec<String>> {
    let stem = input.file_stem().unwrap().to_string_lossy();
    let out = dir.join(format!("{stem}.{}.jsonl", target.name()));
    let ds = Dataset::load(input, DataKind::Auto).unwrap();
    match convert_file(&ds, target, &out).unwrap() {
        Ok(lines) => {
            assert_eq!(lines.len(), ds.len());
            Ok(out)
        }
        Err(problems) => {
            assert!(!out.exists(), "{}: written despite problems", out.display());
            Err(problems)
        }
    }
}

// ---- reading ----------------------------------------------------------------------------

#[test]
fn openai_chat_reads_weights_and_text_parts() {
    let ds = load_sft_file(&fixture("openai_weighted.jsonl")).unwrap();
    assert_eq!(ds.format, SftFormat::Messages);
    assert_eq!(ds.records[0].trained_replies(), vec![false, true]);
    assert!(matches!(ds.records[1], SftRecord::Messages(_)));
    assert_eq!(ds.records[2].trained_replies(), vec![true, false, true]);

    let parts = sft_records(&fixture("openai_parts.jsonl"));
    assert_eq!(
        parts[0],
        SftRecord::Messages(vec![
            msg("system", "You are terse."),
            msg("user", "Part one.\nPart two."),
            msg("assistant", "Both parts read."),
        ]),
        "an explicit weight 1 is the default, and text parts are joined"
    );
}

#[test]
fn sharegpt_reads_as_messages() {
    let ds = load_sft_file(&fixture("sharegpt.jsonl")).unwrap();
    assert_eq!(ds.format, SftFormat::ShareGpt);
    assert_eq!(
        ds.records[1],
        SftRecord::Messages(vec![
            msg("system", "You are a careful maths tutor."),
            msg("user", "Is 91 prime?"),
            msg("assistant", "No: 91 = 7 x 13."),
        ])
    );
    assert_eq!(ds.records[2].conversation(None).len(), 5);
}

#[test]
fn openai_preference_reads_as_pairs() {
    let ds = load_preference_file(&fixture("openai_preference.jsonl")).unwrap();
    assert_eq!(
        ds.pairs[1],
        PreferencePair {
            prompt: vec![
                msg("system", "Be precise."),
                msg("user", "How many legs has a spider?")
            ],
            chosen: vec![msg("assistant", "Eight.")],
            rejected: vec![msg("assistant", "Six.")],
        }
    );
}

/// Each bad record is refused with its line and the field at fault.
#[test]
fn bad_records_name_their_line_and_field() {
    let dir = common::scratch_dir("data_formats_bad");
    let good = r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}"#;
    let cases = [
        (
            r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "tools": []}"#,
            "field \"tools\": tool calling is not supported for training yet; remove",
        ),
        (
            r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": null, "tool_calls": []}, {"role": "assistant", "content": "a"}]}"#,
            "field \"messages\"[1].tool_calls: tool calling is not supported for training yet; remove",
        ),
        (
            r#"{"messages": [{"role": "user", "content": "q"}, {"role": "tool", "content": "42"}, {"role": "assistant", "content": "a"}]}"#,
            "field \"messages\"[1].role is \"tool\": tool calling is not supported for training yet; remove",
        ),
        (
            r#"{"messages": [{"role": "user", "content": "q"}, {"role": "function", "content": "42"}, {"role": "assistant", "content": "a"}]}"#,
            "field \"messages\"[1].role is \"function\": tool calling is not supported",
        ),
        (
            r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "functions": []}"#,
            "field \"functions\": tool calling is not supported",
        ),
        (
            r#"{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}, {"role": "assistant", "content": "a"}]}"#,
            "field \"messages\"[0].content[0].type is \"image_url\": only text parts",
        ),
        (
            r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 0}]}"#,
            "field \"messages\": every assistant reply has weight 0",
        ),
        (
            r#"{"messages": [{"role": "user", "content": "q", "weight": 1}, {"role": "assistant", "content": "a"}]}"#,
            "field \"messages\"[0].weight is set on a user message",
        ),
        (
            r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 0.5}]}"#,
            "field \"messages\"[1].weight must be 0 or 1 (found 0.5)",
        ),
    ];
    for (i, (bad, expected)) in cases.iter().enumerate() {
        let path = dir.join(format!("bad{i}.jsonl"));
        std::fs::write(&path, format!("{good}\n{bad}\n")).unwrap();
        let err = format!("{:#}", load_sft_file(&path).unwrap_err());
        let want = format!("{}:2: {expected}", path.display());
        assert!(err.starts_with(&want), "case {i}:\n{err}\nwanted\n{want}");
    }
    let sharegpt = dir.join("sharegpt.jsonl");
    std::fs::write(
        &sharegpt,
        "{\"conversations\": [{\"from\": \"human\", \"value\": \"q\"}, {\"from\": \"gpt\", \"value\": \"a\"}]}\n\
         {\"conversations\": [{\"from\": \"bot\", \"value\": \"q\"}, {\"from\": \"gpt\", \"value\": \"a\"}]}\n",
    )
    .unwrap();
    assert_eq!(
        format!("{:#}", load_sft_file(&sharegpt).unwrap_err()),
        format!(
            "{}:2: field \"conversations\"[0].from must be one of system, human, user, gpt, \
             assistant (found \"bot\")",
            sharegpt.display()
        )
    );
    let preference = dir.join("preference.jsonl");
    std::fs::write(
        &preference,
        "{\"input\": {\"messages\": [{\"role\": \"user\", \"content\": \"q\"}], \"tools\": []}, \
         \"preferred_output\": [{\"role\": \"assistant\", \"content\": \"a\"}], \
         \"non_preferred_output\": [{\"role\": \"assistant\", \"content\": \"b\"}]}\n",
    )
    .unwrap();
    let err = format!("{:#}", load_preference_file(&preference).unwrap_err());
    assert!(
        err.starts_with(&format!(
            "{}:1: field \"input\".\"tools\": tool calling is not supported",
            preference.display()
        )),
        "{err}"
    );
}

// ---- conversion ------------------------------------------------------------------------

/// A fixture, its own format as a target, and the targets that fail with the lines they name.
type RoundTrip<'a> = (&'a str, Target, &'a [(Target, &'a [usize])]);

/// Every SFT fixture to every SFT target: either it converts and converts back to the same
/// records, or the records the target cannot express are named by line and nothing is written.
#[test]
fn sft_formats_round_trip_or_name_what_they_cannot_express() {
    let dir = common::scratch_dir("data_formats_round_trip");
    // (fixture, its own format as a target, targets that fail and the lines they name)
    let cases: [RoundTrip; 5] = [
        ("alpaca.jsonl", Target::Alpaca, &[]),
        (
            "messages.jsonl",
            Target::Messages,
            &[(Target::Alpaca, &[3])],
        ),
        (
            "sharegpt.jsonl",
            Target::ShareGpt,
            &[(Target::Alpaca, &[3])],
        ),
        ("openai_parts.jsonl", Target::OpenAi, &[]),
        (
            "openai_weighted.jsonl",
            Target::OpenAi,
            &[
                (Target::Messages, &[1, 3]),
                (Target::ShareGpt, &[1, 3]),
                (Target::Alpaca, &[1, 3]),
            ],
        ),
    ];
    let targets = [
        Target::OpenAi,
        Target::Messages,
        Target::ShareGpt,
        Target::Alpaca,
    ];
    let mut round_trips = 0;
    for (name, own, failing) in cases {
        let input = fixture(name);
        let original = sft_records(&input);
        for target in targets.into_iter().filter(|t| *t != own) {
            let case_dir = dir.join(format!("{name}-{}", target.name()));
            std::fs::create_dir_all(&case_dir).unwrap();
            let expected_failure = failing.iter().find(|(t, _)| *t == target);
            match (convert_to(&input, target, &case_dir), expected_failure) {
                (Ok(out), None) => {
                    // Through the target and back: the same records as the file's own.
                    assert_eq!(
                        trained_view(&sft_records(&out)),
                        trained_view(&original),
                        "{name} as {}",
                        target.name()
                    );
                    let back = convert_to(&out, own, &case_dir).unwrap();
                    assert_eq!(
                        sft_records(&back),
                        original,
                        "{name} → {} → back",
                        target.name()
                    );
                    round_trips += 1;
                }
                (Err(problems), Some((_, lines))) => {
                    let named: Vec<String> = lines
                        .iter()
                        .map(|l| format!("{}:{l}: ", input.display()))
                        .collect();
                    assert_eq!(problems.len(), named.len(), "{problems:#?}");
                    for (problem, want) in problems.iter().zip(&named) {
                        assert!(problem.starts_with(want), "{problem}");
                    }
                }
                (Ok(_), Some(_)) => panic!("{name} as {} should fail", target.name()),
                (Err(p), None) => panic!("{name} as {}: {p:#?}", target.name()),
            }
        }
    }
    assert_eq!(round_trips, 10);
}

/// The weights survive OpenAI → OpenAI, written on every reply of a weighted record.
#[test]
fn openai_weights_are_kept() {
    let dir = common::scratch_dir("data_formats_weights");
    let input = fixture("openai_weighted.jsonl");
    let ds = Dataset::load(&input, DataKind::Auto).unwrap();
    let out = dir.join("again.jsonl");
    convert_file(&ds, Target::OpenAi, &out).unwrap().unwrap();
    assert_eq!(sft_records(&out), sft_records(&input));
    let first_line = std::fs::read_to_string(&out).unwrap();
    let first: serde_json::Value =
        serde_json::from_str(first_line.lines().next().unwrap()).unwrap();
    let weights: Vec<Option<u64>> = first["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.get("weight").and_then(|w| w.as_u64()))
        .collect();
    assert_eq!(weights, vec![None, None, Some(0), None, Some(1)]);
}

/// Formats with no writer of their own, or whose fields training joins (alpaca's input),
/// convert to the same conversations.
#[test]
fn prompt_completion_and_alpaca_input_convert_to_the_same_conversations() {
    let dir = common::scratch_dir("data_formats_one_way");
    for name in ["prompt_completion.jsonl", "alpaca_input.jsonl"] {
        let input = fixture(name);
        let original = trained_view(&sft_records(&input));
        for target in [
            Target::OpenAi,
            Target::Messages,
            Target::ShareGpt,
            Target::Alpaca,
        ] {
            let out = convert_to(&input, target, &dir).unwrap();
            assert_eq!(
                trained_view(&sft_records(&out)),
                original,
                "{name} as {}",
                target.name()
            );
        }
    }
    // Alpaca to alpaca keeps instruction and input apart.
    let out = dir.join("alpaca_input.again.jsonl");
    let ds = Dataset::load(&fixture("alpaca_input.jsonl"), DataKind::Auto).unwrap();
    convert_file(&ds, Target::Alpaca, &out).unwrap().unwrap();
    assert_eq!(
        sft_records(&out),
        sft_records(&fixture("alpaca_input.jsonl"))
    );
}

#[test]
fn preference_formats_round_trip() {
    let dir = common::scratch_dir("data_formats_preference");
    let cases = [
        (
            "trl_preference.jsonl",
            Target::TrlPreference,
            Target::OpenAi,
        ),
        (
            "openai_preference.jsonl",
            Target::OpenAi,
            Target::TrlPreference,
        ),
        (
            "plain_preference.jsonl",
            Target::TrlPreference,
            Target::OpenAi,
        ),
    ];
    for (name, own, other) in cases {
        let input = fixture(name);
        let original = load_preference_file(&input).unwrap().pairs;
        let case_dir = dir.join(name);
        std::fs::create_dir_all(&case_dir).unwrap();
        let there = convert_to(&input, other, &case_dir).unwrap();
        assert_eq!(load_preference_file(&there).unwrap().pairs, original);
        let back = convert_to(&there, own, &case_dir).unwrap();
        assert_eq!(
            load_preference_file(&back).unwrap().pairs,
            original,
            "{name}"
        );
    }
    // A kind the target cannot hold is one error for the file.
    let pairs = Dataset::load(&fixture("trl_preference.jsonl"), DataKind::Auto).unwrap();
    let err = convert_file(&pairs, Target::Alpaca, &dir.join("x.jsonl")).unwrap_err();
    assert!(err.to_string().contains("preference records"), "{err}");
    let sft = Dataset::load(&fixture("messages.jsonl"), DataKind::Auto).unwrap();
    assert!(convert_file(&sft, Target::TrlPreference, &dir.join("y.jsonl")).is_err());
    assert!(!dir.join("x.jsonl").exists() && !dir.join("y.jsonl").exists());
}

#[test]
fn convert_refuses_an_existing_output() {
    let dir = common::scratch_dir("data_formats_existing");
    let out = dir.join("out.jsonl");
    std::fs::write(&out, "keep me\n").unwrap();
    let run = tunelab(&[
        "data",
        "convert",
        fixture("alpaca.jsonl").to_str().unwrap(),
        "--to",
        "sharegpt",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        text(&run.stderr).contains("already exists"),
        "{}",
        text(&run.stderr)
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me\n");
}

// ---- loss mask -------------------------------------------------------------------------

/// The tokens of a weight-0 reply carry IGNORE_INDEX; a weight-1 reply's carry their ids.
#[test]
fn a_weight_0_reply_is_not_trained() {
    let model = common::default_model();
    let weighted = &sft_records(&fixture("openai_weighted.jsonl"))[0];
    let SftRecord::Weighted { messages, trained } = weighted else {
        panic!("expected a weighted record: {weighted:?}");
    };
    assert_eq!(trained, &vec![false, true]);
    let all_trained = SftRecord::Messages(messages.clone());
    let tokenize =
        |r: &SftRecord| tokenize_record(r, &model.template, &model.tokenizer, None, 4096).unwrap();
    let (masked, full) = (tokenize(weighted), tokenize(&all_trained));
    assert_eq!(
        masked.input_ids, full.input_ids,
        "weights change labels only"
    );
    let runs = |labels: &[i64]| -> Vec<String> {
        let mut runs: Vec<Vec<u32>> = Vec::new();
        let mut open = false;
        for (&id, &label) in full.input_ids.iter().zip(labels) {
            let labelled = label != IGNORE_INDEX;
            if labelled && !open {
                runs.push(Vec::new());
            }
            if labelled {
                runs.last_mut().unwrap().push(id);
            }
            open = labelled;
        }
        runs.iter()
            .map(|ids| model.tokenizer.decode(ids, false).unwrap())
            .collect()
    };
    let full_runs = runs(&full.labels);
    assert_eq!(full_runs.len(), 2, "{full_runs:?}");
    assert!(full_runs[0].starts_with("Paris"), "{full_runs:?}");
    // Only the weight-1 reply is labelled; the weight-0 one is context like the user's turns.
    assert_eq!(runs(&masked.labels), vec![full_runs[1].clone()]);
    assert!(full_runs[1].starts_with("Paris, as if everyone"));
}

// ---- validate --------------------------------------------------------------------------

#[test]
fn validate_exits_1_and_names_every_bad_line() {
    let dir = common::scratch_dir("data_formats_validate");
    let bad = dir.join("bad.jsonl");
    std::fs::write(
        &bad,
        concat!(
            r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}"#,
            "\n",
            r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 2}]}"#,
            "\n",
            r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}"#,
            "\n",
            r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "tools": []}"#,
            "\n",
        ),
    )
    .unwrap();
    let run = tunelab(&["data", "validate", bad.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr));
    let stdout = text(&run.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let file = bad.display();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with(&format!("{file}:2: field \"messages\"[1].weight")));
    assert!(lines[1].starts_with(&format!("{file}:4: field \"tools\": tool calling")));
    assert!(
        text(&run.stderr).contains(&format!("error: {file}: 2 problems in 4 sft records")),
        "{}",
        text(&run.stderr)
    );

    for (name, format, count) in [
        ("openai_weighted.jsonl", "messages", 3),
        ("sharegpt.jsonl", "sharegpt", 3),
        ("openai_preference.jsonl", "openai preference", 2),
    ] {
        let path = format!("tests/fixtures/data_formats/{name}");
        let run = tunelab(&["data", "validate", &path]);
        assert_eq!(run.status.code(), Some(0), "{}", text(&run.stdout));
        assert_eq!(
            text(&run.stdout),
            format!("{path}: {count} records, {format}, no problems\n")
        );
    }
    // A preference file read as SFT is a problem, not a pass.
    let run = tunelab(&[
        "data",
        "validate",
        "tests/fixtures/data_formats/trl_preference.jsonl",
        "--kind",
        "sft",
    ]);
    assert_eq!(run.status.code(), Some(1));
    assert!(text(&run.stdout).starts_with("tests/fixtures/data_formats/trl_preference.jsonl:1: "));
}

// ---- split -----------------------------------------------------------------------------

fn split_with(input: &Path, dir: &Path, seed: u64) -> (String, String) {
    let train = dir.join(format!("train-{seed}.jsonl"));
    let eval = dir.join(format!("eval-{seed}.jsonl"));
    let _ = std::fs::remove_file(&train);
    let _ = std::fs::remove_file(&eval);
    let run = tunelab(&[
        "data",
        "split",
        input.to_str().unwrap(),
        "--eval",
        "0.3",
        "--seed",
        &seed.to_string(),
        "--out-train",
        train.to_str().unwrap(),
        "--out-eval",
        eval.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    (
        std::fs::read_to_string(train).unwrap(),
        std::fs::read_to_string(eval).unwrap(),
    )
}

#[test]
fn split_is_disjoint_deterministic_and_keeps_duplicates_together() {
    let dir = common::scratch_dir("data_formats_split");
    // 40 records: 30 distinct, and line 3k+1 repeated once further on for a few k.
    let mut lines: Vec<String> = (0..30)
        .map(|i| format!(r#"{{"prompt": "question {i}", "completion": "answer {i}"}}"#))
        .collect();
    for i in 0..10 {
        lines.push(format!(
            r#"{{"completion": "answer {i}", "prompt": "question {i}"}}"#
        ));
    }
    let input = dir.join("data.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();

    let (train, eval) = split_with(&input, &dir, 7);
    let (train_again, eval_again) = split_with(&input, &dir, 7);
    assert_eq!(
        (&train, &eval),
        (&train_again, &eval_again),
        "same seed, same split"
    );
    let (other_train, _) = split_with(&input, &dir, 8);
    assert_ne!(train, other_train, "another seed, another split");

    // Every original line lands on exactly one side, verbatim.
    let mut both: Vec<&str> = train.lines().chain(eval.lines()).collect();
    both.sort_unstable();
    let mut original: Vec<&str> = lines.iter().map(String::as_str).collect();
    original.sort_unstable();
    assert_eq!(both, original);
    assert_eq!(eval.lines().count(), 12, "30% of 40");
    // A duplicate's copies are on one side: no question is in both.
    let question = |line: &str| {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["prompt"].as_str().unwrap().to_string()
    };
    for line in eval.lines() {
        let q = question(line);
        assert!(
            !train.lines().any(|t| question(t) == q),
            "{q} on both sides"
        );
    }

    // Existing outputs are refused and left alone.
    let train_path = dir.join("train-7.jsonl");
    let run = tunelab(&[
        "data",
        "split",
        input.to_str().unwrap(),
        "--out-train",
        train_path.to_str().unwrap(),
        "--out-eval",
        dir.join("fresh-eval.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(1));
    assert!(text(&run.stderr).contains("already exists"));
    assert!(!dir.join("fresh-eval.jsonl").exists());
    assert_eq!(std::fs::read_to_string(&train_path).unwrap(), train);
}

#[test]
fn split_groups_identical_keys() {
    let keys: Vec<String> = ["a", "b", "a", "c", "d", "a", "e", "f"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for seed in 0..20 {
        let plan = split(&keys, 3, seed).unwrap();
        let a_side: Vec<bool> = [0, 2, 5].iter().map(|i| plan.eval.contains(i)).collect();
        assert!(
            a_side.iter().all(|&s| s == a_side[0]),
            "seed {seed}: {plan:?}"
        );
        assert_eq!(plan.train.len() + plan.eval.len(), keys.len());
        assert!(!plan.eval.is_empty() && plan.eval.len() <= 3);
    }
}

// ---- stats -----------------------------------------------------------------------------

#[test]
fn stats_counts_known_duplicates() {
    let ds = Dataset::load(&fixture("duplicates.jsonl"), DataKind::Auto).unwrap();
    let report = stats(&ds);
    assert_eq!(report.records, 8);
    // Lines 1 and 3 are one record with its keys reordered; 4, 6 and 7 are one record.
    assert_eq!(
        report.duplicates.records,
        Repeats {
            count: 3,
            groups: vec![vec![1, 3], vec![4, 6, 7]],
        }
    );
    // Line 5 asks line 2's question with another answer.
    assert_eq!(
        report.duplicates.prompts,
        Repeats {
            count: 4,
            groups: vec![vec![1, 3], vec![2, 5], vec![4, 6, 7]],
        }
    );
    assert_eq!(report.chars.reply.max, "Rome, on the Tiber".len());
    assert_eq!(report.chars.reply.min, "Rome".len());
}

#[test]
fn stats_json_through_the_binary_with_token_lengths() {
    let model = common::default_model();
    let records = sft_records(&fixture("duplicates.jsonl"));
    let lengths: Vec<usize> = records
        .iter()
        .map(|r| {
            tokenize_record(r, &model.template, &model.tokenizer, None, 4096)
                .unwrap()
                .input_ids
                .len()
        })
        .collect();
    let (min, max) = (
        *lengths.iter().min().unwrap(),
        *lengths.iter().max().unwrap(),
    );
    assert!(
        min < max,
        "the fixture's records differ in length: {lengths:?}"
    );
    // A limit just under the longest record: the longest exceed it, the rest do not.
    let limit = max - 1;
    let over = lengths.iter().filter(|&&n| n > limit).count();
    let run = tunelab(&[
        "data",
        "stats",
        "tests/fixtures/data_formats/duplicates.jsonl",
        "--model",
        common::default_gguf().to_str().unwrap(),
        "--max-seq-length",
        &limit.to_string(),
        "--json",
    ]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["records"], 8);
    assert_eq!(report["format"], "prompt/completion");
    assert_eq!(report["duplicates"]["records"]["count"], 3);
    assert_eq!(report["duplicates"]["prompts"]["count"], 4);
    let tokens = &report["tokens"];
    assert_eq!(tokens["lengths"]["min"], min);
    assert_eq!(tokens["lengths"]["max"], max);
    assert_eq!(tokens["max_seq_length"], limit);
    assert_eq!(tokens["over_max_seq_length"], over);
}
