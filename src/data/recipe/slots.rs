//! A recipe's typed slots: each draws a value per record, exposed to the templates as a table
//! (`phone.value` for the answer, `phone.text` for the prompt, a choice's own fields), and a
//! coverage key saying which value or spelling was drawn.

use super::{address, duration, phone};
use rand::seq::IndexedRandom;
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SlotKind {
    /// One of `values`: a string, or a table whose `text` (a string, or a list of spellings
    /// of which one is drawn) goes into the prompt and whose other fields (labels) into the
    /// answer.
    Choice {
        values: Vec<Value>,
    },
    /// A whole number in [min, max].
    Number {
        min: i64,
        max: i64,
    },
    /// A length of time between min and max seconds: `.seconds`, `.text`.
    Duration {
        #[serde(default = "one")]
        min: u64,
        #[serde(default = "one_day")]
        max: u64,
    },
    /// A mobile number: `.value` (E.164), `.text` (a spelling), `.country`.
    Phone,
    /// `.value` = `.text`; with probability `cidr` a network in CIDR form.
    Ipv4 {
        #[serde(default)]
        cidr: f64,
    },
    Ipv6,
    /// A calendar date in `year`: `.value` (ISO 8601), `.text` (a spelling).
    Date {
        #[serde(default = "this_year")]
        year: i32,
    },
}

fn one() -> u64 {
    1
}
fn one_day() -> u64 {
    86_400
}
fn this_year() -> i32 {
    2026
}

#[derive(Debug, Clone, Deserialize)]
pub struct Slot {
    #[serde(flatten)]
    pub kind: SlotKind,
    /// The chance that the slot is absent from a record (undefined in the templates).
    #[serde(default)]
    pub optional: f64,
}

impl Slot {
    /// Checks what serde cannot: bounds and choices.
    pub fn check(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.optional) {
            return Err(format!("optional must be in [0, 1], got {}", self.optional));
        }
        match &self.kind {
            SlotKind::Choice { values } if values.is_empty() => Err("values is empty".into()),
            SlotKind::Choice { values } => values.iter().try_for_each(check_choice),
            SlotKind::Number { min, max } if min > max => Err(format!("min {min} > max {max}")),
            SlotKind::Duration { min, max } if min > max || *max == 0 => {
                Err(format!("min {min} > max {max}"))
            }
            SlotKind::Ipv4 { cidr } if !(0.0..=1.0).contains(cidr) => {
                Err(format!("cidr must be in [0, 1], got {cidr}"))
            }
            _ => Ok(()),
        }
    }

    /// A drawn value and its coverage key, or None when the slot is left out.
    pub fn draw(&self, rng: &mut impl Rng) -> Option<(Value, String)> {
        if self.optional > 0.0 && rng.random_bool(self.optional) {
            return None;
        }
        Some(match &self.kind {
            SlotKind::Choice { values } => choice(rng, values),
            SlotKind::Number { min, max } => {
                let n = rng.random_range(*min..=*max);
                (json!({"value": n, "text": n.to_string()}), "number".into())
            }
            SlotKind::Duration { min, max } => {
                let d = duration::sample(rng, *min, *max)
                    .unwrap_or_else(|| exact_seconds(rng, *min, *max));
                (
                    json!({"seconds": d.seconds, "text": d.text}),
                    d.style.into(),
                )
            }
            SlotKind::Phone => {
                let p = phone::sample(rng);
                let v = json!({"value": p.e164, "text": p.text, "country": p.country});
                (v, p.style.into())
            }
            SlotKind::Ipv4 { cidr } => {
                let a = address::ipv4(rng, *cidr);
                let key = if a.contains('/') { "cidr" } else { "address" };
                (json!({"value": a, "text": a}), key.into())
            }
            SlotKind::Ipv6 => {
                let a = address::ipv6(rng);
                (json!({"value": a, "text": a}), "address".into())
            }
            SlotKind::Date { year } => date(rng, *year),
        })
    }
}

/// A duration the spellings cannot reach (odd bounds): plain seconds.
fn exact_seconds(rng: &mut impl Rng, min: u64, max: u64) -> duration::Duration {
    let seconds = rng.random_range(min..=max);
    duration::Duration {
        seconds,
        text: format!("{seconds} seconds"),
        style: "seconds",
    }
}

fn check_choice(value: &Value) -> Result<(), String> {
    match value {
        Value::String(_) => Ok(()),
        Value::Object(table) => match table.get("text") {
            Some(Value::String(_)) => Ok(()),
            Some(Value::Array(list)) if !list.is_empty() && list.iter().all(Value::is_string) => {
                Ok(())
            }
            _ => Err(format!(
                "a value's text must be a string or a list of strings: {value}"
            )),
        },
        other => Err(format!("a value must be a string or a table: {other}")),
    }
}

fn choice(rng: &mut impl Rng, values: &[Value]) -> (Value, String) {
    let picked = values.choose(rng).cloned().unwrap_or(Value::Null);
    let mut table = match picked {
        Value::Object(table) => table,
        other => Map::from_iter([("text".to_string(), other)]),
    };
    let spellings = match table.get("text") {
        Some(Value::Array(list)) => list.clone(),
        Some(one) => vec![one.clone()],
        None => vec![],
    };
    let key = spellings
        .first()
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if let Some(text) = spellings.choose(rng) {
        table.insert("text".into(), text.clone());
    }
    (Value::Object(table), key)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn date(rng: &mut impl Rng, year: i32) -> (Value, String) {
    let month = rng.random_range(1..=12usize);
    let days = match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let day = rng.random_range(1..=days);
    let name = MONTHS[month - 1];
    let iso = format!("{year:04}-{month:02}-{day:02}");
    let spellings = [
        ("iso", iso.clone()),
        ("day month year", format!("{day} {name} {year}")),
        ("month day, year", format!("{name} {day}, {year}")),
        ("dd/mm/yyyy", format!("{day:02}/{month:02}/{year}")),
    ];
    let (style, text) = spellings.choose(rng).cloned().unwrap_or_default();
    (json!({"value": iso, "text": text}), style.into())
}
