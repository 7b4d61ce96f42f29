//! Drawing pieces the screens share: themed panels, scrolling lists, line charts, and number
//! formats.

use super::layout::list_offset;
use crate::tui::series::{x_bounds, Series};
use crate::tui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, BorderType, Chart, Dataset, GraphType, List, ListItem, Paragraph, Wrap,
};
use ratatui::Frame;

pub fn panel<'a>(theme: &Theme, title: impl Into<Line<'a>>, focused: bool) -> Block<'a> {
    Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(theme.border(focused))
        .title(title.into().style(theme.title()))
}

/// A list drawn so that `selected` is visible (the same scroll the mouse hit-test assumes).
pub fn list(
    frame: &mut Frame,
    area: Rect,
    block: Block,
    items: Vec<Line>,
    selected: Option<usize>,
    theme: &Theme,
) {
    let inner_height = area.height.saturating_sub(2);
    let offset = selected.map_or(0, |s| list_offset(s, inner_height));
    let rows: Vec<ListItem> = items
        .into_iter()
        .enumerate()
        .skip(offset)
        .take(usize::from(inner_height))
        .map(|(i, line)| {
            let item = ListItem::new(line);
            if Some(i) == selected {
                item.style(theme.selection())
            } else {
                item
            }
        })
        .collect();
    frame.render_widget(List::new(rows).block(block), area);
}

/// A paragraph of muted text in a panel, for empty states.
pub fn note(frame: &mut Frame, area: Rect, block: Block, text: Vec<Line>, theme: &Theme) {
    frame.render_widget(
        Paragraph::new(text)
            .style(theme.muted())
            .wrap(Wrap { trim: false })
            .block(block),
        area,
    );
}

/// One named series of a chart.
pub struct Plot<'a> {
    pub name: String,
    pub series: &'a Series,
    pub color: Color,
}

/// A line chart of several series over steps, decimated to the chart's width.
pub fn line_chart(frame: &mut Frame, area: Rect, title: &str, plots: &[Plot], theme: &Theme) {
    // The latest values go in the title, each in its series' colour; no legend box covers
    // the lines.
    let mut title_spans = vec![Span::styled(format!(" {title} "), theme.title())];
    for p in plots {
        if let Some(last) = p.series.last() {
            let label = if plots.len() > 1 {
                format!("{} {} ", p.name, number(last))
            } else {
                format!("{} ", number(last))
            };
            title_spans.push(Span::styled(label, Style::new().fg(p.color)));
        }
    }
    let block = panel(theme, Line::from(title_spans), false);
    if plots.iter().all(|p| p.series.is_empty()) {
        note(frame, area, block, vec![Line::from("no values yet")], theme);
        return;
    }
    let columns = usize::from(area.width.saturating_sub(10)).max(1);
    let data: Vec<Vec<(f64, f64)>> = plots.iter().map(|p| p.series.decimated(columns)).collect();
    let [x_lo, x_hi] = x_bounds(plots.iter().map(|p| p.series));
    let (y_lo, y_hi) = plots
        .iter()
        .filter(|p| !p.series.is_empty())
        .map(|p| p.series.y_bounds())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), [a, b]| {
            (lo.min(a), hi.max(b))
        });
    let datasets: Vec<Dataset> = plots
        .iter()
        .zip(&data)
        .map(|(p, points)| {
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(p.color)
                .data(points)
        })
        .collect();
    let chart = Chart::new(datasets)
        .block(block)
        .style(theme.text())
        .x_axis(
            Axis::default()
                .style(theme.muted())
                .bounds([x_lo, x_hi])
                .labels([format!("{x_lo:.0}"), format!("{x_hi:.0}")]),
        )
        .y_axis(
            Axis::default()
                .style(theme.muted())
                .bounds([y_lo, y_hi])
                .labels([number(y_lo), number(y_hi)]),
        )
        .legend_position(None);
    frame.render_widget(chart, area);
}

/// A number in few characters: 1.23e-4, 0.512, 12.3, 4.1k.
pub fn number(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{x:.2e}")
    } else if a >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

pub fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// 75s → "1m15s", 3700s → "1h01m".
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// A label and value pair as spans: the label muted.
pub fn field<'a>(label: &'a str, value: String, theme: &Theme) -> Vec<Span<'a>> {
    vec![
        Span::styled(format!("{label} "), theme.muted()),
        Span::styled(value, theme.text()),
        Span::raw("  "),
    ]
}

/// `text` cut to `width` characters with an ellipsis.
pub fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(number(0.000123), "1.23e-4");
        assert_eq!(number(2.5), "2.500");
        assert_eq!(number(1234.0), "1.2k");
        assert_eq!(duration(75.0), "1m15s");
        assert_eq!(duration(3700.0), "1h01m");
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(gib(3 << 29), "1.5 GiB");
    }
}
