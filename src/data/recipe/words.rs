//! Numbers in English words, up to one hundred ("seven", "forty-five").

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

/// `n` in words, for 0 to 100; None above.
pub fn number_words(n: u64) -> Option<String> {
    match n {
        0..=19 => Some(ONES[n as usize].to_string()),
        20..=99 => {
            let (tens, ones) = (TENS[(n / 10) as usize], n % 10);
            Some(if ones == 0 {
                tens.to_string()
            } else {
                format!("{tens}-{}", ONES[ones as usize])
            })
        }
        100 => Some("one hundred".into()),
        _ => None,
    }
}

/// The number a single word (or hyphenated pair) of `number_words` stands for.
#[cfg(test)]
pub fn parse_words(word: &str) -> Option<u64> {
    (0..=99).find(|&n| number_words(n).as_deref() == Some(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_read_as_a_person_writes_them() {
        assert_eq!(number_words(7).unwrap(), "seven");
        assert_eq!(number_words(45).unwrap(), "forty-five");
        assert_eq!(number_words(90).unwrap(), "ninety");
        assert_eq!(number_words(13).unwrap(), "thirteen");
        assert_eq!(number_words(101), None);
        assert_eq!(parse_words("forty-five"), Some(45));
    }
}
