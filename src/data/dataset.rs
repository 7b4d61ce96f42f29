//! A data file of either kind, supervised records or preference pairs, for the commands that
//! take both (`tunelab data …`). The kind is given or told from the first record.

use super::jsonl::read_items;
use super::preference::{check_preference_file, load_preference_file, looks_like_pair};
use super::preference::{PreferenceDataset, PreferencePair};
use super::sft::{check_sft_file, load_sft_file, SftDataset, SftRecord};
use anyhow::Result;
use serde_json::Value;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DataKind {
    Sft,
    Preference,
    /// Preference when the first record has chosen/rejected (or OpenAI's preferred_output /
    /// non_preferred_output), else SFT.
    Auto,
}

impl DataKind {
    /// `Auto` resolved against the file's first record; a file with no readable record is
    /// taken as SFT, whose checks then report why.
    pub fn resolve(self, path: &Path) -> Result<DataKind> {
        if self != Self::Auto {
            return Ok(self);
        }
        let first = read_items(path)?.into_iter().find_map(|(_, v)| v.ok());
        Ok(match first {
            Some(Value::Object(record)) if looks_like_pair(&record) => Self::Preference,
            _ => Self::Sft,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sft => "sft",
            Self::Preference => "preference",
            Self::Auto => "auto",
        }
    }
}

#[derive(Debug, Clone)]
pub enum Dataset {
    Sft(SftDataset),
    Preference(PreferenceDataset),
}

impl Dataset {
    /// Reads and checks a whole file; fails with its first problem.
    pub fn load(path: &Path, kind: DataKind) -> Result<Self> {
        Ok(match kind.resolve(path)? {
            DataKind::Preference => Self::Preference(load_preference_file(path)?),
            _ => Self::Sft(load_sft_file(path)?),
        })
    }

    pub fn len(&self) -> usize {
        self.lines().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines().is_empty()
    }

    pub fn path(&self) -> &Path {
        match self {
            Self::Sft(ds) => &ds.path,
            Self::Preference(ds) => &ds.path,
        }
    }

    /// The 1-based line each record starts on.
    pub fn lines(&self) -> &[usize] {
        match self {
            Self::Sft(ds) => &ds.lines,
            Self::Preference(ds) => &ds.lines,
        }
    }

    /// The format's name as messages show it.
    pub fn format_name(&self) -> &'static str {
        match self {
            Self::Sft(ds) => ds.format.name(),
            Self::Preference(ds) => ds.format.map_or("mixed preference", |f| f.name()),
        }
    }

    pub fn kind(&self) -> DataKind {
        match self {
            Self::Sft(_) => DataKind::Sft,
            Self::Preference(_) => DataKind::Preference,
        }
    }

    /// One key per record, equal for records that train the same: the conversation (with
    /// which replies are trained) or the pair. Alpaca's instruction and input, which training
    /// joins into one turn, are compared joined.
    pub fn record_keys(&self) -> Vec<String> {
        match self {
            Self::Sft(ds) => ds.records.iter().map(sft_key).collect(),
            Self::Preference(ds) => ds.pairs.iter().map(pair_key).collect(),
        }
    }
}

fn sft_key(record: &SftRecord) -> String {
    format!(
        "{:?}",
        (record.conversation(None), record.trained_replies())
    )
}

fn pair_key(pair: &PreferencePair) -> String {
    format!("{:?}", (&pair.prompt, &pair.chosen, &pair.rejected))
}

/// What checking a file of either kind found.
#[derive(Debug, Clone)]
pub struct Check {
    pub kind: DataKind,
    pub records: usize,
    /// The format's name; None when no record was read.
    pub format: Option<&'static str>,
    pub problems: Vec<String>,
}

/// Every problem of a file (up to MAX_PROBLEMS), as `FILE:LINE: …`.
pub fn check_file(path: &Path, kind: DataKind) -> Check {
    let kind = match kind.resolve(path) {
        Ok(kind) => kind,
        Err(e) => {
            return Check {
                kind,
                records: 0,
                format: None,
                problems: vec![format!("{e:#}")],
            }
        }
    };
    if kind == DataKind::Preference {
        let check = check_preference_file(path);
        return Check {
            kind,
            records: check.records,
            format: check.format.map(|f| match check.mixed {
                true => "mixed preference",
                false => f.name(),
            }),
            problems: check.problems,
        };
    }
    let check = check_sft_file(path);
    Check {
        kind,
        records: check.records,
        format: check.format.map(|f| f.name()),
        problems: check.problems,
    }
}
