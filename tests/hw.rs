//! `tunelab hw` and the hardware report. Whether an NVIDIA driver is loaded is decided
//! independently of NVML (through /proc/driver/nvidia), so the same tests check the
//! no-driver path on a CPU machine and the GPU path on a GPU machine.

mod common;

use std::process::Command;
use tunelab::hw::{self, GpuInfo, GpuProcess, HardwareReport};

/// The kernel driver publishes this file while it is loaded, with or without NVML.
fn nvidia_driver_loaded() -> bool {
    std::path::Path::new("/proc/driver/nvidia/version").exists()
}

fn tunelab_hw(args: &[&str], cache_home: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tunelab"))
        .arg("hw")
        .args(args)
        .env("TUNELAB_HOME", cache_home)
        .output()
        .expect("running tunelab hw")
}

/// A cache directory that does not exist yet, under one that does: the report must find
/// the disk through the existing parent.
fn missing_cache_dir(test: &str) -> std::path::PathBuf {
    std::env::temp_dir()
        .join(format!("tunelab-hw-test-{}-{test}", std::process::id()))
        .join("not-created")
}

#[test]
fn probe_reports_the_driver_state_cpu_and_ram() {
    let report = hw::probe();
    if nvidia_driver_loaded() {
        assert!(report.nvml.available, "{:?}", report.nvml);
        assert!(!report.gpus.is_empty());
        for (position, gpu) in report.gpus.iter().enumerate() {
            assert_eq!(gpu.index as usize, position);
            assert!(gpu.name.is_some() && gpu.uuid.is_some(), "{gpu:?}");
            let total = gpu.memory_total_bytes.expect("memory total");
            assert!(gpu.memory_used_bytes.unwrap() + gpu.memory_free_bytes.unwrap() <= total);
            let capability = gpu
                .compute_capability
                .as_deref()
                .expect("compute capability");
            let (major, minor) = capability.split_once('.').expect("major.minor");
            assert!(major.parse::<u32>().is_ok() && minor.parse::<u32>().is_ok());
        }
        assert!(report.driver_version.is_some());
        let cuda = report.cuda_driver_version.as_deref().expect("cuda version");
        assert!(cuda.split_once('.').is_some(), "{cuda}");
    } else {
        assert!(report.gpus.is_empty());
        assert!(!report.nvml.available);
        let reason = report.nvml.reason.as_deref().expect("a reason");
        assert!(!reason.is_empty());
        assert!(report.driver_version.is_none() && report.cuda_driver_version.is_none());
        assert_eq!(
            report.cpu_path_note,
            format!("No NVIDIA GPU: {reason}; training runs on the CPU.")
        );
    }
    assert!(report.cpu.cores >= 1);
    assert!(report.memory.total_bytes.expect("MemTotal") > 0);
    let available = report.memory.available_bytes.expect("MemAvailable");
    assert!(available <= report.memory.total_bytes.unwrap());
    assert_eq!(report.cuda_built, cfg!(feature = "cuda"));
    if !report.cuda_built {
        assert!(report.candle_cuda_devices.is_empty());
    }
}

#[test]
fn without_a_driver_the_reason_is_a_missing_library() {
    if nvidia_driver_loaded() {
        return;
    }
    let report = hw::probe();
    assert_eq!(
        report.nvml.reason.as_deref(),
        Some("NVML library not found (no NVIDIA driver)")
    );
}

#[test]
fn json_round_trips_including_a_gpu() {
    let mut report = hw::probe();
    report.gpus.push(GpuInfo {
        index: 7,
        name: Some("NVIDIA H100 80GB HBM3".into()),
        uuid: Some("GPU-00000000-0000-0000-0000-000000000000".into()),
        memory_total_bytes: Some(85_520_809_984),
        memory_used_bytes: Some(1 << 29),
        memory_free_bytes: Some(85_520_809_984 - (1 << 29)),
        utilization_percent: Some(37),
        temperature_c: Some(41),
        power_draw_w: Some(123.456),
        power_limit_w: None,
        compute_capability: Some("9.0".into()),
        pcie_gen: Some(5),
        pcie_width: None,
        processes: vec![
            GpuProcess {
                pid: 4242,
                used_memory_bytes: Some(1 << 29),
            },
            GpuProcess {
                pid: 17,
                used_memory_bytes: None,
            },
        ],
    });
    let json = serde_json::to_string(&report).unwrap();
    let back: HardwareReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
}

#[test]
fn refresh_keeps_a_report_consistent() {
    let mut report = hw::probe();
    let before = report.clone();
    hw::refresh(&mut report);
    assert_eq!(report.gpus.len(), before.gpus.len());
    assert_eq!(report.memory.total_bytes, before.memory.total_bytes);
    assert!(report.memory.available_bytes.is_some());
    assert_eq!(report.cpu, before.cpu);
    assert_eq!(report.cache_dir, before.cache_dir);
    for (gpu, was) in report.gpus.iter().zip(&before.gpus) {
        assert_eq!(
            (&gpu.uuid, gpu.memory_total_bytes),
            (&was.uuid, was.memory_total_bytes)
        );
        assert!(gpu.memory_used_bytes.is_some());
    }
}

#[test]
fn cli_text_names_the_gpu_state_and_exits_0() {
    let cache = missing_cache_dir("text");
    let out = tunelab_hw(&[], &cache);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    if nvidia_driver_loaded() {
        assert!(lines[0].starts_with("NVIDIA driver "), "{text}");
        assert!(lines.iter().any(|l| l.starts_with("GPU 0: ")), "{text}");
    } else {
        assert!(
            lines[0].starts_with("No NVIDIA GPU: ")
                && lines[0].ends_with("training runs on the CPU."),
            "{text}"
        );
        assert_eq!(
            lines.iter().filter(|l| l.contains("NVIDIA")).count(),
            1,
            "{text}"
        );
    }
    for label in ["CPU:", "RAM:", "Model cache:", "CUDA build:"] {
        assert!(
            lines.iter().any(|l| l.starts_with(label)),
            "{label} in\n{text}"
        );
    }
    let cache_line = lines
        .iter()
        .find(|l| l.starts_with("Model cache:"))
        .unwrap();
    assert!(
        cache_line.contains(&*cache.to_string_lossy()),
        "{cache_line}"
    );
    assert!(cache_line.ends_with("GiB free)"), "{cache_line}");
}

#[test]
fn cli_json_has_the_documented_keys_and_exits_0() {
    let cache = missing_cache_dir("json");
    let out = tunelab_hw(&["--json"], &cache);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut documented = vec![
        "nvml",
        "driver_version",
        "cuda_driver_version",
        "gpus",
        "cpu",
        "memory",
        "cache_dir",
        "cache_disk_free_bytes",
        "cuda_built",
        "candle_cuda_devices",
        "cpu_path_note",
    ];
    documented.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, documented);
    assert_eq!(json["cache_dir"], cache.to_string_lossy().as_ref());
    assert!(json["cache_disk_free_bytes"].as_u64().unwrap() > 0);
    assert_eq!(json["nvml"]["available"], nvidia_driver_loaded());
    let report: HardwareReport = serde_json::from_value(json).expect("the schema");
    assert!(report.cpu.cores >= 1);
}

/// The peak-memory sampler reads the driver when there is one and is absent otherwise.
#[test]
fn peak_sampler_follows_the_driver() {
    let sampler = tunelab::hw::peak::PeakSampler::start(0);
    if std::path::Path::new("/proc/driver/nvidia/version").exists() {
        let reading = sampler
            .expect("a driver is installed, so NVML should answer")
            .finish(0);
        assert!(reading.peak_used_bytes >= reading.baseline_used_bytes);
    } else {
        assert!(sampler.is_none(), "no driver, so no memory readings");
    }
}

#[test]
fn a_recorded_peak_is_read_back_beside_the_estimate() {
    use tunelab::config::RunConfig;
    use tunelab::hw::calibration::{find_records, MemoryRecord, MEMORY_FILE};
    use tunelab::hw::estimate::{estimate, ModelFacts, Plan};
    let dir = common::scratch_dir("hw_calibration");
    let facts = ModelFacts {
        layers: 30,
        hidden: 576,
        intermediate: 1536,
        heads: 9,
        kv_heads: 3,
        head_dim: 64,
        vocab: 49152,
        weight_bytes: 90 << 20,
        largest_matrix: 49152 * 576,
        fused_projections: false,
    };
    let config = RunConfig {
        train_file: "x.jsonl".into(),
        output_dir: dir.clone(),
        per_device_train_batch_size: 4,
        max_seq_length: 256,
        ..RunConfig::default()
    };
    // As the trainer writes it after a CUDA run: measured peak 10% below the estimate.
    let e = estimate(&config, &facts, None);
    let measured = (e.run_bytes as f64 / 1.1) as u64;
    let record = MemoryRecord {
        method: "NVML".into(),
        baseline_used_bytes: 1 << 30,
        peak_used_bytes: (1 << 30) + measured,
        run_peak_bytes: measured,
        estimate: Some(e.clone()),
    };
    let run = dir.join("sft");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join(MEMORY_FILE),
        serde_json::to_string(&record).unwrap(),
    )
    .unwrap();
    let found = find_records(&dir);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].1.run_peak_bytes, measured);
    let plan = Plan::new(&config, &facts, Some(80 << 30));
    assert_eq!(plan.past_runs.len(), 1);
    assert!(
        (plan.past_runs[0].error - 0.1).abs() < 1e-6,
        "{}",
        plan.past_runs[0].error
    );
    let text = plan.to_string();
    assert!(text.contains("verdict: fits"), "{text}");
    assert!(text.contains("(+10.0%)"), "{text}");
    // A DPO plan does not count an SFT run as its calibration.
    let dpo = RunConfig {
        stage: tunelab::config::Stage::Dpo,
        ..config
    };
    assert!(Plan::new(&dpo, &facts, None).past_runs.is_empty());
}

#[test]
fn cli_hw_config_json_holds_the_hardware_and_each_stage_estimate() {
    let cache = missing_cache_dir("hw_config");
    let config =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/camara_qod/config.toml");
    let model = common::default_gguf();
    let dir = common::scratch_dir("hw_config_json");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(
            "model_name = \"\"",
            &format!("model_name = \"{}\"", model.display()),
        )
        .replace(
            "train_file = \"sft.jsonl\"",
            &format!(
                "train_file = \"{}\"",
                config.with_file_name("sft.jsonl").display()
            ),
        );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    let out = tunelab_hw(&["--json", "--config", path.to_str().unwrap()], &cache);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["hardware"]["cpu"].is_object());
    let stages: Vec<&str> = json["estimates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages, vec!["sft", "dpo"]);
    let e = &json["estimates"][1]["estimate"];
    let mut keys: Vec<&str> = e.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "free_bytes",
            "max_batch",
            "max_seq",
            "run_bytes",
            "shape",
            "terms",
            "total_bytes",
            "verdict"
        ]
    );
    let sum: u64 = e["terms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, e["total_bytes"].as_u64().unwrap());
}

/// A batch larger than the data holds no more rows than the data has, as in the trainer.
#[test]
fn cli_hw_estimates_a_batch_larger_than_the_data_at_the_data_size() {
    let cache = missing_cache_dir("hw_clamp");
    let dir = common::scratch_dir("hw_clamp");
    let rows: Vec<String> = (0..3)
        .map(|i| format!(r#"{{"prompt": "q{i}", "completion": "a{i}"}}"#))
        .collect();
    std::fs::write(dir.join("sft.jsonl"), rows.join("\n")).unwrap();
    let model = common::default_gguf();
    let shape = |batch: usize| {
        let path = dir.join(format!("b{batch}.toml"));
        std::fs::write(
            &path,
            format!(
                "model_name = {:?}\ntrain_file = \"sft.jsonl\"\nper_device_train_batch_size = {batch}\n",
                model.display()
            ),
        )
        .unwrap();
        let out = tunelab_hw(&["--json", "--config", path.to_str().unwrap()], &cache);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["estimates"][0]["estimate"].clone()
    };
    let huge = shape(1_000_000_000);
    let three = shape(3);
    assert_eq!(huge["shape"]["batch"], 3);
    assert_eq!(huge["total_bytes"], three["total_bytes"]);
}

#[test]
fn the_workbench_panel_shows_the_largest_stage_of_a_preset() {
    common::default_gguf(); // the preset names the default model
    let config =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/camara_qod/config.toml");
    let config = tunelab::config::RunConfig::load(&config).unwrap();
    let panel = tunelab::tui::hardware::estimate_for(&config).unwrap();
    assert!(panel.verdict.starts_with("DPO"), "{}", panel.verdict);
    assert_eq!(panel.total, panel.terms.iter().map(|(_, b)| b).sum::<u64>());
    assert!(panel.terms.iter().any(|(n, _)| n.starts_with("logits")));
}

#[test]
fn a_models_header_gives_the_facts_its_loaded_weights_give() {
    use tunelab::hw::estimate::ModelFacts;
    use tunelab::model::{catalog, info::ModelInfo, source::LocalModel, LoadedModel};
    for gguf in [common::default_gguf(), common::gemma3_gguf()] {
        let header = ModelFacts::of_entry(&catalog::describe(gguf.to_str().unwrap()).unwrap());
        let cpu = candle_core::Device::Cpu;
        let loaded = LoadedModel::load_local(LocalModel::Gguf(gguf.clone()), &cpu).unwrap();
        let weights = ModelFacts::of(&ModelInfo::of(&loaded));
        assert_eq!(header, weights, "{}", gguf.display());
    }
}
