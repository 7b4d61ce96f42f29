//! The hardware screen: GPUs (memory gauge, utilisation and temperature sparklines), the host,
//! and the selected config's memory estimate.

use super::widgets::{gib, note, panel};
use crate::hw::{GpuInfo, HardwareReport};
use crate::tui::app::App;
use crate::tui::hardware::MemoryEstimate;
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Gauge, Paragraph, Sparkline};
use ratatui::Frame;

/// Rows one GPU's panel takes.
const GPU_ROWS: u16 = 7;

pub fn render(app: &App, frame: &mut Frame, body: Rect) {
    let theme = &app.theme;
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)]).areas(body);
    render_estimate(app, frame, right);
    let Some(report) = &app.hardware.report else {
        note(
            frame,
            left,
            panel(theme, " Hardware ", false),
            vec![Line::from("reading the hardware…")],
            theme,
        );
        return;
    };
    let [gpus_area, host_area] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(7)]).areas(left);
    render_host(report, theme, frame, host_area);
    if report.gpus.is_empty() {
        let mut text = vec![
            Line::from(Span::styled("No GPU", theme.warn())),
            Line::from(report.cpu_path_note.clone()),
        ];
        // The note usually quotes the driver's reason already.
        if let Some(reason) = report
            .nvml
            .reason
            .as_ref()
            .filter(|r| !report.cpu_path_note.contains(r.as_str()))
        {
            text.push(Line::from(format!("NVIDIA driver: {reason}")));
        }
        note(frame, gpus_area, panel(theme, " GPUs ", false), text, theme);
        return;
    }
    let title = format!(
        " GPUs · driver {} · CUDA {} ",
        report.driver_version.as_deref().unwrap_or("?"),
        report.cuda_driver_version.as_deref().unwrap_or("?")
    );
    let block = panel(theme, title, false);
    let inner = block.inner(gpus_area);
    frame.render_widget(block, gpus_area);
    let shown = usize::from(inner.height / GPU_ROWS).max(1);
    let rows = Layout::vertical(vec![Constraint::Length(GPU_ROWS); shown]).split(inner);
    for (i, gpu) in report.gpus.iter().enumerate().take(shown) {
        render_gpu(app, i, gpu, frame, rows[i]);
    }
}

fn render_gpu(app: &App, i: usize, gpu: &GpuInfo, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let [name, memory, util_label, util, temp_label, temp, _] =
        Layout::vertical([Constraint::Length(1); 7]).areas(area);
    frame.render_widget(
        Line::from(vec![
            Span::styled(format!("GPU {} ", gpu.index), theme.title()),
            Span::styled(gpu.name.clone().unwrap_or_else(|| "?".into()), theme.text()),
            Span::styled(
                format!(
                    "  compute {}  {} W",
                    gpu.compute_capability.as_deref().unwrap_or("?"),
                    gpu.power_draw_w.map_or("?".into(), |w| format!("{w:.0}"))
                ),
                theme.muted(),
            ),
        ]),
        name,
    );
    let (used, total) = (
        gpu.memory_used_bytes.unwrap_or(0),
        gpu.memory_total_bytes.unwrap_or(0),
    );
    let ratio = if total == 0 {
        0.0
    } else {
        used as f64 / total as f64
    };
    let color = if ratio > 0.9 {
        theme.status.error
    } else if ratio > 0.7 {
        theme.status.warn
    } else {
        theme.status.ok
    };
    frame.render_widget(
        Gauge::default()
            .ratio(ratio.clamp(0.0, 1.0))
            .label(format!("memory {} of {}", gib(used), gib(total)))
            .gauge_style(Style::new().fg(color).bg(theme.ui.border)),
        memory,
    );
    let spark = |frame: &mut Frame, label_area, area, label: String, data: Vec<u64>, max, n| {
        frame.render_widget(Span::styled(label, theme.muted()), label_area);
        frame.render_widget(
            Sparkline::default()
                .data(data)
                .max(max)
                .style(Style::new().fg(theme.series(n))),
            area,
        );
    };
    let history = |h: &std::collections::VecDeque<u64>, width: u16| -> Vec<u64> {
        let skip = h.len().saturating_sub(usize::from(width));
        h.iter().skip(skip).copied().collect()
    };
    let util_now = gpu
        .utilization_percent
        .map_or("?".into(), |u| format!("{u}%"));
    let temp_now = gpu.temperature_c.map_or("?".into(), |t| format!("{t} °C"));
    let empty = std::collections::VecDeque::new();
    let util_history = app.hardware.utilization.get(i).unwrap_or(&empty);
    let temp_history = app.hardware.temperature.get(i).unwrap_or(&empty);
    spark(
        frame,
        util_label,
        util,
        format!("utilisation {util_now}"),
        history(util_history, util.width),
        100,
        0,
    );
    spark(
        frame,
        temp_label,
        temp,
        format!("temperature {temp_now}"),
        history(temp_history, temp.width),
        100,
        1,
    );
}

fn render_host(report: &HardwareReport, theme: &Theme, frame: &mut Frame, area: Rect) {
    let known = |v: Option<u64>| v.map_or("?".into(), gib);
    let lines = vec![
        Line::from(vec![
            Span::styled("CPU   ", theme.muted()),
            Span::styled(
                format!(
                    "{}, {} cores",
                    report.cpu.model.as_deref().unwrap_or("unknown model"),
                    report.cpu.cores
                ),
                theme.text(),
            ),
        ]),
        Line::from(vec![
            Span::styled("RAM   ", theme.muted()),
            Span::styled(
                format!(
                    "{} total, {} available",
                    known(report.memory.total_bytes),
                    known(report.memory.available_bytes)
                ),
                theme.text(),
            ),
        ]),
        Line::from(vec![
            Span::styled("cache ", theme.muted()),
            Span::styled(
                format!(
                    "{} ({} free)",
                    report.cache_dir,
                    known(report.cache_disk_free_bytes)
                ),
                theme.text(),
            ),
        ]),
        Line::from(vec![
            Span::styled("CUDA  ", theme.muted()),
            Span::styled(
                if report.cuda_built {
                    "built in"
                } else {
                    "not built (cargo build --release --features cuda)"
                },
                theme.text(),
            ),
        ]),
    ];
    super::text_panel(frame, area, panel(theme, " Host ", false), lines);
}

/// The estimate panel: a stacked bar of the terms, each term's size, the total and the verdict.
fn render_estimate(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let config = app
        .config
        .as_ref()
        .map_or_else(|| "no config".to_string(), |c| c.path.display().to_string());
    let block = panel(theme, " Memory estimate ", false);
    let Some(estimate) = &app.hardware.estimate else {
        let text = vec![
            Line::from(config),
            Line::from(""),
            Line::from("The training memory estimate for this config shows here: weights, adapters, optimizer state and activations."),
        ];
        note(frame, area, block, text, theme);
        return;
    };
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut lines = vec![
        Line::from(Span::styled(config, theme.muted())),
        stacked_bar(estimate, theme, inner.width),
        Line::from(""),
    ];
    for (n, (name, bytes)) in estimate.terms.iter().enumerate() {
        lines.push(Line::from(vec![
            Span::styled("■ ", Style::new().fg(theme.series(n))),
            Span::styled(format!("{name:<18}"), theme.text()),
            Span::styled(format!("{:>10}", gib(*bytes)), theme.text()),
        ]));
    }
    lines.push(Line::from(vec![
        Span::styled(format!("  {:<18}", "total"), theme.title()),
        Span::styled(format!("{:>10}", gib(estimate.total)), theme.title()),
    ]));
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        estimate.verdict.clone(),
        theme.text(),
    )));
    frame.render_widget(
        Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: false }),
        inner,
    );
}

/// One line split among the terms in proportion to their size.
fn stacked_bar<'a>(estimate: &MemoryEstimate, theme: &Theme, width: u16) -> Line<'a> {
    let total: u64 = estimate.terms.iter().map(|(_, b)| b).sum::<u64>().max(1);
    let width = u64::from(width);
    let spans: Vec<Span> = estimate
        .terms
        .iter()
        .enumerate()
        .map(|(n, (_, bytes))| {
            let cells = (bytes * width).div_ceil(total).min(width) as usize;
            Span::styled("█".repeat(cells), Style::new().fg(theme.series(n)))
        })
        .collect();
    Line::from(spans)
}
