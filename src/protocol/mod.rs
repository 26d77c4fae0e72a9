//! Kafka wire protocol: frames, headers, and our own codecs for the hot APIs.
//!
//! Everything cold (Metadata, CreateTopics, ...) goes through `kafka-protocol`'s generated
//! types. Produce requests and Fetch responses carry the record data, so they get codecs
//! of their own that never copy it: `produce` hands each partition's records out as a
//! `BytesMut` view of the request buffer, and `fetch` passes the log's `Bytes` through to
//! the socket as separate chunks.
//!
//! Decoding never panics and never trusts a length prefix: every length is checked against
//! the bytes that remain before anything is sliced or allocated.
//!
//! kafka-protocol 0.18's own decoders do not do that: they call `Vec::with_capacity` with
//! the array count from the wire, so a few corrupt bytes can make them request tens of
//! gigabytes, and a failed allocation aborts the whole process (seen in our tests). So no
//! body reaches the crate before `guard::check_request_shape` has walked it.

pub mod errors;
pub mod fetch;
pub mod frame;
pub mod guard;
pub mod header;
pub mod legacy;
pub mod produce;

/// A request (or part of one) that does not follow the Kafka schema. The connection layer
/// answers what it can (it always knows the correlation id once the header is read) and
/// closes the connection on anything else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "request truncated: `{field}` needs {needed_bytes} bytes but only {remaining_bytes} remain"
    )]
    Truncated {
        field: &'static str,
        needed_bytes: usize,
        remaining_bytes: usize,
    },
    #[error("`{field}` has invalid length {length} (allowed: -1 for null, 0..={max})")]
    InvalidLength {
        field: &'static str,
        length: i64,
        max: usize,
    },
    #[error("`{field}` is null, but the schema does not allow null here")]
    UnexpectedNull { field: &'static str },
    #[error(
        "`{field}` claims {count} entries, but the {remaining_bytes} remaining bytes hold at most \
         {count_max} (each entry takes at least {entry_bytes_min} bytes)"
    )]
    ArrayTooLong {
        field: &'static str,
        count: usize,
        count_max: usize,
        entry_bytes_min: usize,
        remaining_bytes: usize,
    },
    #[error("unsigned varint in `{field}` is longer than 5 bytes or does not fit in 32 bits")]
    InvalidVarint { field: &'static str },
    #[error("`{field}` is not valid UTF-8")]
    InvalidUtf8 { field: &'static str },
    #[error("api key {api_key} version {version} is not supported (supported: {min}..={max})")]
    UnsupportedVersion {
        api_key: i16,
        version: i16,
        min: i16,
        max: i16,
    },
    #[error(
        "unknown api key {api_key} (correlation id {correlation_id}): the request body cannot be \
         parsed; close the connection"
    )]
    UnknownApiKey { api_key: i16, correlation_id: i32 },
    #[error("tagged field {tag} (`{field}`) is not valid in version {version}")]
    TagNotInVersion {
        field: &'static str,
        tag: u32,
        version: i16,
    },
    #[error(
        "decoding this {body_bytes}-byte request would allocate up to {decode_bytes} bytes, more \
         than the {decode_bytes_max} allowed (mostly unknown tagged fields?)"
    )]
    DecodeTooLarge {
        decode_bytes: usize,
        body_bytes: usize,
        decode_bytes_max: usize,
    },
    #[error(
        "api key {api_key} has no request schema in protocol::guard, so its body cannot be \
         checked before kafka-protocol decodes it; add one"
    )]
    NoRequestSchema { api_key: i16 },
}

/// A response we were asked to build that the wire format cannot carry. Always a bug in
/// the caller (a handler), never the client's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("api key {api_key} version {version} is not supported (supported: {min}..={max})")]
    UnsupportedVersion {
        api_key: i16,
        version: i16,
        min: i16,
        max: i16,
    },
    #[error("`{field}` is {length} long, more than the wire format allows ({max})")]
    TooLong {
        field: &'static str,
        length: usize,
        max: usize,
    },
    #[error("`{field}` holds a non-default value, but version {version} has no such field")]
    FieldNotInVersion { field: &'static str, version: i16 },
}

/// Primitive encodings shared by the codecs: fixed-width big-endian integers, unsigned
/// varints, and the classic (i16/i32 length) and compact (varint length + 1) forms of
/// strings, bytes and arrays. Field names travel with every read so errors can name them.
mod wire {
    use super::{DecodeError, EncodeError};
    use bytes::{Buf, BufMut, BytesMut};
    use std::ops::Deref;

    /// Kafka caps every string at i16::MAX bytes, in compact form too.
    pub const STRING_BYTES_MAX: usize = i16::MAX as usize;

    /// The smallest tagged field: a one-byte tag and a one-byte size of zero.
    pub const TAGGED_FIELD_BYTES_MIN: usize = 2;

    #[derive(Clone, Copy)]
    enum LengthKind {
        String,
        /// Bytes and arrays.
        Other,
    }

    /// A cursor that consumes a request from the front of its buffer. `flexible` selects
    /// the compact forms of strings, bytes and arrays (KIP-482). The buffer is a `BytesMut`
    /// for decoders that hand out views of it, or a plain `&[u8]` for checks that only walk.
    pub struct Reader<'a, B = BytesMut> {
        buf: &'a mut B,
        flexible: bool,
    }

    impl<'a, B: Buf + Deref<Target = [u8]>> Reader<'a, B> {
        pub fn new(buf: &'a mut B, flexible: bool) -> Self {
            Self { buf, flexible }
        }

        fn need(&self, field: &'static str, needed_bytes: usize) -> Result<(), DecodeError> {
            if self.buf.remaining() < needed_bytes {
                return Err(DecodeError::Truncated {
                    field,
                    needed_bytes,
                    remaining_bytes: self.buf.remaining(),
                });
            }
            Ok(())
        }

        /// Steps over a fixed-width field (integers, booleans, uuids).
        pub fn skip(&mut self, field: &'static str, width_bytes: usize) -> Result<(), DecodeError> {
            self.need(field, width_bytes)?;
            self.buf.advance(width_bytes);
            Ok(())
        }

        pub fn i16(&mut self, field: &'static str) -> Result<i16, DecodeError> {
            self.need(field, 2)?;
            Ok(self.buf.get_i16())
        }

        pub fn i32(&mut self, field: &'static str) -> Result<i32, DecodeError> {
            self.need(field, 4)?;
            Ok(self.buf.get_i32())
        }

        pub fn uuid(&mut self, field: &'static str) -> Result<[u8; 16], DecodeError> {
            let mut id = [0u8; 16];
            self.need(field, id.len())?;
            self.buf.copy_to_slice(&mut id);
            Ok(id)
        }

        fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
            self.need(field, 1)?;
            Ok(self.buf.get_u8())
        }

        /// Stricter than Kafka, which silently drops bits past the 32nd: a fifth byte that
        /// carries more than 4 bits (or a continuation) is rejected.
        pub fn uvarint(&mut self, field: &'static str) -> Result<u32, DecodeError> {
            let mut value: u32 = 0;
            for shift in [0, 7, 14, 21] {
                let byte = self.u8(field)?;
                value |= u32::from(byte & 0x7f) << shift;
                if byte & 0x80 == 0 {
                    return Ok(value);
                }
            }
            let last = self.u8(field)?;
            if last > 0x0f {
                return Err(DecodeError::InvalidVarint { field });
            }
            Ok(value | (u32::from(last) << 28))
        }

        /// Length of a nullable field: None for null. Classic strings carry an i16
        /// prefix, classic bytes and arrays an i32 one; compact ones a varint of length + 1.
        /// Kafka caps strings at i16::MAX bytes in both forms, everything else at i32::MAX.
        fn length(
            &mut self,
            field: &'static str,
            kind: LengthKind,
        ) -> Result<Option<usize>, DecodeError> {
            let (length, max) = match (self.flexible, kind) {
                (true, LengthKind::String) => (self.compact_length(field)?, STRING_BYTES_MAX),
                (true, LengthKind::Other) => (self.compact_length(field)?, i32::MAX as usize),
                (false, LengthKind::String) => (i64::from(self.i16(field)?), STRING_BYTES_MAX),
                (false, LengthKind::Other) => (i64::from(self.i32(field)?), i32::MAX as usize),
            };
            match usize::try_from(length) {
                Ok(n) if n <= max => Ok(Some(n)),
                _ if length == -1 => Ok(None),
                _ => Err(DecodeError::InvalidLength { field, length, max }),
            }
        }

        fn compact_length(&mut self, field: &'static str) -> Result<i64, DecodeError> {
            Ok(i64::from(self.uvarint(field)?) - 1)
        }

        pub fn nullable_string(
            &mut self,
            field: &'static str,
        ) -> Result<Option<String>, DecodeError> {
            let Some(length) = self.length(field, LengthKind::String)? else {
                return Ok(None);
            };
            let text = self.utf8(field, length)?.to_owned();
            self.buf.advance(length);
            Ok(Some(text))
        }

        /// The next `length` bytes as text, not consumed.
        fn utf8(&self, field: &'static str, length: usize) -> Result<&str, DecodeError> {
            self.need(field, length)?;
            std::str::from_utf8(&self.buf[..length]).map_err(|_| DecodeError::InvalidUtf8 { field })
        }

        /// Steps over a string, checking its length and UTF-8 without copying it.
        pub fn skip_string(
            &mut self,
            field: &'static str,
            nullable: bool,
        ) -> Result<(), DecodeError> {
            match self.length(field, LengthKind::String)? {
                None if nullable => Ok(()),
                None => Err(DecodeError::UnexpectedNull { field }),
                Some(length) => {
                    self.utf8(field, length)?;
                    self.buf.advance(length);
                    Ok(())
                }
            }
        }

        /// Steps over a non-nullable bytes field, checking its length.
        pub fn skip_bytes(&mut self, field: &'static str) -> Result<(), DecodeError> {
            let length = self
                .length(field, LengthKind::Other)?
                .ok_or(DecodeError::UnexpectedNull { field })?;
            self.skip(field, length)
        }

        pub fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
            self.nullable_string(field)?
                .ok_or(DecodeError::UnexpectedNull { field })
        }

        /// Entry count of a non-nullable array. A count that the remaining bytes cannot
        /// hold is rejected before the caller allocates anything for it.
        pub fn array_len(
            &mut self,
            field: &'static str,
            entry_bytes_min: usize,
        ) -> Result<usize, DecodeError> {
            self.nullable_array_len(field, entry_bytes_min)?
                .ok_or(DecodeError::UnexpectedNull { field })
        }

        /// Entry count of a nullable array (None for null), bounded like `array_len`.
        pub fn nullable_array_len(
            &mut self,
            field: &'static str,
            entry_bytes_min: usize,
        ) -> Result<Option<usize>, DecodeError> {
            let Some(count) = self.length(field, LengthKind::Other)? else {
                return Ok(None);
            };
            self.check_count(field, count, entry_bytes_min)?;
            Ok(Some(count))
        }

        fn check_count(
            &self,
            field: &'static str,
            count: usize,
            entry_bytes_min: usize,
        ) -> Result<(), DecodeError> {
            let count_max = self.buf.remaining() / entry_bytes_min.max(1);
            if count > count_max {
                return Err(DecodeError::ArrayTooLong {
                    field,
                    count,
                    count_max,
                    entry_bytes_min,
                    remaining_bytes: self.buf.remaining(),
                });
            }
            Ok(())
        }

        /// Number of fields in a tagged-field section. Each takes at least two bytes (a tag
        /// and a size), so a count the remaining bytes cannot hold is rejected up front.
        pub fn tagged_fields_len(&mut self, field: &'static str) -> Result<usize, DecodeError> {
            let count = self.uvarint(field)? as usize;
            self.check_count(field, count, TAGGED_FIELD_BYTES_MIN)?;
            Ok(count)
        }

        /// Skips a tagged-field section. Every field costs at least two bytes (tag and
        /// size), so the loop ends after at most remaining/2 rounds whatever the count says.
        pub fn skip_tagged_fields(&mut self, field: &'static str) -> Result<(), DecodeError> {
            let count = self.uvarint(field)?;
            for _ in 0..count {
                self.uvarint(field)?;
                let size = self.uvarint(field)? as usize;
                self.skip(field, size)?;
            }
            Ok(())
        }
    }

    impl Reader<'_, BytesMut> {
        /// Nullable bytes, split off the front of the buffer: a view, never a copy.
        pub fn nullable_bytes(
            &mut self,
            field: &'static str,
        ) -> Result<Option<BytesMut>, DecodeError> {
            let Some(length) = self.length(field, LengthKind::Other)? else {
                return Ok(None);
            };
            self.need(field, length)?;
            Ok(Some(self.buf.split_to(length)))
        }
    }

    pub fn put_uvarint(out: &mut BytesMut, mut value: u32) {
        while value >= 0x80 {
            out.put_u8((value as u8) | 0x80);
            value >>= 7;
        }
        out.put_u8(value as u8);
    }

    /// The prefix of a non-null array or bytes field of `length` entries or bytes.
    pub fn put_length(
        out: &mut BytesMut,
        field: &'static str,
        length: usize,
        flexible: bool,
    ) -> Result<(), EncodeError> {
        let max = i32::MAX as usize;
        if length > max {
            return Err(EncodeError::TooLong { field, length, max });
        }
        if flexible {
            put_uvarint(out, length as u32 + 1);
        } else {
            out.put_i32(length as i32);
        }
        Ok(())
    }

    pub fn put_string(
        out: &mut BytesMut,
        field: &'static str,
        value: &str,
        flexible: bool,
    ) -> Result<(), EncodeError> {
        if value.len() > STRING_BYTES_MAX {
            return Err(EncodeError::TooLong {
                field,
                length: value.len(),
                max: STRING_BYTES_MAX,
            });
        }
        if flexible {
            put_uvarint(out, value.len() as u32 + 1);
        } else {
            out.put_i16(value.len() as i16);
        }
        out.put_slice(value.as_bytes());
        Ok(())
    }

    /// We never send tagged fields, so every section is the empty one: a count of zero.
    pub fn put_empty_tagged_fields(out: &mut BytesMut) {
        out.put_u8(0);
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn uvarints_round_trip_at_every_width_boundary() {
            let cases: [(u32, &[u8]); 6] = [
                (0, &[0]),
                (0x7f, &[0x7f]),
                (300, &[0xac, 0x02]),
                (0x3fff, &[0xff, 0x7f]),
                (0x0fff_ffff, &[0xff, 0xff, 0xff, 0x7f]),
                (u32::MAX, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
            ];
            for (value, wire) in cases {
                let mut out = BytesMut::new();
                put_uvarint(&mut out, value);
                assert_eq!(&out[..], wire, "{value}");
                assert_eq!(Reader::new(&mut out, true).uvarint("v"), Ok(value));
                assert!(out.is_empty());
            }
        }

        #[test]
        fn uvarints_past_32_bits_are_rejected() {
            for wire in [&[0xff, 0xff, 0xff, 0xff, 0x10][..], &[0x80; 6][..]] {
                let mut buf = BytesMut::from(wire);
                let err = Reader::new(&mut buf, true).uvarint("v");
                assert_eq!(err, Err(DecodeError::InvalidVarint { field: "v" }));
            }
        }

        #[test]
        fn compact_strings_are_capped_at_i16_max_like_kafka() {
            let mut buf = BytesMut::new();
            put_uvarint(&mut buf, STRING_BYTES_MAX as u32 + 2);
            buf.extend_from_slice(&vec![b'a'; STRING_BYTES_MAX + 1]);
            let err = Reader::new(&mut buf, true)
                .nullable_string("s")
                .unwrap_err();
            assert!(matches!(
                err,
                DecodeError::InvalidLength { length: 32768, .. }
            ));

            let mut buf = BytesMut::new();
            put_string(&mut buf, "s", &"a".repeat(STRING_BYTES_MAX), true).unwrap();
            let text = Reader::new(&mut buf, true).string("s").unwrap();
            assert_eq!(text.len(), STRING_BYTES_MAX);
        }

        #[test]
        fn a_huge_tagged_field_count_stops_at_the_end_of_the_data() {
            let mut buf = BytesMut::new();
            put_uvarint(&mut buf, u32::MAX);
            buf.extend_from_slice(&[0; 100]); // 50 empty fields, then nothing
            let err = Reader::new(&mut buf, true).skip_tagged_fields("tags");
            assert!(matches!(err, Err(DecodeError::Truncated { .. })));
        }
    }
}
