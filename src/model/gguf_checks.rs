//! Checks of a GGUF file that candle's reader does not make.
//!
//! candle 0.11's `gguf_file::Content::read` panics ("attempt to divide by zero", in
//! `position.div_ceil(alignment)`) on a file whose `general.alignment` is 0; reproducer: the
//! header of any valid GGUF with that key's U32 value set to 0. So the alignment is read
//! here first, by walking the metadata without keeping it. And the tensor table is checked
//! against itself: a tensor whose type was relabelled (F32 → F16, say) still fits the file, so
//! only the room between it and the next tensor shows its size is wrong.

use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file;
use std::io::{Read, Seek, SeekFrom};

const MAGIC: u32 = 0x4655_4747; // "GGUF", little-endian
const ALIGNMENT_KEY: &str = "general.alignment";
/// Deeper than any real file nests arrays; deeper input is refused, not recursed into.
const MAX_ARRAY_DEPTH: usize = 8;

/// Refuses a `general.alignment` of 0 before candle divides by it; leaves the reader where it was.
pub fn check_alignment<R: Read + Seek>(reader: &mut R) -> Result<()> {
    let start = reader.stream_position()?;
    let size = reader.seek(SeekFrom::End(0))?;
    reader.seek(SeekFrom::Start(start))?;
    let mut walk = Walker {
        reader,
        size,
        wide: true,
    };
    let found = walk.find_alignment();
    walk.reader.seek(SeekFrom::Start(start))?;
    if let Some(0) = found? {
        bail!("{ALIGNMENT_KEY} is 0 (it must be a positive multiple of 8, usually 32)");
    }
    Ok(())
}

struct Walker<'a, R> {
    reader: &'a mut R,
    size: u64,
    /// Lengths are u64 from version 2 on, u32 in version 1.
    wide: bool,
}

impl<R: Read + Seek> Walker<'_, R> {
    /// Ok(None) when the key is absent, not an integer, or the header is not GGUF (candle
    /// then reports what is wrong in its own words).
    fn find_alignment(&mut self) -> Result<Option<u64>> {
        if self.u32()? != MAGIC {
            return Ok(None);
        }
        let version = self.u32()?;
        self.wide = version >= 2;
        let _tensors = self.length()?;
        let entries = self.length()?;
        for _ in 0..entries {
            let key = self.string()?;
            let kind = self.u32()?;
            if key == ALIGNMENT_KEY {
                return self.integer(kind);
            }
            self.skip_value(kind, 0)?;
        }
        Ok(None)
    }

    fn integer(&mut self, kind: u32) -> Result<Option<u64>> {
        Ok(match kind {
            0 | 1 => Some(self.bytes(1)?[0] as u64),
            2 | 3 => Some(u16::from_le_bytes(self.array()?) as u64),
            4 | 5 => Some(u32::from_le_bytes(self.array()?) as u64),
            _ => None,
        })
    }

    fn skip_value(&mut self, kind: u32, depth: usize) -> Result<()> {
        match kind {
            0 | 1 | 7 => self.skip(1),
            2 | 3 => self.skip(2),
            4..=6 => self.skip(4),
            10..=12 => self.skip(8),
            8 => {
                let n = self.length()?;
                self.skip(n)
            }
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    bail!("arrays nested deeper than {MAX_ARRAY_DEPTH}");
                }
                let element = self.u32()?;
                let count = self.length()?;
                match fixed_size(element) {
                    Some(width) => self.skip(count.checked_mul(width).context("array too long")?),
                    None => (0..count).try_for_each(|_| self.skip_value(element, depth + 1)),
                }
            }
            other => bail!("unknown metadata value type {other}"),
        }
    }

    fn skip(&mut self, n: u64) -> Result<()> {
        let at = self.reader.stream_position()?;
        if at.checked_add(n).is_none_or(|end| end > self.size) {
            bail!("the header runs past the end of the file");
        }
        self.reader.seek(SeekFrom::Current(n as i64))?;
        Ok(())
    }

    fn bytes(&mut self, n: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; n];
        self.reader
            .read_exact(&mut buf)
            .context("the header runs past the end of the file")?;
        Ok(buf)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut buf = [0u8; N];
        self.reader
            .read_exact(&mut buf)
            .context("the header runs past the end of the file")?;
        Ok(buf)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn length(&mut self) -> Result<u64> {
        if self.wide {
            Ok(u64::from_le_bytes(self.array()?))
        } else {
            Ok(self.u32()? as u64)
        }
    }

    fn string(&mut self) -> Result<String> {
        let n = self.length()?;
        if n > self.size {
            bail!("a key's length runs past the end of the file");
        }
        Ok(String::from_utf8_lossy(&self.bytes(n as usize)?).into_owned())
    }
}

fn fixed_size(kind: u32) -> Option<u64> {
    match kind {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

/// Every tensor's bytes lie inside the file and fill the room before the next tensor (up to
/// the alignment padding): a size that disagrees with the layout names the tensor.
pub fn check_tensor_table(content: &gguf_file::Content, file_size: u64) -> Result<()> {
    let mut spans = Vec::with_capacity(content.tensor_infos.len());
    for (name, info) in &content.tensor_infos {
        let elems = info
            .shape
            .dims()
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
            .with_context(|| format!("tensor {name}: its shape overflows"))?;
        let block = info.ggml_dtype.block_size() as u64;
        let bytes = (elems / block.max(1))
            .checked_mul(info.ggml_dtype.type_size() as u64)
            .with_context(|| format!("tensor {name}: its size overflows"))?;
        let start = content
            .tensor_data_offset
            .checked_add(info.offset)
            .with_context(|| format!("tensor {name}: its offset overflows"))?;
        spans.push((start, bytes, name.as_str(), info.ggml_dtype));
    }
    spans.sort_by_key(|&(start, ..)| start);
    let alignment = gap_allowance(content);
    for (i, &(start, bytes, name, dtype)) in spans.iter().enumerate() {
        let end = start.saturating_add(bytes);
        let room_end = spans.get(i + 1).map_or(file_size, |next| next.0);
        if end > room_end {
            let what = if i + 1 == spans.len() {
                "the file ends".to_string()
            } else {
                format!("tensor {} begins", spans[i + 1].2)
            };
            bail!(
                "tensor {name} ({dtype:?}) needs {bytes} bytes at offset {start}, but {what} \
                 {} bytes later (truncated file, or a wrong type or shape?)",
                room_end.saturating_sub(start)
            );
        }
        if i + 1 < spans.len() && room_end - end >= alignment {
            bail!(
                "tensor {name} ({dtype:?}) holds {bytes} bytes, but the next tensor begins {} \
                 bytes after it: its type or shape does not match the data (relabelled?)",
                room_end - start
            );
        }
    }
    Ok(())
}

/// The padding allowed between tensors: the file's alignment (32 when unset).
fn gap_allowance(content: &gguf_file::Content) -> u64 {
    match content.metadata.get(ALIGNMENT_KEY) {
        Some(gguf_file::Value::U32(v)) if *v > 0 => *v as u64,
        Some(gguf_file::Value::U16(v)) if *v > 0 => *v as u64,
        Some(gguf_file::Value::U8(v)) if *v > 0 => *v as u64,
        _ => 32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn header(entries: &[(&str, u32, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(MAGIC.to_le_bytes());
        out.extend(3u32.to_le_bytes());
        out.extend(0u64.to_le_bytes());
        out.extend((entries.len() as u64).to_le_bytes());
        for (key, kind, value) in entries {
            out.extend((key.len() as u64).to_le_bytes());
            out.extend(key.as_bytes());
            out.extend(kind.to_le_bytes());
            out.extend(value);
        }
        out
    }

    fn string_value(s: &str) -> Vec<u8> {
        let mut v = (s.len() as u64).to_le_bytes().to_vec();
        v.extend(s.as_bytes());
        v
    }

    #[test]
    fn a_zero_alignment_is_refused_after_other_entries() {
        let mut strings = 8u32.to_le_bytes().to_vec();
        strings.extend(2u64.to_le_bytes());
        strings.extend(string_value("a"));
        strings.extend(string_value("bc"));
        let entries = [
            ("general.name", 8, string_value("x")),
            ("tokenizer.ggml.tokens", 9, strings),
            (ALIGNMENT_KEY, 4, 0u32.to_le_bytes().to_vec()),
        ];
        let bytes = header(&entries);
        let err = check_alignment(&mut Cursor::new(&bytes)).unwrap_err();
        assert!(err.to_string().contains("general.alignment is 0"), "{err}");
        // candle reads the same header without the key.
        let ok = header(&entries[..2]);
        let mut cursor = Cursor::new(&ok);
        check_alignment(&mut cursor).unwrap();
        assert_eq!(cursor.position(), 0);
        gguf_file::Content::read(&mut cursor).unwrap();
        let fine = header(&[(ALIGNMENT_KEY, 4, 64u32.to_le_bytes().to_vec())]);
        check_alignment(&mut Cursor::new(&fine)).unwrap();
    }

    #[test]
    fn a_header_cut_short_is_an_error_not_a_panic() {
        let bytes = header(&[("general.name", 8, string_value("abcdef"))]);
        for cut in 0..bytes.len() {
            let _ = check_alignment(&mut Cursor::new(&bytes[..cut]));
        }
        let mut huge = header(&[]);
        huge.truncate(16);
        huge.extend(1u64.to_le_bytes());
        huge.extend(u64::MAX.to_le_bytes());
        assert!(check_alignment(&mut Cursor::new(&huge)).is_err());
    }
}
