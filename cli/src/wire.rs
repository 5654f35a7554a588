//! Request bodies byte-for-byte as the original Python clients send them.
//!
//! The original emulators build bodies with `json.dumps(...)` defaults: `", "` between items,
//! `": "` after keys, and every non-ASCII character escaped as `\uXXXX` (surrogate pairs above
//! U+FFFF). Sending the same bytes locally exercises exactly what a deployed API receives.

use serde_json::ser::{CharEscape, Formatter, Serializer};
use serde_json::{json, Value};
use std::io::{self, Write};

/// A `serde_json` formatter that writes what Python's `json.dumps` writes by default.
struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        for c in fragment.chars() {
            if c.is_ascii() {
                w.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(w, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }

    fn write_char_escape<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        let s: &[u8] = match escape {
            CharEscape::Quote => b"\\\"",
            CharEscape::ReverseSolidus => b"\\\\",
            CharEscape::Solidus => b"\\/",
            CharEscape::Backspace => b"\\b",
            CharEscape::FormFeed => b"\\f",
            CharEscape::LineFeed => b"\\n",
            CharEscape::CarriageReturn => b"\\r",
            CharEscape::Tab => b"\\t",
            CharEscape::AsciiControl(byte) => return write!(w, "\\u{byte:04x}"),
        };
        w.write_all(s)
    }
}

/// `value` serialised as Python's `json.dumps(value)` would.
pub fn python_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = Serializer::with_formatter(&mut out, PythonFormatter);
    // Serialising a `Value` into a Vec cannot fail.
    let _ = serde::Serialize::serialize(value, &mut ser);
    out
}

/// The batch-route body the original client sends for one record.
pub fn kafka_body(record: &Value) -> Vec<u8> {
    python_json(&json!({"records": [{"value": record}]}))
}

/// The stream-route body the original client sends for one record.
pub fn kinesis_body(stream: &str, record: &Value) -> Vec<u8> {
    python_json(&json!({"StreamName": stream, "Data": record, "PartitionKey": "test"}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_python_json_dumps() {
        let v: Value = serde_json::from_str(
            r#"{"ind": 1, "t": "caf\u00e9 \ud83d\ude00 \"q\"", "a": [1.5, -89.9787, null]}"#,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(python_json(&v)).unwrap(),
            r#"{"ind": 1, "t": "caf\u00e9 \ud83d\ude00 \"q\"", "a": [1.5, -89.9787, null]}"#
        );
    }
}
