//! The Data screen's Generate action: more records for the chosen preset, from its data
//! recipe (offline, deterministic) or by self-instruct against the workbench's own server,
//! with the progress and the latest kept record shown live. The file made is opened on the
//! Data screen when the job ends.

use super::app::ChosenConfig;
use crossterm::event::{KeyCode, KeyEvent};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenerateKind {
    Recipe,
    SelfInstruct,
}

/// Work for the engine: what to make, from what, into which file.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateJob {
    pub kind: GenerateKind,
    pub n: usize,
    /// The recipe, or the seed tasks.
    pub source: PathBuf,
    pub out: PathBuf,
    /// Self-instruct: the server's base URL and the model name to ask.
    pub endpoint: String,
    pub model: String,
    /// Self-instruct: the preset's schema.json (outputs must pass it) and eval file (its
    /// prompts are never written).
    pub schema: Option<PathBuf>,
    pub exclude: Option<PathBuf>,
}

/// How a running job stands, as the engine reports it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GenerateProgress {
    pub kept: usize,
    pub n: usize,
    pub requests: usize,
    pub rejected: usize,
    /// `similar 12, too short 3`.
    pub rejected_summary: String,
    /// The latest kept record: (prompt, answer).
    pub sample: Option<(String, String)>,
}

/// The picker: which kind, how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picker {
    pub selected: usize,
    pub n: String,
}

#[derive(Debug, Clone, Default)]
pub struct GenerateState {
    pub picker: Option<Picker>,
    pub job: Option<GenerateJob>,
    pub progress: GenerateProgress,
    /// Whether the job is still running.
    pub running: bool,
    /// How the last job ended.
    pub outcome: Option<Result<String, String>>,
}

/// What the picker offers for the chosen config: each kind with its source, or why not.
pub fn options(chosen: Option<&ChosenConfig>, endpoint: Option<&str>) -> Vec<Offer> {
    let Some(ChosenConfig { path, config, .. }) = chosen else {
        return vec![];
    };
    let folder = path.parent().unwrap_or(Path::new("."));
    let recipe = folder.join("recipe.toml");
    let seeds = [folder.join("seed_tasks.jsonl"), config.train_file.clone()]
        .into_iter()
        .find(|p| p.is_file());
    vec![
        Offer {
            kind: GenerateKind::Recipe,
            source: recipe.is_file().then_some(recipe),
            missing: "this preset has no recipe.toml".into(),
        },
        Offer {
            kind: GenerateKind::SelfInstruct,
            source: seeds.filter(|_| endpoint.is_some()),
            missing: match endpoint {
                None => "needs the workbench's server: v on the Runs screen".into(),
                Some(_) => "no seed_tasks.jsonl or train_file to start from".into(),
            },
        },
    ]
}

#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    pub kind: GenerateKind,
    pub source: Option<PathBuf>,
    /// Why the offer cannot run, when `source` is None.
    pub missing: String,
}

impl Offer {
    pub fn label(&self) -> String {
        let name = match self.kind {
            GenerateKind::Recipe => "data recipe",
            GenerateKind::SelfInstruct => "self-instruct",
        };
        match &self.source {
            Some(p) => format!("{name} from {}", crate::fsutil::shown(p)),
            None => format!("{name} ({})", self.missing),
        }
    }
}

/// A picker key: ↑/↓ choose, digits set n, Enter starts (returns the job), Esc closes.
pub fn on_picker_key(
    state: &mut GenerateState,
    key: KeyEvent,
    offers: &[Offer],
    job_for: impl Fn(&Offer, usize) -> GenerateJob,
) -> Result<Option<GenerateJob>, String> {
    let Some(picker) = state.picker.as_mut() else {
        return Ok(None);
    };
    match key.code {
        KeyCode::Esc => state.picker = None,
        KeyCode::Up => picker.selected = picker.selected.saturating_sub(1),
        KeyCode::Down => {
            picker.selected = (picker.selected + 1).min(offers.len().saturating_sub(1))
        }
        KeyCode::Char(c) if c.is_ascii_digit() && picker.n.len() < 7 => picker.n.push(c),
        KeyCode::Backspace => {
            picker.n.pop();
        }
        KeyCode::Enter => {
            let n: usize = picker.n.parse().unwrap_or(0);
            let Some(offer) = offers.get(picker.selected) else {
                return Err("choose a config first (p on the Training screen)".into());
            };
            if offer.source.is_none() {
                return Err(offer.missing.clone());
            }
            if n == 0 {
                return Err("type how many records to make".into());
            }
            state.picker = None;
            let job = job_for(offer, n);
            state.job = Some(job.clone());
            state.progress = GenerateProgress {
                n,
                ..GenerateProgress::default()
            };
            state.running = true;
            state.outcome = None;
            return Ok(Some(job));
        }
        _ => {}
    }
    Ok(None)
}

/// The job for an offer: a recipe writes a new `synth-N.jsonl` (a free name, never an
/// existing file); self-instruct grows `grown.jsonl`, going on from what an earlier job kept.
pub fn job_for(offer: &Offer, n: usize, chosen: &ChosenConfig, endpoint: &str) -> GenerateJob {
    let folder = chosen.path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let source = offer.source.clone().unwrap_or_default();
    let out = match offer.kind {
        GenerateKind::Recipe => free_name(&folder, &format!("synth-{n}")),
        GenerateKind::SelfInstruct => folder.join("grown.jsonl"),
    };
    let schema = folder.join("schema.json");
    GenerateJob {
        kind: offer.kind,
        n,
        source,
        out,
        endpoint: endpoint.to_string(),
        model: "base".into(),
        schema: schema.is_file().then_some(schema),
        exclude: chosen.config.eval_file.clone().filter(|p| p.is_file()),
    }
}

/// `stem.jsonl`, or `stem-2.jsonl`, `stem-3.jsonl`… whichever does not exist yet.
fn free_name(folder: &Path, stem: &str) -> PathBuf {
    let first = folder.join(format!("{stem}.jsonl"));
    if !first.exists() {
        return first;
    }
    (2..)
        .map(|i| folder.join(format!("{stem}-{i}.jsonl")))
        .find(|p| !p.exists())
        .expect("some name is free")
}
