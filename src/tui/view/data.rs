//! The data screen: records (filterable), problems by line, length statistics, and the
//! selected record through the chat template or as tokens coloured by their loss mask.

use super::layout;
use super::widgets::{clip, list, note, panel};
use crate::fsutil::shown;
use crate::tui::app::App;
use crate::tui::data::{DataFocus, DetailView, Row};
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, BarGroup, Paragraph, Wrap};
use ratatui::Frame;

/// Histogram buckets.
const BUCKETS: usize = 8;

pub fn render(app: &App, frame: &mut Frame, body: Rect) {
    let theme = &app.theme;
    let data = &app.data;
    let Some(dataset) = &data.dataset else {
        let block = panel(theme, " Data ", false);
        let text = match (&data.load_error, &data.loading) {
            (Some(e), _) => vec![Line::from(Span::styled(e.clone(), theme.error()))],
            (None, Some(p)) => vec![Line::from(format!("reading {}…", shown(p)))],
            (None, None) => vec![Line::from(
                "o opens a dataset (JSONL: alpaca, messages or prompt/completion)",
            )],
        };
        note(frame, body, block, text, theme);
        return;
    };
    let has_problems = !dataset.problems.is_empty();
    let [records, problems, stats, detail] = layout::data(body, has_problems);
    let visible = data.visible();
    let width = usize::from(records.width.saturating_sub(8));
    let items: Vec<Line> = visible
        .iter()
        .map(|&i| {
            let row = &dataset.rows[i];
            Line::from(vec![
                Span::styled(format!("{:>4} ", row.line), theme.muted()),
                Span::raw(clip(&row.preview, width)),
            ])
        })
        .collect();
    let filter = if data.filter.is_empty() {
        String::new()
    } else {
        format!(" /{}", data.filter)
    };
    let title = format!(" Records {}/{}{filter} ", visible.len(), dataset.rows.len());
    let focused = data.focus == DataFocus::Records;
    let selected = (!visible.is_empty()).then_some(data.selected);
    list(
        frame,
        records,
        panel(theme, title, focused),
        items,
        selected,
        theme,
    );
    if has_problems {
        let prefix = format!("{}:", dataset.path.display());
        let width = usize::from(problems.width.saturating_sub(2));
        let items: Vec<Line> = dataset
            .problems
            .iter()
            .map(|p| {
                let short = p.strip_prefix(&prefix).unwrap_or(p);
                Line::from(Span::styled(
                    clip(&format!("line {short}"), width),
                    theme.error(),
                ))
            })
            .collect();
        let title = format!(" Problems ({}) Enter jumps ", dataset.problems.len());
        let focused = data.focus == DataFocus::Problems;
        list(
            frame,
            problems,
            panel(theme, title, focused),
            items,
            Some(data.problem_selected),
            theme,
        );
    }
    render_stats(app, frame, stats);
    render_detail(app, data.selected_row(), frame, detail);
}

fn render_stats(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let data = &app.data;
    let Some(dataset) = &data.dataset else { return };
    let max_len = app.model_settings().max_seq_length;
    let format = dataset
        .format
        .as_deref()
        .unwrap_or("unknown (fix the problems)");
    let title = format!(" {} ", shown(&dataset.path));
    let block = panel(theme, title, false);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [summary, chart] =
        Layout::vertical([Constraint::Length(2), Constraint::Min(0)]).areas(inner);
    let mut first = vec![
        Span::styled("format ", theme.muted()),
        Span::raw(format.to_string()),
        Span::styled(format!("  {} records", dataset.rows.len()), theme.text()),
    ];
    if !dataset.problems.is_empty() {
        first.push(Span::styled(
            format!("  {} problems", dataset.problems.len()),
            theme.error(),
        ));
    }
    let second = match &data.lengths {
        Some(lengths) if !lengths.is_empty() => {
            let mut sorted = lengths.clone();
            sorted.sort_unstable();
            let truncated = data.truncated_at(max_len).unwrap_or(0);
            Line::from(vec![
                Span::styled("tokens ", theme.muted()),
                Span::raw(format!(
                    "{}–{} median {}  ",
                    sorted[0],
                    sorted[sorted.len() - 1],
                    sorted[sorted.len() / 2]
                )),
                Span::styled(
                    format!("{truncated} cut at {max_len}"),
                    if truncated > 0 {
                        theme.warn()
                    } else {
                        theme.ok()
                    },
                ),
            ])
        }
        _ if dataset.format.is_none() => Line::from(""),
        _ => Line::from(Span::styled(
            format!("measuring token lengths… {}", app.model_status),
            theme.muted(),
        )),
    };
    frame.render_widget(Paragraph::new(vec![Line::from(first), second]), summary);
    if let Some(lengths) = data.lengths.as_ref().filter(|l| !l.is_empty()) {
        render_histogram(lengths, max_len, theme, frame, chart);
    }
}

/// Token lengths in equal-width buckets from the shortest to the longest; buckets reaching
/// past max_seq_length in the warning colour.
fn render_histogram(
    lengths: &[usize],
    max_len: usize,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
) {
    let min = lengths.iter().copied().min().unwrap_or(0);
    let max = lengths.iter().copied().max().unwrap_or(0);
    let width = (max - min + 1).div_ceil(BUCKETS).max(1);
    let mut counts = [0u64; BUCKETS];
    for &n in lengths {
        counts[((n - min) / width).min(BUCKETS - 1)] += 1;
    }
    let bar_width = (area.width / BUCKETS as u16).saturating_sub(1).max(1);
    let bars: Vec<Bar> = counts
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let start = min + i * width;
            let color = if start + width > max_len {
                theme.status.warn
            } else {
                theme.chart.train_loss
            };
            Bar::default()
                .value(c)
                .label(Line::from(format!("{start}")))
                .style(Style::new().fg(color))
                .value_style(theme.selection())
        })
        .collect();
    frame.render_widget(
        BarChart::default()
            .data(BarGroup::default().bars(&bars))
            .bar_width(bar_width)
            .bar_gap(1),
        area,
    );
}

fn render_detail(app: &App, row: Option<&Row>, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let data = &app.data;
    let Some(row) = row else {
        note(
            frame,
            area,
            panel(theme, " Record ", false),
            vec![Line::from("no record")],
            theme,
        );
        return;
    };
    let inspection = data.inspection.as_ref().filter(|i| i.line == row.line);
    let view_name = match (&row.record, data.view) {
        (None, _) => "as written (the file has problems)",
        (Some(_), DetailView::Chat) => "chat template",
        (Some(_), DetailView::Tokens) => "token mask: loss / masked",
    };
    let title = format!(" Line {} · {view_name} (m) ", row.line);
    let block = panel(theme, title, false);
    let waiting = || {
        Line::from(Span::styled(
            format!("rendering with the model's template… {}", app.model_status),
            theme.muted(),
        ))
    };
    let lines: Vec<Line> = match (&row.record, inspection, data.view) {
        (None, _, _) => pretty_raw(&row.raw),
        (Some(_), Some(i), DetailView::Chat) => i
            .rendered
            .lines()
            .map(|l| Line::from(l.to_string()))
            .collect(),
        (Some(_), Some(i), DetailView::Tokens) => token_lines(&i.tokens, i.truncated, theme),
        (Some(record), None, _) => {
            let mut lines = vec![waiting()];
            for m in record.conversation(app.model_settings().system_prompt.as_deref()) {
                lines.push(Line::from(Span::styled(
                    format!("{}:", m.role),
                    theme.title(),
                )));
                lines.extend(m.content.lines().map(|l| Line::from(l.to_string())));
            }
            lines
        }
    };
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        area,
    );
}

fn pretty_raw(raw: &str) -> Vec<Line<'static>> {
    let text = serde_json::from_str::<serde_json::Value>(raw)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| raw.to_string());
    text.lines().map(|l| Line::from(l.to_string())).collect()
}

/// Tokens side by side, coloured by whether they carry loss; line breaks kept.
fn token_lines(tokens: &[(String, bool)], truncated: usize, theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = vec![];
    let mut spans = vec![];
    let separator = Span::styled("│", Style::new().fg(theme.ui.border));
    for (text, loss) in tokens {
        if !spans.is_empty() {
            spans.push(separator.clone());
        }
        let style = if *loss {
            Style::new().fg(theme.tokens.loss).underlined()
        } else {
            Style::new().fg(theme.tokens.masked)
        };
        let mut parts = text.split('\n').peekable();
        while let Some(part) = parts.next() {
            if !part.is_empty() {
                spans.push(Span::styled(part.to_string(), style));
            }
            if parts.peek().is_some() {
                spans.push(Span::styled("↵", style));
                lines.push(Line::from(std::mem::take(&mut spans)));
            }
        }
    }
    lines.push(Line::from(spans));
    if truncated > 0 {
        lines.push(Line::from(Span::styled(
            format!("… {truncated} more tokens past max_seq_length are cut"),
            theme.warn(),
        )));
    }
    lines
}
