//! Replays the fuzz corpora (fuzz/corpus/<target>/) and crash reproducers
//! (fuzz/artifacts/<target>/, when present) through the same harness the cargo-fuzz
//! targets use (fuzz/harness.rs), on stable Rust: every input must come back (an `Err` is
//! fine), none may panic. See fuzz/README.md for the fuzzing itself.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let corpus = files_in(&root.join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target}/ is missing or empty (see fuzz/README.md)"
    );
    let artifacts = files_in(&root.join("artifacts").join(target));
    let mut failed = Vec::new();
    for path in corpus.iter().chain(&artifacts) {
        let data = std::fs::read(path).unwrap();
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs panicked: {failed:#?}",
        failed.len(),
        corpus.len() + artifacts.len()
    );
}

#[test]
fn gguf() {
    replay("gguf", harness::gguf);
}

#[test]
fn chat_template() {
    replay("chat_template", harness::chat_template);
}

#[test]
fn adapter() {
    replay("adapter", harness::adapter);
}

#[test]
fn sft_data() {
    replay("sft_data", harness::sft_data);
}

#[test]
fn preference_data() {
    replay("preference_data", harness::preference_data);
}

#[test]
fn eval_cases() {
    replay("eval_cases", harness::eval_cases);
}

#[test]
fn config() {
    replay("config", harness::config);
}

#[test]
fn events() {
    replay("events", harness::events);
}
