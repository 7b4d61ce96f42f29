//! SFT data: file formats and their errors, loss masking with the default model's chat
//! template and tokenizer, truncation, batch order and padding.

mod common;

use candle_core::Device;
use std::path::PathBuf;
use tunelab::data::batch::{batch_order, collate};
use tunelab::data::sft::{
    load_sft_file, tokenize_dataset, tokenize_record, validate_sft_file, SftFormat, SftRecord,
    TokenizedExample,
};
use tunelab::model::ChatMessage;
use tunelab::train::loss::IGNORE_INDEX;

/// Writes `text` to a file of its own under the target's temporary folder.
fn data_file(test: &str, name: &str, text: &str) -> PathBuf {
    let path = common::scratch_dir(&format!("sft_data_{test}")).join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn load_error(test: &str, text: &str) -> (PathBuf, String) {
    let path = data_file(test, "data.jsonl", text);
    let err = load_sft_file(&path).expect_err("the file should not load");
    (path.clone(), format!("{err:#}"))
}

fn pc(prompt: &str, completion: &str) -> SftRecord {
    SftRecord::PromptCompletion {
        prompt: prompt.into(),
        completion: completion.into(),
    }
}

fn msg(role: &str, content: &str) -> ChatMessage {
    ChatMessage::new(role, content)
}

/// The runs of consecutive positions whose label is (or is not) IGNORE_INDEX, decoded.
fn decoded_runs(example: &TokenizedExample, labelled: bool) -> Vec<String> {
    let tokenizer = &common::default_model().tokenizer;
    let mut runs: Vec<Vec<u32>> = Vec::new();
    let mut previous_in_run = false;
    for (&id, &label) in example.input_ids.iter().zip(&example.labels) {
        let in_run = (label != IGNORE_INDEX) == labelled;
        if in_run && !previous_in_run {
            runs.push(Vec::new());
        }
        if in_run {
            runs.last_mut().unwrap().push(id);
        }
        previous_in_run = in_run;
    }
    runs.iter()
        .map(|ids| tokenizer.decode(ids, false).unwrap())
        .collect()
}

#[test]
fn parses_alpaca_jsonl_with_blank_lines() {
    let path = data_file(
        "alpaca",
        "data.jsonl",
        "{\"instruction\": \"Add\", \"input\": \"2 and 3\", \"output\": \"5\"}\n\n\
         {\"instruction\": \"Greet\", \"output\": \"Hello\"}\n",
    );
    let ds = load_sft_file(&path).unwrap();
    assert_eq!(ds.format, SftFormat::Alpaca);
    assert_eq!(ds.lines, vec![1, 3]);
    assert_eq!(
        ds.records,
        vec![
            SftRecord::Alpaca {
                instruction: "Add".into(),
                input: Some("2 and 3".into()),
                output: "5".into()
            },
            SftRecord::Alpaca {
                instruction: "Greet".into(),
                input: None,
                output: "Hello".into()
            },
        ]
    );
    assert_eq!(
        ds.records[0].conversation(None),
        vec![msg("user", "Add\n\n2 and 3"), msg("assistant", "5")]
    );
    assert_eq!(
        ds.records[1].conversation(None),
        vec![msg("user", "Greet"), msg("assistant", "Hello")]
    );
}

#[test]
fn parses_messages_from_a_json_array_with_each_records_line() {
    let text = r#"[
  {"messages": [
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello"}
  ]},
  {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why?"}, {"role": "assistant", "content": "Because."}]}
]
"#;
    let path = data_file("messages", "data.json", text);
    let ds = load_sft_file(&path).unwrap();
    assert_eq!(ds.format, SftFormat::Messages);
    assert_eq!(ds.lines, vec![2, 6]);
    assert_eq!(
        ds.records[1],
        SftRecord::Messages(vec![
            msg("system", "Be brief."),
            msg("user", "Why?"),
            msg("assistant", "Because.")
        ])
    );
}

#[test]
fn parses_prompt_completion() {
    let path = data_file(
        "prompt_completion",
        "data.jsonl",
        "{\"prompt\": \"Capital of France?\", \"completion\": \"Paris\"}\n",
    );
    let ds = load_sft_file(&path).unwrap();
    assert_eq!(ds.format, SftFormat::PromptCompletion);
    assert_eq!(ds.records, vec![pc("Capital of France?", "Paris")]);
    assert_eq!(ds.lines, vec![1]);
}

#[test]
fn a_missing_field_names_its_line_and_where_the_format_came_from() {
    let (path, err) = load_error(
        "missing",
        "{\"instruction\": \"a\", \"output\": \"b\"}\n\
         {\"instruction\": \"c\", \"output\": \"d\"}\n\
         {\"instruction\": \"e\"}\n",
    );
    assert_eq!(
        err,
        format!(
            "{}:3: missing field \"output\" (alpaca format, detected from line 1)",
            path.display()
        )
    );
}

#[test]
fn an_unexpected_field_is_named() {
    let (path, err) = load_error(
        "unexpected",
        "{\"instruction\": \"a\", \"output\": \"b\"}\n{\"instruction\": \"a\", \"output\": \"b\", \"foo\": 1}\n",
    );
    assert_eq!(
        err,
        format!(
            "{}:2: unexpected field \"foo\" (alpaca format takes instruction, input, output)",
            path.display()
        )
    );
}

#[test]
fn bad_lines_are_named_with_the_field_at_fault() {
    let cases = [
        ("{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\",\n", "2: not valid JSON: EOF while parsing a value (column 15)"),
        ("{\"prompt\": \"a\", \"completion\": 3}\n", "1: field \"completion\" must be a string, found a number"),
        ("{\"prompt\": \"a\", \"completion\": \"  \"}\n", "1: field \"completion\" is empty: there is nothing to learn"),
        ("{\"instruction\": \"a\", \"output\": \"\"}\n", "1: field \"output\" is empty: there is nothing to learn"),
        (
            "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}, {\"role\": \"bot\", \"content\": \"c\"}]}\n",
            "1: field \"messages\"[2].role must be system, user or assistant (found \"bot\")",
        ),
        (
            "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}\n",
            "1: field \"messages\"[0].role is \"user\": the last message must be from the assistant, whose reply is what the model learns",
        ),
        ("{\"messages\": []}\n", "1: field \"messages\" is empty"),
        (
            "{\"messages\": [{\"role\": \"assistant\", \"content\": null}]}\n",
            "1: field \"messages\"[0].content must be a string, found null",
        ),
        (
            "{\"instruction\": \"a\", \"output\": \"b\"}\n{\"prompt\": \"a\", \"completion\": \"b\"}\n",
            "2: fields \"completion\", \"prompt\" are prompt/completion format, but this file is alpaca format (detected from line 1)",
        ),
        (
            "{\"question\": \"a\", \"answer\": \"b\"}\n",
            "1: cannot tell the format from fields \"answer\", \"question\": expected instruction/output (alpaca), messages, or prompt/completion",
        ),
        ("[1, 2]\n", "1: a .jsonl file holds one JSON object per line, and this one opens a JSON array"),
        ("{\"prompt\": \"a\", \"completion\": \"b\"}\n[1, 2]\n", "2: a record must be a JSON object, found an array"),
        ("\"text\"\n", "1: a record must be a JSON object, found a string"),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let (path, err) = load_error(&format!("bad_{i}"), text);
        assert!(
            err.starts_with(&format!("{}:{expected}", path.display())),
            "case {i}: {err}"
        );
        assert!(!err.contains('\n'), "case {i}: not one line: {err}");
    }
}

#[test]
fn a_json_array_reports_errors_at_the_file_line() {
    let path = data_file(
        "array_errors",
        "data.json",
        "[\n  {\"prompt\": \"a\", \"completion\": \"b\"},\n  {\"prompt\": \"a\", \"completion\": 7}\n]\n",
    );
    assert_eq!(
        format!("{:#}", load_sft_file(&path).unwrap_err()),
        format!(
            "{}:3: field \"completion\" must be a string, found a number",
            path.display()
        )
    );
    let broken = data_file(
        "array_errors",
        "broken.json",
        "[\n  {\"prompt\": \"a\"},\n  {\n]\n",
    );
    let err = format!("{:#}", load_sft_file(&broken).unwrap_err());
    assert!(
        err.starts_with(&format!("{}:4: not valid JSON:", broken.display())),
        "{err}"
    );
}

#[test]
fn an_empty_file_has_no_records() {
    let (path, err) = load_error("empty", "\n  \n");
    assert_eq!(err, format!("{}: no records", path.display()));
    assert_eq!(
        validate_sft_file(&path),
        vec![format!("{}: no records", path.display())]
    );
}

#[test]
fn validation_lists_every_problem_in_file_order() {
    let path = data_file(
        "validate",
        "data.jsonl",
        "{\"prompt\": \"a\", \"completion\": \"b\"}\n\
         {\"prompt\": \"a\"}\n\
         not json\n\
         {\"prompt\": \"a\", \"completion\": \"b\"}\n\
         {\"prompt\": \"a\", \"completion\": \"b\", \"x\": 1}\n",
    );
    let file = path.display();
    assert_eq!(
        validate_sft_file(&path),
        vec![
            format!("{file}:2: missing field \"completion\" (prompt/completion format, detected from line 1)"),
            format!("{file}:3: not valid JSON: expected ident (column 2)"),
            format!("{file}:5: unexpected field \"x\" (prompt/completion format takes prompt, completion)"),
        ]
    );
    let many: String = "{}\n".repeat(150);
    let crowded = data_file("validate", "many.jsonl", &many);
    assert_eq!(validate_sft_file(&crowded).len(), 100);
    let good = data_file(
        "validate",
        "good.jsonl",
        "{\"prompt\": \"a\", \"completion\": \"b\"}\n",
    );
    assert!(validate_sft_file(&good).is_empty());
}

#[test]
fn prompt_tokens_carry_no_loss() {
    let model = common::default_model();
    let (prompt, completion) = ("What is the capital of France?", "The capital is Paris.");
    let example = tokenize_record(
        &pc(prompt, completion),
        &model.template,
        &model.tokenizer,
        None,
        4096,
    )
    .unwrap();
    let rendered_prompt = model.template.render(&[msg("user", prompt)], true).unwrap();
    let reply = format!("{completion}<|im_end|>\n");
    assert_eq!(decoded_runs(&example, true), vec![reply.clone()]);
    assert_eq!(decoded_runs(&example, false), vec![rendered_prompt.clone()]);
    // Prompt tokens then reply tokens, each tokenized on its own, labels equal to the ids.
    let prompt_ids = model.tokenizer.encode(&rendered_prompt).unwrap();
    let reply_ids = model.tokenizer.encode(&reply).unwrap();
    assert_eq!(
        example.input_ids,
        [prompt_ids.clone(), reply_ids.clone()].concat()
    );
    assert!(example.labels[..prompt_ids.len()]
        .iter()
        .all(|&l| l == IGNORE_INDEX));
    let reply_labels: Vec<i64> = reply_ids.iter().map(|&id| i64::from(id)).collect();
    assert_eq!(example.labels[prompt_ids.len()..], reply_labels[..]);
    assert_eq!(example.loss_tokens(), reply_ids.len());
    assert!(!example.truncated);
    assert_eq!(example.line, 0);
}

#[test]
fn every_assistant_turn_is_labelled_and_nothing_else() {
    let model = common::default_model();
    let messages = vec![
        msg("system", "You count."),
        msg("user", "One?"),
        msg("assistant", "One."),
        msg("user", "Two?"),
        msg("assistant", "One, two."),
    ];
    let example = tokenize_record(
        &SftRecord::Messages(messages.clone()),
        &model.template,
        &model.tokenizer,
        None,
        4096,
    )
    .unwrap();
    assert_eq!(
        decoded_runs(&example, true),
        vec!["One.<|im_end|>\n", "One, two.<|im_end|>\n"]
    );
    assert_eq!(
        decoded_runs(&example, false),
        vec![
            "<|im_start|>system\nYou count.<|im_end|>\n<|im_start|>user\nOne?<|im_end|>\n<|im_start|>assistant\n",
            "<|im_start|>user\nTwo?<|im_end|>\n<|im_start|>assistant\n",
        ]
    );
    let whole = model.tokenizer.decode(&example.input_ids, false).unwrap();
    assert_eq!(whole, model.template.render(&messages, false).unwrap());
}

#[test]
fn the_system_prompt_is_inserted_once_and_only_without_a_system_message() {
    let model = common::default_model();
    let system = "You answer in one word.";
    let tokenize = |record: &SftRecord| {
        tokenize_record(
            record,
            &model.template,
            &model.tokenizer,
            Some(system),
            4096,
        )
        .unwrap()
    };
    let prompt_text = decoded_runs(&tokenize(&pc("Capital of France?", "Paris")), false).join("");
    assert_eq!(
        prompt_text,
        format!("<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\nCapital of France?<|im_end|>\n<|im_start|>assistant\n")
    );
    // The template's own default system prompt gives way to the given one.
    assert!(!prompt_text.contains("SmolLM"));

    let own_system = SftRecord::Messages(vec![
        msg("system", "You are a pirate."),
        msg("user", "Hi"),
        msg("assistant", "Arr."),
    ]);
    let prompt_text = decoded_runs(&tokenize(&own_system), false).join("");
    assert_eq!(prompt_text.matches("<|im_start|>system").count(), 1);
    assert!(prompt_text.contains("You are a pirate."));
    assert!(!prompt_text.contains(system));
}

#[test]
fn truncation_is_counted_and_a_dataset_without_reply_tokens_is_refused() {
    let model = common::default_model();
    let long_reply = "word ".repeat(200);
    let path = data_file(
        "truncation",
        "data.jsonl",
        &format!(
            "{{\"prompt\": \"Short?\", \"completion\": \"Yes.\"}}\n{{\"prompt\": \"Long?\", \"completion\": \"{long_reply}\"}}\n"
        ),
    );
    let ds = load_sft_file(&path).unwrap();
    let full = tokenize_dataset(&ds, &model.template, &model.tokenizer, None, 4096).unwrap();
    assert_eq!(full.truncated, 0);
    let short_len = full.examples[0].input_ids.len();
    let long_len = full.examples[1].input_ids.len();
    assert!(long_len > short_len + 100);

    let max = short_len + 10;
    let cut = tokenize_dataset(&ds, &model.template, &model.tokenizer, None, max).unwrap();
    assert_eq!(cut.truncated, 1);
    assert_eq!(
        cut.examples.iter().map(|e| e.truncated).collect::<Vec<_>>(),
        vec![false, true]
    );
    assert_eq!(cut.examples[0].input_ids, full.examples[0].input_ids);
    assert_eq!(cut.examples[1].input_ids, full.examples[1].input_ids[..max]);
    assert_eq!(cut.examples[1].labels, full.examples[1].labels[..max]);
    assert_eq!(
        cut.examples.iter().map(|e| e.line).collect::<Vec<_>>(),
        vec![1, 2]
    );

    // A long prompt whose reply lies past the cut is left out (a batch of it alone would
    // carry no loss), and the run is told which line.
    let long_prompt = path.with_file_name("long_prompt.jsonl");
    std::fs::write(
        &long_prompt,
        format!(
            "{{\"prompt\": \"Short?\", \"completion\": \"Yes.\"}}\n{{\"prompt\": \"{long_reply}\", \"completion\": \"No.\"}}\n"
        ),
    )
    .unwrap();
    let ds_prompt = load_sft_file(&long_prompt).unwrap();
    let kept = tokenize_dataset(&ds_prompt, &model.template, &model.tokenizer, None, max).unwrap();
    assert_eq!(kept.examples.len(), 1);
    assert_eq!(kept.left_out, vec![2]);
    let warning = kept.warning(&long_prompt, max).unwrap();
    assert!(
        warning.contains("1 records keep no reply token within max_seq_length")
            && warning.contains("(lines 2)"),
        "{warning}"
    );
    assert!(cut.warning(&path, max).is_none());

    // Four tokens hold only the start of each prompt: nothing is left to learn.
    let err = tokenize_dataset(&ds, &model.template, &model.tokenizer, None, 4).unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        format!(
            "{}: no example keeps a reply token within max_seq_length 4; raise max_seq_length or shorten the prompts",
            path.display()
        )
    );
}

#[test]
fn batch_order_holds_every_index_once() {
    let lengths: Vec<usize> = (0..103).map(|i| (i * 37) % 91).collect();
    for group in [false, true] {
        let batches = batch_order(&lengths, 8, group, 7, 0);
        assert_eq!(batches.len(), 13);
        assert!(batches[..12].iter().all(|b| b.len() == 8));
        assert_eq!(batches[12].len(), 7);
        let mut seen: Vec<usize> = batches.concat();
        assert_ne!(seen, (0..103).collect::<Vec<_>>(), "not shuffled");
        seen.sort_unstable();
        assert_eq!(seen, (0..103).collect::<Vec<_>>());
    }
    assert!(batch_order(&[], 4, true, 1, 0).is_empty());
}

#[test]
fn batch_order_is_reproducible_per_seed_and_epoch() {
    let lengths = vec![10; 64];
    let order = |seed, epoch| batch_order(&lengths, 4, false, seed, epoch);
    assert_eq!(order(3, 1), order(3, 1));
    assert_ne!(order(3, 1), order(3, 2));
    assert_ne!(order(3, 1), order(4, 1));
}

#[test]
fn grouping_by_length_puts_similar_lengths_together() {
    // Lengths scattered over 1..=500 by a fixed permutation.
    let lengths: Vec<usize> = (0..2000).map(|i| (i * 7919) % 500 + 1).collect();
    let spread = |batches: &[Vec<usize>]| -> f64 {
        let total: usize = batches
            .iter()
            .map(|b| {
                let l: Vec<usize> = b.iter().map(|&i| lengths[i]).collect();
                l.iter().max().unwrap() - l.iter().min().unwrap()
            })
            .sum();
        total as f64 / batches.len() as f64
    };
    let grouped = batch_order(&lengths, 4, true, 11, 0);
    let shuffled = batch_order(&lengths, 4, false, 11, 0);
    assert!(
        spread(&grouped) * 10.0 < spread(&shuffled),
        "grouped {} vs shuffled {}",
        spread(&grouped),
        spread(&shuffled)
    );
    // Within a mega-batch of 50 batches, longest first.
    let mega: Vec<usize> = grouped[..50].concat().iter().map(|&i| lengths[i]).collect();
    assert!(mega.windows(2).all(|w| w[0] >= w[1]));
    // Grouping reorders within mega-batches only: the same indices as the plain shuffle.
    let (mut a, mut b) = (grouped[..50].concat(), shuffled[..50].concat());
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b);
}

#[test]
fn collate_pads_on_the_right_with_ignored_labels() {
    let short = TokenizedExample {
        input_ids: vec![5, 6, 7],
        labels: vec![IGNORE_INDEX, 6, 7],
        truncated: false,
        line: 1,
    };
    let long = TokenizedExample {
        input_ids: vec![1, 2, 3, 4, 9],
        labels: vec![IGNORE_INDEX, IGNORE_INDEX, 3, 4, 9],
        truncated: false,
        line: 2,
    };
    let batch = collate(&[&short, &long], 0, &Device::Cpu).unwrap();
    assert_eq!(
        batch.input_ids.to_vec2::<u32>().unwrap(),
        vec![vec![5, 6, 7, 0, 0], vec![1, 2, 3, 4, 9]]
    );
    assert_eq!(
        batch.labels.to_vec2::<i64>().unwrap(),
        vec![
            vec![IGNORE_INDEX, 6, 7, IGNORE_INDEX, IGNORE_INDEX],
            vec![IGNORE_INDEX, IGNORE_INDEX, 3, 4, 9]
        ]
    );
    assert_eq!(batch.tokens, 8);
    assert_eq!(batch.loss_tokens, 5);
    assert!(collate(&[], 0, &Device::Cpu).is_err());
}
