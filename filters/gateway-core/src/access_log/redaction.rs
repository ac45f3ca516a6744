//! Redaction of secrets that clients put into query strings (`?token=…`, `?api_key=…`).

use std::borrow::Cow;

pub const REDACTED: &str = "[REDACTED]";

/// `path` with the value of every query parameter that `redacts` names replaced by `[REDACTED]`.
/// Names are compared after percent-decoding, so `api%5Fkey` cannot slip past a rule for `api_key`.
pub fn redact_query<'a>(path: &'a str, redacts: impl Fn(&str) -> bool) -> Cow<'a, str> {
    let Some((before, query)) = path.split_once('?') else {
        return Cow::Borrowed(path);
    };
    let mut changed = false;
    let mut parameters = Vec::new();
    for parameter in query.split('&') {
        let name = parameter
            .split_once('=')
            .map_or(parameter, |(name, _)| name);
        if redacts(&percent_decode(name)) {
            changed = true;
            parameters.push(Cow::Owned(format!("{name}={REDACTED}")));
        } else {
            parameters.push(Cow::Borrowed(parameter));
        }
    }
    if !changed {
        return Cow::Borrowed(path);
    }
    Cow::Owned(format!("{before}?{}", parameters.join("&")))
}

/// Form decoding (`+` is a space, `%XX` a byte); a malformed escape is kept as it is.
fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.contains(['%', '+']) {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        let escaped = match (byte, bytes.get(index + 1), bytes.get(index + 2)) {
            (b'%', Some(&high), Some(&low)) => hex_value(high).zip(hex_value(low)),
            _ => None,
        };
        match (byte, escaped) {
            (_, Some((high, low))) => {
                decoded.push(high << 4 | low);
                index += 3;
            }
            (b'+', None) => {
                decoded.push(b' ');
                index += 1;
            }
            (_, None) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&decoded).into_owned())
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn redacted(path: &str) -> String {
        redact_query(path, |name| {
            ["token", "api_key", "a b"]
                .iter()
                .any(|secret| secret.eq_ignore_ascii_case(name))
        })
        .into_owned()
    }

    #[test]
    fn named_parameters_lose_their_value() {
        let cases = [
            ("/", "/"),
            ("/search", "/search"),
            ("/search?", "/search?"),
            ("/search?q=x", "/search?q=x"),
            ("/s?token=abc", "/s?token=[REDACTED]"),
            ("/s?q=1&token=abc&r=2", "/s?q=1&token=[REDACTED]&r=2"),
            ("/s?token=a&token=b", "/s?token=[REDACTED]&token=[REDACTED]"),
            ("/s?TOKEN=abc", "/s?TOKEN=[REDACTED]"),
            ("/s?token", "/s?token=[REDACTED]"),
            ("/s?token=", "/s?token=[REDACTED]"),
            ("/s?token=a=b", "/s?token=[REDACTED]"),
            ("/s?api%5Fkey=abc", "/s?api%5Fkey=[REDACTED]"),
            ("/s?api%5fkey=abc", "/s?api%5fkey=[REDACTED]"),
            ("/s?a+b=1&a%20b=2", "/s?a+b=[REDACTED]&a%20b=[REDACTED]"),
            ("/s?tokens=abc&xtoken=1", "/s?tokens=abc&xtoken=1"),
            ("/s?q=token", "/s?q=token"),
            ("/s?q=%zz&token=1", "/s?q=%zz&token=[REDACTED]"),
            ("/s?%=1&%4=2&token%=3", "/s?%=1&%4=2&token%=3"),
            ("/s?x=1?token=2", "/s?x=1?token=2"),
            ("/s?&&token=1&", "/s?&&token=[REDACTED]&"),
            ("/é?token=é", "/é?token=[REDACTED]"),
        ];
        for (path, expected) in cases {
            assert_eq!(redacted(path), expected, "{path}");
        }
    }

    #[test]
    fn nothing_is_copied_when_nothing_is_redacted() {
        assert!(matches!(
            redact_query("/s?q=1", |_| false),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn percent_decoding() {
        let cases = [
            ("abc", "abc"),
            ("a%41", "aA"),
            ("%e2%98%83", "☃"),
            ("%ff", "\u{fffd}"),
            ("%", "%"),
            ("%4", "%4"),
            ("%g1", "%g1"),
            ("a+b", "a b"),
        ];
        for (text, expected) in cases {
            assert_eq!(percent_decode(text), expected, "{text}");
        }
    }
}
