//! The real binary under tmux: open the workbench, go to the training screen, start a short
//! CPU run on the tiny Llama of tests/fixtures/lora_tiny, pause it and see the step counter
//! hold, resume and see it reach the end, quit, and check the terminal is back as it was (main screen, canonical mode, no mouse
//! reporting). Needs tmux (`.ci/run` installs it).

mod common;
mod hostile;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of its own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs (install it: apt-get install -y tmux)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "e2e"])
    }

    fn keys(&self, keys: &str) {
        self.run(&["send-keys", "-t", "e2e", keys]);
    }

    /// Waits until the screen satisfies `done`, failing with the last screen after `limit`.
    fn wait_for(&self, what: &str, limit: Duration, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < limit,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// The tiny Llama folder with a character-level tokenizer (its vocabulary has 96 ids).
fn tiny_model(dir: &Path) -> PathBuf {
    let model = dir.join("model");
    std::fs::create_dir_all(&model).unwrap();
    let base = common::fixture("lora_tiny/base");
    for file in ["config.json", "generation_config.json", "model.safetensors"] {
        std::fs::copy(base.join(file), model.join(file)).unwrap();
    }
    let specials = ["<pad>", "<s>", "</s>", "<unk>"];
    let mut vocab = serde_json::Map::new();
    for (id, token) in specials.iter().enumerate() {
        vocab.insert(token.to_string(), id.into());
    }
    for c in ' '..='z' {
        let id = vocab.len();
        vocab.insert(c.to_string(), id.into());
    }
    let added: Vec<serde_json::Value> = specials
        .iter()
        .enumerate()
        .map(|(id, t)| {
            serde_json::json!({"id": id, "content": t, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let tokenizer = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null,
        "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>",
            "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": true,
            "byte_fallback": false, "vocab": vocab, "merges": []}
    });
    std::fs::write(model.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    std::fs::write(
        model.join("tokenizer_config.json"),
        r#"{"bos_token": "<s>", "eos_token": "</s>"}"#,
    )
    .unwrap();
    model
}

const STEPS: usize = 12;

/// The step counter on the progress gauge: "step N/STEPS".
fn step_of(screen: &str) -> Option<usize> {
    let end = screen.find(&format!("/{STEPS} · epoch"))?;
    let start = screen[..end].rfind("step ")? + 5;
    screen[start..end].parse().ok()
}

/// A folder with the tiny model, four SFT records and tiny.toml (STEPS steps, output runs/tiny).
fn workspace(name: &str) -> PathBuf {
    let dir = common::scratch_dir(name);
    tiny_model(&dir);
    let records: Vec<String> = [
        ("what is a bop", "a blowout preventer"),
        ("what is an rov", "a remotely operated vehicle"),
        ("what is dp", "dynamic positioning"),
        ("what is fpso", "a floating production unit"),
    ]
    .iter()
    .map(|(p, c)| serde_json::json!({"prompt": p, "completion": c}).to_string())
    .collect();
    std::fs::write(dir.join("sft.jsonl"), records.join("\n")).unwrap();
    std::fs::write(
        dir.join("tiny.toml"),
        format!(
            "model_name = \"model\"\ntrain_file = \"sft.jsonl\"\noutput_dir = \"runs/tiny\"\n\
             max_steps = {STEPS}\nper_device_train_batch_size = 2\nmax_seq_length = 128\n\
             lora_r = 4\nlogging_steps = 1\nsave_steps = 100\n"
        ),
    )
    .unwrap();
    dir
}

/// Starts `tunelab ARGS` in a 100×30 tmux window in `dir`; after it exits the shell prints
/// its status and the terminal's mode (TTY:icanon when canonical mode is back).
fn open(dir: &Path, args: &str, socket: &str) -> Tmux {
    let tmux = Tmux {
        socket: format!("tunelab-{socket}-{}", std::process::id()),
    };
    let script = format!(
        "'{}' {args}; echo \"EXITED:$?\"; stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon | sed 's/^/TTY:/'; sleep 60",
        env!("CARGO_BIN_EXE_tunelab")
    );
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "e2e",
        "-x",
        "100",
        "-y",
        "30",
        "-c",
        dir.to_str().unwrap(),
        "sh",
        "-c",
        &script,
    ]);
    tmux
}

#[test]
fn the_workbench_trains_under_tmux_and_restores_the_terminal() {
    let dir = workspace("tui_e2e");
    let tmux = open(&dir, "", "train");
    let long = Duration::from_secs(120);
    tmux.wait_for("the tabs", long, |s| {
        s.contains("1 Hardware") && s.contains("3 Training")
    });
    tmux.keys("3");
    tmux.wait_for("the config", long, |s| {
        s.contains("config tiny.toml") && s.contains(&format!("max_steps {STEPS}"))
    });
    // Start, and pause at once: the trainer holds after its first step until resumed.
    tmux.keys("s");
    tmux.keys(" ");
    tmux.wait_for("the pause", long, |s| {
        s.contains("paused") && step_of(s).is_some()
    });
    std::thread::sleep(Duration::from_millis(800));
    let held = step_of(&tmux.screen()).expect("a step counter");
    std::thread::sleep(Duration::from_millis(800));
    let screen = tmux.screen();
    assert_eq!(
        step_of(&screen),
        Some(held),
        "the run went on while paused:\n{screen}"
    );
    assert!(
        (1..STEPS).contains(&held),
        "paused at step {held}:\n{screen}"
    );
    tmux.keys(" ");
    let finished = tmux.wait_for("the last step", long, |s| {
        step_of(s) == Some(STEPS) && s.contains("finished")
    });
    assert!(finished.contains("loss"), "{finished}");
    let events = std::fs::read_to_string(dir.join("runs/tiny/events.jsonl")).unwrap();
    let steps = events
        .lines()
        .filter(|l| l.contains(r#""event":"step""#))
        .count();
    assert_eq!(steps, STEPS, "{events}");

    tmux.keys("q");
    let after = tmux.wait_for("the exit", long, |s| s.contains("TTY:"));
    assert!(after.contains("EXITED:0"), "{after}");
    assert!(after.contains("TTY:icanon"), "raw mode left on:\n{after}");
    assert!(
        !after.contains("3 Training"),
        "still on the workbench's screen:\n{after}"
    );
    let flags = tmux.run(&[
        "display-message",
        "-p",
        "-t",
        "e2e",
        "#{alternate_on} #{mouse_any_flag}",
    ]);
    assert_eq!(
        flags.trim(),
        "0 0",
        "alternate screen / mouse reporting still on"
    );
}

#[test]
fn watch_follows_a_headless_run_from_another_process() {
    let dir = workspace("tui_watch");
    // The workbench waits for a run that has not started yet.
    let tmux = open(&dir, "watch runs/tiny", "watch");
    let long = Duration::from_secs(120);
    tmux.wait_for("the follow screen", long, |s| {
        s.contains("following runs/tiny")
    });
    let train = Command::new(env!("CARGO_BIN_EXE_tunelab"))
        .args(["train", "--config", "tiny.toml", "--device", "cpu"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        train.status.success(),
        "{}",
        String::from_utf8_lossy(&train.stderr)
    );
    let screen = tmux.wait_for("the followed run's end", long, |s| {
        step_of(s) == Some(STEPS) && s.contains("finished")
    });
    assert!(screen.contains("read-only"), "{screen}");
    tmux.keys("q");
    let after = tmux.wait_for("the exit", long, |s| s.contains("TTY:"));
    assert!(
        after.contains("EXITED:0") && after.contains("TTY:icanon"),
        "{after}"
    );
}

/// A model candle would panic on (general.alignment = 0): the run fails, the screen says why,
/// and the workbench goes on and quits cleanly.
#[test]
fn the_workbench_reports_a_hostile_model_as_a_failed_run() {
    let dir = common::scratch_dir("tui_hostile");
    let set = hostile::write_small_set(&dir.join("models"));
    let bad = set
        .iter()
        .find(|h| h.name == "alignment_zero.gguf")
        .expect("the alignment case");
    std::fs::write(
        dir.join("sft.jsonl"),
        r#"{"prompt": "what is dp", "completion": "dynamic positioning"}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("bad.toml"),
        format!(
            "model_name = {:?}\ntrain_file = \"sft.jsonl\"\noutput_dir = \"runs/bad\"\nmax_steps = 2\n",
            bad.path.display()
        ),
    )
    .unwrap();
    let tmux = open(&dir, "", "hostile");
    let long = Duration::from_secs(120);
    tmux.wait_for("the tabs", long, |s| s.contains("3 Training"));
    tmux.keys("3");
    tmux.wait_for("the config", long, |s| s.contains("config bad.toml"));
    tmux.keys("s");
    let screen = tmux.wait_for("the failure", long, |s| s.contains("failed: "));
    assert!(
        screen.contains("alignment_zero.gguf: not a valid GGUF file"),
        "{screen}"
    );
    let events = std::fs::read_to_string(dir.join("runs/bad/events.jsonl")).unwrap();
    assert!(
        events.contains(r#""ok":false"#) && events.contains("general.alignment is 0"),
        "{events}"
    );
    tmux.keys("q");
    let after = tmux.wait_for("the exit", long, |s| s.contains("TTY:"));
    assert!(
        after.contains("EXITED:0") && after.contains("TTY:icanon"),
        "{after}"
    );
}

/// The port of the Serve panel's `http://127.0.0.1:PORT/v1`.
fn served_port(screen: &str) -> Option<u16> {
    let start = screen.find("http://127.0.0.1:")? + "http://127.0.0.1:".len();
    let digits: String = screen[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The workbench's own server answers an OpenAI-style request and the Serve panel counts it;
/// the Data screen's Generate makes records from the preset's recipe and opens them.
#[test]
fn the_workbench_serves_its_model_and_generates_from_a_recipe() {
    let dir = workspace("tui_serve");
    std::fs::write(
        dir.join("recipe.toml"),
        "output = \"prompt_completion\"\n[slots.n]\nkind = \"number\"\nmin = 1\nmax = 100000\n\
         [[templates]]\nprompts = [\"what is {{ n.value }} plus one\"]\nanswer = \"{{ n.value + 1 }}\"\n",
    )
    .unwrap();
    let tmux = open(&dir, "", "serve");
    let long = Duration::from_secs(120);
    tmux.wait_for("the tabs", long, |s| s.contains("5 Runs"));
    tmux.keys("5");
    tmux.wait_for("the serve panel", long, |s| s.contains("off · v serves"));
    tmux.keys("v");
    let screen = tmux.wait_for("the server", long, |s| served_port(s).is_some());
    let port = served_port(&screen).unwrap();
    let body = serde_json::json!({"model": "base", "prompt": "what is dp", "max_tokens": 4, "temperature": 0});
    let reply: serde_json::Value = ureq::post(&format!("http://127.0.0.1:{port}/v1/completions"))
        .send_json(body)
        .expect("the workbench's server answers")
        .into_json()
        .unwrap();
    assert_eq!(reply["object"], "text_completion", "{reply}");
    tmux.wait_for("the request counted", long, |s| s.contains("1 requests"));
    tmux.keys("v");
    tmux.wait_for("the server stopped", long, |s| s.contains("off · v serves"));
    // Generate: the recipe, 200 records (the picker's default), opened when made.
    tmux.keys("2");
    tmux.keys("g");
    tmux.wait_for("the picker", long, |s| s.contains("data recipe from"));
    tmux.keys("Enter");
    let screen = tmux.wait_for("the records made", long, |s| s.contains("Records 200/200"));
    assert!(screen.contains("synth-200.jsonl"), "{screen}");
    let made = std::fs::read_to_string(dir.join("synth-200.jsonl")).unwrap();
    assert_eq!(made.lines().count(), 200);
    tmux.keys("q");
    let after = tmux.wait_for("the exit", long, |s| s.contains("TTY:"));
    assert!(after.contains("EXITED:0"), "{after}");
}
