//! The run picker: run folders found under runs/ and sample_data/*/runs/.

use super::layout;
use super::widgets::{clip, list, note, number, panel};
use crate::tui::app::App;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::Frame;

pub fn render(app: &App, frame: &mut Frame, body: Rect) {
    let theme = &app.theme;
    let [list_area, detail] = layout::runs(body);
    let runs = &app.found.runs;
    if runs.is_empty() {
        let text = vec![
            Line::from("No run yet under runs/ or sample_data/*/runs/."),
            Line::from(
                "Start one on the Training screen (3), or headless: tunelab train --config FILE.",
            ),
        ];
        note(frame, body, panel(theme, " Runs ", true), text, theme);
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
