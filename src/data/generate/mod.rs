//! Self-instruct (Wang et al. 2022) against any OpenAI-compatible endpoint: each round shows
//! the model in-context tasks (mostly seeds, a few generated ones) and asks for new
//! instructions; those the filters keep join the pool, and the model is then asked for worked
//! examples of each. Examples that pass the checks (JSON, a schema, not an eval prompt, not a
//! duplicate) are written as they come, until `n` records are in the file.

pub mod client;
pub mod filter;
pub mod output;
pub mod prompts;
pub mod rouge;
pub mod seeds;

use crate::data::exclude::normalise;
use crate::eval::cases::Schema;
use anyhow::{bail, Result};
use client::{Api, Endpoint, Reply, RequestError};
use filter::{InstructionFilter, Pool, Reject};
use output::{Generated, OutputFile, RecordFormat};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::SeedableRng;
use seeds::Task;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// This many failed requests in a row (each after its retries) stop the run.
pub const MAX_FAILURES_IN_A_ROW: usize = 5;

/// What the examples' outputs must be to be kept, besides new.
#[derive(Default)]
pub struct OutputChecks {
    pub json: bool,
    pub schema: Option<Schema>,
    /// Normalised prompts never to write (an eval set's).
    pub excluded: HashSet<String>,
}

pub struct Generator {
    pub seeds: Vec<Task>,
    pub endpoint: Endpoint,
    pub filter: InstructionFilter,
    pub checks: OutputChecks,
    pub n: usize,
    pub seed: u64,
    pub concurrency: usize,
    /// No round starts after this many.
    pub max_rounds: usize,
    /// In-context instructions per round, and how many of them are generated ones.
    pub in_context: usize,
    pub from_generated: usize,
    /// Seed tasks shown as worked examples in the instance prompt.
    pub example_tasks: usize,
    /// Examples kept per new instruction.
    pub instances_per_task: usize,
    pub format: RecordFormat,
}

/// Where a run stands; sent after every round and every kept record.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub kept: usize,
    pub n: usize,
    pub rounds: usize,
    pub requests: usize,
    pub rejected: BTreeMap<Reject, usize>,
    /// The record just kept.
    pub sample: Option<Generated>,
    /// The latest warning (a request that failed, a cut-off line dropped), for the caller to
    /// show; the run goes on.
    pub warning: Option<String>,
}

impl Progress {
    pub fn rejected_total(&self) -> usize {
        self.rejected.values().sum()
    }

    /// `similar 12, too short 3`, most frequent first.
    pub fn rejected_summary(&self) -> String {
        let mut counts: Vec<_> = self.rejected.iter().collect();
        counts.sort_by(|a, b| b.1.cmp(a.1));
        let parts: Vec<_> = counts
            .iter()
            .map(|(reason, count)| format!("{} {count}", reason.name()))
            .collect();
        parts.join(", ")
    }
}

struct State {
    output: OutputFile,
    pool: Pool,
    /// The generated instructions the filters kept, for later rounds' prompts.
    generated: Vec<String>,
    /// Normalised (instruction, input) of every record in the file.
    seen: HashSet<(String, String)>,
    progress: Progress,
    failures_in_a_row: usize,
    stop: Option<String>,
}

impl Generator {
    /// The paper's settings: 8 in-context instructions (2 generated), the default filters,
    /// 3 seed tasks shown per instance prompt, 2 examples kept per instruction, 4 requests in
    /// flight, alpaca records, no output checks.
    pub fn new(seeds: Vec<Task>, endpoint: Endpoint, n: usize) -> Self {
        Self {
            seeds,
            endpoint,
            filter: InstructionFilter {
                max_similarity: 0.7,
                reject_words: filter::DEFAULT_REJECT_WORDS
                    .iter()
                    .map(|w| w.to_string())
                    .collect(),
            },
            checks: OutputChecks::default(),
            n,
            seed: 42,
            concurrency: 4,
            max_rounds: 20 + 4 * n,
            in_context: 8,
            from_generated: 2,
            example_tasks: 3,
            instances_per_task: 2,
            format: RecordFormat::Alpaca,
        }
    }

    /// Runs until `out` holds `n` records (counting those an earlier run wrote), calling
    /// `on_progress` as it goes. Fails when the endpoint keeps failing or rounds run out;
    /// what was written stays.
    pub fn run(&self, out: &Path, on_progress: &(dyn Fn(&Progress) + Sync)) -> Result<Progress> {
        let (output, existing, warning) = OutputFile::open(out, self.format)?;
        let mut state = State {
            output,
            pool: Pool::default(),
            generated: Vec::new(),
            seen: HashSet::new(),
            progress: Progress {
                kept: existing.len(),
                n: self.n,
                warning,
                ..Progress::default()
            },
            failures_in_a_row: 0,
            stop: None,
        };
        for task in &self.seeds {
            state.pool.add(&task.instruction);
        }
        for (instruction, input) in existing {
            if state.seen.insert(key(&instruction, &input)) {
                state.pool.add(&instruction);
                state.generated.push(instruction);
            }
        }
        on_progress(&state.progress);
        let state = Mutex::new(state);
        std::thread::scope(|scope| {
            for _ in 0..self.concurrency.max(1) {
                scope.spawn(|| self.worker(&state, on_progress));
            }
        });
        let state = state.into_inner().unwrap_or_else(|e| e.into_inner());
        let progress = state.progress;
        if let Some(reason) = state.stop {
            bail!("{reason}; the {} records written so far are kept in {} (run the command again to go on)", progress.kept, out.display());
        }
        if progress.kept < self.n {
            bail!(
                "stopped after {} rounds with {} of {} records (rejected: {}); the records are \
                 kept in {}: run again, raise --max-rounds, or loosen the filters",
                progress.rounds,
                progress.kept,
                self.n,
                progress.rejected_summary(),
                out.display()
            );
        }
        Ok(progress)
    }

    /// Runs rounds until the file is full, the rounds run out or the run must stop.
    fn worker(&self, state: &Mutex<State>, on_progress: &(dyn Fn(&Progress) + Sync)) {
        while let Some((round, prompt, in_context)) = self.next_round(state) {
            let stop = self.instruction_stops();
            let Some(reply) = self.ask(state, &prompt, &stop, request_seed(self.seed, round, 0))
            else {
                continue;
            };
            let mut new = self.parse_instructions(&reply.text);
            if reply.cut_off && new.pop().is_some() {
                *lock(state)
                    .progress
                    .rejected
                    .entry(Reject::CutOff)
                    .or_default() += 1;
            }
            let accepted = self.admit(state, new);
            on_progress(&lock(state).progress);
            for (k, instruction) in accepted.iter().enumerate() {
                if self.done(&lock(state)) {
                    return;
                }
                let seed = request_seed(self.seed, round, k + 1);
                let prompt = self.instance_prompt(round, k, instruction);
                let next_example = format!("Example {}", self.instances_per_task + 1);
                let stop = [next_example.as_str(), "Task:"];
                let Some(reply) = self.ask(state, &prompt, &stop, seed) else {
                    continue;
                };
                let metadata = json!({
                    "source": "self-instruct",
                    "model": self.endpoint.model,
                    "round": round,
                    "in_context": in_context,
                });
                self.keep_examples(state, instruction, &reply, &metadata, on_progress);
            }
        }
    }

    fn done(&self, state: &State) -> bool {
        state.stop.is_some() || state.progress.kept >= self.n
    }

    /// The next round's number, instruction prompt and in-context task ids; None when the
    /// run is over.
    fn next_round(&self, state: &Mutex<State>) -> Option<(usize, String, Vec<String>)> {
        let mut state = lock(state);
        if self.done(&state) || state.progress.rounds >= self.max_rounds {
            return None;
        }
        let round = state.progress.rounds;
        state.progress.rounds += 1;
        let mut rng = StdRng::seed_from_u64(request_seed(self.seed, round, 0));
        let from_generated = self.from_generated.min(state.generated.len());
        let mut ids = Vec::new();
        let mut texts = Vec::new();
        for i in rand::seq::index::sample(&mut rng, state.generated.len(), from_generated) {
            ids.push(format!("generated:{i}"));
            texts.push(state.generated[i].clone());
        }
        let from_seeds = self
            .in_context
            .saturating_sub(from_generated)
            .min(self.seeds.len());
        for task in self.seeds.choose_multiple(&mut rng, from_seeds) {
            ids.push(task.id.clone());
            texts.push(task.instruction.clone());
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        Some((round, prompts::instruction_prompt(&refs), ids))
    }

    /// Where an instruction reply ends: past the paper's 15 items, and for a completion
    /// endpoint at the first blank line (a chat reply may open with one, after "Sure!").
    fn instruction_stops(&self) -> Vec<&'static str> {
        match self.endpoint.api {
            Api::Chat => vec!["\n16", "16.", "16 ."],
            Api::Completions => vec!["\n\n", "\n16", "16.", "16 ."],
        }
    }

    fn parse_instructions(&self, reply: &str) -> Vec<String> {
        match self.endpoint.api {
            Api::Chat => prompts::parse_instructions(reply),
            // A completion goes on from the prompt's last number; put it back.
            Api::Completions => {
                prompts::parse_instructions(&format!("{}. {reply}", self.in_context + 1))
            }
        }
    }

    /// The new instructions the filters let into the pool (counting the refused ones).
    fn admit(&self, state: &Mutex<State>, new: Vec<String>) -> Vec<String> {
        let mut state = lock(state);
        if new.is_empty() {
            *state
                .progress
                .rejected
                .entry(Reject::NoExample)
                .or_default() += 1;
        }
        let mut accepted = Vec::new();
        for instruction in new {
            match self.filter.check(&instruction, &state.pool) {
                Some(reason) => *state.progress.rejected.entry(reason).or_default() += 1,
                None => {
                    state.pool.add(&instruction);
                    state.generated.push(instruction.clone());
                    accepted.push(instruction);
                }
            }
        }
        accepted
    }

    fn instance_prompt(&self, round: usize, k: usize, instruction: &str) -> String {
        let mut rng = StdRng::seed_from_u64(request_seed(self.seed, round, k + 1));
        let examples: Vec<&Task> = self
            .seeds
            .choose_multiple(&mut rng, self.example_tasks)
            .collect();
        prompts::instance_prompt(&examples, instruction)
    }

    /// Checks each example of an instance reply and appends the good ones.
    fn keep_examples(
        &self,
        state: &Mutex<State>,
        instruction: &str,
        reply: &Reply,
        metadata: &serde_json::Value,
        on_progress: &(dyn Fn(&Progress) + Sync),
    ) {
        let mut examples = prompts::parse_instances(&reply.text);
        let mut state = lock(state);
        if reply.cut_off && examples.pop().is_some() {
            *state.progress.rejected.entry(Reject::CutOff).or_default() += 1;
        }
        if examples.is_empty() {
            *state
                .progress
                .rejected
                .entry(Reject::NoExample)
                .or_default() += 1;
        }
        for (input, output) in examples.into_iter().take(self.instances_per_task) {
            if self.done(&state) {
                break;
            }
            let record = Generated {
                instruction: instruction.to_string(),
                input,
                output,
                metadata: metadata.clone(),
            };
            if let Some(reason) = self.check_record(&record, &state.seen) {
                *state.progress.rejected.entry(reason).or_default() += 1;
                continue;
            }
            if let Err(e) = state.output.append(&record) {
                state.stop = Some(format!("{e:#}"));
                break;
            }
            state.seen.insert(key(&record.instruction, &record.input));
            state.progress.kept += 1;
            state.progress.sample = Some(record);
            on_progress(&state.progress);
        }
    }

    fn check_record(&self, record: &Generated, seen: &HashSet<(String, String)>) -> Option<Reject> {
        let output = record.output.trim();
        if output.is_empty() {
            return Some(Reject::EmptyOutput);
        }
        if output == record.input.trim() {
            return Some(Reject::OutputIsInput);
        }
        if output.ends_with(':') || record.input.trim().ends_with(':') {
            return Some(Reject::CutOff);
        }
        if self.checks.excluded.contains(&normalise(&record.prompt())) {
            return Some(Reject::Excluded);
        }
        if self.checks.json || self.checks.schema.is_some() {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(output) else {
                return Some(Reject::NotJson);
            };
            if let Some(schema) = &self.checks.schema {
                if !schema.validator.is_valid(&value) {
                    return Some(Reject::FailsSchema);
                }
            }
        }
        if seen.contains(&key(&record.instruction, &record.input)) {
            return Some(Reject::Duplicate);
        }
        None
    }

    /// Sends one request and books its outcome: a reply resets the run of failures; a failure
    /// counts, and enough of them in a row (or one that retrying cannot fix) stop the run.
    fn ask(&self, state: &Mutex<State>, prompt: &str, stop: &[&str], seed: u64) -> Option<Reply> {
        let outcome = self.endpoint.complete(prompt, stop, seed);
        let mut state = lock(state);
        state.progress.requests += 1;
        match outcome {
            Ok(reply) => {
                state.failures_in_a_row = 0;
                Some(reply)
            }
            Err(RequestError::Fatal(message)) => {
                state.stop.get_or_insert(message);
                None
            }
            Err(RequestError::Failed(message)) => {
                *state
                    .progress
                    .rejected
                    .entry(Reject::RequestFailed)
                    .or_default() += 1;
                state.failures_in_a_row += 1;
                eprintln!("warning: {message}");
                if state.failures_in_a_row >= MAX_FAILURES_IN_A_ROW {
                    state.stop.get_or_insert(format!(
                        "{MAX_FAILURES_IN_A_ROW} requests in a row failed; the last: {message}"
                    ));
                }
                None
            }
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// A seed per request, so a run against a seeded endpoint can be repeated; below 2^63, as
/// OpenAI's API takes a signed 64-bit seed.
fn request_seed(seed: u64, round: usize, request: usize) -> u64 {
    let mixed = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((round as u64) << 8)
        .wrapping_add(request as u64);
    mixed & (i64::MAX as u64)
}

fn key(instruction: &str, input: &str) -> (String, String) {
    (normalise(instruction), normalise(input))
}
