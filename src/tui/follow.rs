//! Following a run another process writes: its events.jsonl is read from the start and then
//! tailed, so a run started headless (over SSH, say) can be watched, left and rejoined.

use crate::train::events::TrainEvent;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the file is checked for new lines.
const POLL: Duration = Duration::from_millis(200);

/// Reads the complete lines appended to a file since the last call.
pub struct Tail {
    path: PathBuf,
    offset: u64,
    /// A line read without its newline yet (the writer is mid-line).
    partial: Vec<u8>,
    line_number: usize,
}

impl Tail {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            offset: 0,
            partial: Vec::new(),
            line_number: 0,
        }
    }

    /// New events, or a problem naming the file and line. A missing file is not a problem
    /// (the run may not have started yet).
    pub fn poll(&mut self) -> Vec<Result<TrainEvent, String>> {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return vec![];
        };
        let len = file.metadata().map_or(0, |m| m.len());
        if len < self.offset {
            // Truncated or replaced: read it again from the start.
            *self = Self::new(&self.path);
        }
        let mut bytes = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err() || file.read_to_end(&mut bytes).is_err()
        {
            return vec![];
        }
        self.offset += bytes.len() as u64;
        self.partial.extend(bytes);
        let mut out = Vec::new();
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let bytes: Vec<u8> = self.partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&bytes);
            self.line_number += 1;
            if line.trim().is_empty() {
                continue;
            }
            out.push(serde_json::from_str(&line).map_err(|e| {
                format!(
                    "{}:{}: not an event ({e})",
                    self.path.display(),
                    self.line_number
                )
            }));
        }
        out
    }
}

/// Tails `dir/events.jsonl` on a thread until `stop` is set or `send` fails.
pub fn spawn(
    dir: &Path,
    stop: Arc<AtomicBool>,
    mut send: impl FnMut(Result<TrainEvent, String>) -> bool + Send + 'static,
) {
    let mut tail = Tail::new(&dir.join("events.jsonl"));
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            for item in tail.poll() {
                if !send(item) {
                    return;
                }
            }
            std::thread::sleep(POLL);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_only_complete_new_lines() {
        let path = std::env::temp_dir().join(format!("tunelab-tail-{}.jsonl", std::process::id()));
        std::fs::write(&path, "").unwrap();
        let mut tail = Tail::new(&path);
        assert!(tail.poll().is_empty());
        let step = r#"{"event":"checkpoint","step":2,"path":"p"}"#;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        write!(file, "{step}\n{}", &step[..10]).unwrap();
        file.flush().unwrap();
        let first = tail.poll();
        assert_eq!(first.len(), 1);
        assert!(matches!(
            first[0],
            Ok(TrainEvent::Checkpoint { step: 2, .. })
        ));
        writeln!(file, "{}", &step[10..]).unwrap();
        writeln!(file, "oops").unwrap();
        file.flush().unwrap();
        let second = tail.poll();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(second.len(), 2);
        assert!(second[0].is_ok());
        let problem = second[1].as_ref().unwrap_err();
        assert!(problem.contains(".jsonl:3: not an event"), "{problem}");
    }
}
