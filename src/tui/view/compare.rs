//! The compare screen: prompts on the left; the prompt, the base reply and the tuned reply
//! (streaming) on the right, each finished reply with its check badges.

use super::layout;
use super::widgets::{clip, list, panel};
use crate::tui::app::App;
use crate::tui::compare::{Reply, ReplyState, Side};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

pub fn render(app: &App, frame: &mut Frame, body: Rect) {
    let theme = &app.theme;
    let compare = &app.compare;
    let [header, prompts, prompt, base, tuned] = layout::compare(body);
    let model = app.model_settings().model;
    let adapter = compare
        .adapter
        .as_ref()
        .map_or("none (a picks a run)".to_string(), |a| {
            a.display().to_string()
        });
    frame.render_widget(
        Line::from(vec![
            Span::styled(" model ", theme.muted()),
            Span::raw(if model.is_empty() {
                "default".to_string()
            } else {
                model
            }),
            Span::styled("  adapter ", theme.muted()),
            Span::styled(adapter, theme.title()),
            Span::styled("  decoding ", theme.muted()),
            Span::raw(if compare.constrained {
                "constrained (f)"
            } else {
                "free (f)"
            }),
            Span::styled(format!("  {}", app.model_status), theme.muted()),
        ]),
        header,
    );
    let title = match (&compare.cases_path, &compare.cases_error) {
        (_, Some(_)) => " Prompts (eval file unreadable) ".to_string(),
        (Some(p), None) => format!(
            " {} ",
            p.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        ),
        (None, None) => " Prompts ".to_string(),
    };
    // The running tally over the cases whose base and tuned replies are both done.
    let (better, same, worse) = compare.tally();
    let title = if better + same + worse > 0 {
        format!("{title}tuned: {better} better, {same} same, {worse} worse ")
    } else {
        title
    };
    let width = usize::from(prompts.width.saturating_sub(2));
    let mut items: Vec<Line> = compare
        .prompts
        .iter()
        .map(|p| {
            Line::from(clip(
                &p.split_whitespace().collect::<Vec<_>>().join(" "),
                width,
            ))
        })
        .collect();
    if let Some(e) = &compare.cases_error {
        items.push(Line::from(Span::styled(e.clone(), theme.error())));
    }
    if items.is_empty() {
        items.push(Line::from(Span::styled("i types a prompt", theme.muted())));
    }
    let selected = (!compare.prompts.is_empty()).then_some(compare.selected);
    list(
        frame,
        prompts,
        panel(theme, title, true),
        items,
        selected,
        theme,
    );
    let text = compare
        .prompts
        .get(compare.selected)
        .cloned()
        .unwrap_or_default();
    frame.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: false }).block(panel(
            theme,
            " Prompt (g generates) ",
            false,
        )),
        prompt,
    );
    let case = compare.selected;
    render_reply(
        app,
        case,
        compare.replies.get(&(case, Side::Base)),
        " Base ",
        frame,
        base,
    );
    let tuned_title = if compare.adapter.is_some() {
        " Tuned "
    } else {
        " Tuned (no adapter) "
    };
    render_reply(
        app,
        case,
        compare.replies.get(&(case, Side::Tuned)),
        tuned_title,
        frame,
        tuned,
    );
}

fn compare_badges(app: &App, case: usize, text: &str) -> Vec<crate::tui::checks::Badge> {
    app.compare.checks.badges(case, text)
}

fn render_reply(
    app: &App,
    case: usize,
    reply: Option<&Reply>,
    title: &str,
    frame: &mut Frame,
    area: Rect,
) {
    let theme = &app.theme;
    let mut title_spans = vec![Span::styled(title.to_string(), theme.title())];
    let body: Vec<Line> = match reply {
        None => vec![Line::from(Span::styled("—", theme.muted()))],
        Some(reply) => {
            match &reply.state {
                ReplyState::Streaming => title_spans.push(Span::styled("… ", theme.muted())),
                ReplyState::Done => {
                    for badge in compare_badges(app, case, &reply.text) {
                        let (mark, style) = if badge.pass {
                            ("✓", theme.ok())
                        } else {
                            ("✗", theme.error())
                        };
                        title_spans.push(Span::styled(format!("{} {mark} ", badge.label), style));
                    }
                }
                ReplyState::Failed(e) => {
                    title_spans.push(Span::styled(format!("failed: {e} "), theme.error()))
                }
            }
            reply
                .text
                .lines()
                .map(|l| Line::from(l.to_string()))
                .collect()
        }
    };
    frame.render_widget(
        Paragraph::new(body).wrap(Wrap { trim: false }).block(panel(
            theme,
            Line::from(title_spans),
            false,
        )),
        area,
    );
}
