//! Drawing: a pure function of the app's state. The frame (tabs, key bar, help, pickers) is
//! here; each screen has its own file.

mod compare;
mod data;
mod hardware;
pub mod layout;
mod make_data;
mod models;
mod runs;
mod sweeps;
mod training;
pub mod widgets;

use super::app::{App, InputPurpose, Modal, Screen};
use super::keys::{self, Action, Scope, KEYS};
use super::training::RunState;
use layout::MIN_SIZE;
use ratatui::layout::{Alignment, Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;
use std::path::Path;
use widgets::{clip, panel};

pub fn render(app: &App, frame: &mut Frame) {
    let area = frame.area();
    let theme = &app.theme;
    frame.render_widget(Block::new().style(theme.text()), area);
    if !layout::fits((area.width, area.height)) {
        let text = vec![
            Line::from("tunelab needs a larger terminal"),
            Line::from(format!(
                "{}×{} now, {}×{} at least",
                area.width, area.height, MIN_SIZE.0, MIN_SIZE.1
            )),
        ];
        let y = area.height / 2;
        let notice = Rect::new(
            area.x,
            area.y + y.saturating_sub(1),
            area.width,
            2.min(area.height),
        );
        frame.render_widget(
            Paragraph::new(text)
                .alignment(Alignment::Center)
                .style(theme.warn()),
            notice,
        );
        return;
    }
    let [tabs, body, bar] = layout::chrome(area);
    render_tabs(app, frame, tabs);
    match app.screen {
        Screen::Hardware => hardware::render(app, frame, body),
        Screen::Data => {
            data::render(app, frame, body);
            make_data::render(app, frame, body);
        }
        Screen::Training => training::render(app, frame, body),
        Screen::Compare => compare::render(app, frame, body),
        Screen::Runs => runs::render(app, frame, body),
        Screen::Sweeps => sweeps::render(app, frame, body),
    }
    render_bar(app, frame, bar);
    if let Some(modal) = &app.modal {
        render_modal(app, modal, frame, body);
    }
    if app.help {
        render_help(app, frame, body);
    }
}

fn render_tabs(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let mut spans = vec![Span::raw(" ")];
    for (screen, label, _, _) in layout::tabs() {
        let style = if screen == app.screen {
            theme.selection().fg(theme.ui.focus)
        } else {
            theme.muted()
        };
        spans.push(Span::styled(label, style));
        spans.push(Span::raw(" "));
    }
    frame.render_widget(Line::from(spans), area);
    let status = match &app.train.run {
        Some(run) => match &run.state {
            RunState::Loading => Span::styled("● loading ", theme.warn()),
            RunState::Running => Span::styled(
                format!("● step {}/{} ", run.step, run.total_steps),
                theme.ok(),
            ),
            RunState::Paused => Span::styled("❚❚ paused ", theme.warn()),
            RunState::Stopping => Span::styled("■ stopping ", theme.warn()),
            RunState::Finished { ok: true, .. } => Span::styled("✓ finished ", theme.ok()),
            RunState::Finished { ok: false, .. } => Span::styled("✗ failed ", theme.error()),
        },
        None => Span::styled("tunelab ", theme.title()),
    };
    frame.render_widget(Line::from(status).alignment(Alignment::Right), area);
}

fn render_bar(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let line = if let Some(input) = &app.input {
        let label = match input.purpose {
            InputPurpose::Search => "filter",
            InputPurpose::Prompt => "prompt",
        };
        Line::from(vec![
            Span::styled(format!(" {label}: "), theme.title()),
            Span::styled(format!("{}▏", input.text), theme.text()),
            Span::styled("  Enter done · Esc cancel", theme.muted()),
        ])
    } else if let Some(notice) = &app.notice {
        Line::from(Span::styled(format!(" {notice}"), theme.warn()))
    } else {
        // The screen's keys on the left, the global ones on the right, always visible.
        let spans = |global: bool| {
            let mut spans = vec![Span::raw(" ")];
            for b in keys::bar(app.screen).filter(|b| (b.scope == Scope::Global) == global) {
                spans.push(Span::styled(b.label, theme.title()));
                spans.push(Span::styled(format!(" {}  ", b.help), theme.muted()));
            }
            Line::from(spans)
        };
        let global = spans(true);
        let [left, right] = Layout::horizontal([
            Constraint::Min(0),
            Constraint::Length(global.width() as u16),
        ])
        .areas(area);
        frame.render_widget(spans(false), left);
        frame.render_widget(global, right);
        return;
    };
    frame.render_widget(line, area);
}

/// A rectangle of the given size centred in `area`.
pub(super) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [cell] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    cell
}

fn render_help(app: &App, frame: &mut Frame, body: Rect) {
    let theme = &app.theme;
    let mut lines = Vec::new();
    let scopes = std::iter::once(Scope::Global).chain(Screen::ALL.iter().map(|&s| Scope::On(s)));
    // Keys doing the same thing share a line ("↑/k  move up"); so do the screen keys.
    let same =
        |a: Action, b: Action| a == b || matches!((a, b), (Action::GoTo(_), Action::GoTo(_)));
    for scope in scopes {
        let bindings: Vec<_> = KEYS.iter().filter(|b| b.scope == scope).collect();
        if bindings.is_empty() {
            continue;
        }
        let heading = match scope {
            Scope::Global => "Everywhere".to_string(),
            Scope::On(screen) => screen.title().to_string(),
        };
        lines.push(Line::from(Span::styled(heading, theme.title())));
        let mut seen: Vec<Action> = Vec::new();
        for b in &bindings {
            if seen.iter().any(|&s| same(s, b.action)) {
                continue;
            }
            seen.push(b.action);
            let group: Vec<_> = bindings
                .iter()
                .filter(|o| same(o.action, b.action))
                .collect();
            let labels: Vec<&str> = group.iter().map(|o| o.label).collect();
            let (labels, help) = match (b.action, labels.as_slice()) {
                (Action::GoTo(_), [first, .., last]) => {
                    (format!("{first}…{last}"), "go to that screen")
                }
                _ => (labels.join("/"), b.help),
            };
            lines.push(Line::from(vec![
                Span::styled(format!("  {labels:<8}"), theme.text()),
                Span::styled(help, theme.muted()),
            ]));
        }
    }
    let height = usize::from(body.height.saturating_sub(2)).max(1);
    let columns = lines.len().div_ceil(height).clamp(1, 3);
    let rows = lines.len().div_ceil(columns);
    let width = (columns as u16 * 28 + 2).min(body.width);
    let area = centered(body, width, rows as u16 + 2);
    frame.render_widget(Clear, area);
    let block = panel(theme, " Keys ", true).title_bottom(Line::from(Span::styled(
        " mouse: tabs, rows, wheel · Esc closes ",
        theme.muted(),
    )));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let cells = Layout::horizontal(vec![Constraint::Fill(1); columns]).split(inner);
    for (chunk, cell) in lines.chunks(rows).zip(cells.iter()) {
        frame.render_widget(Paragraph::new(chunk.to_vec()), *cell);
    }
}

fn render_modal(app: &App, modal: &Modal, frame: &mut Frame, body: Rect) {
    let theme = &app.theme;
    let area = centered(body, body.width * 7 / 10, body.height * 7 / 10);
    frame.render_widget(Clear, area);
    let width = usize::from(area.width.saturating_sub(4));
    let path_lines = |paths: Vec<&Path>| -> Vec<Line> {
        paths
            .into_iter()
            .map(|p| Line::from(clip(&p.display().to_string(), width)))
            .collect()
    };
    match modal {
        Modal::Configs { selected } => {
            let block = panel(theme, " Pick a config (Enter loads, Esc closes) ", true);
            let items = path_lines(app.found.configs.iter().map(|p| p.as_path()).collect());
            if items.is_empty() {
                let text = vec![Line::from(
                    "No config found: sample_data/*/config.toml or *.toml in this folder.",
                )];
                widgets::note(frame, area, block, text, theme);
            } else {
                widgets::list(frame, area, block, items, Some(*selected), theme);
            }
        }
        Modal::Files { selected, typed } => {
            let [list_area, input_area] =
                Layout::vertical([Constraint::Min(3), Constraint::Length(3)]).areas(area);
            let block = panel(theme, " Open a dataset (Enter opens, Esc closes) ", true);
            let items = path_lines(app.found.data_files.iter().map(|p| p.as_path()).collect());
            let selected = typed.is_empty().then_some(*selected);
            widgets::list(frame, list_area, block, items, selected, theme);
            let input = Paragraph::new(Line::from(vec![
                Span::styled(format!("{typed}▏"), theme.text()),
                Span::styled(
                    if typed.is_empty() {
                        "  type a path"
                    } else {
                        ""
                    },
                    theme.muted(),
                ),
            ]))
            .block(panel(theme, " Path ", !typed.is_empty()));
            frame.render_widget(input, input_area);
        }
        Modal::Adapters { selected } => {
            let block = panel(theme, " Compare with which run's adapter? ", true);
            let runs = app.adapter_runs();
            if runs.is_empty() {
                let text = vec![Line::from(
                    "No run has an adapter yet. A finished run writes output_dir/adapter.",
                )];
                widgets::note(frame, area, block, text, theme);
            } else {
                let items = path_lines(runs.iter().map(|r| r.dir.as_path()).collect());
                widgets::list(frame, area, block, items, Some(*selected), theme);
            }
        }
        Modal::Models { selected } => {
            let wide = centered(body, body.width.saturating_sub(2), body.height * 8 / 10);
            frame.render_widget(Clear, wide);
            models::render(app, *selected, frame, wide);
        }
    }
}

/// Wrapped text in a panel.
pub(super) fn text_panel(frame: &mut Frame, area: Rect, block: Block, lines: Vec<Line>) {
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        area,
    );
}
