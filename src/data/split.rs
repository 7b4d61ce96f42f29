//! Splitting a data file into train and eval files by a seeded shuffle. Records that train the
//! same (exact duplicates) always land on the same side, so eval never holds a copy of a train
//! record; each side keeps the file's order and its lines verbatim.

use super::dataset::Dataset;
use super::jsonl::{read_items, refuse_existing, write_new_jsonl};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Which records go where, as indices into the dataset, each side in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<usize>,
    pub eval: Vec<usize>,
}

/// How many records eval should hold, from `--eval`: a fraction below 1, or a whole count.
pub fn eval_count(eval: f64, records: usize) -> Result<usize> {
    if records < 2 {
        bail!("{records} records cannot be split: each side needs at least one");
    }
    let count = if eval > 0.0 && eval < 1.0 {
        // At least one record each side: a fraction of a small file still means "some".
        ((records as f64 * eval).round() as usize).clamp(1, records - 1)
    } else if eval >= 1.0 && eval.fract() == 0.0 {
        eval as usize
    } else {
        bail!("--eval must be a fraction between 0 and 1 (0.1) or a whole count (50), not {eval}");
    };
    if count >= records {
        bail!("--eval {eval} leaves no training record out of {records}");
    }
    Ok(count)
}

/// Splits records whose duplicate-keys are `keys`, putting about `eval` of them in eval.
/// Groups of identical records are shuffled with `seed` and taken into eval while they fit.
pub fn split(keys: &[String], eval: usize, seed: u64) -> Result<Split> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut group_of: HashMap<&str, usize> = HashMap::new();
    for (i, key) in keys.iter().enumerate() {
        let g = *group_of.entry(key.as_str()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    let mut order: Vec<usize> = (0..groups.len()).collect();
    shuffle(&mut order, seed);
    let mut in_eval = vec![false; keys.len()];
    let mut taken = 0;
    for g in order {
        if taken + groups[g].len() <= eval {
            taken += groups[g].len();
            for &i in &groups[g] {
                in_eval[i] = true;
            }
        }
    }
    if taken == 0 || taken == keys.len() {
        bail!(
            "cannot split {} records into {eval} for eval without separating duplicates",
            keys.len()
        );
    }
    let (eval, train): (Vec<usize>, Vec<usize>) = (0..keys.len()).partition(|&i| in_eval[i]);
    Ok(Split { train, eval })
}

/// Fisher–Yates with SplitMix64: written out so a seed gives the same split on every build,
/// whatever version of a random-number crate is linked.
fn shuffle(items: &mut [usize], seed: u64) {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// `IN`'s stem + `.train.jsonl` / `.eval.jsonl`, beside it.
pub fn default_outputs(input: &Path) -> (PathBuf, PathBuf) {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    (
        input.with_file_name(format!("{stem}.train.jsonl")),
        input.with_file_name(format!("{stem}.eval.jsonl")),
    )
}

/// Each record's text as written: its line of a JSONL file, or, for a `.json` array, the
/// element as one line of JSON (an array's elements need not sit on lines of their own).
pub fn record_texts(path: &Path, lines: &[usize]) -> Result<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&bytes);
    if bytes.trim_ascii_start().starts_with(b"[") {
        return read_items(path)?
            .into_iter()
            .map(|(line, value)| {
                let value = value.map_err(|e| anyhow::anyhow!("{}:{line}: {e}", path.display()))?;
                Ok(serde_json::to_vec(&value)?)
            })
            .collect();
    }
    let file_lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    lines
        .iter()
        .map(|&line| {
            file_lines
                .get(line - 1)
                .map(|l| l.to_vec())
                .with_context(|| format!("{}:{line}: no such line", path.display()))
        })
        .collect()
}

/// Splits `ds` and writes both sides as new files; neither is written
/// when either exists.
pub fn split_file(ds: &Dataset, eval: f64, seed: u64, outputs: (&Path, &Path)) -> Result<Split> {
    let (train_out, eval_out) = outputs;
    if train_out == eval_out {
        bail!(
            "{}: the train and eval outputs are the same file",
            train_out.display()
        );
    }
    refuse_existing(train_out)?;
    refuse_existing(eval_out)?;
    let count = eval_count(eval, ds.len())?;
    let plan = split(&ds.record_keys(), count, seed)?;
    let texts = record_texts(ds.path(), ds.lines())?;
    let pick = |indices: &[usize]| -> Vec<&[u8]> {
        indices.iter().map(|&i| texts[i].as_slice()).collect()
    };
    write_new_jsonl(train_out, &pick(&plan.train))?;
    if let Err(e) = write_new_jsonl(eval_out, &pick(&plan.eval)) {
        // Half a split is worse than none: the train file alone would look complete.
        let _ = std::fs::remove_file(train_out);
        return Err(e);
    }
    Ok(plan)
}
