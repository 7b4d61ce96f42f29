//! Will this run fit? A device-memory estimate for a training config, term by term, with a
//! verdict against free memory and, when it does not fit, the largest batch and sequence
//! length that would.
//!
//! The terms follow what tunelab's trainer holds on the device: the base weights as stored,
//! the LoRA matrices with their gradients and AdamW moments (all f32), each layer's input
//! (the only activation a checkpointed layer keeps), the activations of the layers that are
//! not checkpointed (`gradient_checkpointing`), the one layer whose activations the
//! backward recomputes (per token, plus attention's per-head seq² scores), the bf16 logits
//! and their gradient for one chunk of rows (at most 64 Mi logits), one base
//! weight dequantized at a time, DPO's doubled batch (chosen and rejected rows), a KV cache
//! for eval generation, the allocator's working slack and the CUDA context. The recomputed
//! layer's coefficients and the slack are measured: see `LAYER_BYTES_PER_TOKEN_DIM` and the
//! calibration table in the README.

use crate::config::{RunConfig, Stage};
use crate::model::catalog::CatalogEntry;
use crate::model::family::Family;
use crate::model::fused::label_logps::HEAD_CHUNK_LOGITS;
use crate::model::info::ModelInfo;
use serde::{Deserialize, Serialize};

/// Bytes per token and unit of (hidden + intermediate) width of the one layer the backward
/// recomputes: its bf16 activations, their gradients and the kernels' transients. Fitted
/// with ATTENTION_BYTES_PER_SCORE and WORKSPACE_BYTES to the measured peaks of eight
/// fixed-shape runs on an H200 (tests/gpu/calibrate.sh; the table is in the README): within
/// −4.7% … +8.1% on all eight.
pub const LAYER_BYTES_PER_TOKEN_DIM: f64 = 88.0;
/// Bytes per attention score (row × head × seq × seq) of that layer: bf16 scores,
/// probabilities and their gradients. Fitted with the above.
pub const ATTENTION_BYTES_PER_SCORE: f64 = 8.0;
/// The allocator's working slack (pool blocks, cuBLAS workspace) above the terms. Fitted with
/// the above.
pub const WORKSPACE_BYTES: u64 = 109 << 20;
/// Bytes per logit (token × vocab) of the chunk of rows the loss makes at once: the bf16
/// logits and, in backward, their bf16 gradient (the whole batch's never exist at once).
pub const LOGIT_BYTES: f64 = 4.0;
/// The CUDA context and cuBLAS workspaces of one process.
pub const CUDA_CONTEXT_BYTES: u64 = 512 << 20;
/// Below this share of free memory a run fits; up to all of it, it is tight.
const TIGHT_SHARE: f64 = 0.85;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Term {
    pub name: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Fits,
    Tight,
    DoesNotFit,
}

/// The shape of a run, as far as memory goes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct RunShape {
    pub stage: crate::config::Stage,
    /// Sequences per micro-batch (pairs for DPO).
    pub batch: usize,
    pub seq: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Estimate {
    pub shape: RunShape,
    pub terms: Vec<Term>,
    /// Every term, the CUDA context included.
    pub total_bytes: u64,
    /// What the run itself adds to the device: the total less the CUDA context, which is the
    /// figure a run's measured peak above its baseline is compared with.
    pub run_bytes: u64,
    pub free_bytes: Option<u64>,
    pub verdict: Option<Verdict>,
    /// When it does not fit: the largest batch at this sequence length that fits, and the
    /// longest sequence at this batch (0 when even 1 does not).
    pub max_batch: Option<usize>,
    pub max_seq: Option<usize>,
}

/// The model's facts the estimate needs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelFacts {
    pub layers: usize,
    pub hidden: usize,
    pub intermediate: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub vocab: usize,
    /// The base weights as the trainer holds them (a dense base is quantized to Q4_1).
    pub weight_bytes: u64,
    /// The largest weight matrix, in elements (dequantized one at a time in f32).
    pub largest_matrix: usize,
    /// q, k, v and gate, up as fused products (Phi-3), which an adapter targets whole.
    pub fused_projections: bool,
}

impl ModelFacts {
    pub fn of(info: &ModelInfo) -> Self {
        let q4_1_bytes_per_weight = 20.0 / 32.0;
        // Norms are F32 in every model: dense means no matrix is quantized.
        let dense = info
            .tensor_types
            .keys()
            .all(|t| matches!(t.as_str(), "F32" | "F16" | "BF16"));
        let weight_bytes = if dense {
            (info.parameters as f64 * q4_1_bytes_per_weight) as u64
        } else {
            info.bytes_in_memory as u64
        };
        Self {
            layers: info.layers,
            hidden: info.hidden_size,
            intermediate: info.intermediate_size,
            heads: info.heads,
            kv_heads: info.kv_heads,
            head_dim: info.head_dim,
            vocab: info.vocab_size,
            weight_bytes,
            largest_matrix: largest_matrix(
                info.vocab_size,
                info.hidden_size,
                info.intermediate_size,
            ),
            fused_projections: Family::from_gguf_architecture(&info.architecture)
                .is_some_and(|f| f.block().fused_projections),
        }
    }

    /// The facts of a model not loaded: its catalog entry (shape and weight bytes).
    pub fn of_entry(entry: &CatalogEntry) -> Self {
        let c = &entry.config;
        Self {
            layers: c.num_hidden_layers,
            hidden: c.hidden_size,
            intermediate: c.intermediate_size,
            heads: c.num_attention_heads,
            kv_heads: c.num_key_value_heads,
            head_dim: c.head_dim(),
            vocab: c.vocab_size,
            weight_bytes: entry.weight_bytes,
            largest_matrix: largest_matrix(c.vocab_size, c.hidden_size, c.intermediate_size),
            fused_projections: c.family.block().fused_projections,
        }
    }

    /// LoRA parameters for these targets and rank: r · (in + out) per adapted matrix.
    pub fn lora_parameters(&self, targets: &[&str], r: usize) -> usize {
        let q = self.heads * self.head_dim;
        let kv = self.kv_heads * self.head_dim;
        let (h, i) = (self.hidden, self.intermediate);
        let fused = self.fused_projections;
        let per_layer: usize = targets
            .iter()
            .map(|t| match (t.rsplit('.').next().unwrap_or(t), fused) {
                ("q_proj", false) => h + q,
                ("k_proj" | "v_proj", false) => h + kv,
                ("qkv_proj", true) => h + q + 2 * kv,
                ("o_proj", _) => q + h,
                ("gate_proj" | "up_proj", false) | ("down_proj", _) => h + i,
                ("gate_up_proj", true) => h + 2 * i,
                _ => 0,
            })
            .sum();
        per_layer * r * self.layers
    }
}

fn largest_matrix(vocab: usize, hidden: usize, intermediate: usize) -> usize {
    (vocab * hidden).max(hidden * intermediate)
}

/// The estimate for `config` on a model with `facts`, judged against `free_bytes` if known.
pub fn estimate(config: &RunConfig, facts: &ModelFacts, free_bytes: Option<u64>) -> Estimate {
    let shape = RunShape {
        stage: config.stage,
        batch: config.per_device_train_batch_size,
        seq: config.max_seq_length,
    };
    let targets = config.lora().targets().unwrap_or_default();
    let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
    let lora = facts.lora_parameters(&targets, config.lora_r) as u64;
    let mut e = terms_for(shape, facts, lora, config);
    e.free_bytes = free_bytes;
    if let Some(free) = free_bytes {
        let verdict = judge(e.total_bytes, free);
        e.verdict = Some(verdict);
        if verdict == Verdict::DoesNotFit {
            let fits = |batch: usize, seq: usize| {
                let s = RunShape {
                    batch,
                    seq,
                    ..shape
                };
                let t = terms_for(s, facts, lora, config).total_bytes;
                judge(t, free) != Verdict::DoesNotFit
            };
            e.max_batch = Some(largest(shape.batch, |b| fits(b, shape.seq)));
            e.max_seq = Some(largest(shape.seq, |s| fits(shape.batch, s)));
        }
    }
    e
}

fn judge(total: u64, free: u64) -> Verdict {
    if (total as f64) <= TIGHT_SHARE * free as f64 {
        Verdict::Fits
    } else if total <= free {
        Verdict::Tight
    } else {
        Verdict::DoesNotFit
    }
}

/// The largest n in 1..=upper with fits(n), by bisection (fits is monotone); 0 if none.
fn largest(upper: usize, fits: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, upper);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

fn terms_for(shape: RunShape, f: &ModelFacts, lora: u64, config: &RunConfig) -> Estimate {
    // DPO runs the chosen and rejected sequences of each pair in one batch.
    let rows = shape.batch * if shape.stage == Stage::Dpo { 2 } else { 1 };
    let tokens = (rows * shape.seq) as f64;
    let layer_inputs = tokens * (f.hidden * f.layers * 2) as f64;
    // A layer that is not checkpointed holds, in bf16: both norms' outputs, the residual
    // between attention and MLP, q and the attention's output, k, v, gate, up and their
    // product.
    let kept_layers = f.layers - config.gradient_checkpointing.layers(f.layers);
    let (q, kv) = (f.heads * f.head_dim, f.kv_heads * f.head_dim);
    let per_token = 3 * f.hidden + 2 * q + 2 * kv + 3 * f.intermediate;
    let kept = tokens * (kept_layers * per_token * 2) as f64;
    let one_layer = tokens * LAYER_BYTES_PER_TOKEN_DIM * (f.hidden + f.intermediate) as f64;
    let scores = (rows * f.heads * shape.seq * shape.seq) as f64;
    let attention = scores * ATTENTION_BYTES_PER_SCORE;
    let chunk = (tokens * f.vocab as f64).min(HEAD_CHUNK_LOGITS as f64);
    let logits = chunk * LOGIT_BYTES;
    // Generation: a bf16 KV cache for a batch of prompt + reply sequences (GRPO samples a
    // step's completions in one batch, else the eval's batch).
    let positions = match shape.stage {
        Stage::Grpo => {
            let rows = config.per_device_train_batch_size * config.gradient_accumulation_steps;
            rows * (shape.seq + config.max_completion_length)
        }
        _ => config.eval_batch_size * (shape.seq + config.eval_max_new_tokens),
    };
    let kv_cache = 2 * f.layers * f.kv_heads * f.head_dim * positions * 2;
    let mut terms = vec![
        term("base weights (as stored)", f.weight_bytes as f64),
        term("LoRA weights (f32)", lora as f64 * 4.0),
        term("LoRA gradients (f32)", lora as f64 * 4.0),
        term("AdamW moments (f32)", lora as f64 * 8.0),
        term("layer inputs kept for backward (bf16)", layer_inputs),
        term("activations of the layer in backward", one_layer),
        term("attention scores of that layer", attention),
        term(
            "logits of one chunk of rows and their gradient (bf16)",
            logits,
        ),
        term(
            "one weight dequantized (bf16, through f16)",
            f.largest_matrix as f64 * 4.0,
        ),
        term(
            "KV cache for generation (eval, GRPO rollouts)",
            kv_cache as f64,
        ),
        term("allocator workspace", WORKSPACE_BYTES as f64),
        term("CUDA context", CUDA_CONTEXT_BYTES as f64),
    ];
    if kept_layers > 0 {
        let name = format!("activations of the {kept_layers} layers not checkpointed (bf16)");
        // Beside the layer inputs, the other activations kept for the backward.
        terms.insert(5, term(&name, kept));
    }
    let total_bytes = terms.iter().map(|t| t.bytes).sum();
    Estimate {
        shape,
        terms,
        total_bytes,
        run_bytes: total_bytes - CUDA_CONTEXT_BYTES,
        free_bytes: None,
        verdict: None,
        max_batch: None,
        max_seq: None,
    }
}

fn term(name: &str, bytes: f64) -> Term {
    Term {
        name: name.to_string(),
        bytes: bytes.round() as u64,
    }
}

/// One stage's estimate and the measured peaks of past runs with the same stage.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub stage: Stage,
    pub output_dir: std::path::PathBuf,
    pub estimate: Estimate,
    pub past_runs: Vec<PastRun>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PastRun {
    pub path: std::path::PathBuf,
    pub shape: RunShape,
    pub measured_run_bytes: u64,
    pub estimated_run_bytes: u64,
    /// (estimated − measured) / measured.
    pub error: f64,
}

impl Plan {
    pub fn new(config: &RunConfig, facts: &ModelFacts, free_bytes: Option<u64>) -> Self {
        let past_runs = super::calibration::find_records(&config.output_dir)
            .into_iter()
            .filter_map(|(path, record)| {
                let error = record.estimate_error()?;
                let e = record.estimate?;
                (e.shape.stage == config.stage).then_some(PastRun {
                    path,
                    shape: e.shape,
                    measured_run_bytes: record.run_peak_bytes,
                    estimated_run_bytes: e.run_bytes,
                    error,
                })
            })
            .collect();
        Self {
            stage: config.stage,
            output_dir: config.output_dir.clone(),
            estimate: estimate(config, facts, free_bytes),
            past_runs,
        }
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let e = &self.estimate;
        writeln!(
            f,
            "\n{} memory estimate: batch {} × seq {}{}",
            self.stage.name().to_uppercase(),
            e.shape.batch,
            e.shape.seq,
            if self.stage == Stage::Dpo {
                " (× 2 rows per pair)"
            } else {
                ""
            }
        )?;
        let width = e
            .terms
            .iter()
            .map(|t| t.name.chars().count())
            .max()
            .unwrap_or(0);
        for t in &e.terms {
            writeln!(f, "  {:<width$} {:>10}", t.name, gib(t.bytes))?;
        }
        writeln!(f, "  {:<width$} {:>10}", "total", gib(e.total_bytes))?;
        match (e.verdict, e.free_bytes) {
            (Some(v), Some(free)) => {
                let word = match v {
                    Verdict::Fits => "fits",
                    Verdict::Tight => "tight",
                    Verdict::DoesNotFit => "does not fit",
                };
                writeln!(f, "  verdict: {word} in {} free", gib(free))?;
                if let (Some(b), Some(s)) = (e.max_batch, e.max_seq) {
                    writeln!(
                        f,
                        "  largest that fits: per_device_train_batch_size {b} at this length, \
                         or max_seq_length {s} at this batch"
                    )?;
                }
            }
            _ => writeln!(
                f,
                "  verdict: no GPU to judge against (the CPU path uses RAM)"
            )?,
        }
        for run in &self.past_runs {
            writeln!(
                f,
                "  past run {}: batch {} × seq {}, measured {}, estimated {} ({:+.1}%)",
                run.path.display(),
                run.shape.batch,
                run.shape.seq,
                gib(run.measured_run_bytes),
                gib(run.estimated_run_bytes),
                run.error * 100.0
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2-135M's shape.
    fn smollm2() -> ModelFacts {
        ModelFacts {
            layers: 30,
            hidden: 576,
            intermediate: 1536,
            heads: 9,
            kv_heads: 3,
            head_dim: 64,
            vocab: 49152,
            weight_bytes: 100_000_000,
            largest_matrix: 49152 * 576,
            fused_projections: false,
        }
    }

    /// A fused layout counts its fused products once each (Phi-3-mini: r · (h + 3h) for
    /// qkv_proj, r · (h + 2i) for gate_up_proj), and the separate names not at all.
    #[test]
    fn fused_projections_count_as_peft_adapts_them() {
        let phi = ModelFacts {
            layers: 32,
            hidden: 3072,
            intermediate: 8192,
            heads: 32,
            kv_heads: 32,
            head_dim: 96,
            vocab: 32064,
            weight_bytes: 0,
            largest_matrix: 0,
            fused_projections: true,
        };
        let all: Vec<&str> = crate::model::lora::TARGET_MODULES.to_vec();
        let per_layer = (3072 + 3 * 3072) + (3072 + 3072) + (3072 + 2 * 8192) + (8192 + 3072);
        assert_eq!(phi.lora_parameters(&all, 8), per_layer * 8 * 32);
        let plain = smollm2();
        let seven = (576 + 576) + 2 * (576 + 192) + (576 + 576) + 3 * (576 + 1536);
        assert_eq!(plain.lora_parameters(&all, 8), seven * 8 * 30);
    }

    fn config(stage: Stage, batch: usize, seq: usize) -> RunConfig {
        RunConfig {
            stage,
            per_device_train_batch_size: batch,
            max_seq_length: seq,
            lora_r: 16,
            eval_max_new_tokens: 256,
            eval_batch_size: 8,
            ..RunConfig::default()
        }
    }

    fn bytes(e: &Estimate, name: &str) -> u64 {
        e.terms
            .iter()
            .find(|t| t.name.starts_with(name))
            .unwrap()
            .bytes
    }

    #[test]
    fn terms_by_hand() {
        let f = smollm2();
        // All 7 projections at r = 16: per layer q (576+576) + k, v (576+192 each) + o (576+576)
        // + gate, up, down (576+1536 each) = 10176, × 16 × 30 layers: the 4 884 480 trainable
        // parameters the trainer reports for this model.
        let lora = f.lora_parameters(&crate::model::block::LINEAR_NAMES, 16);
        assert_eq!(lora, 10176 * 16 * 30);
        let e = estimate(&config(Stage::Sft, 8, 256), &f, None);
        assert_eq!(bytes(&e, "LoRA weights"), lora as u64 * 4);
        assert_eq!(bytes(&e, "AdamW"), lora as u64 * 8);
        // 8 × 256 tokens × 49152 vocab is more than a chunk: 64 Mi logits × 4 bytes.
        assert_eq!(bytes(&e, "logits"), (64 << 20) * 4);
        let short = estimate(&config(Stage::Sft, 1, 256), &f, None);
        assert_eq!(bytes(&short, "logits"), 256 * 49152 * 4);
        // 8 rows × 9 heads × 256² × 8 bytes, for one layer.
        assert_eq!(bytes(&e, "attention"), 8 * 9 * 256 * 256 * 8);
        // 2048 tokens × 576 × 30 layers × 2 bytes; one layer: 2048 × 88 × (576 + 1536).
        assert_eq!(bytes(&e, "layer inputs"), 2048 * 576 * 30 * 2);
        assert_eq!(bytes(&e, "activations of the layer"), 2048 * 88 * 2112);
        // Every layer checkpointed by default: none kept. With 10 of 30 checkpointed, 20
        // layers keep 3·576 + 2·576 + 2·192 + 3·1536 bf16 values a token.
        assert!(e.terms.iter().all(|t| !t.name.contains("not checkpointed")));
        let partial = RunConfig {
            gradient_checkpointing: crate::config::GradientCheckpointing::Layers(10),
            ..config(Stage::Sft, 8, 256)
        };
        let p = estimate(&partial, &f, None);
        assert_eq!(
            bytes(&p, "activations of the 20 layers not"),
            2048 * 20 * 7872 * 2
        );
        // K and V, 30 layers × 3 kv heads × 64 × 8 eval rows × (256 + 256) positions, bf16.
        assert_eq!(bytes(&e, "KV cache"), 2 * 30 * 192 * 8 * 512 * 2);
        assert_eq!(e.total_bytes, e.terms.iter().map(|t| t.bytes).sum::<u64>());
        assert_eq!(e.run_bytes, e.total_bytes - CUDA_CONTEXT_BYTES);

        // DPO's pairs are two sequences each: the batch-dependent terms double.
        let d = estimate(&config(Stage::Dpo, 8, 256), &f, None);
        assert_eq!(bytes(&d, "layer inputs"), 2 * bytes(&e, "layer inputs"));
        assert_eq!(bytes(&d, "attention"), 2 * bytes(&e, "attention"));
        assert_eq!(bytes(&d, "LoRA weights"), bytes(&e, "LoRA weights"));
    }

    #[test]
    fn verdicts_and_the_largest_shape_that_fits() {
        let f = smollm2();
        let c = config(Stage::Sft, 64, 1024);
        let need = estimate(&c, &f, None).total_bytes;
        assert_eq!(
            estimate(&c, &f, Some(need * 2)).verdict,
            Some(Verdict::Fits)
        );
        assert_eq!(
            estimate(&c, &f, Some(need + need / 20)).verdict,
            Some(Verdict::Tight)
        );
        let small = estimate(&c, &f, Some(need / 4));
        assert_eq!(small.verdict, Some(Verdict::DoesNotFit));
        let (b, s) = (small.max_batch.unwrap(), small.max_seq.unwrap());
        assert!(b > 0 && b < 64 && s > 0 && s < 1024, "{b} {s}");
        let free = need / 4;
        let at = |batch, seq| estimate(&config(Stage::Sft, batch, seq), &f, Some(free));
        assert_ne!(at(b, 1024).verdict, Some(Verdict::DoesNotFit));
        assert_eq!(at(b + 1, 1024).verdict, Some(Verdict::DoesNotFit));
        assert_ne!(at(64, s).verdict, Some(Verdict::DoesNotFit));
        assert_eq!(at(64, s + 1).verdict, Some(Verdict::DoesNotFit));
        assert_eq!(estimate(&c, &f, None).verdict, None);
    }
}
