//! Kafka Connect's converters for what the file connectors move (a text line, and a
//! null key), byte for byte as the Java ones write them:
//!
//! - JsonConverter, schemas.enable=true: `{"schema":{"type":"string","optional":false},"payload":"line"}`
//!   (Jackson's compact output: fields in that order, no spaces);
//! - JsonConverter, schemas.enable=false: `"line"`;
//! - StringConverter: the line's UTF-8 bytes; ByteArrayConverter: the same bytes.
//!
//! A null key (the file source sends no key) stays a null record key with every
//! converter, as Kafka's JsonConverter returns null for a null schema and value.
//! Strings are escaped as Jackson does: `\"`, `\\`, `\b \t \n \f \r`, and other control
//! characters as `\u00XX` with upper-case hex; everything else as UTF-8.

use bytes::Bytes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Converter {
    Json { schemas: bool },
    String,
    ByteArray,
}

/// What a sink got back from record bytes: the text a file line holds.
#[derive(Debug, PartialEq)]
pub enum SinkValue {
    Text(String),
    Bytes(Bytes),
}

impl Converter {
    /// Kafka's class names and their short forms; `schemas` applies to JSON only.
    pub fn from_class(class: &str, schemas: bool) -> Option<Converter> {
        match class {
            "org.apache.kafka.connect.json.JsonConverter" | "JsonConverter" => {
                Some(Converter::Json { schemas })
            }
            "org.apache.kafka.connect.storage.StringConverter" | "StringConverter" => {
                Some(Converter::String)
            }
            "org.apache.kafka.connect.converters.ByteArrayConverter" | "ByteArrayConverter" => {
                Some(Converter::ByteArray)
            }
            _ => None,
        }
    }

    /// The record bytes of a source line (a non-optional string in Connect's terms).
    pub fn line_to_bytes(&self, line: &str) -> Bytes {
        match self {
            Converter::Json { schemas: true } => {
                let mut out =
                    String::from(r#"{"schema":{"type":"string","optional":false},"payload":"#);
                push_json_string(&mut out, line);
                out.push('}');
                Bytes::from(out)
            }
            Converter::Json { schemas: false } => {
                let mut out = String::new();
                push_json_string(&mut out, line);
                Bytes::from(out)
            }
            Converter::String | Converter::ByteArray => Bytes::copy_from_slice(line.as_bytes()),
        }
    }

    /// What a sink writes for a record value. Errors say why the bytes do not fit the
    /// converter (the task then fails, as Kafka's does with errors.tolerance=none).
    pub fn bytes_to_sink(&self, value: Option<&Bytes>) -> Result<SinkValue, String> {
        let Some(value) = value else {
            // Java's println of a null value.
            return Ok(SinkValue::Text("null".into()));
        };
        match self {
            Converter::String => Ok(SinkValue::Text(String::from_utf8_lossy(value).into_owned())),
            Converter::ByteArray => Ok(SinkValue::Bytes(value.clone())),
            Converter::Json { schemas } => {
                let parsed: serde_json::Value = serde_json::from_slice(value).map_err(|e| {
                    format!("converting byte[] to Kafka Connect data failed due to serialization error: {e}")
                })?;
                let payload = if *schemas {
                    match parsed {
                        serde_json::Value::Object(mut o)
                            if o.len() == 2 && o.contains_key("schema") && o.contains_key("payload") =>
                        {
                            o.remove("payload").expect("checked above")
                        }
                        _ => return Err(
                            "JsonConverter with schemas.enable requires \"schema\" and \"payload\" fields and may not contain additional fields. If you are trying to deserialize plain JSON data, set schemas.enable=false in your converter configuration.".into(),
                        ),
                    }
                } else {
                    parsed
                };
                Ok(SinkValue::Text(match payload {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                }))
            }
        }
    }
}

/// Appends `s` as a JSON string literal, escaped as Jackson escapes it.
pub fn push_json_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{0C}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let b = c as u32 as usize;
                out.push_str("\\u00");
                out.push(HEX[b >> 4] as char);
                out.push(HEX[b & 0xF] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_envelope_is_jacksons() {
        let j = Converter::Json { schemas: true };
        assert_eq!(
            &j.line_to_bytes("GET /index.html 200")[..],
            br#"{"schema":{"type":"string","optional":false},"payload":"GET /index.html 200"}"#
        );
        let plain = Converter::Json { schemas: false };
        assert_eq!(&plain.line_to_bytes("a\"b\\c")[..], br#""a\"b\\c""#);
        assert_eq!(&Converter::String.line_to_bytes("é")[..], "é".as_bytes());
    }

    #[test]
    fn control_characters_as_jackson_escapes_them() {
        let mut s = String::new();
        push_json_string(&mut s, "\u{1}\u{1f}\t\u{8}\u{c}\r\n\u{7f}é/");
        assert_eq!(s, "\"\\u0001\\u001F\\t\\b\\f\\r\\n\u{7f}é/\"");
    }

    #[test]
    fn sink_reads_what_the_source_wrote() {
        for c in [
            Converter::Json { schemas: true },
            Converter::Json { schemas: false },
            Converter::String,
        ] {
            let line = "x \"quoted\" \u{1} é";
            let bytes = c.line_to_bytes(line);
            assert_eq!(
                c.bytes_to_sink(Some(&bytes)),
                Ok(SinkValue::Text(line.into())),
                "{c:?}"
            );
        }
        assert_eq!(
            Converter::String.bytes_to_sink(None),
            Ok(SinkValue::Text("null".into()))
        );
    }

    #[test]
    fn envelope_required_with_schemas() {
        let j = Converter::Json { schemas: true };
        let err = j
            .bytes_to_sink(Some(&Bytes::from_static(b"\"plain\"")))
            .unwrap_err();
        assert!(err.contains("schemas.enable=false"), "{err}");
        assert!(j.bytes_to_sink(Some(&Bytes::from_static(b"{bad"))).is_err());
        let plain = Converter::Json { schemas: false };
        assert_eq!(
            plain.bytes_to_sink(Some(&Bytes::from_static(br#"{"a":1}"#))),
            Ok(SinkValue::Text(r#"{"a":1}"#.into()))
        );
    }
}
