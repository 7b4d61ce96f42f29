//! The tunelab command line. With no subcommand it opens the workbench.

mod cli_bench;
mod cli_data;
mod cli_eval;
mod cli_export;
mod cli_generate;
mod cli_serve;
mod cli_sweep;
mod cli_synth;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::io::Write;
use tunelab::device::{self, DeviceChoice};
use tunelab::model::info::ModelInfo;
use tunelab::model::{fetch, generate, LoadedModel, ModelSource, SamplingParams};
use tunelab::tui::app::Opening;
use tunelab::tui::theme::Theme;

#[derive(Parser)]
#[command(
    name = "tunelab",
    version,
    about = "A terminal workbench for teaching small language models a job with QLoRA"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The workbench's colours: default, light, high-contrast, or a TOML file merged over default.
    #[arg(long, global = true, default_value = "default")]
    theme: String,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a reply to one prompt, streamed to stdout.
    Generate(GenerateArgs),
    /// Train a LoRA adapter (SFT, DPO, GRPO, or stages one after another) on a 4-bit base from a config file, without the workbench.
    Train(TrainArgs),
    /// Fetch or describe models.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Report GPUs (through the NVIDIA driver), CPU, RAM and cache disk; exits 0 even without a GPU.
    Hw(HwArgs),
    /// Score a model (base, few-shot or an adapter) on an eval file: JSON, schema, fields, text checks.
    Eval(cli_eval::EvalArgs),
    /// Search hyperparameters: a trial per setting of the [sweep] table's (or --grid's) keys,
    /// packed onto one GPU, each scored on the config's eval file.
    Sweep(cli_sweep::SweepArgs),
    /// Base vs (few-shot vs) tuned replies side by side, with each one's checks and the tally.
    Compare(cli_eval::CompareArgs),
    /// Open the workbench following a run another process writes (its output_dir).
    Watch { dir: std::path::PathBuf },
    /// Export an adapter as a PEFT folder, or merged into its base as a Hugging Face folder or GGUF.
    Export(cli_export::ExportArgs),
    /// Print prompt ids, last-position logits and a greedy reply as JSON (to compare runtimes).
    Logits(cli_export::LogitsArgs),
    /// Time LoRA training steps (SFT or DPO) on random tokens: one JSON line of speed and peak memory.
    Bench(cli_bench::BenchArgs),
    /// Serve the model and its adapters over an OpenAI-compatible HTTP API.
    Serve(cli_serve::ServeArgs),
    /// Check, describe, convert or split a data file (SFT records or preference pairs).
    #[command(subcommand)]
    Data(cli_data::DataCommand),
}

#[derive(clap::Args)]
struct HwArgs {
    /// Print JSON (a stable schema) instead of text.
    #[arg(long)]
    json: bool,
    /// Also estimate the device memory this training config needs, stage by stage, against
    /// the free memory of the first GPU, with the measured peaks of past runs in its output_dir.
    #[arg(long)]
    config: Option<std::path::PathBuf>,
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// A GGUF file, a Hugging Face folder, an org/name Hub repo id, or a bundled model (gemma3-270m) (default: SmolLM2-135M-Instruct Q4_1).
    #[arg(long)]
    model: Option<String>,
    #[arg(long)]
    prompt: String,
    /// A system turn placed before the prompt.
    #[arg(long)]
    system: Option<String>,
    /// Send the prompt as raw text, without the chat template.
    #[arg(long)]
    raw: bool,
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// 0 is greedy.
    #[arg(long, default_value_t = 0.7)]
    temperature: f64,
    #[arg(long)]
    top_p: Option<f64>,
    #[arg(long)]
    top_k: Option<usize>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    device: DeviceChoice,
    /// Print timing (prefill, decode tokens/s) to stderr at the end.
    #[arg(long)]
    stats: bool,
    /// Constrain the reply: json (any JSON object) or schema=FILE (a JSON Schema).
    #[arg(long, default_value = "none")]
    constrain: tunelab::model::constrain::ConstrainArg,
}

#[derive(clap::Args)]
struct TrainArgs {
    /// A TOML or JSON run config (TRL/PEFT key names).
    #[arg(long, required_unless_present = "resume")]
    config: Option<std::path::PathBuf>,
    /// Continue from a checkpoint folder (output_dir/checkpoint-N).
    #[arg(long, conflicts_with = "config")]
    resume: Option<std::path::PathBuf>,
    #[arg(long)]
    output_dir: Option<std::path::PathBuf>,
    /// Train on this file instead of the config's train_file (a stage table's own
    /// train_file still wins for that stage).
    #[arg(long, conflicts_with = "resume")]
    train_file: Option<std::path::PathBuf>,
    #[arg(long)]
    max_steps: Option<usize>,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    device: DeviceChoice,
    /// Print every event as a JSON line on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Download a bundled model (default: the default model) into the cache now.
    Pull {
        /// A bundled model's name: smollm2-135m (the default) or gemma3-270m.
        name: Option<String>,
    },
    /// Print a model's architecture, sizes, tensor types and memory.
    Info {
        /// A GGUF file, a Hugging Face folder, a Hub repo id or a bundled model's name
        /// (default: the default model).
        model: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {}", one_line(&e));
        std::process::exit(1);
    }
}

/// The error and its causes on one line. candle appends a backtrace to its messages when
/// RUST_BACKTRACE is set; only each cause's first line is kept.
fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(|cause| {
            cause
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join(": ")
}

fn progress(line: &str) {
    eprintln!("{line}");
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        None => tunelab::tui::run(Theme::load(&cli.theme)?, Opening::default()),
        Some(Command::Watch { dir }) => {
            let opening = Opening {
                watch: Some(dir),
                ..Opening::default()
            };
            tunelab::tui::run(Theme::load(&cli.theme)?, opening)
        }
        Some(Command::Generate(args)) => run_generate(args),
        Some(Command::Train(args)) => run_train(args),
        Some(Command::Hw(args)) => run_hw(args),
        Some(Command::Eval(args)) => cli_eval::run_eval(args),
        Some(Command::Sweep(args)) => cli_sweep::run_sweep(args),
        Some(Command::Compare(args)) => cli_eval::run_compare(args),
        Some(Command::Export(args)) => cli_export::run_export(args, &mut progress),
        Some(Command::Logits(args)) => cli_export::run_logits(args, &mut progress),
        Some(Command::Bench(args)) => cli_bench::run_bench(args),
        Some(Command::Serve(args)) => cli_serve::run_serve(args, &mut progress),
        Some(Command::Data(command)) => cli_data::run(command),
        Some(Command::Model(ModelCommand::Pull { name: None })) => {
            fetch::fetch_default_model(&mut progress)?;
            Ok(())
        }
        Some(Command::Model(ModelCommand::Pull { name: Some(name) })) => {
            let Some(model) = fetch::bundled(&name) else {
                anyhow::bail!(
                    "{name}: not a bundled model (known: {})",
                    fetch::bundled_names()
                );
            };
            fetch::fetch_model(model, &mut progress)?;
            Ok(())
        }
        Some(Command::Model(ModelCommand::Info { model, json })) => {
            let source = ModelSource::parse(model.as_deref())?;
            let loaded = LoadedModel::load(&source, &candle_core::Device::Cpu, &mut progress)?;
            let info = ModelInfo::of(&loaded);
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                println!("{info}");
            }
            Ok(())
        }
    }
}

fn run_generate(args: GenerateArgs) -> Result<()> {
    let device = device::open(args.device)?;
    let source = ModelSource::parse(args.model.as_deref())?;
    let loaded = LoadedModel::load(&source, &device, &mut progress)?;
    let prompt = if args.raw {
        if args.prompt.is_empty() {
            anyhow::bail!("the prompt is empty");
        }
        loaded.raw_prompt(&args.prompt)?
    } else {
        loaded.chat_prompt(args.system.as_deref(), &args.prompt)?
    };
    let params = SamplingParams {
        temperature: args.temperature,
        top_p: args.top_p,
        top_k: args.top_k,
        seed: args.seed,
        max_tokens: args.max_tokens,
        constraint: generate_constraint(&args.constrain, &loaded)?,
    };
    let mut stdout = std::io::stdout().lock();
    let out = generate(
        &loaded.model,
        &loaded.tokenizer,
        &prompt,
        &params,
        &loaded.stop_ids,
        |piece| {
            stdout.write_all(piece.as_bytes())?;
            stdout.flush()?;
            Ok(true)
        },
    )?;
    writeln!(stdout)?;
    if args.stats {
        eprintln!(
            "device {} | prompt {} tokens, prefill {:.3}s | {} tokens, decode {:.1} tokens/s",
            device::describe(&device),
            out.prompt_tokens,
            out.prefill_secs,
            out.tokens.len(),
            out.decode_tokens_per_sec()
        );
        if params.constraint.is_some() && out.decode_secs > 0.0 {
            eprintln!(
                "token masks {:.1}% of decode time",
                100.0 * out.constraint_secs / out.decode_secs
            );
        }
    }
    Ok(())
}

fn generate_constraint(
    arg: &tunelab::model::constrain::ConstrainArg,
    loaded: &LoadedModel,
) -> Result<Option<tunelab::model::constrain::Constraint>> {
    use tunelab::model::constrain::{ConstrainArg, Constraint};
    Ok(match arg {
        ConstrainArg::None => None,
        ConstrainArg::Json => Some(Constraint::Json),
        ConstrainArg::CaseSchema => {
            anyhow::bail!("--constrain schema takes a file here: schema=FILE")
        }
        ConstrainArg::SchemaFile(path) => {
            let factory = loaded.tokenizer.grammar_factory(&loaded.stop_ids)?;
            Some(Constraint::schema_file(path, &factory)?)
        }
    })
}

fn run_train(args: TrainArgs) -> Result<()> {
    use std::io::IsTerminal;
    use tunelab::train::events::TrainEvent;
    use tunelab::train::trainer::{spawn, Start};
    let start = match (&args.config, &args.resume) {
        (Some(path), _) => {
            let mut config = tunelab::config::RunConfig::load(path)?;
            if let Some(dir) = &args.output_dir {
                config.output_dir = std::path::absolute(dir)?;
            }
            if let Some(file) = &args.train_file {
                config.train_file = std::path::absolute(file)?;
            }
            if args.max_steps.is_some() {
                config.max_steps = args.max_steps;
            }
            Start::Fresh(Box::new(config))
        }
        (None, Some(dir)) => Start::Resume(dir.clone(), args.max_steps),
        (None, None) => anyhow::bail!("give --config FILE or --resume CHECKPOINT_DIR"),
    };
    let handle = spawn(start, args.device)?;
    let live = std::io::stderr().is_terminal();
    let mut total = 0;
    // A trainer that ends without a Finished event did not finish.
    let mut outcome = Err(anyhow::anyhow!(
        "the trainer stopped without finishing the run"
    ));
    for event in handle.events.iter() {
        if args.json {
            println!("{}", serde_json::to_string(&event)?);
        }
        match &event {
            TrainEvent::Started {
                total_steps,
                examples,
                device,
                output_dir,
                stage,
                ..
            } => {
                total = *total_steps;
                eprintln!(
                    "{} on {device}: {examples} examples, {total_steps} steps → {output_dir}",
                    stage.to_uppercase()
                );
            }
            TrainEvent::Phase { name, done, total } if !args.json => {
                if live {
                    eprint!("\r{name}: {done}/{total}   ");
                } else if done == total {
                    eprintln!("{name}: {done}/{total}");
                }
                if live && done == total {
                    eprintln!();
                }
            }
            TrainEvent::Eval { step, metrics } if !args.json => {
                let figures: Vec<String> =
                    metrics.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
                eprintln!("\neval at step {step}: {}", figures.join("  "));
            }
            TrainEvent::Step {
                step,
                loss,
                lr,
                tokens_per_s,
                metrics,
                ..
            } if !args.json => {
                let done = (step * 30).checked_div(total).unwrap_or(0).min(30);
                let bar = format!("[{}{}]", "#".repeat(done), " ".repeat(30 - done));
                let dpo = match (
                    metrics.get("rewards/margins"),
                    metrics.get("rewards/accuracies"),
                    metrics.get("reward"),
                ) {
                    (Some(m), Some(a), _) => format!("  margin {m:.3}  acc {a:.2}"),
                    (_, _, Some(r)) => format!("  reward {r:.3}"),
                    _ => String::new(),
                };
                let line = format!(
                    "{bar} step {step}/{total}  loss {loss:.4}{dpo}  lr {lr:.2e}  {tokens_per_s:.0} tok/s"
                );
                if live {
                    eprint!("\r{line}   ");
                } else {
                    eprintln!("{line}");
                }
            }
            TrainEvent::Completions {
                step,
                prompt,
                samples,
            } if !args.json => {
                let best = samples
                    .iter()
                    .filter_map(|s| s.reward.map(|r| (r, s)))
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                if let (Some((reward, sample)), false) = (best, live) {
                    let line = tunelab::tui::training::one_line(&sample.text);
                    eprintln!(
                        "  step {step} best of {}: {reward:.2} {line}  ← {}",
                        samples.len(),
                        tunelab::tui::training::one_line(prompt)
                    );
                }
            }
            TrainEvent::Warning { message, .. } => eprintln!("\nwarning: {message}"),
            TrainEvent::Finished {
                ok,
                message,
                output_dir,
                ..
            } => {
                if live {
                    eprintln!();
                }
                if !ok {
                    outcome = Err(anyhow::anyhow!("{message}"));
                } else {
                    outcome = Ok(());
                    if !args.json {
                        println!("{message}\noutput_dir: {output_dir}");
                    }
                }
            }
            _ => {}
        }
    }
    handle.join();
    outcome
}

fn run_hw(args: HwArgs) -> Result<()> {
    let report = tunelab::hw::probe();
    let plans = match &args.config {
        Some(path) => Some(memory_plans(path, &report)?),
        None => None,
    };
    if args.json {
        let value = match plans {
            None => serde_json::to_value(&report)?,
            Some(plans) => serde_json::json!({ "hardware": report, "estimates": plans }),
        };
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("{report}");
        for plan in plans.iter().flatten() {
            print!("{plan}");
        }
    }
    Ok(())
}

/// The estimate of each stage of a config, with the memory records under its output_dir.
fn memory_plans(
    path: &std::path::Path,
    report: &tunelab::hw::HardwareReport,
) -> Result<Vec<tunelab::hw::estimate::Plan>> {
    let config = tunelab::config::RunConfig::load(path)?;
    let source = ModelSource::parse(Some(config.model_name.as_str()))?;
    let loaded = LoadedModel::load(&source, &candle_core::Device::Cpu, &mut |l| {
        eprintln!("{l}")
    })?;
    let facts = tunelab::hw::estimate::ModelFacts::of(&ModelInfo::of(&loaded));
    let free = report.gpus.first().and_then(|g| g.memory_free_bytes);
    let mut plans = Vec::new();
    for mut stage in config.stage_configs()? {
        // A batch never holds more examples than the data has (the trainer's batches don't).
        if let Ok(records) = tunelab::data::jsonl::read_items(stage.data_file()) {
            let most = records.len().max(1);
            stage.per_device_train_batch_size = stage.per_device_train_batch_size.min(most);
        }
        plans.push(tunelab::hw::estimate::Plan::new(&stage, &facts, free));
    }
    Ok(plans)
}
