//! The workbench without a terminal: key sequences through `App::update` and the state and
//! effects they lead to, and snapshots of every screen in fixed states at 80×24 and 140×45
//! (ratatui's TestBackend; `INSTA_UPDATE=always cargo test --release --test tui_screens`
//! rewrites them after a deliberate change).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tunelab::config::RunConfig;
use tunelab::hw::{CpuInfo, GpuInfo, HardwareReport, MemoryInfo, NvmlStatus};
use tunelab::model::constrain::Constraint;
use tunelab::sweep::progress::{SweepProgress, TrialProgress, TrialState};
use tunelab::sweep::spec::Direction;
use tunelab::sweep::trial::Status;
use tunelab::train::events::{TrainCommand, TrainEvent};
use tunelab::tui::app::{App, Effect, Modal, ModelJob, Msg, Screen};
use tunelab::tui::compare::{ReplyPiece, Side};
use tunelab::tui::data::{read_dataset, DataFocus, Inspection};
use tunelab::tui::discover::{Found, RunSummary};
use tunelab::tui::generate::{GenerateKind, GenerateProgress};
use tunelab::tui::hardware::MemoryEstimate;
use tunelab::tui::serve::ServeCounters;
use tunelab::tui::theme::Theme;
use tunelab::tui::training::RunState;
use tunelab::tui::view::{layout, render};

const SMALL: (u16, u16) = (80, 24);
const LARGE: (u16, u16) = (140, 45);
const CONFIG: &str = "sample_data/camara_qod/config.toml";
const GIB: u64 = 1 << 30;

fn app(size: (u16, u16)) -> App {
    App::new(Theme::default(), size)
}

fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
    app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn keys(app: &mut App, text: &str) -> Vec<Effect> {
    text.chars()
        .flat_map(|c| key(app, KeyCode::Char(c)))
        .collect()
}

fn click(app: &mut App, column: u16, row: u16) -> Vec<Effect> {
    app.update(Msg::Mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column,
        row,
        modifiers: KeyModifiers::NONE,
    }))
}

fn draw(app: &App, size: (u16, u16)) -> String {
    let mut terminal = Terminal::new(TestBackend::new(size.0, size.1)).unwrap();
    terminal.draw(|frame| render(app, frame)).unwrap();
    terminal.backend().to_string()
}

/// Draws at both sizes and compares with the stored snapshots.
fn snapshot(name: &str, build: impl Fn((u16, u16)) -> App) {
    for size in [SMALL, LARGE] {
        let app = build(size);
        insta::assert_snapshot!(format!("{name}_{}x{}", size.0, size.1), draw(&app, size));
    }
}

fn with_config(app: &mut App) -> Vec<Effect> {
    let config = RunConfig::load(Path::new(CONFIG)).unwrap();
    app.update(Msg::ConfigLoaded {
        path: CONFIG.into(),
        result: Ok(Box::new(config)),
    })
}

fn report(gpus: Vec<GpuInfo>) -> HardwareReport {
    let note = if gpus.is_empty() {
        "No NVIDIA GPU: NVML library not found (no NVIDIA driver); training runs on the CPU."
    } else {
        "--device auto trains on GPU 0."
    };
    HardwareReport {
        nvml: NvmlStatus {
            available: !gpus.is_empty(),
            reason: gpus
                .is_empty()
                .then(|| "NVML library not found (no NVIDIA driver)".into()),
        },
        driver_version: Some("580.65.06")
            .filter(|_| !gpus.is_empty())
            .map(Into::into),
        cuda_driver_version: Some("13.0").filter(|_| !gpus.is_empty()).map(Into::into),
        gpus,
        cpu: CpuInfo {
            model: Some("AMD EPYC 9654".into()),
            cores: 16,
        },
        memory: MemoryInfo {
            total_bytes: Some(64 * GIB),
            available_bytes: Some(48 * GIB),
        },
        cache_dir: "/home/user/.cache/tunelab".into(),
        cache_disk_free_bytes: Some(200 * GIB),
        cuda_built: true,
        candle_cuda_devices: vec![],
        cpu_path_note: note.into(),
    }
}

fn gpu(utilization: u32, temperature: u32) -> GpuInfo {
    GpuInfo {
        index: 0,
        name: Some("NVIDIA H100 80GB HBM3".into()),
        uuid: None,
        memory_total_bytes: Some(80 * GIB),
        memory_used_bytes: Some(30 * GIB),
        memory_free_bytes: Some(50 * GIB),
        utilization_percent: Some(utilization),
        temperature_c: Some(temperature),
        power_draw_w: Some(310.0),
        power_limit_w: Some(700.0),
        compute_capability: Some("9.0".into()),
        pcie_gen: Some(5),
        pcie_width: Some(16),
        processes: vec![],
    }
}

fn started(stage: &str) -> TrainEvent {
    TrainEvent::Started {
        output_dir: "runs/camara_qod".into(),
        total_steps: 60,
        start_step: 0,
        examples: 111,
        truncated: 0,
        trainable_parameters: 4_884_480,
        device: "cuda:0".into(),
        stage: stage.into(),
    }
}

fn step(step: usize, dpo: bool) -> TrainEvent {
    let x = step as f64;
    let mut metrics = BTreeMap::new();
    if dpo {
        metrics.insert("rewards/chosen".into(), 0.02 * x);
        metrics.insert("rewards/rejected".into(), -0.015 * x);
        metrics.insert("rewards/margins".into(), 0.035 * x);
        metrics.insert("rewards/accuracies".into(), (0.5 + x / 80.0).min(1.0));
    }
    TrainEvent::Step {
        step,
        epoch: x / 20.0,
        loss: 2.0 / (1.0 + 0.1 * x) + 0.05 * (x * 1.7).sin(),
        lr: 2e-4 * (1.0 - x / 60.0),
        grad_norm: 1.0 + 0.5 * (x * 0.9).cos(),
        tokens_per_s: 5000.0 + 10.0 * x,
        elapsed_s: 1.5 * x,
        metrics,
    }
}

/// A run started here, 24 steps in, with an eval, a checkpoint and a warning.
fn training_app(size: (u16, u16), stage: &str) -> App {
    let mut app = app(size);
    with_config(&mut app);
    keys(&mut app, "3s");
    let run = match app.train.run.as_ref() {
        Some(view) => view.id,
        None => panic!("s started no run"),
    };
    let mut send = |event| app.update(Msg::Train { run, event });
    send(started(stage));
    for s in 1..=24 {
        send(step(s, stage == "dpo"));
        if s % 10 == 0 {
            send(TrainEvent::Eval {
                step: s,
                metrics: [
                    ("eval_loss".to_string(), 1.8 / (1.0 + 0.1 * s as f64)),
                    ("json_valid".to_string(), s as f64 / 30.0),
                ]
                .into(),
            });
            send(TrainEvent::Checkpoint {
                step: s,
                path: format!("runs/camara_qod/checkpoint-{s}"),
            });
        }
    }
    send(TrainEvent::Warning {
        step: 12,
        message: "grad norm 14.2 before clipping".into(),
    });
    app.update(Msg::Hardware(Box::new(report(vec![gpu(97, 71)]))));
    app
}

/// A path of the repository as configs store it: absolute.
fn absolute(relative: &str) -> std::path::PathBuf {
    std::path::absolute(relative).unwrap()
}

// ---- flows ----

#[test]
fn starting_pausing_and_stopping_a_run() {
    let mut app = app(SMALL);
    assert!(
        keys(&mut app, "3s").is_empty(),
        "no config yet, nothing starts"
    );
    assert!(app.notice.as_deref().unwrap().contains("pick a config"));
    with_config(&mut app);
    let effects = key(&mut app, KeyCode::Char('s'));
    let [Effect::StartRun { run, config }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(
        config.output_dir,
        absolute("sample_data/camara_qod/runs/camara_qod")
    );
    let run = *run;
    assert_eq!(keys(&mut app, "s"), vec![], "one run at a time");
    // Paused while the model loads: Started does not undo it.
    let pause = keys(&mut app, " ");
    assert_eq!(pause, vec![Effect::Command(TrainCommand::Pause)]);
    app.update(Msg::Train {
        run,
        event: started("sft"),
    });
    assert_eq!(app.train.run.as_ref().unwrap().state, RunState::Paused);
    let resume = keys(&mut app, " ");
    assert_eq!(resume, vec![Effect::Command(TrainCommand::Resume)]);
    assert_eq!(app.train.run.as_ref().unwrap().state, RunState::Running);
    let save = keys(&mut app, "w");
    assert_eq!(save, vec![Effect::Command(TrainCommand::SaveNow)]);
    app.update(Msg::Train {
        run,
        event: step(3, false),
    });
    // Events of another run are not this one's.
    app.update(Msg::Train {
        run: run + 7,
        event: step(9, false),
    });
    let view = app.train.run.as_ref().unwrap();
    assert_eq!((view.step, view.total_steps), (3, 60));
    assert_eq!(view.eta_s(), Some(1.5 * 3.0 / 3.0 * 57.0));
    // A first q while training only warns; x stops with a checkpoint.
    keys(&mut app, "q");
    assert!(!app.quit && app.quit_armed);
    assert_eq!(
        keys(&mut app, "x"),
        vec![Effect::Command(TrainCommand::Stop)]
    );
    let effects = app.update(Msg::Train {
        run,
        event: TrainEvent::Finished {
            ok: true,
            message: "stopped at step 3".into(),
            output_dir: "runs/camara_qod".into(),
            adapter: Some("runs/camara_qod/adapter".into()),
        },
    });
    assert_eq!(
        effects,
        vec![Effect::Discover],
        "the new run folder is looked for"
    );
    assert_eq!(
        app.compare.adapter,
        Some(PathBuf::from("runs/camara_qod/adapter"))
    );
    keys(&mut app, "q");
    assert!(app.quit);
}

#[test]
fn a_config_loads_its_dataset_and_eval_cases() {
    let mut app = app(SMALL);
    let effects = app.update(Msg::Found(Found {
        configs: vec!["sample_data/bgp/config.toml".into(), CONFIG.into()],
        ..Found::default()
    }));
    assert_eq!(
        effects,
        vec![Effect::LoadConfig(CONFIG.into())],
        "the worked example first"
    );
    let effects = with_config(&mut app);
    assert_eq!(
        effects,
        vec![
            Effect::LoadDataset(absolute("sample_data/camara_qod/sft.jsonl")),
            Effect::LoadCases(absolute("sample_data/camara_qod/eval.jsonl")),
        ]
    );
    keys(&mut app, "3p");
    assert_eq!(app.modal, Some(Modal::Configs { selected: 1 }));
    key(&mut app, KeyCode::Up);
    let effects = key(&mut app, KeyCode::Enter);
    assert_eq!(
        effects,
        vec![Effect::LoadConfig("sample_data/bgp/config.toml".into())]
    );
    assert_eq!(app.modal, None);
}

fn data_app(size: (u16, u16), path: &str) -> (App, Vec<Effect>) {
    let mut app = app(size);
    with_config(&mut app);
    app.data.loading = Some(path.into());
    app.update(Msg::Dataset {
        path: path.into(),
        result: read_dataset(Path::new(path)),
    });
    let effects = keys(&mut app, "2");
    (app, effects)
}

#[test]
fn the_data_screen_filters_inspects_and_jumps_to_problems() {
    let (mut app, effects) = data_app(SMALL, "sample_data/camara_qod/sft.jsonl");
    assert!(
        matches!(&effects[0], Effect::Model(ModelJob::Lengths { records, .. }) if records.len() == 3111)
    );
    assert!(matches!(
        &effects[1],
        Effect::Model(ModelJob::Inspect { line: 1, .. })
    ));
    // Moving asks for the next record; the answer for a record no longer selected is dropped.
    let effects = key(&mut app, KeyCode::Down);
    assert!(matches!(
        &effects[..],
        [Effect::Model(ModelJob::Inspect { line: 2, .. })]
    ));
    let stale = Inspection {
        path: "sample_data/camara_qod/sft.jsonl".into(),
        line: 1,
        rendered: "old".into(),
        tokens: vec![],
        truncated: 0,
    };
    app.update(Msg::Inspected(Ok(stale)));
    assert!(app.data.inspection.is_none());
    keys(&mut app, "/gaming");
    let shown = app.data.visible().len();
    assert!(shown > 0 && shown < 3111, "{shown}");
    assert!(app.data.selected_row().unwrap().haystack.contains("gaming"));
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.data.filter, "gaming", "Enter keeps the filter");
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.data.visible().len(), 3111, "Esc clears it");

    let (mut app, _) = data_app(SMALL, "tests/fixtures/tui/problems.jsonl");
    assert_eq!(app.data.focus, DataFocus::Problems);
    let problems = &app.data.dataset.as_ref().unwrap().problems;
    assert_eq!(problems.len(), 2, "{problems:?}");
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.data.focus, DataFocus::Records);
    assert_eq!(app.data.selected_row().unwrap().line, 4);
}

#[test]
fn a_typed_path_opens_a_dataset() {
    let mut app = app(SMALL);
    keys(&mut app, "2o");
    keys(&mut app, "my.jsonlx");
    key(&mut app, KeyCode::Backspace);
    let effects = key(&mut app, KeyCode::Enter);
    assert_eq!(effects, vec![Effect::LoadDataset("my.jsonl".into())]);
}

#[test]
fn compare_streams_both_replies_of_the_latest_job() {
    let mut app = app(SMALL);
    app.update(Msg::Cases {
        path: "eval.jsonl".into(),
        result: Ok(vec!["first".into(), "second".into()]),
    });
    keys(&mut app, "4");
    let effects = keys(&mut app, "ihello");
    assert!(effects.is_empty());
    let effects = key(&mut app, KeyCode::Enter);
    let [Effect::Model(ModelJob::Generate {
        job, case, prompt, ..
    })] = effects.as_slice()
    else {
        panic!("{effects:?}")
    };
    assert_eq!((case, prompt.as_str()), (&2, "hello"));
    let job = *job;
    for piece in ["{\"a\"", ": 1}"] {
        app.update(Msg::Reply {
            job,
            case: 2,
            side: Side::Base,
            piece: ReplyPiece::Text(piece.into()),
        });
    }
    app.update(Msg::Reply {
        job: job - 1,
        case: 2,
        side: Side::Base,
        piece: ReplyPiece::Text("stale".into()),
    });
    app.update(Msg::GenerationDone { job });
    assert_eq!(app.compare.replies[&(2, Side::Base)].text, "{\"a\": 1}");
    assert!(!app.compare.busy);
    assert_eq!(keys(&mut app, "x"), vec![Effect::CancelGenerate]);
}

/// The CAMARA eval file's prompts and checks on the Compare screen; its cases.
fn with_camara_cases(app: &mut App) -> Vec<tunelab::eval::cases::EvalCase> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/camara_qod/eval.jsonl");
    let cases = tunelab::eval::cases::load_eval_file(&path).unwrap();
    app.update(Msg::Cases {
        path: path.clone(),
        result: Ok(cases.iter().map(|c| c.prompt.clone()).collect()),
    });
    app.update(Msg::CaseChecks {
        path,
        checks: tunelab::tui::checks::CaseChecks::new(cases.clone()),
    });
    cases
}

#[test]
fn compare_badges_and_tally_use_the_eval_files_checks() {
    let mut app = app(SMALL);
    let cases = with_camara_cases(&mut app);
    let expected = cases[0].expect_json.clone().unwrap().to_string();
    let job = app.compare.job;
    for (case, side, text) in [
        (0, Side::Base, "Sure, I can help with that."),
        (0, Side::Tuned, expected.as_str()),
        (1, Side::Base, "{}"),
        (1, Side::Tuned, "{}"),
    ] {
        for piece in [ReplyPiece::Text(text.into()), ReplyPiece::Done] {
            app.update(Msg::Reply {
                job,
                case,
                side,
                piece,
            });
        }
    }
    assert_eq!(app.compare.tally(), (1, 1, 0));
    let badges = app.compare.checks.badges(0, &expected);
    assert!(badges.iter().all(|b| b.pass), "{badges:?}");
    assert!(badges.iter().any(|b| b.label == "schema"));
}

#[test]
fn the_constraint_toggle_holds_compare_replies_to_the_cases_schema() {
    let mut app = app(SMALL);
    let cases = with_camara_cases(&mut app);
    let schema = cases[0].schema.as_ref().unwrap().document.clone();
    let constraint_of = |effects: Vec<Effect>| match effects.as_slice() {
        [Effect::Model(ModelJob::Generate { constraint, .. })] => constraint.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(constraint_of(keys(&mut app, "4g")), None, "free by default");
    keys(&mut app, "f");
    assert!(draw(&app, SMALL).contains("constrained (f)"));
    let held = constraint_of(keys(&mut app, "g"));
    assert_eq!(held, Some(Constraint::Schema(std::sync::Arc::new(schema))));
    keys(&mut app, "f");
    assert_eq!(constraint_of(keys(&mut app, "g")), None);
}

fn runs_found() -> Found {
    let run = |dir: &str, step, status: &str, adapter: bool| RunSummary {
        dir: dir.into(),
        stage: "sft".into(),
        step,
        total_steps: 42,
        last_loss: Some(0.8123),
        status: status.into(),
        adapter: adapter.then(|| PathBuf::from(dir).join("adapter")),
    };
    Found {
        configs: vec![CONFIG.into()],
        data_files: vec!["sample_data/camara_qod/sft.jsonl".into()],
        runs: vec![
            run("runs/first", 42, "finished", true),
            run(
                "sample_data/camara_qod/runs/camara_qod",
                17,
                "stopped or running",
                false,
            ),
        ],
        sweeps: vec![],
    }
}

#[test]
fn the_run_picker_follows_a_run_and_picks_adapters() {
    let mut app = app(SMALL);
    app.update(Msg::Found(runs_found()));
    assert_eq!(keys(&mut app, "5"), vec![Effect::Discover]);
    key(&mut app, KeyCode::Down);
    keys(&mut app, "a");
    assert!(app.notice.as_deref().unwrap().contains("no adapter"));
    key(&mut app, KeyCode::Up);
    keys(&mut app, "a");
    assert_eq!(app.screen, Screen::Compare);
    assert_eq!(
        app.compare.adapter,
        Some(PathBuf::from("runs/first/adapter"))
    );
    keys(&mut app, "5");
    let effects = key(&mut app, KeyCode::Enter);
    let [Effect::Follow { run, dir }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(dir, Path::new("runs/first"));
    assert_eq!(app.screen, Screen::Training);
    let run = *run;
    app.update(Msg::Train {
        run,
        event: started("sft"),
    });
    // A followed run takes no commands.
    assert!(keys(&mut app, " x").is_empty());
    let view = app.train.run.as_ref().unwrap();
    assert_eq!(view.state, RunState::Running);
}

#[test]
fn the_mouse_picks_tabs_and_rows() {
    let mut app = app(SMALL);
    app.update(Msg::Found(runs_found()));
    let (_, _, start, _) = layout::tabs()[4].clone();
    assert_eq!(click(&mut app, start + 1, 0), vec![Effect::Discover]);
    assert_eq!(app.screen, Screen::Runs);
    // The second row of the runs list (inside its border, under the tab row).
    click(&mut app, 5, 3);
    assert_eq!(app.runs_selected, 1);
    app.update(Msg::Mouse(MouseEvent {
        kind: MouseEventKind::ScrollUp,
        column: 5,
        row: 3,
        modifiers: KeyModifiers::NONE,
    }));
    assert_eq!(app.runs_selected, 0);
}

#[test]
fn help_opens_and_closes_and_ctrl_c_quits() {
    let mut app = app(SMALL);
    keys(&mut app, "?");
    assert!(app.help);
    keys(&mut app, "3");
    assert_eq!(
        app.screen,
        Screen::Hardware,
        "keys go to the help while it is open"
    );
    key(&mut app, KeyCode::Esc);
    assert!(!app.help);
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    )));
    assert!(app.quit);
}

// ---- snapshots ----

#[test]
fn snapshot_hardware_without_gpu() {
    snapshot("hardware_no_gpu", |size| {
        let mut app = app(size);
        with_config(&mut app);
        app.update(Msg::Hardware(Box::new(report(vec![]))));
        app
    });
}

#[test]
fn snapshot_hardware_with_gpu_and_estimate() {
    snapshot("hardware_gpu", |size| {
        let mut app = app(size);
        with_config(&mut app);
        for i in 0..40u32 {
            app.update(Msg::Hardware(Box::new(report(vec![gpu(
                (i * 7) % 100,
                50 + i / 2,
            )]))));
        }
        app.hardware.estimate = Some(MemoryEstimate {
            terms: vec![
                ("weights (4-bit)".into(), GIB / 10),
                ("adapters".into(), GIB / 50),
                ("optimizer state".into(), GIB / 25),
                ("activations".into(), 3 * GIB),
            ],
            total: GIB / 10 + GIB / 50 + GIB / 25 + 3 * GIB,
            fits: "fits".into(),
            verdict: "fits in 80 GiB with 76.8 GiB to spare".into(),
        });
        app
    });
}

#[test]
fn snapshot_data_screen() {
    snapshot("data", |size| {
        let (mut app, _) = data_app(size, "sample_data/camara_qod/sft.jsonl");
        let lengths = (0..111).map(|i| 200 + (i * 37) % 400).collect();
        app.update(Msg::Lengths {
            path: "sample_data/camara_qod/sft.jsonl".into(),
            lengths,
        });
        app.update(Msg::Inspected(Ok(Inspection {
            path: "sample_data/camara_qod/sft.jsonl".into(),
            line: 1,
            rendered: "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n{}<|im_end|>\n"
                .into(),
            tokens: vec![],
            truncated: 0,
        })));
        app
    });
}

#[test]
fn snapshot_data_token_mask_and_problems() {
    snapshot("data_problems", |size| {
        let (mut app, _) = data_app(size, "tests/fixtures/tui/problems.jsonl");
        key(&mut app, KeyCode::Down);
        app
    });
    snapshot("data_tokens", |size| {
        let (mut app, _) = data_app(size, "sample_data/camara_qod/sft.jsonl");
        snapshot_tokens(&mut app);
        app
    });
}

fn snapshot_tokens(app: &mut App) {
    keys(app, "m");
    let tokens = [
        ("<|im_start|>", false),
        ("user", false),
        ("\n", false),
        ("iot", false),
        (" sensr", false),
        (".", false),
        ("<|im_end|>", false),
        ("\n", false),
        ("<|im_start|>", false),
        ("assistant", false),
        ("\n", false),
        ("{\"", true),
        ("device", true),
        ("\":", true),
        (" {}", true),
        ("}", true),
        ("<|im_end|>", true),
    ];
    app.update(Msg::Inspected(Ok(Inspection {
        path: "sample_data/camara_qod/sft.jsonl".into(),
        line: 1,
        rendered: String::new(),
        tokens: tokens.iter().map(|(t, l)| (t.to_string(), *l)).collect(),
        truncated: 3,
    })));
}

#[test]
fn snapshot_training_idle() {
    snapshot("training_idle", |size| {
        let mut app = app(size);
        with_config(&mut app);
        keys(&mut app, "3");
        app
    });
}

#[test]
fn snapshot_training_sft() {
    snapshot("training_sft", |size| training_app(size, "sft"));
}

#[test]
fn snapshot_training_dpo_second_chart_page() {
    snapshot("training_dpo", |size| {
        let mut app = training_app(size, "dpo");
        let run = app.train.run.as_ref().unwrap().id;
        app.update(Msg::Train {
            run,
            event: TrainEvent::Phase {
                name: "reference log-probs".into(),
                done: 3,
                total: 8,
            },
        });
        keys(&mut app, "c");
        app
    });
}

#[test]
fn snapshot_compare() {
    snapshot("compare", |size| {
        let mut app = app(size);
        with_config(&mut app);
        app.update(Msg::Found(runs_found()));
        app.update(Msg::Cases {
            path: "sample_data/camara_qod/eval.jsonl".into(),
            result: Ok(vec![
                "Gaming session for +4915112345678 to 203.0.113.9 for 20 minutes".into(),
                "Video call boost for +447700900123 to 198.51.100.7, one hour".into(),
            ]),
        });
        keys(&mut app, "4a");
        key(&mut app, KeyCode::Enter);
        let effects = keys(&mut app, "g");
        let Some(Effect::Model(ModelJob::Generate { job, .. })) = effects.first() else {
            panic!("{effects:?}")
        };
        let reply = |side, text: &str, done| {
            let mut msgs = vec![Msg::Reply {
                job: *job,
                case: 0,
                side,
                piece: ReplyPiece::Text(text.into()),
            }];
            if done {
                msgs.push(Msg::Reply {
                    job: *job,
                    case: 0,
                    side,
                    piece: ReplyPiece::Done,
                });
            }
            msgs
        };
        let msgs = [
            reply(Side::Base, "Sure! Here is a session for your gaming.", true),
            reply(
                Side::Tuned,
                r#"{"device":{"phoneNumber":"+4915112345678"},"applicationServer":{"ipv4Address":"203.0.113.9"},"qosProfile":"QOS_E","duration":1200}"#,
                true,
            ),
        ];
        for msg in msgs.into_iter().flatten() {
            app.update(msg);
        }
        app
    });
}

#[test]
fn generate_offers_the_presets_recipe_and_opens_what_it_made() {
    let mut app = app(LARGE);
    with_config(&mut app);
    keys(&mut app, "2");
    assert!(keys(&mut app, "g").is_empty());
    let screen = draw(&app, LARGE);
    assert!(
        screen.contains("data recipe from sample_data/camara_qod/recipe.toml"),
        "{screen}"
    );
    // Self-instruct needs the workbench's server first.
    assert!(screen.contains("needs the workbench's server"), "{screen}");
    key(&mut app, KeyCode::Down);
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(app.notice.as_deref().unwrap().contains("server"));
    key(&mut app, KeyCode::Up);
    key(&mut app, KeyCode::Backspace);
    keys(&mut app, "5");
    let effects = key(&mut app, KeyCode::Enter);
    let [Effect::MakeData(job)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(job.kind, GenerateKind::Recipe);
    assert_eq!(job.n, 205);
    assert_eq!(job.out, Path::new("sample_data/camara_qod/synth-205.jsonl"));
    // Progress, then the file made is opened.
    app.update(Msg::MakeDataProgress(GenerateProgress {
        kept: 12,
        n: 205,
        requests: 3,
        rejected: 4,
        rejected_summary: "similar 4".into(),
        sample: Some(("Book QoD for 10.0.0.1".into(), "{\"duration\":60}".into())),
    }));
    let screen = draw(&app, LARGE);
    assert!(screen.contains("12/205 kept"), "{screen}");
    assert!(screen.contains("rejected: similar 4"), "{screen}");
    assert!(screen.contains("Book QoD for 10.0.0.1"), "{screen}");
    assert!(!keys(&mut app, "g").is_empty() || app.notice.is_some());
    let out = job.out.clone();
    let effects = app.update(Msg::MakeDataDone {
        out: out.clone(),
        result: Ok("wrote 205 records".into()),
    });
    assert!(effects.contains(&Effect::LoadDataset(out)), "{effects:?}");
    assert!(draw(&app, LARGE).contains("✓ wrote 205 records"));
}

#[test]
fn the_serve_panel_starts_shows_and_stops_the_server() {
    let mut app = app(SMALL);
    app.update(Msg::Found(runs_found()));
    with_config(&mut app);
    keys(&mut app, "5");
    assert!(draw(&app, SMALL).contains("off · v serves"));
    let effects = keys(&mut app, "v");
    let [Effect::Serve(job)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(
        job.adapters,
        vec![(
            "runs-first".to_string(),
            PathBuf::from("runs/first/adapter")
        )]
    );
    assert!(draw(&app, SMALL).contains("loading the model"));
    app.update(Msg::ServeStarted {
        address: "127.0.0.1:40123".into(),
        models: vec!["base".into(), "runs-first".into()],
        skipped: 0,
    });
    for (uptime_s, completion_tokens) in [(1.0, 10), (3.0, 70)] {
        app.update(Msg::ServeCounters(ServeCounters {
            uptime_s,
            requests: 4,
            completion_tokens,
            queued: 1,
        }));
    }
    let screen = draw(&app, LARGE);
    assert!(screen.contains("http://127.0.0.1:40123/v1"), "{screen}");
    assert!(
        screen.contains("4 requests · 1 waiting · 70 tokens out · 30"),
        "{screen}"
    );
    // Self-instruct now has an endpoint.
    assert_eq!(
        app.serving.endpoint().as_deref(),
        Some("http://127.0.0.1:40123/v1")
    );
    assert_eq!(keys(&mut app, "v"), vec![Effect::StopServe]);
    app.update(Msg::ServeStopped(Ok(())));
    assert!(draw(&app, SMALL).contains("off · v serves"));
}

#[test]
fn snapshot_runs() {
    snapshot("runs", |size| {
        let mut app = app(size);
        app.update(Msg::Found(runs_found()));
        keys(&mut app, "5");
        app
    });
}

/// A sweep of four trials: two finished (the third best), one failed, one running.
fn sweep_found() -> Found {
    let trial = |n: usize, state, objective: Option<f64>, steps: usize| TrialProgress {
        trial: n,
        settings: format!("learning_rate={}e-4 lora_r=16", n),
        state,
        objective,
        metrics: objective
            .map(|o| {
                BTreeMap::from([
                    ("expect_json_exact".to_string(), o),
                    ("json_valid".to_string(), 1.0 - o / 2.0),
                ])
            })
            .unwrap_or_default(),
        seconds: objective.map(|_| 61.0 * n as f64),
        reason: (state == TrialState::Ended(Status::Failed))
            .then(|| "CUDA out of memory".to_string()),
        adapter: objective.map(|_| PathBuf::from(format!("runs/s/trial-00{n}/run/adapter"))),
        run_dir: PathBuf::from(format!("runs/s/trial-00{n}/run")),
        losses: (1..=steps)
            .map(|s| (s as f64, 2.0 / (s as f64 + n as f64)))
            .collect(),
    };
    Found {
        sweeps: vec![SweepProgress {
            dir: "runs/s".into(),
            objective: "expect_json_exact".into(),
            direction: Direction::Maximize,
            trials: vec![
                trial(1, TrialState::Ended(Status::Finished), Some(0.4), 20),
                trial(2, TrialState::Ended(Status::Failed), None, 3),
                trial(3, TrialState::Ended(Status::Finished), Some(0.8), 20),
                trial(4, TrialState::Running, None, 9),
            ],
            best: Some(2),
        }],
        ..Found::default()
    }
}

#[test]
fn the_sweeps_screen_sorts_trials_follows_and_compares_them() {
    let mut app = app(SMALL);
    app.update(Msg::Found(sweep_found()));
    assert_eq!(keys(&mut app, "6"), vec![Effect::Discover]);
    assert_eq!(app.screen, Screen::Sweeps);
    // The hardware tick rescans while the screen shows, so running trials move.
    assert_eq!(
        app.update(Msg::Hardware(Box::new(report(vec![])))),
        vec![Effect::Discover]
    );
    // Sorted by the objective the best comes first; a compares it.
    keys(&mut app, "s");
    keys(&mut app, "a");
    assert_eq!(app.screen, Screen::Compare);
    assert_eq!(
        app.compare.adapter,
        Some(PathBuf::from("runs/s/trial-003/run/adapter"))
    );
    // Then trial 1, then the two without a value, in trial order: the running one is last.
    keys(&mut app, "6");
    key(&mut app, KeyCode::End);
    keys(&mut app, "a");
    assert!(app.notice.as_deref().unwrap().contains("no adapter"));
    // Its run has written no events here, so Enter says so instead of following nothing.
    key(&mut app, KeyCode::Enter);
    assert!(app.notice.as_deref().unwrap().contains("no events yet"));
    assert_eq!(app.screen, Screen::Sweeps);
    keys(&mut app, "ss");
    assert_eq!(
        app.sweeps.sort,
        tunelab::tui::sweeps::SortBy::Metric("json_valid".into())
    );
}

#[test]
fn snapshot_sweeps() {
    snapshot("sweeps", |size| {
        let mut app = app(size);
        app.update(Msg::Found(sweep_found()));
        keys(&mut app, "6s");
        app
    });
}

#[test]
fn snapshot_help_and_picker() {
    snapshot("help", |size| {
        let mut app = app(size);
        keys(&mut app, "3?");
        app
    });
    snapshot("config_picker", |size| {
        let mut app = app(size);
        app.update(Msg::Found(runs_found()));
        keys(&mut app, "3p");
        app
    });
}

#[test]
fn a_small_terminal_gets_a_notice() {
    let app = app((60, 20));
    let screen = draw(&app, (60, 20));
    assert!(screen.contains("60×20 now, 80×24 at least"), "{screen}");
    insta::assert_snapshot!("too_small", screen);
}

/// The picker's catalog: a tiny Qwen2 folder on disk and Llama 3.1 8B by its Hub name.
fn models_catalog() -> tunelab::model::catalog::Catalog {
    use tunelab::model::catalog::{describe, Catalog};
    Catalog {
        entries: vec![
            describe("tests/fixtures/families/qwen2/base").unwrap(),
            describe("meta-llama/Llama-3.1-8B-Instruct").unwrap(),
        ],
        skipped: vec!["models/broken.gguf: not a valid GGUF file".into()],
    }
}

/// On a GPU with `free` GiB, the config loaded, the picker open with its catalog read.
fn picker_app(size: (u16, u16), free: u64) -> (App, Vec<Effect>) {
    let mut app = app(size);
    let mut card = gpu(0, 40);
    card.memory_free_bytes = Some(free * GIB);
    app.update(Msg::Hardware(Box::new(report(vec![card]))));
    with_config(&mut app);
    let effects = keys(&mut app, "3m");
    app.update(Msg::Models(models_catalog()));
    (app, effects)
}

#[test]
fn the_model_picker_judges_each_model_and_sets_the_next_runs() {
    let (mut app, effects) = picker_app(LARGE, 6);
    assert_eq!(effects, vec![Effect::ListModels(String::new())]);
    assert!(matches!(app.modal, Some(Modal::Models { selected: 0 })));
    let verdicts: Vec<&str> = app
        .models
        .rows
        .iter()
        .map(|r| r.estimate.as_ref().unwrap().fits.as_str())
        .collect();
    assert_eq!(verdicts, ["fits", "does not fit"], "8B in 6 GiB");
    let totals: Vec<u64> = app
        .models
        .rows
        .iter()
        .map(|r| r.estimate.as_ref().unwrap().total)
        .collect();
    assert!(
        totals[1] > 4 * GIB && totals[1] > 10 * totals[0],
        "{totals:?}"
    );

    let effects = [key(&mut app, KeyCode::Down), key(&mut app, KeyCode::Enter)].concat();
    assert!(app.modal.is_none());
    let chosen = app.config.as_ref().unwrap();
    assert_eq!(chosen.config.model_name, "meta-llama/Llama-3.1-8B-Instruct");
    assert_eq!(
        chosen.file_model, "",
        "the config file's model is kept to show"
    );
    let [Effect::Estimate(config), Effect::LoadDataset(train)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(config.model_name, "meta-llama/Llama-3.1-8B-Instruct");
    assert_eq!(*train, chosen.config.train_file, "token counts are redone");
    assert!(draw(&app, LARGE).contains("(picked; the file says default"));
    let started = key(&mut app, KeyCode::Char('s'));
    let [Effect::StartRun { config, .. }] = started.as_slice() else {
        panic!("no run started")
    };
    assert_eq!(config.model_name, "meta-llama/Llama-3.1-8B-Instruct");
}

#[test]
fn picking_a_model_without_a_config_says_what_to_do() {
    let mut app = app(SMALL);
    keys(&mut app, "3m");
    app.update(Msg::Models(models_catalog()));
    key(&mut app, KeyCode::Enter);
    assert!(app
        .notice
        .as_deref()
        .unwrap()
        .contains("pick a config first"));
}

#[test]
fn snapshot_model_picker() {
    snapshot("model_picker", |size| picker_app(size, 6).0);
}
