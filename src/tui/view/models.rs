//! The model picker: one row a model, with family, size, storage, whether it is on disk, and
//! what the chosen config needs on it against the first GPU.

use super::widgets::{clip, gib, list, note, panel};
use crate::tui::app::App;
use crate::tui::models::{parameters, ModelRow};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::Frame;

pub fn render(app: &App, selected: usize, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let models = &app.models;
    let block = panel(
        theme,
        " Train which model? (Enter picks, Esc closes) ",
        true,
    );
    if models.loading && models.rows.is_empty() {
        let text = vec![Line::from("reading the cached models' headers…")];
        note(frame, area, block, text, theme);
        return;
    }
    let footer = u16::from(!models.skipped.is_empty());
    let [table, skipped] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(footer)]).areas(area);
    let width = usize::from(area.width.saturating_sub(4));
    // The name gets what the other columns leave, but at least 24 while the verdict fits.
    let name_width = width
        .saturating_sub(TAIL_WIDTH)
        .max(24.min(width.saturating_sub(32)))
        .min(40);
    let header = Columns {
        model: "model",
        size: "size",
        needs: "needs",
        verdict: "verdict",
        family: "family",
        storage: "storage",
        place: "where",
    };
    let mut items = vec![Line::styled(
        clip(&header.line(name_width), width),
        theme.muted(),
    )];
    items.extend(models.rows.iter().map(|r| {
        let style = match r.estimate.as_ref().map(|e| e.fits.as_str()) {
            Ok("does not fit") | Err(_) => theme.error(),
            Ok("tight") => theme.warn(),
            _ => theme.text(),
        };
        Line::from(Span::styled(clip(&row(r, name_width), width), style))
    }));
    list(frame, table, block, items, Some(selected + 1), theme);
    if let Some(first) = models.skipped.first() {
        let more = models.skipped.len() - 1;
        let text = format!(
            " unreadable: {first}{}",
            if more > 0 {
                format!(" (+{more})")
            } else {
                String::new()
            }
        );
        frame.render_widget(
            Line::styled(clip(&text, usize::from(area.width)), theme.warn()),
            skipped,
        );
    }
}

/// What the columns after the model's name take: size, needs, verdict, family, storage, where.
const TAIL_WIDTH: usize = 6 + 10 + 14 + 8 + 17 + 8;

/// One row's cells, the ones that decide a pick first so that a narrow terminal keeps them.
struct Columns<'a> {
    model: &'a str,
    size: &'a str,
    needs: &'a str,
    verdict: &'a str,
    family: &'a str,
    storage: &'a str,
    place: &'a str,
}

impl Columns<'_> {
    fn line(&self, name_width: usize) -> String {
        format!(
            "{:<name_width$} {:>6} {:>9}  {:<12} {:<7} {:<16} {}",
            clip_start(self.model, name_width),
            self.size,
            self.needs,
            clip(self.verdict, 12),
            self.family,
            clip(self.storage, 16),
            self.place
        )
    }
}

/// The end of `text` in `width` characters: a path's last folders say the most.
fn clip_start(text: &str, width: usize) -> String {
    let n = text.chars().count();
    if n <= width {
        return text.to_string();
    }
    let kept: String = text.chars().skip(n + 1 - width.max(1)).collect();
    format!("…{kept}")
}

fn row(r: &ModelRow, name_width: usize) -> String {
    let e = &r.entry;
    let (needs, verdict) = match &r.estimate {
        Ok(m) => (gib(m.total), m.fits.clone()),
        Err(why) => ("?".into(), why.clone()),
    };
    let size = parameters(e.parameters);
    Columns {
        model: &e.label,
        size: &size,
        needs: &needs,
        verdict: &verdict,
        family: e.config.family.name(),
        storage: &e.storage,
        place: if e.cached { "on disk" } else { "download" },
    }
    .line(name_width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_name_keeps_its_end() {
        assert_eq!(clip_start("tests/fixtures/qwen2/base", 12), "…/qwen2/base");
        assert_eq!(clip_start("gemma3-270m", 12), "gemma3-270m");
    }
}
