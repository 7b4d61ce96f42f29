//! Colours by meaning (title, border, focus, ok, warn, series…), read from TOML. The themes in
//! themes/ are embedded in the binary; a user file is merged over the default, so it only
//! needs the keys it changes. Widgets take every colour from here.

use anyhow::{bail, Context, Result};
use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use std::path::Path;

/// The embedded themes, by the name `--theme` takes.
pub const BUILT_IN: [(&str, &str); 3] = [
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
];

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Theme {
    pub name: String,
    pub ui: UiColors,
    pub status: StatusColors,
    pub chart: ChartColors,
    pub tokens: TokenColors,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiColors {
    pub background: Color,
    pub text: Color,
    pub muted: Color,
    pub title: Color,
    pub border: Color,
    pub focus: Color,
    pub selection: Color,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusColors {
    pub ok: Color,
    pub warn: Color,
    pub error: Color,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartColors {
    pub train_loss: Color,
    pub eval_loss: Color,
    pub learning_rate: Color,
    pub grad_norm: Color,
    pub tokens_per_s: Color,
    pub rewards_chosen: Color,
    pub rewards_rejected: Color,
    pub rewards_margins: Color,
    pub rewards_accuracies: Color,
    pub series: Vec<Color>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenColors {
    pub loss: Color,
    pub masked: Color,
}

impl Default for Theme {
    fn default() -> Self {
        Self::load("default").expect("the embedded default theme parses")
    }
}

impl Theme {
    /// A built-in theme's name, or a path to a TOML file merged over the default.
    pub fn load(name_or_path: &str) -> Result<Self> {
        if let Some((_, text)) = BUILT_IN.iter().find(|(n, _)| *n == name_or_path) {
            return Self::merged(text, name_or_path);
        }
        let path = Path::new(name_or_path);
        if !path.is_file() {
            let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
            bail!(
                "{name_or_path}: no such theme file (built-in themes: {})",
                names.join(", ")
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        Self::merged(&text, &path.display().to_string())
    }

    /// `text` merged over the default theme; `origin` names it in errors.
    pub fn merged(text: &str, origin: &str) -> Result<Self> {
        let mut base: toml::Value =
            toml::from_str(BUILT_IN[0].1).expect("the embedded default theme is TOML");
        let over: toml::Value =
            toml::from_str(text).with_context(|| format!("{origin}: not valid TOML"))?;
        merge(&mut base, over);
        Theme::deserialize(base).with_context(|| format!("{origin}: not a valid theme"))
    }

    pub fn text(&self) -> Style {
        Style::new().fg(self.ui.text).bg(self.ui.background)
    }

    pub fn muted(&self) -> Style {
        Style::new().fg(self.ui.muted)
    }

    pub fn title(&self) -> Style {
        Style::new().fg(self.ui.title).add_modifier(Modifier::BOLD)
    }

    pub fn border(&self, focused: bool) -> Style {
        Style::new().fg(if focused {
            self.ui.focus
        } else {
            self.ui.border
        })
    }

    pub fn selection(&self) -> Style {
        Style::new()
            .bg(self.ui.selection)
            .add_modifier(Modifier::BOLD)
    }

    pub fn ok(&self) -> Style {
        Style::new().fg(self.status.ok)
    }

    pub fn warn(&self) -> Style {
        Style::new().fg(self.status.warn)
    }

    pub fn error(&self) -> Style {
        Style::new().fg(self.status.error)
    }

    /// The n-th colour of the extra series palette, cycling.
    pub fn series(&self, n: usize) -> Color {
        match self.chart.series.len() {
            0 => self.ui.text,
            len => self.chart.series[n % len],
        }
    }
}

/// Tables merge key by key; any other value in `over` replaces the one in `base`.
fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(base), toml::Value::Table(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (slot, value) => *slot = value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_theme_parses_and_names_itself() {
        for (name, _) in BUILT_IN {
            let theme = Theme::load(name).unwrap();
            assert_eq!(theme.name, name);
        }
    }

    #[test]
    fn built_in_themes_differ() {
        let default = Theme::load("default").unwrap();
        assert_ne!(default.ui, Theme::load("light").unwrap().ui);
        assert_ne!(default.ui, Theme::load("high-contrast").unwrap().ui);
    }

    #[test]
    fn a_partial_file_overrides_only_its_keys() {
        let theme = Theme::merged("[ui]\ntitle = \"#ff8800\"\n", "mine.toml").unwrap();
        let default = Theme::default();
        assert_eq!(theme.ui.title, Color::Rgb(0xff, 0x88, 0x00));
        assert_eq!(theme.ui.border, default.ui.border);
        assert_eq!(theme.chart, default.chart);
        assert_eq!(theme.name, "default");
    }

    #[test]
    fn a_bad_colour_or_key_is_named() {
        let err = Theme::merged("[ui]\ntitle = \"blurple\"\n", "mine.toml").unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("mine.toml") && text.contains("title"),
            "{text}"
        );
        let err = Theme::merged("[ui]\ntitel = \"red\"\n", "mine.toml").unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("titel"), "{text}");
    }

    #[test]
    fn a_file_path_loads() {
        let path = std::env::temp_dir().join(format!("tunelab-theme-{}.toml", std::process::id()));
        std::fs::write(&path, "[status]\nok = \"blue\"\n").unwrap();
        let theme = Theme::load(path.to_str().unwrap()).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(theme.status.ok, Color::Blue);
        assert!(Theme::load("no-such-theme").is_err());
    }
}
