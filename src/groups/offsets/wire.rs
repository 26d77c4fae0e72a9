//! Kafka's primitive encodings used by the `__consumer_offsets` records: int16-length
//! strings and int32-length bytes (the classic formats), and the compact forms of the
//! flexible versions (unsigned varint lengths plus one, tagged fields).

use bytes::{Buf, BufMut, Bytes, BytesMut};

pub(super) fn put_string(out: &mut BytesMut, s: &str) {
    // Kafka strings are at most i16::MAX bytes; callers check lengths before committing.
    let len = s.len().min(i16::MAX as usize);
    out.put_i16(len as i16);
    out.put_slice(&s.as_bytes()[..len]);
}

pub(super) fn put_nullable_string(out: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(out, s),
        None => out.put_i16(-1),
    }
}

pub(super) fn get_nullable_string(buf: &mut Bytes) -> Option<Option<String>> {
    if buf.remaining() >= 2 && buf[..2] == [0xff, 0xff] {
        buf.advance(2);
        return Some(None);
    }
    get_string(buf).map(Some)
}

pub(super) fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    out.put_i32(b.len() as i32);
    out.put_slice(b);
}

pub(super) fn get_bytes(buf: &mut Bytes) -> Option<Bytes> {
    if buf.remaining() < 4 {
        return None;
    }
    let len = usize::try_from(buf.get_i32()).unwrap_or(0);
    (buf.remaining() >= len).then(|| buf.split_to(len))
}

pub(super) fn get_i32(buf: &mut Bytes) -> Option<i32> {
    (buf.remaining() >= 4).then(|| buf.get_i32())
}

pub(super) fn get_i64(buf: &mut Bytes) -> Option<i64> {
    (buf.remaining() >= 8).then(|| buf.get_i64())
}

/// Compact (flexible-version) encodings: unsigned varint lengths plus one, 0 for null.
pub(super) fn put_uvarint(out: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

pub(super) fn put_compact_string(out: &mut BytesMut, s: Option<&str>) {
    match s {
        None => out.put_u8(0),
        Some(s) => {
            put_uvarint(out, s.len() as u32 + 1);
            out.put_slice(s.as_bytes());
        }
    }
}

pub(super) fn get_uvarint(buf: &mut Bytes) -> Option<u32> {
    let mut v: u32 = 0;
    for shift in (0..35).step_by(7) {
        if !buf.has_remaining() {
            return None;
        }
        let b = buf.get_u8();
        v |= u32::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

pub(super) fn get_compact_string(buf: &mut Bytes) -> Option<Option<String>> {
    let n = get_uvarint(buf)? as usize;
    if n == 0 {
        return Some(None);
    }
    let len = n - 1;
    if buf.remaining() < len {
        return None;
    }
    String::from_utf8(buf.split_to(len).to_vec()).ok().map(Some)
}

/// A compact array's length; `min_entry_bytes` bounds it by what is left.
pub(super) fn get_compact_len(buf: &mut Bytes, min_entry_bytes: usize) -> Option<usize> {
    let n = (get_uvarint(buf)? as usize).checked_sub(1)?;
    (n <= buf.remaining() / min_entry_bytes.max(1)).then_some(n)
}

/// Skips a tagged-field section (none of these records' tags is needed).
pub(super) fn skip_tagged(buf: &mut Bytes) -> Option<()> {
    let count = get_uvarint(buf)?;
    for _ in 0..count {
        get_uvarint(buf)?;
        let size = get_uvarint(buf)? as usize;
        if buf.remaining() < size {
            return None;
        }
        buf.advance(size);
    }
    Some(())
}

pub(super) fn get_string(buf: &mut Bytes) -> Option<String> {
    if buf.remaining() < 2 {
        return None;
    }
    let len = buf.get_i16();
    if len < 0 {
        return Some(String::new());
    }
    let len = len as usize;
    if buf.remaining() < len {
        return None;
    }
    String::from_utf8(buf.split_to(len).to_vec()).ok()
}
