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

/// The byte offset of the first `.` that is a metacharacter (not escaped, not in `[…]`) and has a
/// literal ASCII word character on each side in the pattern text (`\d.x` does not count: `d` is
/// part of an escape).
fn first_unescaped_dot_between_word_characters(pattern: &str) -> Option<usize> {
    let bytes = pattern.as_bytes();
    let mut in_class = false;
    // Right after `[` or `[^`, where a `]` is a literal member rather than the end of the class.
    let mut class_start = false;
    let mut escape = false;
    let mut after_word = false;
    for (index, &byte) in bytes.iter().enumerate() {
        if escape {
            escape = false;
            after_word = false;
            continue;
        }
        match byte {
            b'\\' => escape = true,
            b'[' if !in_class => {
                in_class = true;
                class_start = true;
                after_word = false;
                continue;
            }
            b'^' if class_start => continue,
            b']' if in_class && !class_start => in_class = false,
            b'.' if !in_class
                && after_word
                && bytes.get(index + 1).copied().is_some_and(is_word) =>
            {
                return Some(index);
            }
            _ => {}
        }
        class_start = false;
        after_word = is_word(byte);
    }
    None
}

fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// The word characters that end at byte `end` (ASCII, so any offset between them is a char boundary).
fn word_before(pattern: &str, end: usize) -> &str {
    let before = pattern.get(..end).unwrap_or_default();
    let start = before
        .bytes()
        .rposition(|b| !is_word(b))
        .map_or(0, |position| position + 1);
    before.get(start..).unwrap_or_default()
}

/// The word characters that start at byte `start`.
fn word_after(pattern: &str, start: usize) -> &str {
    let after = pattern.get(start..).unwrap_or_default();
    let end = after
        .bytes()
        .position(|b| !is_word(b))
        .unwrap_or(after.len());
    after.get(..end).unwrap_or_default()
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
