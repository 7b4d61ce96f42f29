//! The event loop: one task selecting over terminal input, background results and a frame
//! tick. Input is drawn at once; background results are drawn at the next tick, so a stream
//! of tokens or steps costs at most one frame per tick. The terminal is restored on every
//! exit, a panic included.

use super::app::{App, Msg, Opening};
use super::engine::Engine;
use super::theme::Theme;
use super::view;
use anyhow::Result;
use crossterm::event::{
    DisableMouseCapture, EnableMouseCapture, Event, EventStream, MouseEventKind,
};
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use crossterm::{cursor, execute};
use futures_util::StreamExt;
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use std::io::Stdout;
use std::time::Duration;

/// How often background changes are drawn.
const FRAME: Duration = Duration::from_millis(50);

/// Opens the workbench and runs it until the user quits.
pub fn run(theme: Theme, opening: Opening) -> Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "the workbench needs a terminal, and stdin or stdout is not one; without one, \
             run `tunelab train --config FILE` (events as JSON lines with --json)"
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let mut terminal = TerminalGuard::enter()?;
    let result = runtime.block_on(event_loop(&mut terminal.terminal, theme, opening));
    drop(terminal);
    result
}

async fn event_loop(
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
    theme: Theme,
    opening: Opening,
) -> Result<()> {
    let (out, mut inbox) = tokio::sync::mpsc::unbounded_channel();
    let mut engine = Engine::start(out)?;
    let size = terminal.size()?;
    let mut app = App::new(theme, (size.width, size.height));
    for effect in app.start(opening) {
        engine.run(effect);
    }
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(FRAME);
    let mut dirty = true;
    while !app.quit {
        let msg = tokio::select! {
            event = input.next() => match event {
                Some(Ok(Event::Key(key))) => Msg::Key(key),
                Some(Ok(Event::Mouse(mouse))) => {
                    if matches!(mouse.kind, MouseEventKind::Moved | MouseEventKind::Drag(_)) {
                        continue;
                    }
                    Msg::Mouse(mouse)
                }
                Some(Ok(Event::Resize(w, h))) => Msg::Resize(w, h),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => break,
            },
            Some(msg) = inbox.recv() => {
                for effect in app.update(msg) {
                    engine.run(effect);
                }
                dirty = true;
                continue;
            }
            _ = tick.tick() => {
                if dirty {
                    terminal.draw(|frame| view::render(&app, frame))?;
                    dirty = false;
                }
                continue;
            }
        };
        for effect in app.update(msg) {
            engine.run(effect);
        }
        terminal.draw(|frame| view::render(&app, frame))?;
        dirty = false;
    }
    Ok(())
}

/// The terminal in raw mode on the alternate screen with mouse capture; dropping it (or a
/// panic) puts it back.
struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    fn enter() -> Result<Self> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // The trainer thread catches its own panics and reports them as a failed run;
            // printing one here would tear through the screen.
            if std::thread::current().name() == Some(crate::train::trainer::THREAD_NAME) {
                return;
            }
            restore();
            previous(info);
        }));
        enable_raw_mode()?;
        let mut stdout = std::io::stdout();
        if let Err(e) = execute!(stdout, EnterAlternateScreen, EnableMouseCapture) {
            restore();
            return Err(e.into());
        }
        Ok(Self {
            terminal: Terminal::new(CrosstermBackend::new(stdout))?,
        })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        cursor::Show
    );
}
