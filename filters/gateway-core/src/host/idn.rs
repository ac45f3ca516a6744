//! Internationalised names without UTS 46's tables: checking the A-labels (`xn--…`) of an ASCII name,
//! and suggesting the A-label form of a Unicode configuration entry.
//!
//! Full UTS 46 (compatibility mapping, NFC, validity tables) is not needed where names arrive: Envoy's
//! HTTP codecs refuse a non-ASCII Host or `:authority`, and a TLS SNI is ASCII (RFC 6066). So a
//! request or SNI holding non-ASCII is simply invalid, and an A-label must be the one exact,
//! canonical punycode spelling of a plausible Unicode label. What is checked here is a subset of
//! what UTS 46 checks on an A-label, chosen so that no accepted name can be read as another one.

use super::punycode;

/// Whether `label` (lowercase ASCII) is acceptable: any label that is not an A-label, or an A-label
/// that decodes, holds at least one non-ASCII character, is written exactly as encoding its Unicode
/// form gives (so one label has one spelling), and whose Unicode form is lowercase and holds no
/// control, whitespace, dot or full-width character (forms UTS 46 would map to another label).
pub(crate) fn is_valid_label(label: &str) -> bool {
    let Some(encoded) = label.strip_prefix("xn--") else {
        return true;
    };
    let Some(decoded) = punycode::decode(encoded) else {
        return false;
    };
    decoded.iter().any(|c| !c.is_ascii())
        && decoded.iter().all(|&c| is_plain_unicode(c))
        && punycode::encode(&decoded).as_deref() == Some(encoded)
}

/// A character that may stand in the Unicode form of an A-label.
fn is_plain_unicode(c: char) -> bool {
    !c.is_control()
        && !c.is_whitespace()
        && !matches!(c, '\u{3002}' | '\u{ff0e}' | '\u{ff61}')
        && !('\u{ff00}'..='\u{ffef}').contains(&c)
        && c.to_lowercase().eq([c])
}

/// The A-label form of a Unicode host name (an entry's host part, or host and port), when it can be
/// given without UTS 46's tables: each label is lowercased and, if it holds non-ASCII, encoded. `None`
/// when a label holds a character for which UTS 46 could give another answer than this naive
/// encoding (a compatibility form, a combining mark, a symbol): the caller then asks for the `xn--`
/// form without suggesting one.
pub(crate) fn suggest_a_labels(name: &str) -> Option<String> {
    let labels: Option<Vec<String>> = name
        .split('.')
        .map(|label| {
            let lowercase: Vec<char> = label.chars().flat_map(char::to_lowercase).collect();
            if lowercase.iter().all(char::is_ascii) {
                return Some(lowercase.into_iter().collect());
            }
            if !lowercase
                .iter()
                .all(|&c| c.is_ascii() || has_plain_a_label(c))
            {
                return None;
            }
            punycode::encode(&lowercase).map(|encoded| format!("xn--{encoded}"))
        })
        .collect();
    labels.map(|labels| labels.join("."))
}

/// Lowercase letters of common scripts that UTS 46 keeps as they are and NFC does not change, so the
/// naive A-label is the right one. Deliberately short: anything else gets no suggestion, never a
/// wrong one.
fn has_plain_a_label(c: char) -> bool {
    const PLAIN: &[(char, char)] = &[
        ('\u{00df}', '\u{00ff}'), // Latin-1 lowercase letters (ß, à–ÿ; ÷ is not alphanumeric)
        ('\u{0101}', '\u{0131}'), // Latin Extended-A, up to the ij ligature (mapped to "ij")
        ('\u{0135}', '\u{013e}'), // ... between ij and the middle-dot l (mapped to "l·")
        ('\u{0142}', '\u{0148}'), // ... up to ŉ (mapped to "ʼn")
        ('\u{014b}', '\u{017e}'), // ... up to the long s (mapped to "s")
        ('\u{03ac}', '\u{03ce}'), // Greek lowercase with tonos and final sigma
        ('\u{0430}', '\u{045f}'), // Cyrillic lowercase
        ('\u{05d0}', '\u{05ea}'), // Hebrew letters
        ('\u{0621}', '\u{064a}'), // Arabic letters
        ('\u{0e01}', '\u{0e30}'), // Thai consonants and vowels
        ('\u{3041}', '\u{3096}'), // Hiragana
        ('\u{30a1}', '\u{30fa}'), // Katakana
        ('\u{30fc}', '\u{30fc}'), // Katakana prolonged sound mark
        ('\u{4e00}', '\u{9fff}'), // CJK unified ideographs
        ('\u{ac00}', '\u{d7a3}'), // Hangul syllables
    ];
    c.is_alphanumeric()
        && PLAIN
            .iter()
            .any(|(first, last)| (*first..=*last).contains(&c))
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn canonical_a_labels_and_plain_labels_are_valid() {
        for label in [
            "example",
            "xn--bcher-kva",
            "xn--r8jz45g",
            "xn--zckzah",
            "xn--mnchen-3ya",
            // Hyphens and underscores are plain ASCII labels.
            "a-b_c",
            "xn-",
        ] {
            assert!(is_valid_label(label), "{label:?}");
        }
    }

    #[test]
    fn a_labels_that_are_not_one_canonical_spelling_are_invalid() {
        let cases = [
            // Empty, cut short, a surrogate.
            "xn--",
            "xn--zz-zzzzzz",
            "xn--ib9b",
            // Decodes to ASCII only: "abc" must be written as such.
            "xn--abc-",
            // Decodes (to U+0369), but the canonical encoding has no leading delimiter.
            "xn---kva",
            // Uppercase Unicode ("Ü"), a control (U+0080), whitespace (U+3000), an ideographic
            // full stop (U+3002), full-width letters ("ｇｏｏｇｌｅ").
            "xn--wca",
            "xn--a",
            "xn--p6j",
            "xn--r6j",
            "xn--qi7cdauna",
        ];
        for label in cases {
            assert!(!is_valid_label(label), "{label:?}");
        }
    }

    #[test]
    fn suggestions_for_common_letters() {
        let cases = [
            ("bücher.de", "xn--bcher-kva.de"),
            ("BÜCHER.de:443", "xn--bcher-kva.de:443"),
            ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
            ("МОСКВА.рф", "xn--80adxhks.xn--p1ai"),
            ("straße.de", "xn--strae-oqa.de"),
        ];
        for (name, expected) in cases {
            assert_eq!(
                suggest_a_labels(name).as_deref(),
                Some(expected),
                "{name:?}"
            );
        }
    }

    #[test]
    fn no_suggestion_where_uts_46_could_differ() {
        for name in [
            // Full-width letters map to ASCII; the ideographic full stop is a dot.
            "ｇｏｏｇｌｅ.com",
            "bücher。de",
            // A combining diaeresis composes under NFC; İ lowercases to i + combining dot.
            "bu\u{308}cher.de",
            "İstanbul.tr",
            // Ligatures, superscripts and symbols map or are disallowed.
            "ﬁle.example",
            "x².example",
            "☃.example",
        ] {
            assert_eq!(suggest_a_labels(name), None, "{name:?}");
        }
    }
}
