//! Where things are on screen, for drawing and for mouse hit-testing alike: both read these
//! functions, so a click lands on what was drawn there.

use crate::tui::app::Screen;
use ratatui::layout::{Constraint, Layout, Position, Rect};

/// The smallest terminal the workbench draws in.
pub const MIN_SIZE: (u16, u16) = (80, 24);

/// The tab row, the screen's body and the key bar.
pub fn chrome(area: Rect) -> [Rect; 3] {
    Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area)
}

/// Each tab's label and the columns it spans on the tab row.
pub fn tabs() -> Vec<(Screen, String, u16, u16)> {
    let mut x = 1;
    Screen::ALL
        .iter()
        .enumerate()
        .map(|(i, &screen)| {
            let label = format!(" {} {} ", i + 1, screen.title());
            let width = label.chars().count() as u16;
            let tab = (screen, label, x, x + width);
            x += width + 1;
            tab
        })
        .collect()
}

pub fn tab_at(size: (u16, u16), column: u16, row: u16) -> Option<Screen> {
    if row != 0 || !fits(size) {
        return None;
    }
    tabs()
        .into_iter()
        .find(|(_, _, start, end)| (*start..*end).contains(&column))
        .map(|(screen, ..)| screen)
}

pub fn fits(size: (u16, u16)) -> bool {
    size.0 >= MIN_SIZE.0 && size.1 >= MIN_SIZE.1
}

/// The first row shown of a list whose `selected` row must stay visible in `height` rows.
pub fn list_offset(selected: usize, height: u16) -> usize {
    let height = usize::from(height).max(1);
    selected.saturating_sub(height - 1)
}

/// Data screen: [records, problems, stats, detail].
pub fn data(body: Rect, has_problems: bool) -> [Rect; 4] {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(body);
    let problems_height = if has_problems { 8 } else { 0 };
    let [records, problems] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(problems_height)]).areas(left);
    let [stats, detail] =
        Layout::vertical([Constraint::Length(9), Constraint::Min(3)]).areas(right);
    [records, problems, stats, detail]
}

/// Compare screen: [header, prompts, prompt text, base reply, tuned reply].
pub fn compare(body: Rect) -> [Rect; 5] {
    let [header, main] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(body);
    let [prompts, right] =
        Layout::horizontal([Constraint::Percentage(32), Constraint::Percentage(68)]).areas(main);
    let [prompt, base, tuned] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Fill(1),
        Constraint::Fill(1),
    ])
    .areas(right);
    [header, prompts, prompt, base, tuned]
}

/// Runs screen: [list, detail, serve panel].
pub fn runs(body: Rect) -> [Rect; 3] {
    Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(6),
        Constraint::Length(4),
    ])
    .areas(body)
}

/// Sweeps screen: [summary line, trials table, trial detail, loss curves].
pub fn sweeps(body: Rect) -> [Rect; 4] {
    Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(4),
        Constraint::Fill(1),
    ])
    .areas(body)
}

/// The bordered rectangle of a screen's main list.
fn main_list(screen: Screen, body: Rect, has_problems: bool) -> Option<Rect> {
    match screen {
        Screen::Data => Some(data(body, has_problems)[0]),
        Screen::Compare => Some(compare(body)[1]),
        Screen::Runs => Some(runs(body)[0]),
        Screen::Sweeps => Some(sweeps(body)[1]),
        _ => None,
    }
}

/// The index of the list row under the mouse, given the selection that set the scroll
/// (`has_problems`: whether the data screen shows its problems pane under the records).
pub fn list_row_at(
    screen: Screen,
    size: (u16, u16),
    (selected, has_problems): (usize, bool),
    column: u16,
    row: u16,
) -> Option<usize> {
    let [_, body, _] = chrome(Rect::new(0, 0, size.0, size.1));
    let list = main_list(screen, body, has_problems)?;
    let inner = Rect::new(
        list.x + 1,
        list.y + 1,
        list.width.saturating_sub(2),
        list.height.saturating_sub(2),
    );
    if !inner.contains(Position::new(column, row)) {
        return None;
    }
    Some(list_offset(selected, inner.height) + usize::from(row - inner.y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabs_are_found_by_column() {
        let tabs = tabs();
        let (_, _, start, _) = tabs[2];
        assert_eq!(tab_at((80, 24), start, 0), Some(Screen::Training));
        assert_eq!(tab_at((80, 24), start, 1), None);
        assert_eq!(tab_at((80, 24), 0, 0), None);
    }

    #[test]
    fn the_selected_row_stays_visible() {
        assert_eq!(list_offset(3, 10), 0);
        assert_eq!(list_offset(12, 10), 3);
        assert_eq!(list_offset(0, 0), 0);
    }
}
