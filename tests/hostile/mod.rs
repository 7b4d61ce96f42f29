//! The hostile GGUF set: files a user (or an attacker) may hand tunelab, each of which must
//! end in a clear error and a non-zero exit, never a panic. `write_set(dir)` writes them;
//! every entry names the reason the error must give.
#![allow(dead_code)]

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use std::path::{Path, PathBuf};

pub struct Hostile {
    pub name: &'static str,
    pub path: PathBuf,
    /// Text the error must contain.
    pub reason: &'static str,
}

const GGUF_MAGIC: u32 = 0x4655_4747;
const TYPE_U32: u32 = 4;
const TYPE_F32: u32 = 0;
const TYPE_F16: u32 = 1;

/// The files that need no model: a header with `general.alignment = 0` (candle 0.11 divides
/// by it), a tensor relabelled from F32 to F16, a file cut inside its tensor data, and bytes
/// that are not GGUF at all.
pub fn write_small_set(dir: &Path) -> Vec<Hostile> {
    std::fs::create_dir_all(dir).unwrap();
    let mut out = Vec::new();
    let mut add = |name: &'static str, bytes: Vec<u8>, reason: &'static str| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        out.push(Hostile { name, path, reason });
    };
    add(
        "alignment_zero.gguf",
        alignment_zero(),
        "general.alignment is 0",
    );
    let valid = two_tensors();
    add(
        "relabelled_dtype.gguf",
        relabel(&valid, "a.weight"),
        "relabelled?",
    );
    let cut = valid.len() - 100;
    add("truncated.gguf", valid[..cut].to_vec(), "truncated file");
    add(
        "not_gguf.gguf",
        b"this is not a model\n".to_vec(),
        "not a valid GGUF file",
    );
    out
}

/// The default model with an empty chat template: it loads, and every prompt would render
/// as nothing.
pub fn write_empty_template(default_gguf: &Path, dir: &Path) -> Hostile {
    let mut file = std::fs::File::open(default_gguf).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let tensors: Vec<(&str, QTensor)> = names
        .iter()
        .map(|n| {
            let t = content.tensor(&mut file, n, &Device::Cpu).unwrap();
            (n.as_str(), t)
        })
        .collect();
    let empty = gguf_file::Value::String(String::new());
    let metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| {
            if k == "tokenizer.chat_template" {
                (k.as_str(), &empty)
            } else {
                (k.as_str(), v)
            }
        })
        .collect();
    let path = dir.join("empty_chat_template.gguf");
    let mut out = std::fs::File::create(&path).unwrap();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    gguf_file::write(&mut out, &metadata, &refs).unwrap();
    Hostile {
        name: "empty_chat_template.gguf",
        path,
        reason: "chat template is empty",
    }
}

fn alignment_zero() -> Vec<u8> {
    let key = "general.alignment";
    let mut out = Vec::new();
    out.extend(GGUF_MAGIC.to_le_bytes());
    out.extend(3u32.to_le_bytes());
    out.extend(0u64.to_le_bytes()); // tensors
    out.extend(1u64.to_le_bytes()); // metadata entries
    out.extend((key.len() as u64).to_le_bytes());
    out.extend(key.as_bytes());
    out.extend(TYPE_U32.to_le_bytes());
    out.extend(0u32.to_le_bytes());
    out
}

/// A valid GGUF with two F32 tensors of 64 values each.
fn two_tensors() -> Vec<u8> {
    let t = |seed: f32| {
        let values: Vec<f32> = (0..64).map(|i| seed + i as f32).collect();
        let tensor = Tensor::from_vec(values, 64, &Device::Cpu).unwrap();
        QTensor::quantize(&tensor, GgmlDType::F32).unwrap()
    };
    let (a, b) = (t(0.0), t(100.0));
    let name = gguf_file::Value::String("hostile".into());
    let mut cursor = std::io::Cursor::new(Vec::new());
    gguf_file::write(
        &mut cursor,
        &[("general.name", &name)],
        &[("a.weight", &a), ("b.weight", &b)],
    )
    .unwrap();
    cursor.into_inner()
}

/// The same bytes with `tensor`'s type field changed from F32 to F16 (its size halves; the
/// data stays where it was).
fn relabel(gguf: &[u8], tensor: &str) -> Vec<u8> {
    let mut named = (tensor.len() as u64).to_le_bytes().to_vec();
    named.extend(tensor.as_bytes());
    let at = gguf
        .windows(named.len())
        .position(|w| w == named.as_slice())
        .expect("the tensor's name is in the table");
    let dims_at = at + named.len();
    let n_dims = u32::from_le_bytes(gguf[dims_at..dims_at + 4].try_into().unwrap()) as usize;
    let type_at = dims_at + 4 + 8 * n_dims;
    let mut out = gguf.to_vec();
    assert_eq!(
        u32::from_le_bytes(out[type_at..type_at + 4].try_into().unwrap()),
        TYPE_F32
    );
    out[type_at..type_at + 4].copy_from_slice(&TYPE_F16.to_le_bytes());
    out
}
