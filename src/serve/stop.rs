//! Stop sequences (`stop`): the reply ends before the first of them, and text is held back
//! while it could still be the start of one, so a stream never shows part of a stop sequence.

#[derive(Debug, Clone, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    /// Text received but not yet released: it may begin a stop sequence.
    pending: String,
    stopped: bool,
}

/// What one piece of text releases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released {
    pub text: String,
    /// A stop sequence was found: the reply ends after `text`.
    pub stopped: bool,
}

impl StopMatcher {
    pub fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            ..Self::default()
        }
    }

    pub fn stopped(&self) -> bool {
        self.stopped
    }

    pub fn feed(&mut self, piece: &str) -> Released {
        if self.stopped {
            return Released {
                text: String::new(),
                stopped: true,
            };
        }
        self.pending.push_str(piece);
        let first = self
            .stops
            .iter()
            .filter_map(|s| self.pending.find(s.as_str()))
            .min();
        if let Some(at) = first {
            self.stopped = true;
            let text = self.pending[..at].to_string();
            self.pending.clear();
            return Released {
                text,
                stopped: true,
            };
        }
        let keep = self.held_back();
        let text = self.pending[..self.pending.len() - keep].to_string();
        self.pending.drain(..self.pending.len() - keep);
        Released {
            text,
            stopped: false,
        }
    }

    /// The text still held back, once the reply has ended for another reason.
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }

    /// Bytes at the end of `pending` that are a proper prefix of some stop sequence.
    fn held_back(&self) -> usize {
        let longest = self.stops.iter().map(String::len).max().unwrap_or(0);
        let most = longest.saturating_sub(1).min(self.pending.len());
        (1..=most)
            .rev()
            .find(|&k| {
                let start = self.pending.len() - k;
                self.pending.is_char_boundary(start)
                    && self
                        .stops
                        .iter()
                        .any(|s| s.starts_with(&self.pending[start..]))
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut m = StopMatcher::new(&stops);
        let mut out = String::new();
        for p in pieces {
            let r = m.feed(p);
            out.push_str(&r.text);
            if r.stopped {
                return (out, true);
            }
        }
        out.push_str(&m.flush());
        (out, false)
    }

    #[test]
    fn stops_before_a_sequence_split_across_pieces() {
        assert_eq!(
            run(&["\n\n"], &["Hello", "\n", "\nWorld"]),
            ("Hello".into(), true)
        );
        assert_eq!(run(&["END"], &["abE", "N", "Dzz"]), ("ab".into(), true));
    }

    #[test]
    fn a_near_miss_is_released_whole() {
        assert_eq!(run(&["END"], &["abE", "Nx", "y"]), ("abENxy".into(), false));
        assert_eq!(run(&["END"], &["abEN"]), ("abEN".into(), false));
    }

    #[test]
    fn the_earliest_of_several_wins_and_empty_ones_are_ignored() {
        assert_eq!(run(&["", "c", "ab"], &["xxabc"]), ("xx".into(), true));
        assert_eq!(run(&[], &["a", "b"]), ("ab".into(), false));
    }

    #[test]
    fn held_text_is_cut_on_character_boundaries() {
        assert_eq!(run(&["éa"], &["xé", "b"]), ("xéb".into(), false));
        assert_eq!(run(&["éa"], &["xé", "a"]), ("x".into(), true));
    }

    #[test]
    fn nothing_is_released_while_a_prefix_may_grow() {
        let mut m = StopMatcher::new(&["STOP".to_string()]);
        assert_eq!(m.feed("hi ST").text, "hi ");
        assert_eq!(m.feed("O").text, "");
        assert!(m.feed("P").stopped);
    }
}
