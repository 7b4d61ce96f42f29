//! Mobile numbers of many countries, as E.164 (the value an API wants) and as people write
//! them: spaced, dashed, with 00 or (+cc), or in the national form with the country named.
//! North American numbers use 555-01xx and UK numbers 07700 900xxx (the ranges set aside
//! for fiction).

use rand::seq::IndexedRandom;
use rand::Rng;

struct Country {
    code: &'static str,
    name: &'static str,
    /// The national trunk prefix ("0" in most of Europe), empty where there is none.
    trunk: &'static str,
    /// Leading digits of mobile numbers.
    prefixes: &'static [&'static str],
    /// Digits of the national significant number.
    digits: usize,
}

const COUNTRIES: &[Country] = &[
    c(
        "49",
        "Germany",
        "0",
        &["151", "152", "157", "160", "170", "176"],
        11,
    ),
    c("44", "UK", "0", &["7700900"], 10),
    c(
        "1",
        "US",
        "",
        &["206555", "312555", "415555", "646555", "512555"],
        10,
    ),
    c("1", "Canada", "", &["416555", "604555", "514555"], 10),
    c("33", "France", "0", &["6", "7"], 9),
    c("34", "Spain", "", &["6", "7"], 9),
    c("39", "Italy", "", &["32", "33", "34", "35"], 10),
    c("46", "Sweden", "0", &["70", "72", "73", "76"], 9),
    c("47", "Norway", "", &["4", "9"], 8),
    c("358", "Finland", "0", &["40", "50"], 9),
    c("353", "Ireland", "0", &["83", "85", "86", "87"], 9),
    c("41", "Switzerland", "0", &["76", "77", "78", "79"], 9),
    c("31", "the Netherlands", "0", &["6"], 9),
    c("32", "Belgium", "0", &["47", "48", "49"], 9),
    c("43", "Austria", "0", &["660", "664", "676"], 10),
    c("45", "Denmark", "", &["2", "3", "4"], 8),
    c("48", "Poland", "", &["5", "6", "7"], 9),
    c("351", "Portugal", "", &["91", "92", "93", "96"], 9),
    c("30", "Greece", "", &["69"], 10),
    c("90", "Turkey", "0", &["5"], 10),
    c("61", "Australia", "0", &["4"], 9),
    c("64", "New Zealand", "0", &["21", "22", "27"], 9),
    c("81", "Japan", "0", &["70", "80", "90"], 10),
    c("82", "South Korea", "0", &["10"], 10),
    c("91", "India", "0", &["9", "8", "7"], 10),
    c("63", "the Philippines", "0", &["9"], 10),
    c("66", "Thailand", "0", &["8", "9"], 9),
    c("65", "Singapore", "", &["8", "9"], 8),
    c("27", "South Africa", "0", &["6", "7", "8"], 9),
    c("234", "Nigeria", "0", &["80", "81", "70"], 10),
    c("212", "Morocco", "0", &["6"], 9),
    c("20", "Egypt", "0", &["10", "11", "12"], 10),
    c("254", "Kenya", "0", &["7"], 9),
    c("55", "Brazil", "0", &["11"], 11),
    c("52", "Mexico", "", &["55"], 10),
    c("57", "Colombia", "", &["3"], 10),
    c("971", "the UAE", "0", &["50", "52", "55"], 9),
    c("972", "Israel", "0", &["5"], 9),
];

const fn c(
    code: &'static str,
    name: &'static str,
    trunk: &'static str,
    prefixes: &'static [&'static str],
    digits: usize,
) -> Country {
    Country {
        code,
        name,
        trunk,
        prefixes,
        digits,
    }
}

/// A number in one of its spellings, with the spelling's name (for the coverage report).
pub struct Phone {
    pub e164: String,
    pub text: String,
    pub style: &'static str,
    pub country: &'static str,
}

pub fn sample(rng: &mut impl Rng) -> Phone {
    let country = COUNTRIES.choose(rng).unwrap_or(&COUNTRIES[0]);
    let prefix = country.prefixes.choose(rng).copied().unwrap_or("");
    let mut national = prefix.to_string();
    while national.len() < country.digits {
        national.push(char::from(b'0' + rng.random_range(0..10u8)));
    }
    let e164 = format!("+{}{national}", country.code);
    let (style, text) = spell(rng, country, &national);
    Phone {
        e164,
        text,
        style,
        country: country.name,
    }
}

fn spell(rng: &mut impl Rng, country: &Country, national: &str) -> (&'static str, String) {
    let cc = country.code;
    let spaced = group(national, rng.random_bool(0.5));
    match rng.random_range(0..7) {
        0 => ("e164", format!("+{cc}{national}")),
        1 => ("spaced", format!("+{cc} {spaced}")),
        2 => ("dashed", format!("+{cc}-{}", spaced.replace(' ', "-"))),
        3 => ("00", format!("00{cc} {spaced}")),
        4 => ("parenthesised", format!("(+{cc}) {spaced}")),
        5 if cc == "1" => (
            "national",
            format!(
                "({}) {}-{} ({})",
                &national[..3],
                &national[3..6],
                &national[6..],
                country.name
            ),
        ),
        5 => (
            "national",
            format!("{}{} ({})", country.trunk, spaced, country.name),
        ),
        _ => ("e164 spaced", format!("+{cc} {}", group(national, false))),
    }
}

/// The digits in groups of three (and a last one of up to four), or of two after the first.
fn group(digits: &str, pairs: bool) -> String {
    let mut out = Vec::new();
    let mut rest = digits;
    let first = 3.min(rest.len());
    out.push(&rest[..first]);
    rest = &rest[first..];
    let size = if pairs { 2 } else { 3 };
    while rest.len() > size + 1 {
        out.push(&rest[..size]);
        rest = &rest[size..];
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn every_spelling_holds_the_e164_digits() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut styles = std::collections::BTreeSet::new();
        for _ in 0..2000 {
            let p = sample(&mut rng);
            assert!(p.e164.starts_with('+') && p.e164[1..].bytes().all(|b| b.is_ascii_digit()));
            assert!((9..=16).contains(&p.e164.len()), "{}", p.e164);
            let digits: String = p.text.chars().filter(char::is_ascii_digit).collect();
            let national = p.e164[1..].to_string();
            // International forms carry every digit; national ones the trunk and the number.
            assert!(
                digits.ends_with(&national) || national.ends_with(digits.trim_start_matches('0')),
                "{} vs {}",
                p.text,
                p.e164
            );
            styles.insert(p.style);
        }
        assert_eq!(styles.len(), 7, "{styles:?}");
    }
}
