//! The workbench's whole state and its one update function. `App::update` takes a message (a
//! key, a mouse event, a result from a background job) and returns the effects to carry out
//! (start a run, load a file…); it does no I/O itself, so key sequences can be tested without
//! a terminal.

use super::compare::{CompareState, ReplyPiece, Side};
use super::data::{problem_line, DataFocus, DataState, DetailView, Inspection, LoadedDataset};
use super::discover::Found;
use super::generate::{GenerateJob, GenerateProgress, GenerateState, Picker};
use super::hardware::{HardwareState, MemoryEstimate};
use super::keys::{action_for, Action};
use super::models::ModelsState;
use super::serve::{ServeCounters, ServeJob, ServeState, ServeStatus};
use super::sweeps::SweepsState;
use super::theme::Theme;
use super::training::{RunSource, RunState, RunView, TrainState};
use super::view::layout;
use crate::config::RunConfig;
use crate::data::sft::SftRecord;
use crate::hw::HardwareReport;
use crate::model::catalog::Catalog;
use crate::model::constrain::Constraint;
use crate::train::events::{TrainCommand, TrainEvent};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, MouseButton, MouseEvent, MouseEventKind};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Hardware,
    Data,
    Training,
    Compare,
    Runs,
    Sweeps,
}

impl Screen {
    pub const ALL: [Screen; 6] = [
        Screen::Hardware,
        Screen::Data,
        Screen::Training,
        Screen::Compare,
        Screen::Runs,
        Screen::Sweeps,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Screen::Hardware => "Hardware",
            Screen::Data => "Data",
            Screen::Training => "Training",
            Screen::Compare => "Compare",
            Screen::Runs => "Runs",
            Screen::Sweeps => "Sweeps",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|&s| s == self).unwrap_or(0)
    }
}

/// A picker shown over the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modal {
    Configs {
        selected: usize,
    },
    /// Dataset files; typing enters a path instead.
    Files {
        selected: usize,
        typed: String,
    },
    /// Runs with an adapter, for the compare screen's tuned column.
    Adapters {
        selected: usize,
    },
    /// The models a run could use, for the next run's model.
    Models {
        selected: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputPurpose {
    Search,
    Prompt,
}

/// A one-line text field being typed into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub purpose: InputPurpose,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct ChosenConfig {
    pub path: PathBuf,
    /// As loaded, but for a model picked here (`config.model_name`).
    pub config: RunConfig,
    /// The model the file names, to show a picked one against.
    pub file_model: String,
}

#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize(u16, u16),
    Hardware(Box<HardwareReport>),
    Found(Found),
    ConfigLoaded {
        path: PathBuf,
        result: Result<Box<RunConfig>, String>,
    },
    /// The eval checks of a cases file the compare screen shows.
    CaseChecks {
        path: PathBuf,
        checks: super::checks::CaseChecks,
    },
    /// The memory estimate of the chosen config (its largest stage).
    Estimate(Result<MemoryEstimate, String>),
    /// The models the picker lists.
    Models(Catalog),
    Dataset {
        path: PathBuf,
        result: Result<LoadedDataset, String>,
    },
    Inspected(Result<Inspection, String>),
    Lengths {
        path: PathBuf,
        lengths: Vec<usize>,
    },
    /// What the model worker is doing ("loading the default model…", "ready", an error).
    ModelStatus(String),
    Train {
        run: u64,
        event: TrainEvent,
    },
    /// A followed run's events.jsonl could not be read.
    RunProblem {
        run: u64,
        message: String,
    },
    Cases {
        path: PathBuf,
        result: Result<Vec<String>, String>,
    },
    Reply {
        job: u64,
        case: usize,
        side: Side,
        piece: ReplyPiece,
    },
    GenerationDone {
        job: u64,
    },
    /// The Data screen's Generate job.
    MakeDataProgress(GenerateProgress),
    MakeDataDone {
        out: PathBuf,
        result: Result<String, String>,
    },
    ServeStarted {
        address: String,
        models: Vec<String>,
        skipped: usize,
    },
    ServeCounters(ServeCounters),
    ServeStopped(Result<(), String>),
}

/// The model and prompt settings background jobs use: the chosen config's.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSettings {
    /// As RunConfig::model_name: empty for the default model.
    pub model: String,
    pub system_prompt: Option<String>,
    pub max_seq_length: usize,
}

/// Work for the model thread.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelJob {
    /// Render a record with the chat template and tokenize it with its loss mask.
    Inspect {
        path: PathBuf,
        line: usize,
        record: SftRecord,
        settings: ModelSettings,
    },
    /// Count every record's tokens.
    Lengths {
        path: PathBuf,
        records: Vec<SftRecord>,
        settings: ModelSettings,
    },
    /// Reply to a prompt with the base model, then with the adapter on (when there is one).
    Generate {
        job: u64,
        case: usize,
        prompt: String,
        settings: ModelSettings,
        adapter: Option<PathBuf>,
        /// The Compare screen's constraint toggle: the case's schema, else any JSON object.
        constraint: Option<Constraint>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Discover,
    LoadConfig(PathBuf),
    /// The memory estimate of this config (after its model was picked).
    Estimate(Box<RunConfig>),
    /// Read the catalog of models, the config's own (this `model_name`) first.
    ListModels(String),
    LoadDataset(PathBuf),
    LoadCases(PathBuf),
    Model(ModelJob),
    CancelGenerate,
    StartRun {
        run: u64,
        config: Box<RunConfig>,
    },
    Command(TrainCommand),
    Follow {
        run: u64,
        dir: PathBuf,
    },
    MakeData(GenerateJob),
    Serve(ServeJob),
    StopServe,
}

/// How the workbench was opened.
#[derive(Debug, Clone, Default)]
pub struct Opening {
    pub config: Option<PathBuf>,
    /// `tunelab watch DIR`: follow this run from the start.
    pub watch: Option<PathBuf>,
}

pub struct App {
    pub screen: Screen,
    pub size: (u16, u16),
    pub theme: Theme,
    pub help: bool,
    pub quit: bool,
    /// Set by a first `q` while this process trains; a second quits and cancels the run.
    pub quit_armed: bool,
    pub modal: Option<Modal>,
    pub input: Option<Input>,
    pub found: Found,
    pub config: Option<ChosenConfig>,
    pub config_error: Option<String>,
    pub hardware: HardwareState,
    pub models: ModelsState,
    pub data: DataState,
    pub train: TrainState,
    pub compare: CompareState,
    pub runs_selected: usize,
    pub sweeps: SweepsState,
    pub generating: GenerateState,
    pub serving: ServeState,
    pub model_status: String,
    /// A one-line message in the key bar until the next key.
    pub notice: Option<String>,
    next_id: u64,
}

impl App {
    pub fn new(theme: Theme, size: (u16, u16)) -> Self {
        Self {
            screen: Screen::Hardware,
            size,
            theme,
            help: false,
            quit: false,
            quit_armed: false,
            modal: None,
            input: None,
            found: Found::default(),
            config: None,
            config_error: None,
            hardware: HardwareState::default(),
            models: ModelsState::default(),
            data: DataState::default(),
            train: TrainState::default(),
            compare: CompareState::default(),
            runs_selected: 0,
            sweeps: SweepsState::default(),
            generating: GenerateState::default(),
            serving: ServeState::default(),
            model_status: String::new(),
            notice: None,
            next_id: 0,
        }
    }

    /// The first effects: find configs and runs, load the chosen config, follow a watched run.
    pub fn start(&mut self, opening: Opening) -> Vec<Effect> {
        let mut effects = vec![Effect::Discover];
        if let Some(path) = opening.config {
            effects.push(Effect::LoadConfig(path));
        }
        if let Some(dir) = opening.watch {
            self.screen = Screen::Training;
            effects.push(self.follow(dir));
        }
        effects
    }

    /// The config the next run starts with (the defaults before one is chosen).
    fn run_config(&self) -> RunConfig {
        self.config
            .as_ref()
            .map_or_else(RunConfig::default, |c| c.config.clone())
    }

    /// The settings background model jobs use now.
    pub fn model_settings(&self) -> ModelSettings {
        let config = self.run_config();
        ModelSettings {
            model: config.model_name,
            system_prompt: config.system_prompt,
            max_seq_length: config.max_seq_length,
        }
    }

    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Key(key) if key.kind != KeyEventKind::Release => {
                self.notice = None;
                self.on_key(key)
            }
            Msg::Key(_) => vec![],
            Msg::Mouse(mouse) => self.on_mouse(mouse),
            Msg::Resize(w, h) => {
                self.size = (w, h);
                vec![]
            }
            Msg::Hardware(report) => {
                self.hardware.apply(*report);
                let used = self.hardware.gpu_memory_used();
                if let Some(run) = self.train.run.as_mut().filter(|r| r.is_live()) {
                    run.gpu_peak = run.gpu_peak.max(used);
                }
                // A running sweep's table and curves follow its files.
                if self.screen == Screen::Sweeps {
                    return vec![Effect::Discover];
                }
                vec![]
            }
            Msg::Found(found) => self.on_found(found),
            Msg::MakeDataProgress(progress) => {
                self.generating.progress = progress;
                vec![]
            }
            Msg::MakeDataDone { out, result } => self.on_made_data(out, result),
            Msg::ServeStarted {
                address,
                models,
                skipped,
            } => {
                self.serving.status = ServeStatus::Serving { address, models };
                self.serving.skipped = skipped;
                vec![]
            }
            Msg::ServeCounters(counters) => {
                self.serving.apply(counters);
                vec![]
            }
            Msg::ServeStopped(result) => {
                self.serving.status = match result {
                    Ok(()) => ServeStatus::Off,
                    Err(e) => ServeStatus::Failed(e),
                };
                vec![]
            }
            Msg::ConfigLoaded { path, result } => self.on_config(path, result),
            Msg::CaseChecks { path, checks } => {
                if self.compare.cases_path.as_ref() == Some(&path) {
                    self.compare.checks = checks;
                }
                vec![]
            }
            Msg::Estimate(result) => {
                self.hardware.estimate = result.ok();
                vec![]
            }
            Msg::Models(catalog) => {
                let config = self.run_config();
                self.models
                    .set(catalog, &config, self.hardware.gpu_memory_free());
                if let Some(Modal::Models { selected }) = self.modal.as_mut() {
                    *selected = self.models.position(&config.model_name);
                }
                vec![]
            }
            Msg::Dataset { path, result } => {
                if self.data.loading.as_ref() != Some(&path) {
                    return vec![];
                }
                match result {
                    Ok(dataset) => self.data.set_dataset(dataset),
                    Err(e) => {
                        self.data = DataState {
                            load_error: Some(e),
                            ..DataState::default()
                        }
                    }
                }
                self.data_work()
            }
            Msg::Inspected(Ok(inspection)) => {
                let current = self.data.selected_row().map(|r| r.line);
                let same_file = self
                    .data
                    .dataset
                    .as_ref()
                    .is_some_and(|d| d.path == inspection.path);
                if same_file && current == Some(inspection.line) {
                    self.data.inspection = Some(inspection);
                }
                vec![]
            }
            Msg::Inspected(Err(e)) => {
                self.model_status = e;
                vec![]
            }
            Msg::Lengths { path, lengths } => {
                if self.data.dataset.as_ref().is_some_and(|d| d.path == path) {
                    self.data.lengths = Some(lengths);
                }
                vec![]
            }
            Msg::ModelStatus(status) => {
                self.model_status = status;
                vec![]
            }
            Msg::Train { run, event } => self.on_train_event(run, event),
            Msg::RunProblem { run, message } => {
                if let Some(view) = self.train.run.as_mut().filter(|v| v.id == run) {
                    view.warnings.push(message);
                }
                vec![]
            }
            Msg::Cases { path, result } => {
                match result {
                    Ok(prompts) => self.compare.set_cases(&path, prompts),
                    Err(e) => self.compare.cases_error = Some(e),
                }
                vec![]
            }
            Msg::Reply {
                job,
                case,
                side,
                piece,
            } => {
                self.compare.apply(job, case, side, piece);
                vec![]
            }
            Msg::GenerationDone { job } => {
                if job == self.compare.job {
                    self.compare.busy = false;
                }
                vec![]
            }
        }
    }

    fn on_found(&mut self, found: Found) -> Vec<Effect> {
        self.found = found;
        self.runs_selected = self
            .runs_selected
            .min(self.found.runs.len().saturating_sub(1));
        self.sweeps.sweep = self
            .sweeps
            .sweep
            .min(self.found.sweeps.len().saturating_sub(1));
        if self.config.is_some() || self.config_error.is_some() {
            return vec![];
        }
        // The first preset of the worked example, else the first config found.
        let first = self
            .found
            .configs
            .iter()
            .find(|p| p.to_string_lossy().contains("camara_qod"))
            .or(self.found.configs.first());
        first
            .map(|p| Effect::LoadConfig(p.clone()))
            .into_iter()
            .collect()
    }

    fn on_config(&mut self, path: PathBuf, result: Result<Box<RunConfig>, String>) -> Vec<Effect> {
        let config = match result {
            Ok(config) => *config,
            Err(e) => {
                self.notice = Some(e.clone());
                self.config_error = Some(e);
                return vec![];
            }
        };
        self.config_error = None;
        let mut effects = vec![Effect::LoadDataset(config.train_file.clone())];
        self.data.loading = Some(config.train_file.clone());
        if let Some(eval) = &config.eval_file {
            effects.push(Effect::LoadCases(eval.clone()));
        }
        self.config = Some(ChosenConfig {
            path,
            file_model: config.model_name.clone(),
            config,
        });
        effects
    }

    fn on_train_event(&mut self, run: u64, event: TrainEvent) -> Vec<Effect> {
        let Some(view) = self.train.run.as_mut().filter(|v| v.id == run) else {
            return vec![];
        };
        let finished = matches!(event, TrainEvent::Finished { .. });
        view.apply(event);
        if !finished {
            return vec![];
        }
        // The finished run's adapter is the obvious thing to compare next.
        if let Some(adapter) = &view.adapter {
            if self.compare.adapter.is_none() {
                self.compare.adapter = Some(PathBuf::from(adapter));
            }
        }
        self.quit_armed = false;
        vec![Effect::Discover]
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn follow(&mut self, dir: PathBuf) -> Effect {
        let run = self.new_id();
        self.train.run = Some(RunView::new(run, RunSource::Followed(dir.clone())));
        Effect::Follow { run, dir }
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if self.help {
            if matches!(
                key.code,
                KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q')
            ) {
                self.help = false;
            }
            return vec![];
        }
        if self.input.is_some() {
            return self.on_input_key(key);
        }
        if self.modal.is_some() {
            return self.on_modal_key(key);
        }
        if self.generating.picker.is_some() {
            return self.on_make_data_key(key);
        }
        match action_for(self.screen, key) {
            Some(action) => self.on_action(action),
            None => vec![],
        }
    }

    fn on_action(&mut self, action: Action) -> Vec<Effect> {
        if action != Action::Quit {
            self.quit_armed = false;
        }
        match action {
            Action::Quit => {
                let training_here = self.train.run.as_ref().is_some_and(RunView::controllable);
                if training_here && !self.quit_armed {
                    self.quit_armed = true;
                    self.notice = Some(
                        "a run is training here: x stops it with a checkpoint; q again quits and cancels it"
                            .into(),
                    );
                } else {
                    self.quit = true;
                }
                vec![]
            }
            Action::Help => {
                self.help = true;
                vec![]
            }
            Action::NextTab => {
                self.go_to(Screen::ALL[(self.screen.index() + 1) % Screen::ALL.len()])
            }
            Action::PrevTab => self.go_to(
                Screen::ALL[(self.screen.index() + Screen::ALL.len() - 1) % Screen::ALL.len()],
            ),
            Action::GoTo(screen) => self.go_to(screen),
            _ => match self.screen {
                Screen::Hardware => vec![],
                Screen::Data => self.on_data_action(action),
                Screen::Training => self.on_training_action(action),
                Screen::Compare => self.on_compare_action(action),
                Screen::Runs => self.on_runs_action(action),
                Screen::Sweeps => self.on_sweeps_action(action),
            },
        }
    }

    fn go_to(&mut self, screen: Screen) -> Vec<Effect> {
        self.screen = screen;
        match screen {
            Screen::Data => self.data_work(),
            Screen::Runs | Screen::Sweeps => vec![Effect::Discover],
            _ => vec![],
        }
    }

    /// The background work the data screen needs for what it shows now.
    fn data_work(&mut self) -> Vec<Effect> {
        if self.screen != Screen::Data {
            return vec![];
        }
        let settings = self.model_settings();
        let mut effects = vec![];
        let Some(dataset) = &self.data.dataset else {
            return effects;
        };
        let records: Vec<SftRecord> = dataset
            .rows
            .iter()
            .filter_map(|r| r.record.clone())
            .collect();
        if !self.data.lengths_asked && !records.is_empty() {
            self.data.lengths_asked = true;
            effects.push(Effect::Model(ModelJob::Lengths {
                path: dataset.path.clone(),
                records,
                settings: settings.clone(),
            }));
        }
        let path = dataset.path.clone();
        let selected = self
            .data
            .selected_row()
            .and_then(|row| Some((row.line, row.record.clone()?)));
        if let Some((line, record)) = selected {
            let shown = self.data.inspection.as_ref().map(|i| i.line);
            if shown != Some(line) && self.data.inspect_asked != Some(line) {
                self.data.inspect_asked = Some(line);
                effects.push(Effect::Model(ModelJob::Inspect {
                    path,
                    line,
                    record,
                    settings,
                }));
            }
        }
        effects
    }

    fn on_data_action(&mut self, action: Action) -> Vec<Effect> {
        let page = self.page();
        let data = &mut self.data;
        match (action, data.focus) {
            (Action::OpenFile, _) => {
                self.modal = Some(Modal::Files {
                    selected: 0,
                    typed: String::new(),
                });
            }
            (Action::Search, _) => {
                self.input = Some(Input {
                    purpose: InputPurpose::Search,
                    text: data.filter.clone(),
                });
            }
            (Action::ToggleTokens, _) => {
                data.view = match data.view {
                    DetailView::Chat => DetailView::Tokens,
                    DetailView::Tokens => DetailView::Chat,
                };
            }
            (Action::FocusErrors, _) => {
                data.focus = match data.focus {
                    DataFocus::Records => DataFocus::Problems,
                    DataFocus::Problems => DataFocus::Records,
                };
            }
            (Action::MakeData, _) => {
                if self.generating.running {
                    self.notice = Some("a generation job is running".into());
                } else {
                    self.generating.picker = Some(Picker {
                        selected: 0,
                        n: "200".into(),
                    });
                }
                return vec![];
            }
            (Action::Back, _) => {
                data.filter.clear();
                data.selected = 0;
                data.focus = DataFocus::Records;
            }
            (Action::Enter, DataFocus::Problems) => {
                let problems = data.dataset.as_ref().map(|d| d.problems.clone());
                let line = problems
                    .and_then(|p| p.get(data.problem_selected).cloned())
                    .and_then(|p| problem_line(&p));
                if let Some(line) = line {
                    data.jump_to_line(line);
                }
            }
            (movement, DataFocus::Problems) => {
                let len = data.dataset.as_ref().map_or(0, |d| d.problems.len());
                data.problem_selected = moved(data.problem_selected, len, movement, page);
            }
            (movement, DataFocus::Records) => {
                let len = data.visible().len();
                data.selected = moved(data.selected, len, movement, page);
            }
        }
        self.data_work()
    }

    fn on_training_action(&mut self, action: Action) -> Vec<Effect> {
        let run = self.train.run.as_mut();
        let controllable = run.as_ref().is_some_and(|r| r.controllable());
        match action {
            Action::PickConfig => {
                let selected = self
                    .config
                    .as_ref()
                    .and_then(|c| self.found.configs.iter().position(|p| *p == c.path))
                    .unwrap_or(0);
                self.modal = Some(Modal::Configs { selected });
                vec![]
            }
            Action::StartRun => self.start_run(),
            Action::PickModel => {
                self.modal = Some(Modal::Models { selected: 0 });
                self.models.loading = true;
                vec![Effect::ListModels(self.run_config().model_name)]
            }
            Action::NextCharts => {
                self.train.chart_page += 1;
                vec![]
            }
            Action::PauseResume | Action::StopRun | Action::SaveNow if !controllable => {
                self.notice = Some("no run of this workbench is training (s starts one)".into());
                vec![]
            }
            Action::PauseResume => {
                let run = self.train.run.as_mut().expect("controllable");
                let command = match run.state {
                    RunState::Paused => {
                        run.state = RunState::Running;
                        run.log_line("resumed".into());
                        TrainCommand::Resume
                    }
                    _ => {
                        run.state = RunState::Paused;
                        run.log_line("paused (after the current step)".into());
                        TrainCommand::Pause
                    }
                };
                vec![Effect::Command(command)]
            }
            Action::StopRun => {
                let run = self.train.run.as_mut().expect("controllable");
                run.state = RunState::Stopping;
                run.log_line("stopping: saving a checkpoint".into());
                vec![Effect::Command(TrainCommand::Stop)]
            }
            Action::SaveNow => {
                let run = self.train.run.as_mut().expect("controllable");
                run.log_line("saving a checkpoint after this step".into());
                vec![Effect::Command(TrainCommand::SaveNow)]
            }
            _ => vec![],
        }
    }

    fn start_run(&mut self) -> Vec<Effect> {
        if self.train.run.as_ref().is_some_and(RunView::controllable) {
            self.notice = Some("a run is already training here".into());
            return vec![];
        }
        let Some(chosen) = self.config.clone() else {
            self.notice = Some("pick a config first (p)".into());
            return vec![];
        };
        let config = Box::new(chosen.config);
        let run = self.new_id();
        let mut view = RunView::new(run, RunSource::Own);
        view.output_dir = crate::fsutil::shown(&config.output_dir);
        view.log_line(format!("starting {}", chosen.path.display()));
        self.train.run = Some(view);
        vec![Effect::StartRun { run, config }]
    }

    fn on_compare_action(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Generate | Action::Enter => self.generate(),
            Action::TypePrompt => {
                self.input = Some(Input {
                    purpose: InputPurpose::Prompt,
                    text: String::new(),
                });
                vec![]
            }
            Action::ToggleConstraint => {
                self.compare.constrained = !self.compare.constrained;
                self.notice = Some(if self.compare.constrained {
                    "replies held to the case's JSON Schema (any JSON object without one); g regenerates".into()
                } else {
                    "replies free (no constraint); g regenerates".into()
                });
                vec![]
            }
            Action::PickAdapter => {
                self.modal = Some(Modal::Adapters { selected: 0 });
                vec![]
            }
            Action::Cancel => {
                self.compare.busy = false;
                self.compare.job += 1;
                vec![Effect::CancelGenerate]
            }
            movement => {
                let len = self.compare.prompts.len();
                self.compare.selected = moved(self.compare.selected, len, movement, self.page());
                vec![]
            }
        }
    }

    fn generate(&mut self) -> Vec<Effect> {
        let case = self.compare.selected;
        let Some(prompt) = self.compare.prompts.get(case).cloned() else {
            self.notice = Some("no prompt: i types one".into());
            return vec![];
        };
        self.compare.job += 1;
        self.compare.busy = true;
        self.compare.replies.retain(|(c, _), _| *c != case);
        vec![Effect::Model(ModelJob::Generate {
            job: self.compare.job,
            case,
            prompt,
            settings: self.model_settings(),
            adapter: self.compare.adapter.clone(),
            constraint: self
                .compare
                .constrained
                .then(|| self.compare.checks.constraint(case)),
        })]
    }

    fn on_runs_action(&mut self, action: Action) -> Vec<Effect> {
        let selected = self.found.runs.get(self.runs_selected).cloned();
        match action {
            Action::Rescan => vec![Effect::Discover],
            Action::ToggleServe => self.toggle_serve(),
            Action::Enter => match selected {
                Some(run) => {
                    self.screen = Screen::Training;
                    vec![self.follow(run.dir)]
                }
                None => vec![],
            },
            Action::PickAdapter => self.compare_adapter(
                selected.and_then(|r| r.adapter),
                "this run has no adapter yet",
            ),
            movement => {
                let len = self.found.runs.len();
                self.runs_selected = moved(self.runs_selected, len, movement, self.page());
                vec![]
            }
        }
    }

    fn on_sweeps_action(&mut self, action: Action) -> Vec<Effect> {
        let Some(progress) = self.found.sweeps.get(self.sweeps.sweep) else {
            return match action {
                Action::Rescan => vec![Effect::Discover],
                _ => vec![],
            };
        };
        let trial = super::sweeps::ordered(progress, &self.sweeps.sort)
            .get(self.sweeps.selected)
            .map(|t| (*t).clone());
        match action {
            Action::Rescan => vec![Effect::Discover],
            Action::NextSort => {
                self.sweeps.next_sort(progress);
                vec![]
            }
            Action::NextSweep => {
                self.sweeps.sweep = (self.sweeps.sweep + 1) % self.found.sweeps.len();
                self.sweeps.selected = 0;
                vec![]
            }
            Action::Enter => match trial {
                Some(t) if t.run_dir.join("events.jsonl").is_file() => {
                    self.screen = Screen::Training;
                    vec![self.follow(t.run_dir)]
                }
                Some(t) => {
                    self.notice = Some(format!("{}: no events yet", t.run_dir.display()));
                    vec![]
                }
                None => vec![],
            },
            Action::PickAdapter => self.compare_adapter(
                trial.and_then(|t| t.adapter),
                "this trial has no adapter (yet)",
            ),
            movement => {
                let len = progress.trials.len();
                self.sweeps.selected = moved(self.sweeps.selected, len, movement, self.page());
                vec![]
            }
        }
    }

    /// Compares `adapter` with the base on the Compare screen, or says `missing`.
    fn compare_adapter(&mut self, adapter: Option<PathBuf>, missing: &str) -> Vec<Effect> {
        match adapter {
            Some(adapter) => {
                self.compare.adapter = Some(adapter);
                self.compare.replies.clear();
                self.screen = Screen::Compare;
            }
            None => self.notice = Some(missing.into()),
        }
        vec![]
    }

    fn on_input_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let Some(input) = self.input.as_mut() else {
            return vec![];
        };
        match key.code {
            KeyCode::Char(c) => input.text.push(c),
            KeyCode::Backspace => {
                input.text.pop();
            }
            KeyCode::Esc => {
                if input.purpose == InputPurpose::Search {
                    self.data.filter.clear();
                }
                self.input = None;
                return self.data_work();
            }
            KeyCode::Enter => {
                let input = self.input.take().expect("checked above");
                if input.purpose == InputPurpose::Prompt && !input.text.trim().is_empty() {
                    self.compare.prompts.push(input.text);
                    self.compare.selected = self.compare.prompts.len() - 1;
                    return self.generate();
                }
                return self.data_work();
            }
            _ => return vec![],
        }
        if input.purpose == InputPurpose::Search {
            self.data.filter = input.text.clone();
            self.data.selected = 0;
            return self.data_work();
        }
        vec![]
    }

    fn on_modal_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let Some(modal) = self.modal.as_mut() else {
            return vec![];
        };
        let len = match modal {
            Modal::Configs { .. } => self.found.configs.len(),
            Modal::Files { .. } => self.found.data_files.len(),
            Modal::Adapters { .. } => self.adapter_runs().len(),
            Modal::Models { .. } => self.models.rows.len(),
        };
        let page = self.page();
        let Some(modal) = self.modal.as_mut() else {
            return vec![];
        };
        let movement = match key.code {
            KeyCode::Up => Some(Action::Up),
            KeyCode::Down => Some(Action::Down),
            KeyCode::PageUp => Some(Action::PageUp),
            KeyCode::PageDown => Some(Action::PageDown),
            _ => None,
        };
        match (modal, key.code) {
            (_, KeyCode::Esc) => {
                self.modal = None;
                vec![]
            }
            (Modal::Configs { selected }, KeyCode::Enter) => {
                let path = self.found.configs.get(*selected).cloned();
                self.modal = None;
                path.map(Effect::LoadConfig).into_iter().collect()
            }
            (Modal::Files { selected, typed }, KeyCode::Enter) => {
                let path = if typed.trim().is_empty() {
                    self.found.data_files.get(*selected).cloned()
                } else {
                    Some(PathBuf::from(typed.trim()))
                };
                self.modal = None;
                if let Some(p) = &path {
                    self.data.loading = Some(p.clone());
                }
                path.map(Effect::LoadDataset).into_iter().collect()
            }
            (Modal::Adapters { selected }, KeyCode::Enter) => {
                let selected = *selected;
                let adapter = self
                    .adapter_runs()
                    .get(selected)
                    .and_then(|r| r.adapter.clone());
                self.modal = None;
                if adapter.is_some() {
                    self.compare.adapter = adapter;
                    self.compare.replies.clear();
                }
                vec![]
            }
            (Modal::Models { selected }, KeyCode::Enter) => {
                let name = self
                    .models
                    .rows
                    .get(*selected)
                    .map(|r| r.entry.name.clone());
                self.modal = None;
                name.map(|n| self.pick_model(n)).unwrap_or_default()
            }
            (Modal::Files { typed, .. }, KeyCode::Char(c)) => {
                typed.push(c);
                vec![]
            }
            (Modal::Files { typed, .. }, KeyCode::Backspace) => {
                typed.pop();
                vec![]
            }
            (
                Modal::Configs { selected }
                | Modal::Files { selected, .. }
                | Modal::Adapters { selected }
                | Modal::Models { selected },
                _,
            ) => {
                if let Some(m) = movement {
                    *selected = moved(*selected, len, m, page);
                }
                vec![]
            }
        }
    }

    /// The next run trains `model_name`; the data's token counts and the base replies are
    /// the new model's, so both are redone.
    fn pick_model(&mut self, model_name: String) -> Vec<Effect> {
        let Some(chosen) = self.config.as_mut() else {
            self.notice = Some("pick a config first (p): the model is the config's".into());
            return vec![];
        };
        chosen.config.model_name = model_name;
        let shown = crate::model::ModelSource::parse(Some(&chosen.config.model_name))
            .map_or_else(|_| chosen.config.model_name.clone(), |s| s.describe());
        self.notice = Some(format!(
            "the next run trains {shown} (the config file is unchanged)"
        ));
        let config = chosen.config.clone();
        self.compare.replies.clear();
        self.data.loading = Some(config.train_file.clone());
        vec![
            Effect::Estimate(Box::new(config.clone())),
            Effect::LoadDataset(config.train_file),
        ]
    }

    fn on_make_data_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let endpoint = self.serving.endpoint();
        let offers = super::generate::options(self.config.as_ref(), endpoint.as_deref());
        let chosen = self.config.clone();
        let job_for = |offer: &super::generate::Offer, n| {
            let chosen = chosen.as_ref().expect("offers come from a config");
            super::generate::job_for(offer, n, chosen, endpoint.as_deref().unwrap_or_default())
        };
        match super::generate::on_picker_key(&mut self.generating, key, &offers, job_for) {
            Ok(job) => job.map(Effect::MakeData).into_iter().collect(),
            Err(why) => {
                self.notice = Some(why);
                vec![]
            }
        }
    }

    fn on_made_data(&mut self, out: PathBuf, result: Result<String, String>) -> Vec<Effect> {
        self.generating.running = false;
        let made = result.is_ok() || out.is_file();
        self.generating.outcome = Some(result);
        if !made {
            return vec![];
        }
        // What was written is worth a look even when the job stopped early.
        self.data.loading = Some(out.clone());
        vec![Effect::LoadDataset(out), Effect::Discover]
    }

    /// Starts the workbench's server for the chosen config's model and every run's adapter,
    /// or stops it.
    fn toggle_serve(&mut self) -> Vec<Effect> {
        if self.serving.is_on() {
            self.serving.status = ServeStatus::Stopping;
            return vec![Effect::StopServe];
        }
        let dirs: Vec<PathBuf> = self
            .adapter_runs()
            .iter()
            .filter_map(|r| r.adapter.clone())
            .collect();
        let names = super::serve::adapter_names(
            &self
                .adapter_runs()
                .iter()
                .map(|r| r.dir.clone())
                .collect::<Vec<_>>(),
        );
        self.serving = ServeState {
            status: ServeStatus::Starting,
            ..ServeState::default()
        };
        vec![Effect::Serve(ServeJob {
            model: self.model_settings().model,
            adapters: names.into_iter().zip(dirs).collect(),
        })]
    }

    /// Runs that have an adapter to compare.
    pub fn adapter_runs(&self) -> Vec<&super::discover::RunSummary> {
        self.found
            .runs
            .iter()
            .filter(|r| r.adapter.is_some())
            .collect()
    }

    /// Rows a page key moves by.
    fn page(&self) -> usize {
        usize::from(self.size.1.saturating_sub(8)).max(1)
    }

    fn on_mouse(&mut self, mouse: MouseEvent) -> Vec<Effect> {
        if self.help || self.input.is_some() {
            return vec![];
        }
        let action = match mouse.kind {
            MouseEventKind::ScrollUp => Action::Up,
            MouseEventKind::ScrollDown => Action::Down,
            MouseEventKind::Down(MouseButton::Left) => {
                if self.modal.is_some() {
                    return vec![];
                }
                if let Some(screen) = layout::tab_at(self.size, mouse.column, mouse.row) {
                    return self.go_to(screen);
                }
                return self.click_list(mouse.column, mouse.row);
            }
            _ => return vec![],
        };
        if self.modal.is_some() {
            let code = if action == Action::Up {
                KeyCode::Up
            } else {
                KeyCode::Down
            };
            return self.on_modal_key(KeyEvent::from(code));
        }
        self.on_action(action)
    }

    /// A click on a row of the screen's main list selects it.
    fn click_list(&mut self, column: u16, row: u16) -> Vec<Effect> {
        let (selected, len) = match self.screen {
            Screen::Data if self.data.focus == DataFocus::Records => {
                (self.data.selected, self.data.visible().len())
            }
            Screen::Compare => (self.compare.selected, self.compare.prompts.len()),
            Screen::Runs => (self.runs_selected, self.found.runs.len()),
            Screen::Sweeps => (
                self.sweeps.selected,
                self.found
                    .sweeps
                    .get(self.sweeps.sweep)
                    .map_or(0, |s| s.trials.len()),
            ),
            _ => return vec![],
        };
        let has_problems = self
            .data
            .dataset
            .as_ref()
            .is_some_and(|d| !d.problems.is_empty());
        let Some(index) = layout::list_row_at(
            self.screen,
            self.size,
            (selected, has_problems),
            column,
            row,
        )
        .filter(|&i| i < len) else {
            return vec![];
        };
        match self.screen {
            Screen::Data => {
                self.data.selected = index;
                self.data_work()
            }
            Screen::Compare => {
                self.compare.selected = index;
                vec![]
            }
            Screen::Sweeps => {
                self.sweeps.selected = index;
                vec![]
            }
            _ => {
                self.runs_selected = index;
                vec![]
            }
        }
    }
}

/// A list position after a movement action, kept within `len` items.
fn moved(selected: usize, len: usize, action: Action, page: usize) -> usize {
    let last = len.saturating_sub(1);
    match action {
        Action::Up => selected.saturating_sub(1),
        Action::Down => (selected + 1).min(last),
        Action::PageUp => selected.saturating_sub(page),
        Action::PageDown => (selected + page).min(last),
        Action::Top => 0,
        Action::Bottom => last,
        _ => selected.min(last),
    }
}
