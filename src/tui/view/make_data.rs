//! The Generate picker and the progress of the job it started, over the Data screen.

use super::widgets::{clip, panel};
use crate::tui::app::App;
use crate::tui::generate::options;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Clear;
use ratatui::Frame;

pub fn render(app: &App, frame: &mut Frame, body: Rect) {
    let state = &app.generating;
    if let Some(picker) = &state.picker {
        render_picker(app, frame, body, picker.selected, &picker.n);
    } else if state.running || state.outcome.is_some() {
        render_progress(app, frame, body);
    }
}

fn render_picker(app: &App, frame: &mut Frame, body: Rect, selected: usize, n: &str) {
    let theme = &app.theme;
    let area = super::centered(body, body.width * 8 / 10, 8);
    frame.render_widget(Clear, area);
    let endpoint = app.serving.endpoint();
    let offers = options(app.config.as_ref(), endpoint.as_deref());
    let width = usize::from(area.width.saturating_sub(6));
    let mut lines: Vec<Line> = offers
        .iter()
        .enumerate()
        .map(|(i, offer)| {
            let style = match (i == selected, offer.source.is_some()) {
                (true, _) => theme.selection(),
                (false, true) => theme.text(),
                (false, false) => theme.muted(),
            };
            Line::from(Span::styled(
                format!(" {} ", clip(&offer.label(), width)),
                style,
            ))
        })
        .collect();
    if offers.is_empty() {
        lines.push(Line::from(
            "Choose a config first (p on the Training screen).",
        ));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(vec![
        Span::styled(" records ", theme.muted()),
        Span::styled(format!("{n}▏"), theme.text()),
    ]));
    let block = panel(
        theme,
        " Generate data (↑↓ choose · digits: how many · Enter · Esc) ",
        true,
    );
    super::text_panel(frame, area, block, lines);
}

fn render_progress(app: &App, frame: &mut Frame, body: Rect) {
    let theme = &app.theme;
    let state = &app.generating;
    let [_, area] = Layout::vertical([Constraint::Min(0), Constraint::Length(7)]).areas(body);
    frame.render_widget(Clear, area);
    let p = &state.progress;
    let width = usize::from(area.width.saturating_sub(12));
    let mut lines = vec![];
    match &state.outcome {
        None => lines.push(Line::from(vec![
            Span::styled(format!("{}/{} kept", p.kept, p.n), theme.ok()),
            Span::styled(
                format!(" · {} requests · {} rejected", p.requests, p.rejected),
                theme.muted(),
            ),
        ])),
        Some(Ok(summary)) => {
            lines.push(Line::from(Span::styled(format!("✓ {summary}"), theme.ok())))
        }
        Some(Err(e)) => lines.push(Line::from(Span::styled(
            format!("✗ {}", clip(e, width + 8)),
            theme.error(),
        ))),
    }
    if !p.rejected_summary.is_empty() {
        lines.push(Line::from(Span::styled(
            clip(&format!("rejected: {}", p.rejected_summary), width + 8),
            theme.muted(),
        )));
    }
    if let Some((prompt, answer)) = &p.sample {
        lines.push(Line::from(vec![
            Span::styled("prompt  ", theme.muted()),
            Span::raw(clip(&one_line(prompt), width)),
        ]));
        lines.push(Line::from(vec![
            Span::styled("answer  ", theme.muted()),
            Span::raw(clip(&one_line(answer), width)),
        ]));
    }
    let into = state
        .job
        .as_ref()
        .map_or(String::new(), |j| crate::fsutil::shown(&j.out));
    let title = match state.running {
        true => format!(" Generating → {into} "),
        false => format!(" Generated → {into} (g again for more) "),
    };
    super::text_panel(frame, area, panel(theme, title, true), lines);
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
