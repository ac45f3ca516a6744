//! A JSON object written straight into a `String`, field by field: records and published decisions
//! are built on every request, so there is no intermediate `serde_json::Value` tree (in Envoy's VM
//! the tree cost the allowlist about 2 µs a request).

use std::fmt::Write as _;

/// One JSON object under construction. Keys are written as given (callers pass fixed ASCII names or
/// header names, which the configuration has checked); values are escaped.
#[derive(Debug)]
pub struct JsonObject {
    text: String,
    empty: bool,
}

impl Default for JsonObject {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl JsonObject {
    pub fn with_capacity(capacity: usize) -> Self {
        let mut text = String::with_capacity(capacity);
        text.push('{');
        Self { text, empty: true }
    }

    pub fn string(&mut self, key: &str, value: &str) {
        self.key(key);
        write_string(&mut self.text, value);
    }

    /// A string from raw bytes, such as a header value: invalid UTF-8 becomes U+FFFD so that the
    /// record is always valid JSON.
    pub fn bytes(&mut self, key: &str, value: &[u8]) {
        self.string(key, &String::from_utf8_lossy(value));
    }

    pub fn number(&mut self, key: &str, value: u64) {
        self.key(key);
        // Writing into a String cannot fail.
        let _ = write!(self.text, "{value}");
    }

    pub fn null(&mut self, key: &str) {
        self.raw(key, "null");
    }

    /// `value` must be one complete, valid JSON value; callers check this before.
    pub fn raw(&mut self, key: &str, value: &str) {
        self.key(key);
        self.text.push_str(value);
    }

    pub fn is_empty(&self) -> bool {
        self.empty
    }

    pub fn finish(mut self) -> String {
        self.text.push('}');
        self.text
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.text.push(',');
        }
        self.empty = false;
        write_string(&mut self.text, key);
        self.text.push(':');
    }
}

/// Writes `value` as a JSON string (RFC 8259): quotes, backslashes and control characters escaped,
/// everything else kept as UTF-8.
pub fn write_string(out: &mut String, value: &str) {
    out.push('"');
    let bytes = value.as_bytes();
    let mut clean_from = 0;
    loop {
        let index = next_escape(bytes, clean_from);
        // `index` is at an ASCII byte or the end, hence at a char boundary.
        out.push_str(value.get(clean_from..index).unwrap_or_default());
        let Some(&byte) = bytes.get(index) else {
            break;
        };
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            _ => {
                let _ = write!(out, "\\u{byte:04x}");
            }
        }
        clean_from = index + 1;
    }
    out.push('"');
}

/// Every byte of a word set to the same value.
const fn repeated(byte: u8) -> u64 {
    u64::from_ne_bytes([byte; 8])
}

/// The index of the first byte at or after `from` that JSON must escape (a control character, `"`
/// or `\`), or the length. A record is mostly long runs of plain text, so eight bytes are checked
/// at a time: with the usual bit tricks, `(x - 0x0101…) & !x & 0x8080…` is non-zero exactly when a
/// byte of `x` is zero, and `(x - n·0x0101…) & !x & 0x8080…` when a byte is below `n`.
fn next_escape(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = repeated(0x01);
    const HIGHS: u64 = repeated(0x80);
    let below = |word: u64, limit: u8| word.wrapping_sub(repeated(limit)) & !word & HIGHS;
    let zero = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS;
    let mut index = from;
    while let Some(chunk) = bytes.get(index..).and_then(|rest| rest.first_chunk::<8>()) {
        let word = u64::from_ne_bytes(*chunk);
        if below(word, 0x20) | zero(word ^ repeated(b'"')) | zero(word ^ repeated(b'\\')) != 0 {
            break;
        }
        index += 8;
    }
    let rest = bytes.get(index..).unwrap_or_default();
    index
        + rest
            .iter()
            .position(|&byte| byte < 0x20 || byte == b'"' || byte == b'\\')
            .unwrap_or(rest.len())
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn encoded(value: &str) -> String {
        let mut out = String::new();
        write_string(&mut out, value);
        out
    }

    #[test]
    fn strings_are_escaped_as_rfc_8259_requires() {
        let cases = [
            ("", r#""""#),
            ("plain", r#""plain""#),
            ("say \"hi\"", r#""say \"hi\"""#),
            ("back\\slash", r#""back\\slash""#),
            ("a\nb\rc\td", r#""a\nb\rc\td""#),
            ("\u{8}\u{c}", r#""\b\f""#),
            ("\u{0}\u{1}\u{1f}", r#""\u0000\u0001\u001f""#),
            ("\u{7f}", "\"\u{7f}\""),
            ("héllo ☃ 𝄞", "\"héllo ☃ 𝄞\""),
            ("</script>", r#""</script>""#),
        ];
        for (value, expected) in cases {
            let out = encoded(value);
            assert_eq!(out, expected, "{value:?}");
            let back: String = serde_json::from_str(&out).unwrap();
            assert_eq!(back, value);
        }
    }

    /// Each character that needs escaping, at every position of strings around the eight-byte
    /// word, is escaped as serde_json escapes it.
    #[test]
    fn escapes_are_found_at_every_offset() {
        let specials = ['"', '\\', '\n', '\u{0}', '\u{1f}', '\u{7f}', 'é', ' '];
        for length in 0..20 {
            for position in 0..length {
                for special in specials {
                    let value: String = (0..length)
                        .map(|i| if i == position { special } else { 'a' })
                        .collect();
                    let expected = serde_json::to_string(&value).unwrap();
                    assert_eq!(encoded(&value), expected, "{value:?}");
                }
            }
        }
    }

    #[test]
    fn every_byte_sequence_gives_valid_json() {
        let samples: Vec<Vec<u8>> = vec![
            (0u8..=255).collect(),
            vec![0xff, 0xfe, b'"', 0xc3],
            vec![0xe2, 0x98],
            b"ok\xc3\xa9".to_vec(),
        ];
        for sample in samples {
            let mut object = JsonObject::default();
            object.bytes("v", &sample);
            let text = object.finish();
            let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                parsed["v"],
                String::from_utf8_lossy(&sample).as_ref(),
                "{sample:?}"
            );
        }
    }

    #[test]
    fn objects_join_fields_in_order() {
        let mut inner = JsonObject::default();
        assert!(inner.is_empty());
        inner.string("x-tenant", "a");
        assert!(!inner.is_empty());
        let mut object = JsonObject::with_capacity(64);
        object.string("method", "GET");
        object.number("response_code", 200);
        object.number("max", u64::MAX);
        object.raw("allowlist", r#"{"decision":"allowed"}"#);
        object.raw("request_headers", &inner.finish());
        assert_eq!(
            object.finish(),
            r#"{"method":"GET","response_code":200,"max":18446744073709551615,"allowlist":{"decision":"allowed"},"request_headers":{"x-tenant":"a"}}"#
        );
        assert_eq!(JsonObject::default().finish(), "{}");
    }
}
