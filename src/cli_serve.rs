//! `tunelab serve`: its command-line flags, read into the server's options.

use anyhow::{bail, Result};
use std::path::PathBuf;
use tunelab::device::DeviceChoice;
use tunelab::serve::{serve, Limits, ServeOptions};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// A GGUF file, a Hugging Face folder, an org/name Hub repo id, or a bundled model (gemma3-270m) (default: SmolLM2-135M-Instruct Q4_1).
    /// Served under its own name (file stem, folder name or repo id) and as "base".
    #[arg(long)]
    model: Option<String>,
    /// NAME=DIR: a PEFT adapter folder served as model NAME, on the same copy of the base; repeatable.
    #[arg(long = "adapter", value_name = "NAME=DIR", value_parser = parse_adapter)]
    adapters: Vec<(String, PathBuf)>,
    /// The address to listen on; the default takes connections from this machine only.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// 0 picks a free port (printed on stderr).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Require `Authorization: Bearer KEY` on every request but /health (default: the
    /// TUNELAB_API_KEY environment variable, which keeps the key out of the process list).
    #[arg(long)]
    api_key: Option<String>,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    device: DeviceChoice,
    /// The most rows (replies) generated together in one batch.
    #[arg(long, default_value_t = 8)]
    max_batch: usize,
    /// The most requests waiting for the model; more are answered 429.
    #[arg(long, default_value_t = 64)]
    max_queue: usize,
    /// The largest max_tokens a request may ask for (also the default).
    #[arg(long, default_value_t = 2048)]
    max_tokens_limit: usize,
    /// The largest request body: bytes, or with a unit (KiB, MiB, KB, MB).
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    max_body_bytes: usize,
}

fn parse_adapter(arg: &str) -> Result<(String, PathBuf)> {
    match arg.split_once('=') {
        Some((name, dir)) if !name.trim().is_empty() && !dir.is_empty() => {
            Ok((name.trim().to_string(), PathBuf::from(dir)))
        }
        _ => bail!("expected NAME=DIR (a name for the adapter, then its folder)"),
    }
}

fn parse_size(arg: &str) -> Result<usize> {
    let arg = arg.trim();
    let split = arg.find(|c: char| !c.is_ascii_digit()).unwrap_or(arg.len());
    let (digits, unit) = arg.split_at(split);
    let number: usize = digits
        .parse()
        .map_err(|_| anyhow::anyhow!("expected a number of bytes, such as 1048576 or 1MiB"))?;
    let scale: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => bail!("unknown unit {other:?} (use B, KB, KiB, MB, MiB, GB or GiB)"),
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| anyhow::anyhow!("{arg} is too large"))
}

pub fn run_serve(args: ServeArgs, progress: &mut dyn FnMut(&str)) -> Result<()> {
    let options = ServeOptions {
        model: args.model,
        adapters: args.adapters,
        host: args.host,
        port: args.port,
        api_key: args
            .api_key
            .or_else(|| std::env::var("TUNELAB_API_KEY").ok()),
        device: args.device,
        limits: Limits {
            max_batch: args.max_batch,
            max_queue: args.max_queue,
            max_tokens: args.max_tokens_limit,
            max_body_bytes: args.max_body_bytes,
        },
    };
    serve(options, progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_adapters_parse() {
        assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("2 KB").unwrap(), 2000);
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("3 parsecs").is_err());
        assert_eq!(
            parse_adapter("qod=runs/a=b").unwrap(),
            ("qod".into(), PathBuf::from("runs/a=b"))
        );
        assert!(parse_adapter("=dir").is_err());
        assert!(parse_adapter("nodir").is_err());
    }
}
