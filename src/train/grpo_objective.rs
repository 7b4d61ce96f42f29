//! The GRPO stage's objective: prompts with their checks (an eval-case file), G completions
//! sampled for each before a step, scored by the rewards, and TRL's clipped loss on them.
//! A step trains on per_device_train_batch_size × gradient_accumulation_steps completions;
//! each batch of completions serves num_iterations steps.

use super::events::ScoredCompletion;
use super::grpo::{grpo_loss, score, GrpoParams, Scored, TokenInputs};
use super::loss::{label_log_probs, IGNORE_INDEX};
use super::objective::{MicroStep, Objective, Rollout};
use super::rewards::{Completion, Rewards};
use crate::config::{LossType, RunConfig, ScaleRewards};
use crate::data::batch::{batch_order, collate};
use crate::data::sft::TokenizedExample;
use crate::eval::cases::{load_eval_file, EvalCase};
use crate::eval::run::{prompt_ids, EvalSettings, Variant};
use crate::model::generate::StopReason;
use crate::model::lora::mix_seed;
use crate::model::{generate_batch, LoadedModel, SamplingParams, Transformer};
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor, Var};
use std::collections::BTreeMap;
use std::time::Instant;

/// What the KL term compares the policy with.
enum Reference {
    /// beta = 0: no reference pass.
    Unused,
    /// The base model (a fresh adapter's start).
    AdaptersOff,
    /// The start adapter's weights, swapped in for the pass.
    Adapter(Vec<(Var, Tensor)>),
}

/// One micro-batch of the current completions, with what its loss needs besides the policy.
struct Micro {
    old: Option<Tensor>,
    reference: Option<Tensor>,
    advantages: Tensor,
}

/// The completions of one generation batch, trained on for num_iterations steps.
struct Generation {
    index: usize,
    completions: Vec<TokenizedExample>,
    micros: Vec<Micro>,
    metrics: BTreeMap<String, f64>,
}

pub struct GrpoObjective {
    cases: Vec<EvalCase>,
    prompts: Vec<Vec<u32>>,
    truncated: usize,
    rewards: Rewards,
    params: GrpoParams,
    scale_rewards: ScaleRewards,
    sampling: SamplingParams,
    group: usize,
    batch_size: usize,
    accumulation: usize,
    iterations: usize,
    mask_truncated: bool,
    temperature: f64,
    seed: u64,
    reference: Reference,
    pad_id: u32,
    device: Device,
    current: Option<Generation>,
}

impl GrpoObjective {
    /// Reads the prompts and their checks, and records the reference (the model as it is now,
    /// at the stage's start point).
    pub fn prepare(
        config: &RunConfig,
        loaded: &LoadedModel,
        device: &Device,
        pad_id: u32,
    ) -> Result<(Self, Vec<String>)> {
        let path = config.data_file();
        let cases = load_eval_file(path)
            .context("GRPO's prompt_file holds eval cases (a prompt and its checks)")?;
        let rewards = Rewards::of(config);
        let unscorable = rewards.unscorable(&cases);
        if !unscorable.is_empty() {
            let lines: Vec<String> = unscorable.iter().take(8).map(|l| l.to_string()).collect();
            bail!(
                "{}: {} of {} prompts have no check that reward_funcs ({}) can score (lines {}{}): \
                 give them expect_json, schema or must_contain/any_of/must_not_contain, or set \
                 reward_command",
                path.display(),
                unscorable.len(),
                cases.len(),
                rewards.names().join(", "),
                lines.join(", "),
                if unscorable.len() > 8 { ", …" } else { "" }
            );
        }
        let context = loaded.model.config().max_position_embeddings;
        let (mut prompts, mut truncated, mut short) = (Vec::new(), 0, 0);
        // Put to the model as `tunelab eval` puts a case: its system turn, then the prompt.
        let settings = EvalSettings::from_config(config, 0)?;
        for case in &cases {
            let mut ids = prompt_ids(loaded, &settings, case, Variant::Tuned)?;
            if let Some(keep) = config.max_prompt_length.filter(|&k| ids.len() > k) {
                ids.drain(..ids.len() - keep);
                truncated += 1;
            }
            if ids.len() >= context {
                bail!(
                    "{}:{}: the prompt has {} tokens; the model's context is {context} (set \
                     max_prompt_length)",
                    path.display(),
                    case.line,
                    ids.len()
                );
            }
            if ids.len() + config.max_completion_length > context {
                short += 1;
            }
            prompts.push(ids);
        }
        let mut warnings = Vec::new();
        if short > 0 {
            warnings.push(format!(
                "{short} of {} prompts leave less than max_completion_length ({}) tokens of the \
                 model's context ({context}); their completions stop at the context",
                prompts.len(),
                config.max_completion_length
            ));
        }
        let beta = config.beta();
        let reference = if beta == 0.0 {
            Reference::Unused
        } else if config.init_adapter.is_some() {
            let vars = loaded.model.lora_vars();
            let saved = vars
                .iter()
                .map(|v| Ok((v.clone(), v.as_tensor().copy()?)))
                .collect::<Result<_>>()?;
            Reference::Adapter(saved)
        } else {
            Reference::AdaptersOff
        };
        let params = GrpoParams {
            beta,
            epsilon_low: config.epsilon,
            epsilon_high: config.epsilon_high.unwrap_or(config.epsilon),
            loss_type: config.loss(),
            max_completion_length: config.max_completion_length,
        };
        let sampling = SamplingParams {
            temperature: config.temperature,
            top_p: (config.top_p < 1.0).then_some(config.top_p),
            top_k: (config.top_k > 0).then_some(config.top_k),
            seed: config.seed,
            max_tokens: config.max_completion_length,
            constraint: None,
        };
        let objective = Self {
            cases,
            prompts,
            truncated,
            rewards,
            params,
            scale_rewards: config.scale_rewards,
            sampling,
            group: config.num_generations,
            batch_size: config.per_device_train_batch_size,
            accumulation: config.gradient_accumulation_steps,
            iterations: config.num_iterations,
            mask_truncated: config.mask_truncated_completions,
            temperature: config.temperature,
            seed: config.seed,
            reference,
            pad_id,
            device: device.clone(),
            current: None,
        };
        Ok((objective, warnings))
    }

    /// The prompts of generation batch `index`: the next ones of a seeded shuffle per epoch.
    fn prompts_of(&self, index: usize) -> Vec<usize> {
        let per_batch = self.batch_size * self.accumulation / self.group;
        let n = self.prompts.len();
        let ones = vec![1; n];
        (0..per_batch)
            .map(|k| {
                let position = index * per_batch + k;
                let order = batch_order(&ones, 1, false, self.seed, position / n);
                order[position % n][0]
            })
            .collect()
    }

    /// Samples G completions of each prompt, scores them and prepares their micro-batches.
    fn generate(&self, loaded: &LoadedModel, index: usize) -> Result<(Generation, Rollout)> {
        let chosen = self.prompts_of(index);
        let rows: Vec<usize> = chosen
            .iter()
            .flat_map(|&p| std::iter::repeat_n(p, self.group))
            .collect();
        let prompts: Vec<Vec<u32>> = rows.iter().map(|&p| self.prompts[p].clone()).collect();
        let sampling = SamplingParams {
            seed: mix_seed(self.seed, index as u64),
            ..self.sampling.clone()
        };
        let started = Instant::now();
        let switch = loaded.model.adapters();
        switch.set_training(false);
        let outputs = generate_batch(
            &loaded.model,
            &loaded.tokenizer,
            &prompts,
            &sampling,
            &loaded.stop_ids,
            |_, _| Ok(true),
        );
        switch.set_training(true);
        let outputs = outputs?;
        let generation_secs = started.elapsed().as_secs_f64();
        let to_score: Vec<Completion> = rows
            .iter()
            .zip(&outputs)
            .map(|(&p, out)| Completion {
                case: &self.cases[p],
                text: &out.text,
                tokens: out.tokens.len(),
            })
            .collect();
        let per_func = self.rewards.score(&to_score)?;
        let names = self.rewards.names();
        let scored = score(
            &per_func,
            &names,
            &self.rewards.weights,
            self.group,
            self.scale_rewards,
        )?;
        let completions: Vec<TokenizedExample> = prompts
            .iter()
            .zip(&outputs)
            .map(|(prompt, out)| {
                let mut reply = out.tokens.clone();
                reply.extend(out.end_token);
                let masked = self.mask_truncated && out.stop != StopReason::EndToken;
                let mut labels = vec![IGNORE_INDEX; prompt.len()];
                labels.extend(
                    reply
                        .iter()
                        .map(|&t| if masked { IGNORE_INDEX } else { i64::from(t) }),
                );
                let mut input_ids = prompt.clone();
                input_ids.extend(reply);
                TokenizedExample {
                    input_ids,
                    labels,
                    truncated: out.stop != StopReason::EndToken,
                    line: 0,
                }
            })
            .collect();
        let mut metrics = scored.metrics.clone();
        metrics.extend(length_metrics(&outputs));
        // A reward none of the batch's prompts has is NaN (as in TRL, which leaves it out of
        // its logs): left out here too.
        metrics.retain(|_, v| !v.is_nan());
        let generated: usize = outputs.iter().map(|o| o.tokens.len()).sum();
        metrics.insert(
            "rollout/tokens_per_s".into(),
            generated as f64 / generation_secs.max(1e-9),
        );
        let micros = (0..self.accumulation)
            .map(|k| self.micro(loaded, &completions, &scored, k))
            .collect::<Result<_>>()?;
        let first = &self.cases[chosen[0]];
        let sample: Vec<ScoredCompletion> = (0..self.group)
            .map(|i| ScoredCompletion {
                text: outputs[i].text.clone(),
                reward: Some(scored.rewards[i]).filter(|r| !r.is_nan()),
                advantage: scored.advantages[i],
                rewards: names
                    .iter()
                    .zip(&per_func[i])
                    .map(|(n, &v)| (n.clone(), Some(v).filter(|v| !v.is_nan())))
                    .collect(),
            })
            .collect();
        let generation = Generation {
            index,
            completions,
            micros,
            metrics: metrics.clone(),
        };
        let rollout = Rollout {
            batches: self.batches(),
            metrics,
            sample: Some((first.prompt.clone(), sample)),
            generation_secs,
        };
        Ok((generation, rollout))
    }

    /// Completion indices of each micro-batch: consecutive runs of per_device_train_batch_size.
    fn batches(&self) -> Vec<Vec<usize>> {
        (0..self.accumulation)
            .map(|k| (k * self.batch_size..(k + 1) * self.batch_size).collect())
            .collect()
    }

    /// Micro-batch k's advantages, and its log-probs at generation time (num_iterations > 1)
    /// and under the reference (beta ≠ 0), without gradients and with dropout off.
    fn micro(
        &self,
        loaded: &LoadedModel,
        completions: &[TokenizedExample],
        scored: &Scored,
        k: usize,
    ) -> Result<Micro> {
        let range = k * self.batch_size..(k + 1) * self.batch_size;
        let advantages: Vec<f32> = scored.advantages[range.clone()]
            .iter()
            .map(|&a| a as f32)
            .collect();
        let advantages = Tensor::from_vec(advantages, self.batch_size, &self.device)?;
        let rows = &completions[range];
        let model = &loaded.model;
        let switch = model.adapters();
        switch.set_training(false);
        let result = (|| {
            let old = if self.iterations > 1 {
                Some(self.logps(model, rows)?.0.detach())
            } else {
                None
            };
            let reference = match &self.reference {
                Reference::Unused => None,
                Reference::AdaptersOff => {
                    switch.set_enabled(false);
                    let logps = self.logps(model, rows);
                    switch.set_enabled(true);
                    Some(logps?.0.detach())
                }
                Reference::Adapter(saved) => Some(with_weights(saved, || {
                    Ok(self.logps(model, rows)?.0.detach())
                })?),
            };
            Ok::<_, anyhow::Error>((old, reference))
        })();
        switch.set_training(true);
        let (old, reference) = result?;
        Ok(Micro {
            old,
            reference,
            advantages,
        })
    }

    /// Per-token log-probs of the completions at the sampling temperature, and their mask.
    fn logps(&self, model: &Transformer, rows: &[TokenizedExample]) -> Result<(Tensor, Tensor)> {
        let rows: Vec<&TokenizedExample> = rows.iter().collect();
        let batch = collate(&rows, self.pad_id, &self.device)?;
        let mut hidden = model.forward_hidden(&batch.input_ids, 0, None)?;
        // The head is linear without a bias: scaling its input scales the logits.
        if self.temperature != 1.0 {
            hidden = (hidden * (1.0 / self.temperature))?;
        }
        label_log_probs(model.lm_head(), &hidden, &batch.labels)
    }
}

/// Runs `work` with the saved weights in place of the current ones, then puts those back.
fn with_weights<T>(saved: &[(Var, Tensor)], work: impl FnOnce() -> Result<T>) -> Result<T> {
    let current = saved
        .iter()
        .map(|(v, _)| v.as_tensor().copy())
        .collect::<candle_core::Result<Vec<_>>>()?;
    for (v, w) in saved {
        v.set(w)?;
    }
    let result = work();
    for ((v, _), w) in saved.iter().zip(&current) {
        v.set(w)?;
    }
    result
}

/// TRL's completions/* figures: lengths count the end token; a completion without one was
/// cut at max_completion_length (clipped).
fn length_metrics(outputs: &[crate::model::GenerationOutput]) -> BTreeMap<String, f64> {
    let lengths: Vec<f64> = outputs
        .iter()
        .map(|o| (o.tokens.len() + usize::from(o.end_token.is_some())) as f64)
        .collect();
    let ended: Vec<f64> = outputs
        .iter()
        .zip(&lengths)
        .filter(|(o, _)| o.stop == StopReason::EndToken)
        .map(|(_, &l)| l)
        .collect();
    let n = lengths.len().max(1) as f64;
    let mean = |v: &[f64]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    BTreeMap::from([
        ("completions/mean_length".into(), mean(&lengths)),
        (
            "completions/min_length".into(),
            lengths.iter().copied().fold(f64::INFINITY, f64::min),
        ),
        (
            "completions/max_length".into(),
            lengths.iter().copied().fold(0.0, f64::max),
        ),
        (
            "completions/clipped_ratio".into(),
            1.0 - ended.len() as f64 / n,
        ),
        ("completions/mean_terminated_length".into(), mean(&ended)),
    ])
}

impl Objective for GrpoObjective {
    fn examples(&self) -> usize {
        self.prompts.len()
    }

    fn truncated(&self) -> usize {
        self.truncated
    }

    /// One entry per completion an epoch trains on (each prompt's G completions, each used
    /// num_iterations times), so the plan counts steps as TRL does; each as long as its
    /// prompt and the longest completion, for the memory estimate.
    fn lengths(&self) -> Vec<usize> {
        let repeats = self.group * self.iterations;
        self.prompts
            .iter()
            .flat_map(|p| std::iter::repeat_n(p.len() + self.params.max_completion_length, repeats))
            .collect()
    }

    /// dapo divides by the window's completion tokens; the others by its completions.
    fn weight(&self, example: usize) -> usize {
        match (&self.current, self.params.loss_type) {
            (Some(g), LossType::Dapo) => g.completions[example].loss_tokens(),
            _ => 1,
        }
    }

    fn micro_step(&self, model: &Transformer, examples: &[usize]) -> Result<Option<MicroStep>> {
        let generation = self
            .current
            .as_ref()
            .context("no completions sampled yet")?;
        let k = examples.first().context("an empty micro-batch")? / self.batch_size;
        let micro = generation.micros.get(k).context("no such micro-batch")?;
        let rows: Vec<TokenizedExample> = examples
            .iter()
            .map(|&i| generation.completions[i].clone())
            .collect();
        let (logps, mask) = self.logps(model, &rows)?;
        let (loss, metrics) = grpo_loss(
            &self.params,
            &TokenInputs {
                logps: &logps,
                old: micro.old.as_ref(),
                reference: micro.reference.as_ref(),
                mask: &mask,
                advantages: &micro.advantages,
            },
        )?;
        Ok(Some(MicroStep {
            loss,
            tokens: rows.iter().map(|r| r.input_ids.len()).sum(),
            metrics,
        }))
    }

    fn evaluate(&self, _model: &LoadedModel) -> Result<BTreeMap<String, f64>> {
        Ok(BTreeMap::new())
    }

    fn rollout(&mut self, loaded: &LoadedModel, step: usize) -> Result<Option<Rollout>> {
        let index = step / self.iterations;
        if let Some(current) = self.current.as_ref().filter(|g| g.index == index) {
            return Ok(Some(Rollout {
                batches: self.batches(),
                metrics: current.metrics.clone(),
                sample: None,
                generation_secs: 0.0,
            }));
        }
        self.current = None;
        let (generation, rollout) = self.generate(loaded, index)?;
        self.current = Some(generation);
        Ok(Some(rollout))
    }
}
