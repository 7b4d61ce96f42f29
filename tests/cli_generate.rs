//! `tunelab generate` end to end on the default model, on the CPU.

mod common;

use std::process::Command;

fn generate(args: &[&str]) -> std::process::Output {
    common::default_gguf(); // make sure the model is in the cache before the binary needs it
    Command::new(env!("CARGO_BIN_EXE_tunelab"))
        .arg("generate")
        .args(args)
        .output()
        .expect("running tunelab")
}

#[test]
fn answers_the_capital_of_france_greedily() {
    let out = generate(&[
        "--prompt",
        "What is the capital of France?",
        "--temperature",
        "0",
        "--device",
        "cpu",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.trim(), "The capital of France is Paris.");
}

#[test]
fn empty_prompt_is_a_clear_error() {
    let out = generate(&["--prompt", "  ", "--device", "cpu"]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: the prompt is empty"
    );
}

#[test]
fn sampling_with_a_seed_repeats() {
    let args = [
        "--prompt",
        "Name a colour.",
        "--temperature",
        "1.0",
        "--seed",
        "3",
        "--max-tokens",
        "12",
        "--device",
        "cpu",
    ];
    let a = generate(&args);
    let b = generate(&args);
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(!a.stdout.is_empty());
    assert_eq!(a.stdout, b.stdout);
}
