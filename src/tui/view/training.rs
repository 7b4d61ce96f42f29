//! The training screen: the chosen config, the run's progress, live charts, warnings and log.

use super::widgets::{clip, duration, field, gib, line_chart, note, panel, Plot};
use crate::config::RunConfig;
use crate::fsutil::shown;
use crate::tui::app::App;
use crate::tui::series::Series;
use crate::tui::theme::Theme;
use crate::tui::training::{RunSource, RunState, RunView};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Gauge, List, ListItem, Paragraph};
use ratatui::Frame;

pub fn render(app: &App, frame: &mut Frame, body: Rect) {
    let theme = &app.theme;
    let [header, gauge, status, charts, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(6),
        Constraint::Length(if body.height >= 30 { 9 } else { 6 }),
    ])
    .areas(body);
    render_header(app, frame, header);
    let Some(run) = &app.train.run else {
        frame.render_widget(
            Line::from(Span::styled(
                " No run yet: s starts the config above, p picks another, 5 follows one.",
                theme.muted(),
            )),
            gauge,
        );
        render_config(app, frame, charts.union(bottom).union(status));
        return;
    };
    render_progress(run, theme, frame, gauge);
    render_status(app, run, frame, status);
    render_charts(app, run, frame, charts);
    let [warnings, log] =
        Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(bottom);
    render_lines(
        frame,
        warnings,
        " Warnings ",
        &run.warnings,
        theme.warn(),
        theme,
    );
    render_lines(frame, log, " Log ", &run.log, theme.text(), theme);
}

fn render_header(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let line = match (&app.train.run, &app.config) {
        (Some(run), _) if matches!(run.source, RunSource::Followed(_)) => {
            let RunSource::Followed(dir) = &run.source else {
                unreachable!()
            };
            Line::from(vec![
                Span::styled(" following ", theme.muted()),
                Span::styled(shown(dir), theme.title()),
                Span::styled("  (written by another process; read-only)", theme.muted()),
            ])
        }
        (_, Some(chosen)) => Line::from(vec![
            Span::styled(" config ", theme.muted()),
            Span::styled(chosen.path.display().to_string(), theme.title()),
            Span::styled(
                format!("  → {}", shown(&chosen.config.output_dir)),
                theme.muted(),
            ),
        ]),
        (_, None) => Line::from(Span::styled(
            app.config_error
                .clone()
                .unwrap_or_else(|| " no config: p picks one".into()),
            if app.config_error.is_some() {
                theme.error()
            } else {
                theme.muted()
            },
        )),
    };
    frame.render_widget(line, area);
}

/// The chosen config's key values, before a run starts.
fn render_config(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let block = panel(theme, " Config ", false);
    let Some(chosen) = &app.config else {
        note(
            frame,
            area,
            block,
            vec![Line::from("p picks a config")],
            theme,
        );
        return;
    };
    let c = &chosen.config;
    let model_shown = |name: &str| {
        if name.is_empty() {
            "default (SmolLM2-135M-Instruct Q4_1)".to_string()
        } else {
            name.to_string()
        }
    };
    let model = if c.model_name == chosen.file_model {
        model_shown(&c.model_name)
    } else {
        format!(
            "{} (picked; the file says {})",
            model_shown(&c.model_name),
            model_shown(&chosen.file_model)
        )
    };
    let stages: Vec<&str> = c.stages.iter().map(|s| s.name()).collect();
    let rows: Vec<(&str, String)> = vec![
        (
            "stages",
            if stages.is_empty() {
                c.stage.name().to_string()
            } else {
                stages.join(" → ")
            },
        ),
        ("model", model),
        ("train_file", shown(&c.train_file)),
        (
            "preference_file",
            c.preference_file
                .as_ref()
                .map_or("none".into(), |p| shown(p)),
        ),
        (
            "eval_file",
            c.eval_file.as_ref().map_or("none".into(), |p| shown(p)),
        ),
        ("output_dir", shown(&c.output_dir)),
        ("learning_rate", format!("{:e}", c.learning_rate)),
        ("schedule", schedule(c)),
        (
            "steps",
            c.max_steps.map_or_else(
                || format!("{} epochs", c.num_train_epochs),
                |s| format!("max_steps {s}"),
            ),
        ),
        (
            "batch",
            format!(
                "{} × {} accumulation",
                c.per_device_train_batch_size, c.gradient_accumulation_steps
            ),
        ),
        ("max_seq_length", c.max_seq_length.to_string()),
        (
            "lora",
            format!(
                "r {} · alpha {} · dropout {} · {}{}",
                c.lora_r,
                c.lora_alpha,
                c.lora_dropout,
                c.lora_target_modules.join(","),
                if c.use_rslora { " · rslora" } else { "" }
            ),
        ),
        (
            "save / eval / log",
            format!(
                "{} / {} / {} steps",
                c.save_steps,
                c.eval_steps.map_or("off".into(), |e| e.to_string()),
                c.logging_steps
            ),
        ),
    ];
    // A pipeline stage's own keys, as its [sft] / [dpo] table sets them.
    let tables = [("[sft]", &c.sft), ("[dpo]", &c.dpo), ("[grpo]", &c.grpo)];
    let mut rows = rows;
    for (name, table) in tables.into_iter().filter(|(_, t)| !t.is_empty()) {
        let keys: Vec<String> = table.iter().map(|(k, v)| format!("{k} {v}")).collect();
        rows.push((name, keys.join(" · ")));
    }
    let width = usize::from(area.width.saturating_sub(22));
    let lines: Vec<Line> = rows
        .into_iter()
        .map(|(k, v)| {
            Line::from(vec![
                Span::styled(format!(" {k:<18}"), theme.muted()),
                Span::styled(clip(&v, width), theme.text()),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn schedule(c: &RunConfig) -> String {
    let warmup = c.warmup_steps.map_or_else(
        || format!("warmup ratio {}", c.warmup_ratio),
        |w| format!("warmup {w} steps"),
    );
    format!("{:?}, {warmup}", c.lr_scheduler_type).to_lowercase()
}

fn render_progress(run: &RunView, theme: &Theme, frame: &mut Frame, area: Rect) {
    let eta = match (&run.state, run.eta_s()) {
        (RunState::Finished { .. }, _) => String::new(),
        (_, Some(eta)) => format!(" · ETA {}", duration(eta)),
        _ => String::new(),
    };
    let label = format!(
        "step {}/{} · epoch {:.2} · {}{eta}",
        run.step,
        run.total_steps,
        run.epoch,
        duration(run.elapsed_s)
    );
    let color = match run.state {
        RunState::Finished { ok: false, .. } => theme.status.error,
        RunState::Paused | RunState::Stopping => theme.status.warn,
        _ => theme.status.ok,
    };
    frame.render_widget(
        Gauge::default()
            .ratio(run.progress())
            .label(label)
            .gauge_style(Style::new().fg(color).bg(theme.ui.border)),
        area,
    );
}

fn render_status(app: &App, run: &RunView, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let mut spans = vec![Span::raw(" ")];
    let state = match &run.state {
        RunState::Loading => "loading the model and data…".to_string(),
        RunState::Running => "running".into(),
        RunState::Paused => "paused".into(),
        RunState::Stopping => "stopping".into(),
        RunState::Finished { ok: true, .. } => "finished".into(),
        RunState::Finished { ok: false, message } => format!("failed: {message}"),
    };
    let style = match run.state {
        RunState::Finished { ok: false, .. } => theme.error(),
        _ => theme.text(),
    };
    spans.push(Span::styled(state, style));
    spans.push(Span::raw("  "));
    if let Some((name, done, total)) = &run.phase {
        spans.extend(field(name, format!("{done}/{total}"), theme));
    }
    if !run.device.is_empty() {
        spans.extend(field(&run.stage, run.device.clone(), theme));
    }
    let memory = match app.hardware.gpu_memory_used() {
        Some(now) => format!(
            "{} · peak {}",
            gib(now),
            gib(run.gpu_peak.unwrap_or(now).max(now))
        ),
        None => "no GPU".into(),
    };
    spans.extend(field("GPU mem", memory, theme));
    if run.truncated > 0 {
        spans.push(Span::styled(
            format!("{} examples truncated", run.truncated),
            theme.warn(),
        ));
    }
    frame.render_widget(Line::from(spans), area);
}

fn plot<'a>(name: &str, series: &'a Series, color: Color) -> Plot<'a> {
    Plot {
        name: name.to_string(),
        series,
        color,
    }
}

/// One chart: a title and its series.
struct ChartSpec<'a> {
    title: String,
    plots: Vec<Plot<'a>>,
}

/// The charts a run has data for, in order.
fn charts<'a>(run: &'a RunView, theme: &Theme) -> Vec<ChartSpec<'a>> {
    let c = &theme.chart;
    let mut loss = vec![plot("train", &run.loss, c.train_loss)];
    if let Some(eval) = run.eval_metrics.get("eval_loss") {
        loss.push(plot("eval", eval, c.eval_loss));
    }
    let mut out = vec![ChartSpec {
        title: "loss".into(),
        plots: loss,
    }];
    // The stage's own figures (DPO's rewards) come right after the loss.
    out.extend(stage_charts(run, theme));
    out.extend([
        ChartSpec {
            title: "learning rate".into(),
            plots: vec![plot("lr", &run.learning_rate, c.learning_rate)],
        },
        ChartSpec {
            title: "grad norm".into(),
            plots: vec![plot("norm", &run.grad_norm, c.grad_norm)],
        },
        ChartSpec {
            title: "tokens/s".into(),
            plots: vec![plot("tok/s", &run.tokens_per_s, c.tokens_per_s)],
        },
    ]);
    let evals: Vec<Plot> = run
        .eval_metrics
        .iter()
        .filter(|(k, _)| k.as_str() != "eval_loss")
        .enumerate()
        .map(|(n, (k, s))| plot(k, s, theme.series(n)))
        .collect();
    if !evals.is_empty() {
        out.push(ChartSpec {
            title: "eval metrics".into(),
            plots: evals,
        });
    }
    out
}

/// Charts of Step.metrics: DPO's rewards (chosen and rejected together), margins, accuracies,
/// then any other stage metric on its own.
fn stage_charts<'a>(run: &'a RunView, theme: &Theme) -> Vec<ChartSpec<'a>> {
    let c = &theme.chart;
    let mut out = vec![];
    let stage = |name: &str| run.stage_metrics.get(name);
    let rewards: Vec<Plot> = [
        ("chosen", stage("rewards/chosen"), c.rewards_chosen),
        ("rejected", stage("rewards/rejected"), c.rewards_rejected),
    ]
    .into_iter()
    .filter_map(|(n, s, color)| s.map(|s| plot(n, s, color)))
    .collect();
    if !rewards.is_empty() {
        out.push(ChartSpec {
            title: "rewards".into(),
            plots: rewards,
        });
    }
    for (key, color) in [
        ("rewards/margins", c.rewards_margins),
        ("rewards/accuracies", c.rewards_accuracies),
    ] {
        if let Some(s) = stage(key) {
            out.push(ChartSpec {
                title: key.into(),
                plots: vec![plot(key.trim_start_matches("rewards/"), s, color)],
            });
        }
    }
    let known = [
        "rewards/chosen",
        "rewards/rejected",
        "rewards/margins",
        "rewards/accuracies",
    ];
    let mut rest: Vec<(&String, &Series)> = run
        .stage_metrics
        .iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .collect();
    // GRPO's families share a chart each: the total reward beside each reward's mean, …
    for (title, member) in GRPO_GROUPS {
        let (group, others): (Vec<_>, Vec<_>) = rest.into_iter().partition(|(k, _)| member(k));
        rest = others;
        if !group.is_empty() {
            out.push(ChartSpec {
                title: title.into(),
                plots: group
                    .into_iter()
                    .enumerate()
                    .map(|(n, (k, s))| plot(short_name(k), s, theme.series(n)))
                    .collect(),
            });
        }
    }
    for (n, (key, s)) in rest.into_iter().enumerate() {
        out.push(ChartSpec {
            title: key.clone(),
            plots: vec![plot(key, s, theme.series(n))],
        });
    }
    out
}

type Member = fn(&str) -> bool;

/// GRPO's metrics drawn together, by chart title.
const GRPO_GROUPS: [(&str, Member); 4] = [
    ("reward", |k| {
        k == "reward" || (k.starts_with("rewards/") && k.ends_with("/mean"))
    }),
    ("reward std", |k| {
        k == "reward_std" || (k.starts_with("rewards/") && k.ends_with("/std"))
    }),
    ("completion length", |k| {
        k.starts_with("completions/") && k.ends_with("length")
    }),
    ("clip ratio", |k| k.starts_with("clip_ratio/")),
];

/// A metric's name in a shared chart's legend: rewards/json_valid/mean → json_valid.
fn short_name(key: &str) -> &str {
    let key = key.strip_prefix("rewards/").unwrap_or(key);
    let key = key.strip_prefix("completions/").unwrap_or(key);
    let key = key.strip_prefix("clip_ratio/").unwrap_or(key);
    key.strip_suffix("/mean")
        .or_else(|| key.strip_suffix("/std"))
        .unwrap_or(key)
}

fn render_charts(app: &App, run: &RunView, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let specs = charts(run, theme);
    let per_page = if area.height >= 16 { 4 } else { 2 };
    let pages = specs.len().div_ceil(per_page);
    let page = app.train.chart_page % pages;
    let shown: Vec<&ChartSpec> = specs.iter().skip(page * per_page).take(per_page).collect();
    let cells: Vec<Rect> = if per_page == 4 {
        let [top, bottom] =
            Layout::vertical([Constraint::Fill(1), Constraint::Fill(1)]).areas(area);
        let [a, b] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(top);
        let [c, d] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(bottom);
        vec![a, b, c, d]
    } else {
        let [a, b] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(area);
        vec![a, b]
    };
    for (spec, cell) in shown.into_iter().zip(cells) {
        let title = if pages > 1 {
            format!("{} ({}/{pages}, c)", spec.title, page + 1)
        } else {
            spec.title.clone()
        };
        line_chart(frame, cell, &title, &spec.plots, theme);
    }
}

/// The last lines of a list that fit, newest at the bottom.
fn render_lines(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    lines: &[String],
    style: Style,
    theme: &Theme,
) {
    let block = panel(theme, title, false);
    let height = usize::from(area.height.saturating_sub(2));
    let width = usize::from(area.width.saturating_sub(2));
    if lines.is_empty() {
        note(frame, area, block, vec![Line::from("none")], theme);
        return;
    }
    let items: Vec<ListItem> = lines[lines.len().saturating_sub(height)..]
        .iter()
        .map(|l| ListItem::new(Span::styled(clip(l, width), style)))
        .collect();
    frame.render_widget(List::new(items).block(block), area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::training::RunSource;

    #[test]
    fn grpo_metrics_share_charts_by_family() {
        let mut run = RunView::new(1, RunSource::Own);
        for key in [
            "reward",
            "rewards/json_valid/mean",
            "rewards/expect_json_fields/mean",
            "rewards/json_valid/std",
            "reward_std",
            "completions/mean_length",
            "completions/max_length",
            "completions/clipped_ratio",
            "clip_ratio/region_mean",
            "kl",
        ] {
            run.stage_metrics
                .entry(key.into())
                .or_default()
                .push(1.0, 0.5);
        }
        let theme = Theme::default();
        let specs = charts(&run, &theme);
        let find = |title: &str| {
            let spec = specs.iter().find(|s| s.title == title);
            let spec = spec.unwrap_or_else(|| panic!("no chart {title}"));
            spec.plots
                .iter()
                .map(|p| p.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            find("reward"),
            ["reward", "expect_json_fields", "json_valid"]
        );
        assert_eq!(find("reward std"), ["reward_std", "json_valid"]);
        assert_eq!(find("completion length"), ["max_length", "mean_length"]);
        assert_eq!(find("clip ratio"), ["region_mean"]);
        // The rest keep a chart each.
        assert_eq!(find("kl"), ["kl"]);
        assert_eq!(
            find("completions/clipped_ratio"),
            ["completions/clipped_ratio"]
        );
    }
}
