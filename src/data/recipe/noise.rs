//! What makes generated prompts read like typed ones (a typo, all lowercase), and the
//! compaction of a rendered JSON answer.

use rand::Rng;

/// `text` with, by chance, one typo in a word of letters and, by chance, in lowercase.
/// Digits, addresses and other tokens with non-letters are never touched, so the values an
/// answer repeats stay exact.
pub fn apply(rng: &mut impl Rng, text: &str, typos: f64, lowercase: f64) -> String {
    let mut out = text.to_string();
    if typos > 0.0 && rng.random_bool(typos) {
        out = typo(rng, &out);
    }
    if lowercase > 0.0 && rng.random_bool(lowercase) {
        out = out.to_lowercase();
    }
    out
}

fn typo(rng: &mut impl Rng, text: &str) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    let candidates: Vec<usize> = words
        .iter()
        .enumerate()
        .filter(|(_, w)| w.len() >= 5 && w.chars().all(|c| c.is_ascii_alphabetic()))
        .map(|(i, _)| i)
        .collect();
    let Some(&at) = candidates.get(rng.random_range(0..candidates.len().max(1))) else {
        return text.to_string();
    };
    let mut letters: Vec<char> = words[at].chars().collect();
    let i = rng.random_range(1..letters.len() - 1);
    match rng.random_range(0..3) {
        0 => letters.swap(i, i + 1),
        1 => {
            letters.remove(i);
        }
        _ => letters.insert(i, letters[i]),
    }
    let mut changed: String = letters.into_iter().collect();
    if changed == words[at] {
        // Two equal letters swapped: double one instead.
        changed.insert(i, changed.as_bytes()[i] as char);
    }
    let mut out: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    out[at] = changed;
    out.join(" ")
}

/// JSON text without the whitespace between its tokens (strings kept as written), so a
/// template may lay its answer out on several lines and the key order stays the template's.
pub fn compact_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn compaction_keeps_strings_and_order() {
        let text = "{\n  \"b\": \"a \\\" b\",\n  \"a\": [1, 2]\n}";
        assert_eq!(compact_json(text), r#"{"b":"a \" b","a":[1,2]}"#);
    }

    #[test]
    fn a_typo_changes_one_word_of_letters_only() {
        let mut rng = StdRng::seed_from_u64(1);
        let text = "Gaming session for +4915112345678 to 2001:db8::abcd please tomorrow";
        for _ in 0..200 {
            let out = apply(&mut rng, text, 1.0, 0.0);
            assert_ne!(out, text);
            let changed: Vec<(&str, &str)> = text
                .split(' ')
                .zip(out.split(' '))
                .filter(|(a, b)| a != b)
                .collect();
            assert_eq!(changed.len(), 1, "{out}");
            assert!(
                changed[0].0.chars().all(|c| c.is_ascii_alphabetic()),
                "{out}"
            );
        }
        assert_eq!(apply(&mut rng, "ab 12", 1.0, 0.0), "ab 12");
    }
}
