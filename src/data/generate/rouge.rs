//! ROUGE-L F-measure as self-instruct filters with it: Google's `rouge_score` package with
//! `RougeScorer(["rougeL"], use_stemmer=False)`. Its tokenizer lowercases, turns every run of
//! characters outside `a-z0-9` into a space and splits on spaces, so letters outside ASCII
//! are dropped, as there.

/// The tokens `rouge_score` compares.
pub fn tokens(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_ascii_lowercase() && !c.is_ascii_digit())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// ROUGE-L F1 of two token lists: 2PR/(P+R) with P and R the longest common subsequence over
/// each list's length; 0 when either is empty or nothing is shared.
pub fn rouge_l(a: &[String], b: &[String]) -> f64 {
    let lcs = lcs_len(a, b);
    if lcs == 0 {
        return 0.0;
    }
    let precision = lcs as f64 / a.len() as f64;
    let recall = lcs as f64 / b.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// Length of the longest common subsequence, in one row of the dynamic-programming table.
fn lcs_len(a: &[String], b: &[String]) -> usize {
    let mut row = vec![0usize; b.len() + 1];
    for x in a {
        let mut diagonal = 0;
        for (j, y) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if x == y {
                diagonal + 1
            } else {
                above.max(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}
