//! Host regexes that are valid but probably not what their author meant.
//!
//! `^api.example.com$` reads like a name, but its unescaped dots match any character, so it also
//! allows `apixexample.com`, a name anyone can register. An unescaped `.` with a word character on
//! each side is almost always such a slip for `\.`; where it is meant (`api.` as "api and one more
//! character"), `[a-z0-9-]` says so without the warning.

use crate::config::ConfigWarning;

/// One warning, named `{field}[{index}]`, for each pattern with an unescaped `.` (outside a
/// character class) between two word characters. The message names the first such dot and a name
/// it lets through.
pub fn unescaped_dot_warnings(field: &str, patterns: &[String]) -> Vec<ConfigWarning> {
    patterns
        .iter()
        .enumerate()
        .filter_map(|(index, pattern)| {
            let dot = first_unescaped_dot_between_word_characters(pattern)?;
            let before = word_before(pattern, dot);
            let after = word_after(pattern, dot + 1);
            Some(ConfigWarning::new(
                format!("{field}[{index}]"),
                format!(
                    "{pattern:?}: the unescaped \".\" in \"{before}.{after}\" matches any character, \
                     so \"{before}x{after}\" is allowed too; write \"\\.\" for a literal dot"
                ),
            ))
        })
        .collect()
}

/// The byte offset of the first `.` that is a metacharacter (not escaped, not in `[…]`) and has an
/// ASCII word character on both sides in the pattern text.
fn first_unescaped_dot_between_word_characters(pattern: &str) -> Option<usize> {
    let bytes = pattern.as_bytes();
    let mut in_class = false;
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'\\' => index += 1,
            b'[' if !in_class => {
                in_class = true;
                // A `]` right after `[` or `[^` is a literal member, not the end of the class.
                if bytes.get(index + 1) == Some(&b'^') {
                    index += 1;
                }
                if bytes.get(index + 1) == Some(&b']') {
                    index += 1;
                }
            }
            b']' if in_class => in_class = false,
            b'.' if !in_class
                && index > 0
                && is_word(bytes[index - 1])
                && !escaped(bytes, index - 1)
                && bytes.get(index + 1).copied().is_some_and(is_word) =>
            {
                return Some(index);
            }
            _ => {}
        }
        index += 1;
    }
    None
}

/// Whether the byte at `index` is preceded by an odd number of backslashes (`\d.x`: `d` is part of
/// an escape, so the dot follows a class, not a letter).
fn escaped(bytes: &[u8], index: usize) -> bool {
    bytes[..index]
        .iter()
        .rev()
        .take_while(|&&b| b == b'\\')
        .count()
        % 2
        == 1
}

fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

fn word_before(pattern: &str, end: usize) -> &str {
    let start = pattern[..end]
        .bytes()
        .rposition(|b| !is_word(b))
        .map_or(0, |position| position + 1);
    &pattern[start..end]
}

fn word_after(pattern: &str, start: usize) -> &str {
    let end = pattern[start..]
        .bytes()
        .position(|b| !is_word(b))
        .map_or(pattern.len(), |position| start + position);
    &pattern[start..end]
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn warnings(patterns: &[&str]) -> Vec<String> {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        unescaped_dot_warnings("host_regex", &patterns)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn an_unescaped_dot_between_words_is_named_with_a_name_it_allows() {
        assert_eq!(
            warnings(&["^api\\.example\\.com$", "^api.example.com$"]),
            [
                r#"host_regex[1]: "^api.example.com$": the unescaped "." in "api.example" matches any character, so "apixexample" is allowed too; write "\." for a literal dot"#
            ]
        );
    }

    #[test]
    fn intended_or_harmless_dots_are_not_warned_about() {
        for pattern in [
            "^bucket-[0-9]+\\.storage\\.example\\.com$",
            ".*\\.example\\.com",
            "(.+)\\.example\\.com",
            "a.*b",
            "a.+b",
            "[a.b]example",
            "\\d.\\d",
            "a\\\\.b",
            "a\\.b",
            "api.",
            ".com",
        ] {
            assert_eq!(warnings(&[pattern]), Vec::<String>::new(), "{pattern}");
        }
    }

    #[test]
    fn dots_that_are_slips_are_found_wherever_they_are() {
        for pattern in [
            "a.b",
            "[].a]x.y]",
            "^bucket-[0-9]+\\.storage.example\\.com$",
            "[a-z]x.y",
            "[^]]x.y",
            "\\\\a.b",
            "_a._b",
            "x1.9y",
        ] {
            assert_eq!(warnings(&[pattern]).len(), 1, "{pattern}");
        }
    }
}
