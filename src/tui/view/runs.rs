//! The run picker: run folders found under runs/ and sample_data/*/runs/.

use super::layout;
use super::widgets::{clip, list, note, number, panel};
use crate::tui::app::App;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::Frame;

pub fn render(app: &App, frame: &mut Frame, body: Rect) {
    let theme = &app.theme;
    let [list_area, detail, serve] = layout::runs(body);
    render_serve(app, frame, serve);
    let runs = &app.found.runs;
    if runs.is_empty() {
        let text = vec![
            Line::from("No run yet under runs/ or sample_data/*/runs/."),
            Line::from(
                "Start one on the Training screen (3), or headless: tunelab train --config FILE.",
            ),
        ];
        let [area, _] = ratatui::layout::Layout::vertical([
            ratatui::layout::Constraint::Min(0),
            ratatui::layout::Constraint::Length(4),
        ])
        .areas(body);
        note(frame, area, panel(theme, " Runs ", true), text, theme);
        return;
    }
    let width = usize::from(list_area.width.saturating_sub(2));
    let dir_width = width.saturating_sub(44).max(10);
    let items: Vec<Line> = runs
        .iter()
        .map(|r| {
            let status_style = if r.status == "finished" {
                theme.ok()
            } else if r.status.starts_with("failed") || r.status.starts_with("unreadable") {
                theme.error()
            } else {
                theme.warn()
            };
            Line::from(vec![
                Span::raw(format!(
                    "{:<dir_width$} ",
                    clip(&r.dir.display().to_string(), dir_width)
                )),
                Span::styled(format!("{:<4}", r.stage), theme.muted()),
                Span::raw(format!("{:>6}/{:<6}", r.step, r.total_steps)),
                Span::raw(format!("{:>8} ", r.last_loss.map_or("–".into(), number))),
                Span::styled(clip(&r.status, 12), status_style),
                Span::styled(if r.adapter.is_some() { " ◆" } else { "" }, theme.title()),
            ])
        })
        .collect();
    let title = format!(
        " Runs ({}) · Enter follows · a compares · ◆ has an adapter ",
        runs.len()
    );
    list(
        frame,
        list_area,
        panel(theme, title, true),
        items,
        Some(app.runs_selected),
        theme,
    );
    if let Some(run) = runs.get(app.runs_selected) {
        let lines = vec![
            Line::from(vec![
                Span::styled("folder  ", theme.muted()),
                Span::raw(run.dir.display().to_string()),
            ]),
            Line::from(vec![
                Span::styled("status  ", theme.muted()),
                Span::raw(run.status.clone()),
            ]),
            Line::from(vec![
                Span::styled("adapter ", theme.muted()),
                Span::raw(
                    run.adapter
                        .as_ref()
                        .map_or("not yet".into(), |a| a.display().to_string()),
                ),
            ]),
            Line::from(Span::styled(
                format!(
                    "watch from another terminal: tunelab watch {}",
                    run.dir.display()
                ),
                theme.muted(),
            )),
        ];
        super::text_panel(frame, detail, panel(theme, " Run ", false), lines);
    }
}

/// The workbench's server: off, starting, or its address, models, requests and tokens/s.
fn render_serve(app: &App, frame: &mut Frame, area: Rect) {
    use crate::tui::serve::ServeStatus;
    let theme = &app.theme;
    let serving = &app.serving;
    let width = usize::from(area.width.saturating_sub(4));
    let lines = match &serving.status {
        ServeStatus::Off => vec![Line::from(Span::styled(
            "off · v serves the model and every run's adapter on 127.0.0.1 (OpenAI API)",
            theme.muted(),
        ))],
        ServeStatus::Starting => vec![Line::from(Span::styled("loading the model…", theme.warn()))],
        ServeStatus::Stopping => vec![Line::from(Span::styled(
            "stopping: finishing the replies being generated…",
            theme.warn(),
        ))],
        ServeStatus::Failed(e) => vec![Line::from(Span::styled(clip(e, width), theme.error()))],
        ServeStatus::Serving { address, models } => {
            let c = &serving.counters;
            let skipped = match serving.skipped {
                0 => String::new(),
                n => format!(" ({n} adapters of another base left out)"),
            };
            vec![
                Line::from(vec![
                    Span::styled(format!("http://{address}/v1"), theme.ok()),
                    Span::styled(
                        clip(&format!("  models: {}{skipped}", models.join(", ")), width),
                        theme.muted(),
                    ),
                ]),
                Line::from(Span::raw(format!(
                    "{} requests · {} waiting · {} tokens out · {} tokens/s",
                    c.requests,
                    c.queued,
                    c.completion_tokens,
                    number(serving.tokens_per_s)
                ))),
            ]
        }
    };
    super::text_panel(frame, area, panel(theme, " Serve (v) ", false), lines);
}
