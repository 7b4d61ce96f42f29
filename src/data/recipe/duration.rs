//! Durations as people write them ("20 min", "an hour and a half", "2h15m", "half a day"),
//! each with its length in whole seconds.

use super::words::number_words;
use rand::seq::IndexedRandom;
use rand::Rng;

/// A duration of `seconds` in one of its spellings.
pub struct Duration {
    pub seconds: u64,
    pub text: String,
    /// Which kind of spelling it is, for the coverage report.
    pub style: &'static str,
}

/// A duration between `min` and `max` seconds (inclusive), in a spelling picked at random;
/// None when no spelling fits the bounds after a few tries.
pub fn sample(rng: &mut impl Rng, min: u64, max: u64) -> Option<Duration> {
    (0..64)
        .map(|_| one(rng))
        .find(|d| (min..=max).contains(&d.seconds))
}

fn one(rng: &mut impl Rng) -> Duration {
    match rng.random_range(0..10) {
        0 => seconds(rng),
        1..=3 => minutes(rng),
        4..=5 => hours(rng),
        6..=7 => hours_and_minutes(rng),
        _ => fraction(rng),
    }
}

fn spelled(rng: &mut impl Rng, seconds: u64, forms: &[String], style: &'static str) -> Duration {
    let text = forms.choose(rng).cloned().unwrap_or_default();
    Duration {
        seconds,
        text,
        style,
    }
}

fn plural(n: u64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

fn seconds(rng: &mut impl Rng) -> Duration {
    let n = *[30u64, 45, 60, 90, 120, 180, 240, 300, 600, 900, 3600, 7200]
        .choose(rng)
        .unwrap_or(&90);
    let mut forms = vec![plural(n, "second"), format!("{n} s"), format!("{n} sec")];
    forms.extend(number_words(n).map(|w| format!("{w} seconds")));
    spelled(rng, n, &forms, "seconds")
}

fn minutes(rng: &mut impl Rng) -> Duration {
    let m = if rng.random_bool(0.6) {
        *[5u64, 10, 15, 20, 25, 30, 40, 45, 50, 55, 60, 75, 90, 120]
            .choose(rng)
            .unwrap_or(&10)
    } else {
        rng.random_range(1..=180)
    };
    let mut forms = vec![
        plural(m, "minute"),
        format!("{m} min"),
        format!("{m} mins"),
        format!("{m}m"),
    ];
    forms.extend(number_words(m).map(|w| format!("{w} minutes")));
    spelled(rng, m * 60, &forms, "minutes")
}

fn hours(rng: &mut impl Rng) -> Duration {
    let h = rng.random_range(1..=24u64);
    let mut forms = vec![plural(h, "hour"), format!("{h} hrs"), format!("{h}h")];
    forms.extend(number_words(h).map(|w| {
        if h == 1 {
            "one hour".to_string()
        } else {
            format!("{w} hours")
        }
    }));
    if h == 1 {
        forms.push("an hour".into());
    }
    if h == 24 {
        forms.extend(["a full day".into(), "a whole day".into(), "one day".into()]);
    }
    spelled(rng, h * 3600, &forms, "hours")
}

fn hours_and_minutes(rng: &mut impl Rng) -> Duration {
    let h = rng.random_range(1..=5u64);
    let m = *[5u64, 10, 15, 20, 25, 35, 40, 45, 50]
        .choose(rng)
        .unwrap_or(&15);
    let hours = if h == 1 {
        "1 hour".to_string()
    } else {
        format!("{h} hours")
    };
    let mut forms = vec![
        format!("{hours} and {m} minutes"),
        format!("{hours} {m} minutes"),
        format!("{h}h{m}m"),
        format!("{h}h {m}min"),
        format!("{h} hrs {m} min"),
    ];
    if let (Some(hw), Some(mw)) = (number_words(h), number_words(m)) {
        let hw = if h == 1 { "an".to_string() } else { hw };
        let unit = if h == 1 { "hour" } else { "hours" };
        forms.push(format!("{hw} {unit} and {mw} minutes"));
    }
    spelled(rng, h * 3600 + m * 60, &forms, "hours and minutes")
}

/// Halves and quarters, and the day-long spans.
fn fraction(rng: &mut impl Rng) -> Duration {
    let table: &[(u64, &[&str])] = &[
        (
            900,
            &["a quarter of an hour", "quarter of an hour", "15 minutes"],
        ),
        (
            1800,
            &["half an hour", "a half hour", "30 minutes", "0.5 hours"],
        ),
        (
            2700,
            &["three quarters of an hour", "45 minutes", "0.75 hours"],
        ),
        (
            5400,
            &[
                "an hour and a half",
                "one and a half hours",
                "1.5 hours",
                "1.5 hrs",
                "ninety minutes",
            ],
        ),
        (9000, &["two and a half hours", "2.5 hours", "2.5 hrs"]),
        (12600, &["three and a half hours", "3.5 hours", "3.5 hrs"]),
        (16200, &["four and a half hours", "4.5 hours"]),
        (43200, &["half a day", "12 hours", "twelve hours"]),
        (86400, &["a full day", "a whole day", "24 hours", "one day"]),
    ];
    let (seconds, forms) = table
        .choose(rng)
        .copied()
        .unwrap_or((1800, &["half an hour"]));
    let forms: Vec<String> = forms.iter().map(|s| s.to_string()).collect();
    spelled(rng, seconds, &forms, "fractions and days")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// Reads a spelling back to seconds the way a person would, independently of the tables.
    fn read_back(text: &str) -> Option<u64> {
        let words = [
            ("a quarter of an hour", 900),
            ("quarter of an hour", 900),
            ("half an hour", 1800),
            ("a half hour", 1800),
            ("three quarters of an hour", 2700),
            ("an hour and a half", 5400),
            ("one and a half hours", 5400),
            ("two and a half hours", 9000),
            ("three and a half hours", 12600),
            ("four and a half hours", 16200),
            ("half a day", 43200),
            ("a full day", 86400),
            ("a whole day", 86400),
            ("one day", 86400),
            ("an hour", 3600),
            ("one hour", 3600),
        ];
        if let Some((_, s)) = words.iter().find(|(w, _)| *w == text) {
            return Some(*s);
        }
        // "2h15m" reads as "2 h 15 m": a space wherever digits meet letters.
        let mut spaced = String::new();
        let mut last: Option<char> = None;
        for c in text.chars() {
            if let Some(p) = last {
                if (p.is_ascii_digit() && c.is_alphabetic())
                    || (p.is_alphabetic() && c.is_ascii_digit())
                {
                    spaced.push(' ');
                }
            }
            spaced.push(c);
            last = Some(c);
        }
        let mut total = 0.0;
        let mut number: Option<f64> = None;
        for token in spaced.split_whitespace() {
            if let Ok(n) = token.parse::<f64>() {
                number = Some(n);
                continue;
            }
            if let Some(n) = super::super::words::parse_words(token) {
                number = Some(n as f64);
                continue;
            }
            let unit = match token {
                "second" | "seconds" | "sec" | "s" => 1.0,
                "minute" | "minutes" | "min" | "mins" | "m" => 60.0,
                "hour" | "hours" | "hr" | "hrs" | "h" => 3600.0,
                "and" => continue,
                _ => return None,
            };
            total += number.take()? * unit;
        }
        if number.is_some() {
            return None;
        }
        Some(total as u64)
    }

    #[test]
    fn every_spelling_says_its_seconds() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut checked = 0;
        for _ in 0..3000 {
            let d = sample(&mut rng, 1, 86400).unwrap();
            if let Some(s) = read_back(&d.text) {
                assert_eq!(s, d.seconds, "{:?}", d.text);
                checked += 1;
            }
        }
        assert!(checked > 2900, "only {checked} spellings read back");
        let bounded = sample(&mut rng, 60, 600).unwrap();
        assert!((60..=600).contains(&bounded.seconds));
    }
}
