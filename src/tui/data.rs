//! The data screen's state: an opened dataset's records (filterable), its problems by line,
//! the selected record as the chat template renders it and as tokens with their loss mask,
//! and token-length statistics.

use crate::data::sft::{load_sft_file, validate_sft_file, SftRecord};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The 1-based line the record starts on.
    pub line: usize,
    /// One line to list it by: the first user turn, or the raw line when it did not parse.
    pub preview: String,
    /// Lower-cased text the filter searches.
    pub haystack: String,
    /// None when the file has problems (records are then shown raw).
    pub record: Option<SftRecord>,
    pub raw: String,
}

/// A dataset file as read from disk.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedDataset {
    pub path: PathBuf,
    pub format: Option<String>,
    pub rows: Vec<Row>,
    /// `FILE:LINE: problem`, in file order.
    pub problems: Vec<String>,
}

/// Reads a dataset for the screen. A file with problems still lists its lines raw, so that
/// each problem can be jumped to.
pub fn read_dataset(path: &Path) -> Result<LoadedDataset, String> {
    let problems = validate_sft_file(path);
    if problems.is_empty() {
        let dataset = load_sft_file(path).map_err(|e| format!("{e:#}"))?;
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let rows = dataset
            .records
            .into_iter()
            .zip(dataset.lines)
            .map(|(record, line)| {
                let conversation = record.conversation(None);
                let preview = conversation
                    .iter()
                    .find(|m| m.role == "user")
                    .map_or_else(String::new, |m| flatten(&m.content));
                let haystack = conversation
                    .iter()
                    .map(|m| m.content.to_lowercase())
                    .collect::<Vec<_>>()
                    .join("\n");
                let raw = lines
                    .get(line - 1)
                    .map_or_else(String::new, |l| l.to_string());
                Row {
                    line,
                    preview,
                    haystack,
                    record: Some(record),
                    raw,
                }
            })
            .collect();
        return Ok(LoadedDataset {
            path: path.to_path_buf(),
            format: Some(dataset.format.name().to_string()),
            rows,
            problems,
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let rows = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| Row {
            line: i + 1,
            preview: flatten(l),
            haystack: l.to_lowercase(),
            record: None,
            raw: l.to_string(),
        })
        .collect();
    Ok(LoadedDataset {
        path: path.to_path_buf(),
        format: None,
        rows,
        problems,
    })
}

/// The line number a `FILE:LINE: problem` string names.
pub fn problem_line(problem: &str) -> Option<usize> {
    // The path may itself hold colons; the line is the first all-digit field after one.
    problem
        .split(':')
        .skip(1)
        .find_map(|field| field.trim().parse::<usize>().ok())
}

fn flatten(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A record as the model sees it: the template's text and each token with whether it carries
/// loss.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    pub path: PathBuf,
    pub line: usize,
    pub rendered: String,
    pub tokens: Vec<(String, bool)>,
    /// Tokens beyond max_seq_length (dropped in training).
    pub truncated: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataFocus {
    #[default]
    Records,
    Problems,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DetailView {
    #[default]
    Chat,
    Tokens,
}

#[derive(Debug, Clone, Default)]
pub struct DataState {
    pub dataset: Option<LoadedDataset>,
    pub loading: Option<PathBuf>,
    pub load_error: Option<String>,
    pub filter: String,
    /// Index into `visible()`.
    pub selected: usize,
    pub problem_selected: usize,
    pub focus: DataFocus,
    pub view: DetailView,
    pub inspection: Option<Inspection>,
    /// Token count of every record (untruncated), once measured.
    pub lengths: Option<Vec<usize>>,
    /// Whether the lengths of the current dataset were asked for.
    pub lengths_asked: bool,
    /// The line of the record last sent for inspection.
    pub inspect_asked: Option<usize>,
}

impl DataState {
    /// The indices (into the dataset's rows) the filter lets through.
    pub fn visible(&self) -> Vec<usize> {
        let Some(dataset) = &self.dataset else {
            return Vec::new();
        };
        let needle = self.filter.to_lowercase();
        dataset
            .rows
            .iter()
            .enumerate()
            .filter(|(_, r)| needle.is_empty() || r.haystack.contains(&needle))
            .map(|(i, _)| i)
            .collect()
    }

    pub fn selected_row(&self) -> Option<&Row> {
        let index = *self.visible().get(self.selected)?;
        self.dataset.as_ref()?.rows.get(index)
    }

    pub fn set_dataset(&mut self, dataset: LoadedDataset) {
        *self = DataState {
            view: self.view,
            ..DataState::default()
        };
        if !dataset.problems.is_empty() {
            self.focus = DataFocus::Problems;
        }
        self.dataset = Some(dataset);
    }

    /// Selects the record on `line`, clearing a filter that hides it.
    pub fn jump_to_line(&mut self, line: usize) {
        let Some(dataset) = &self.dataset else { return };
        // The record that starts on the line, or the last one before it.
        let Some(index) = dataset.rows.iter().rposition(|r| r.line <= line) else {
            return;
        };
        self.filter.clear();
        self.selected = index;
        self.focus = DataFocus::Records;
    }

    /// Records longer than `max_len` tokens, once lengths are known.
    pub fn truncated_at(&self, max_len: usize) -> Option<usize> {
        Some(
            self.lengths
                .as_ref()?
                .iter()
                .filter(|&&n| n > max_len)
                .count(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_lines_are_read_past_colons_in_paths() {
        assert_eq!(problem_line("data/a.jsonl:12: missing field"), Some(12));
        assert_eq!(problem_line("C:/x/a.jsonl:3: bad"), Some(3));
        assert_eq!(problem_line("a.jsonl: no records"), None);
    }

    #[test]
    fn a_file_with_problems_lists_its_lines_raw() {
        let path = std::env::temp_dir().join(format!("tunelab-data-{}.jsonl", std::process::id()));
        std::fs::write(
            &path,
            "{\"prompt\":\"a\",\"completion\":\"b\"}\n\n{\"prompt\":\"c\"}\n",
        )
        .unwrap();
        let loaded = read_dataset(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(loaded.format, None);
        assert_eq!(loaded.rows.len(), 2);
        assert_eq!(loaded.rows[1].line, 3);
        assert_eq!(loaded.problems.len(), 1);
        assert_eq!(problem_line(&loaded.problems[0]), Some(3));
        let mut state = DataState::default();
        state.set_dataset(loaded);
        assert_eq!(state.focus, DataFocus::Problems);
        state.jump_to_line(3);
        assert_eq!(state.selected_row().unwrap().line, 3);
    }
}
