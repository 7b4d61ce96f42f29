//! The one key table: what each key does on which screen. Key handling, the bottom key bar and
//! the `?` help overlay are all read from it.

use super::app::Screen;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Help,
    NextTab,
    PrevTab,
    GoTo(Screen),
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    /// Opens or jumps to the highlighted thing.
    Enter,
    /// Closes an overlay, clears a filter.
    Back,
    // Data
    OpenFile,
    Search,
    ToggleTokens,
    FocusErrors,
    MakeData,
    // Training
    PickConfig,
    PickModel,
    StartRun,
    PauseResume,
    StopRun,
    SaveNow,
    NextCharts,
    // Compare
    Generate,
    TypePrompt,
    PickAdapter,
    ToggleConstraint,
    Cancel,
    // Runs
    Rescan,
    ToggleServe,
    // Sweeps
    NextSort,
    NextSweep,
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Global,
    On(Screen),
}

pub struct Binding {
    pub code: KeyCode,
    /// How the key is written in the key bar and the help.
    pub label: &'static str,
    pub action: Action,
    pub scope: Scope,
    pub help: &'static str,
    /// Shown in the bottom key bar (the rest only in the help).
    pub in_bar: bool,
}

const fn bind(
    code: KeyCode,
    label: &'static str,
    action: Action,
    scope: Scope,
    help: &'static str,
    in_bar: bool,
) -> Binding {
    Binding {
        code,
        label,
        action,
        scope,
        help,
        in_bar,
    }
}

use Action as A;
use KeyCode as K;
use Scope::{Global as G, On};
use Screen as S;

pub const KEYS: &[Binding] = &[
    bind(K::Char('q'), "q", A::Quit, G, "quit", true),
    bind(K::Char('?'), "?", A::Help, G, "help", true),
    bind(K::Tab, "Tab", A::NextTab, G, "next screen", false),
    bind(K::BackTab, "S-Tab", A::PrevTab, G, "previous screen", false),
    bind(
        K::Char('1'),
        "1",
        A::GoTo(S::Hardware),
        G,
        "hardware",
        false,
    ),
    bind(K::Char('2'), "2", A::GoTo(S::Data), G, "data", false),
    bind(
        K::Char('3'),
        "3",
        A::GoTo(S::Training),
        G,
        "training",
        false,
    ),
    bind(K::Char('4'), "4", A::GoTo(S::Compare), G, "compare", false),
    bind(K::Char('5'), "5", A::GoTo(S::Runs), G, "runs", false),
    bind(K::Char('6'), "6", A::GoTo(S::Sweeps), G, "sweeps", false),
    bind(K::Up, "↑", A::Up, G, "move up", false),
    bind(K::Char('k'), "k", A::Up, G, "move up", false),
    bind(K::Down, "↓", A::Down, G, "move down", false),
    bind(K::Char('j'), "j", A::Down, G, "move down", false),
    bind(K::PageUp, "PgUp", A::PageUp, G, "page up", false),
    bind(K::PageDown, "PgDn", A::PageDown, G, "page down", false),
    bind(K::Home, "Home", A::Top, G, "first", false),
    bind(K::End, "End", A::Bottom, G, "last", false),
    bind(K::Enter, "Enter", A::Enter, G, "open / choose", false),
    bind(K::Esc, "Esc", A::Back, G, "close / clear", false),
    bind(
        K::Char('o'),
        "o",
        A::OpenFile,
        On(S::Data),
        "open a dataset",
        true,
    ),
    bind(
        K::Char('/'),
        "/",
        A::Search,
        On(S::Data),
        "filter records",
        true,
    ),
    bind(
        K::Char('m'),
        "m",
        A::ToggleTokens,
        On(S::Data),
        "chat / token mask",
        true,
    ),
    bind(
        K::Char('e'),
        "e",
        A::FocusErrors,
        On(S::Data),
        "records / errors",
        true,
    ),
    bind(
        K::Char('g'),
        "g",
        A::MakeData,
        On(S::Data),
        "generate data",
        true,
    ),
    bind(
        K::Char('p'),
        "p",
        A::PickConfig,
        On(S::Training),
        "pick config",
        true,
    ),
    bind(
        K::Char('m'),
        "m",
        A::PickModel,
        On(S::Training),
        "pick model",
        true,
    ),
    bind(
        K::Char('s'),
        "s",
        A::StartRun,
        On(S::Training),
        "start",
        true,
    ),
    bind(
        K::Char(' '),
        "Space",
        A::PauseResume,
        On(S::Training),
        "pause / resume",
        true,
    ),
    bind(
        K::Char('x'),
        "x",
        A::StopRun,
        On(S::Training),
        "stop (saves)",
        true,
    ),
    bind(
        K::Char('w'),
        "w",
        A::SaveNow,
        On(S::Training),
        "save now",
        true,
    ),
    bind(
        K::Char('c'),
        "c",
        A::NextCharts,
        On(S::Training),
        "more charts",
        true,
    ),
    bind(
        K::Char('g'),
        "g",
        A::Generate,
        On(S::Compare),
        "generate",
        true,
    ),
    bind(
        K::Char('i'),
        "i",
        A::TypePrompt,
        On(S::Compare),
        "type a prompt",
        true,
    ),
    bind(
        K::Char('a'),
        "a",
        A::PickAdapter,
        On(S::Compare),
        "pick run",
        true,
    ),
    bind(
        K::Char('f'),
        "f",
        A::ToggleConstraint,
        On(S::Compare),
        "JSON constraint",
        true,
    ),
    bind(K::Char('x'), "x", A::Cancel, On(S::Compare), "cancel", true),
    bind(K::Char('r'), "r", A::Rescan, On(S::Runs), "rescan", true),
    bind(
        K::Char('v'),
        "v",
        A::ToggleServe,
        On(S::Runs),
        "serve / stop",
        true,
    ),
    bind(
        K::Char('a'),
        "a",
        A::PickAdapter,
        On(S::Runs),
        "compare this run",
        true,
    ),
    bind(
        K::Char('s'),
        "s",
        A::NextSort,
        On(S::Sweeps),
        "sort by next column",
        true,
    ),
    bind(
        K::Char('n'),
        "n",
        A::NextSweep,
        On(S::Sweeps),
        "next sweep",
        true,
    ),
    bind(
        K::Char('a'),
        "a",
        A::PickAdapter,
        On(S::Sweeps),
        "compare this trial",
        true,
    ),
    bind(K::Char('r'), "r", A::Rescan, On(S::Sweeps), "rescan", false),
];

/// The action a key press means on `screen`; a screen's own binding wins over a global one.
pub fn action_for(screen: Screen, key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return (key.code == K::Char('c')).then_some(A::Quit);
    }
    let applies = |b: &&Binding| b.code == key.code;
    KEYS.iter()
        .filter(applies)
        .find(|b| b.scope == On(screen))
        .or_else(|| KEYS.iter().filter(applies).find(|b| b.scope == G))
        .map(|b| b.action)
}

/// The bindings shown in the key bar on `screen`: the screen's, then the global ones.
pub fn bar(screen: Screen) -> impl Iterator<Item = &'static Binding> {
    let own = KEYS
        .iter()
        .filter(move |b| b.in_bar && b.scope == On(screen));
    let global = KEYS.iter().filter(|b| b.in_bar && b.scope == G);
    own.chain(global)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn screen_bindings_win_over_global_ones() {
        assert_eq!(
            action_for(Screen::Compare, press(K::Char('x'))),
            Some(A::Cancel)
        );
        assert_eq!(
            action_for(Screen::Training, press(K::Char('x'))),
            Some(A::StopRun)
        );
        assert_eq!(action_for(Screen::Hardware, press(K::Char('x'))), None);
        assert_eq!(
            action_for(Screen::Hardware, press(K::Char('3'))),
            Some(A::GoTo(Screen::Training))
        );
    }

    #[test]
    fn no_key_is_bound_twice_in_one_scope() {
        for (i, a) in KEYS.iter().enumerate() {
            for b in &KEYS[i + 1..] {
                assert!(
                    !(a.code == b.code && a.scope == b.scope),
                    "{} bound twice",
                    a.label
                );
            }
        }
    }

    #[test]
    fn ctrl_c_quits() {
        let key = KeyEvent::new(K::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action_for(Screen::Training, key), Some(A::Quit));
    }
}
