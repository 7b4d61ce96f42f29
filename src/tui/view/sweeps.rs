//! The Sweeps screen: a sweep's trials (sorted by any metric, the best starred), the highlighted
//! trial's settings and metrics, and the loss curves of the running trials overlaid with the
//! best and the highlighted one.

use super::layout;
use super::widgets::{clip, duration, line_chart, list, note, number, panel, Plot};
use crate::sweep::progress::{SweepProgress, TrialProgress, TrialState};
use crate::sweep::trial::Status;
use crate::tui::app::App;
use crate::tui::series::Series;
use crate::tui::sweeps::{ordered, SortBy};
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::Frame;

pub fn render(app: &App, frame: &mut Frame, body: Rect) {
    let theme = &app.theme;
    let Some(progress) = app.found.sweeps.get(app.sweeps.sweep) else {
        let text = vec![
            Line::from("No sweep yet under runs/ or sample_data/*/runs/."),
            Line::from(
                "Start one headless: tunelab sweep --config FILE (a [sweep] table or --grid).",
            ),
        ];
        note(frame, body, panel(theme, " Sweeps ", true), text, theme);
        return;
    };
    let [summary, table, detail, chart] = layout::sweeps(body);
    let trials = ordered(progress, &app.sweeps.sort);
    render_summary(app, progress, frame, summary);
    render_table(app, progress, &trials, frame, table);
    if let Some(trial) = trials.get(app.sweeps.selected) {
        render_detail(app, trial, frame, detail);
    }
    render_curves(app, progress, trials.get(app.sweeps.selected), frame, chart);
}

fn render_summary(app: &App, progress: &SweepProgress, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let count = |f: fn(&TrialState) -> bool| progress.trials.iter().filter(|t| f(&t.state)).count();
    let ended = count(|s| matches!(s, TrialState::Ended(_)));
    let running = count(|s| *s == TrialState::Running);
    let sweeps = app.found.sweeps.len();
    let text = format!(
        " {} · {ended}/{} ended, {running} running · objective {} ({:?}) · sorted by {}{}",
        progress.dir.display(),
        progress.trials.len(),
        progress.objective,
        progress.direction,
        app.sweeps.sort.label(progress),
        if sweeps > 1 {
            format!(" · sweep {}/{sweeps} (n)", app.sweeps.sweep + 1)
        } else {
            String::new()
        }
    );
    frame.render_widget(
        Line::styled(clip(&text, usize::from(area.width)), theme.title()),
        area,
    );
}

fn render_table(
    app: &App,
    progress: &SweepProgress,
    trials: &[&TrialProgress],
    frame: &mut Frame,
    area: Rect,
) {
    let theme = &app.theme;
    let width = usize::from(area.width.saturating_sub(2));
    let sorted_metric = match &app.sweeps.sort {
        SortBy::Metric(key) => Some(key.as_str()),
        _ => None,
    };
    let best = progress.best.map(|i| progress.trials[i].trial);
    let mut header = format!("  #  {:<9}{:>10}", "state", clip(&progress.objective, 10));
    if let Some(key) = sorted_metric {
        header += &format!("{:>10}", clip(key, 10));
    }
    header += &format!("{:>8}  settings", "time");
    let items: Vec<Line> = trials
        .iter()
        .map(|t| {
            let star = if Some(t.trial) == best { "★" } else { " " };
            let mut text = format!(
                "{star}{:>3}  {:<9}{:>10}",
                t.trial,
                state_label(t.state),
                t.objective.map_or("–".into(), number)
            );
            if let Some(key) = sorted_metric {
                text += &format!(
                    "{:>10}",
                    t.metrics.get(key).copied().map_or("–".into(), number)
                );
            }
            text += &format!(
                "{:>8}  {}",
                t.seconds.map_or("–".into(), duration),
                t.settings
            );
            let style = if Some(t.trial) == best {
                theme.ok()
            } else {
                state_style(app, t.state)
            };
            Line::from(Span::styled(clip(&text, width), style))
        })
        .collect();
    let block = panel(theme, clip(&header, width), true);
    list(frame, area, block, items, Some(app.sweeps.selected), theme);
}

fn state_label(state: TrialState) -> &'static str {
    match state {
        TrialState::Waiting => "waiting",
        TrialState::Running => "running",
        TrialState::Ended(Status::Finished) => "finished",
        TrialState::Ended(Status::Stopped) => "stopped",
        TrialState::Ended(Status::Failed) => "failed",
    }
}

fn state_style(app: &App, state: TrialState) -> Style {
    let theme = &app.theme;
    match state {
        TrialState::Waiting | TrialState::Ended(Status::Stopped) => theme.muted(),
        TrialState::Running => theme.warn(),
        TrialState::Ended(Status::Finished) => theme.text(),
        TrialState::Ended(Status::Failed) => theme.error(),
    }
}

fn render_detail(app: &App, trial: &TrialProgress, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let metrics = trial
        .metrics
        .iter()
        .map(|(k, v)| format!("{k} {}", number(*v)))
        .collect::<Vec<_>>()
        .join(" · ");
    let mut lines = vec![Line::from(vec![
        Span::styled("settings ", theme.muted()),
        Span::raw(trial.settings.clone()),
    ])];
    lines.push(match &trial.reason {
        Some(reason) => Line::styled(reason.clone(), theme.error()),
        None if metrics.is_empty() => Line::styled(
            "no eval yet · Enter follows its run · a compares its adapter",
            theme.muted(),
        ),
        None => Line::raw(metrics),
    });
    let title = format!(" Trial {} ", trial.trial);
    super::text_panel(frame, area, panel(theme, title, false), lines);
}

/// The running trials' train loss, the best trial's and the highlighted one's, overlaid.
fn render_curves(
    app: &App,
    progress: &SweepProgress,
    selected: Option<&&TrialProgress>,
    frame: &mut Frame,
    area: Rect,
) {
    let theme = &app.theme;
    let best = progress.best.map(|i| &progress.trials[i]);
    let mut shown: Vec<(&TrialProgress, ratatui::style::Color)> = progress
        .trials
        .iter()
        .filter(|t| t.state == TrialState::Running)
        .enumerate()
        .map(|(n, t)| (t, theme.series(n)))
        .collect();
    if let Some(b) = best {
        shown.push((b, theme.status.ok));
    }
    if let Some(s) = selected.filter(|s| !shown.iter().any(|(t, _)| t.trial == s.trial)) {
        shown.push((s, theme.chart.train_loss));
    }
    let series: Vec<Series> = shown
        .iter()
        .map(|(t, _)| {
            let mut s = Series::default();
            for &(x, y) in &t.losses {
                s.push(x, y);
            }
            s
        })
        .collect();
    let plots: Vec<Plot> = shown
        .iter()
        .zip(&series)
        .map(|((t, color), s)| Plot {
            name: if Some(t.trial) == best.map(|b| b.trial) {
                format!("★{}", t.trial)
            } else {
                format!("#{}", t.trial)
            },
            series: s,
            color: *color,
        })
        .collect();
    line_chart(frame, area, "train loss", &plots, theme);
}
