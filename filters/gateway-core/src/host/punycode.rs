//! RFC 3492 punycode, the encoding of an internationalised label's code points after `xn--`.
//!
//! A small in-crate codec instead of a full IDNA library: requests and SNIs reach the filters as
//! ASCII (Envoy refuses a non-ASCII Host; a TLS SNI is ASCII by RFC 6066), so all the host code needs
//! is to check existing A-labels and to suggest one for a configuration entry, not UTS 46's mapping
//! tables. Every step is checked arithmetic: hostile input gives `None`, never a panic.

const BASE: u32 = 36;
const T_MIN: u32 = 1;
const T_MAX: u32 = 26;
const SKEW: u32 = 38;
const DAMP: u32 = 700;
const INITIAL_BIAS: u32 = 72;
const INITIAL_N: u32 = 0x80;
const DELIMITER: char = '-';

/// Decodes the part of a label after `xn--` into its code points. `None` when it is not valid
/// punycode: a non-ASCII basic part, a byte that is not a digit, a delta cut short, an overflow, or a
/// value that is not a Unicode scalar.
pub(crate) fn decode(input: &str) -> Option<Vec<char>> {
    let (basic, extended) = input.rsplit_once(DELIMITER).unwrap_or(("", input));
    if !basic.is_ascii() {
        return None;
    }
    let mut output: Vec<char> = basic.chars().collect();
    let mut n = INITIAL_N;
    let mut i: u32 = 0;
    let mut bias = INITIAL_BIAS;
    let mut digits = extended.bytes();
    let mut next = digits.next();
    while let Some(first) = next {
        let old_i = i;
        let mut weight: u32 = 1;
        let mut k = BASE;
        let mut byte = first;
        loop {
            let digit = digit_value(byte)?;
            i = i.checked_add(digit.checked_mul(weight)?)?;
            let t = threshold(k, bias);
            if digit < t {
                break;
            }
            weight = weight.checked_mul(BASE - t)?;
            k = k.checked_add(BASE)?;
            byte = digits.next()?;
        }
        let length = u32::try_from(output.len()).ok()?.checked_add(1)?;
        bias = adapt(i - old_i, length, old_i == 0);
        n = n.checked_add(i / length)?;
        i %= length;
        // `n` starts above ASCII and only grows, so a delta never encodes a basic code point.
        let c = char::from_u32(n)?;
        // `i` is below `length`, so at most `output.len()`: a valid insertion point.
        output.insert(usize::try_from(i).ok()?, c);
        i += 1;
        next = digits.next();
    }
    Some(output)
}

/// Encodes code points as the part of a label after `xn--`, lowercase. `None` only on overflow,
/// which no label of at most 63 bytes can reach.
pub(crate) fn encode(input: &[char]) -> Option<String> {
    let mut output: String = input.iter().filter(|c| c.is_ascii()).collect();
    let basic_count = u32::try_from(output.len()).ok()?;
    let total = u32::try_from(input.len()).ok()?;
    if basic_count > 0 {
        output.push(DELIMITER);
    }
    let mut n = INITIAL_N;
    let mut delta: u32 = 0;
    let mut bias = INITIAL_BIAS;
    let mut handled = basic_count;
    while handled < total {
        let next_code_point = input
            .iter()
            .map(|&c| u32::from(c))
            .filter(|&c| c >= n)
            .min()?;
        delta = delta.checked_add((next_code_point - n).checked_mul(handled + 1)?)?;
        n = next_code_point;
        for &c in input {
            let c = u32::from(c);
            if c < n {
                delta = delta.checked_add(1)?;
            }
            if c == n {
                let mut q = delta;
                let mut k = BASE;
                loop {
                    let t = threshold(k, bias);
                    if q < t {
                        break;
                    }
                    output.push(digit_char(t + (q - t) % (BASE - t)));
                    q = (q - t) / (BASE - t);
                    k = k.checked_add(BASE)?;
                }
                output.push(digit_char(q));
                bias = adapt(delta, handled + 1, handled == basic_count);
                delta = 0;
                handled += 1;
            }
        }
        delta = delta.checked_add(1)?;
        n = n.checked_add(1)?;
    }
    Some(output)
}

fn threshold(k: u32, bias: u32) -> u32 {
    k.saturating_sub(bias).clamp(T_MIN, T_MAX)
}

fn adapt(delta: u32, points: u32, first: bool) -> u32 {
    let mut delta = if first { delta / DAMP } else { delta / 2 };
    delta += delta / points;
    let mut k = 0;
    while delta > ((BASE - T_MIN) * T_MAX) / 2 {
        delta /= BASE - T_MIN;
        k += BASE;
    }
    k + (BASE - T_MIN + 1) * delta / (delta + SKEW)
}

/// RFC 3492 section 5: `a`–`z` (either case) are 0–25, `0`–`9` are 26–35.
fn digit_value(byte: u8) -> Option<u32> {
    match byte {
        b'a'..=b'z' => Some(u32::from(byte - b'a')),
        b'A'..=b'Z' => Some(u32::from(byte - b'A')),
        b'0'..=b'9' => Some(u32::from(byte - b'0') + 26),
        _ => None,
    }
}

/// The lowercase digit for 0–35 (callers only pass values below `BASE`).
fn digit_char(digit: u32) -> char {
    let byte = match u8::try_from(digit) {
        Ok(digit @ 0..=25) => b'a' + digit,
        Ok(digit @ 26..=35) => b'0' + (digit - 26),
        _ => b'?',
    };
    char::from(byte)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    /// RFC 3492 section 7.1 sample strings: the code points and the encoding, as printed there
    /// (the RFC's uppercase letters are case annotations, which decoding ignores).
    fn rfc_samples() -> Vec<(&'static str, Vec<u32>, &'static str)> {
        vec![
            (
                "(A) Arabic (Egyptian)",
                vec![
                    0x0644, 0x064A, 0x0647, 0x0645, 0x0627, 0x0628, 0x062A, 0x0643, 0x0644, 0x0645,
                    0x0648, 0x0634, 0x0639, 0x0631, 0x0628, 0x064A, 0x061F,
                ],
                "egbpdaj6bu4bxfgehfvwxn",
            ),
            (
                "(B) Chinese (simplified)",
                vec![
                    0x4ED6, 0x4EEC, 0x4E3A, 0x4EC0, 0x4E48, 0x4E0D, 0x8BF4, 0x4E2D, 0x6587,
                ],
                "ihqwcrb4cv8a8dqg056pqjye",
            ),
            (
                "(C) Chinese (traditional)",
                vec![
                    0x4ED6, 0x5011, 0x7232, 0x4EC0, 0x9EBD, 0x4E0D, 0x8AAA, 0x4E2D, 0x6587,
                ],
                "ihqwctvzc91f659drss3x8bo0yb",
            ),
            (
                "(D) Czech",
                vec![
                    0x0050, 0x0072, 0x006F, 0x010D, 0x0070, 0x0072, 0x006F, 0x0073, 0x0074, 0x011B,
                    0x006E, 0x0065, 0x006D, 0x006C, 0x0075, 0x0076, 0x00ED, 0x010D, 0x0065, 0x0073,
                    0x006B, 0x0079,
                ],
                "Proprostnemluvesky-uyb24dma41a",
            ),
            (
                "(E) Hebrew",
                vec![
                    0x05DC, 0x05DE, 0x05D4, 0x05D4, 0x05DD, 0x05E4, 0x05E9, 0x05D5, 0x05D8, 0x05DC,
                    0x05D0, 0x05DE, 0x05D3, 0x05D1, 0x05E8, 0x05D9, 0x05DD, 0x05E2, 0x05D1, 0x05E8,
                    0x05D9, 0x05EA,
                ],
                "4dbcagdahymbxekheh6e0a7fei0b",
            ),
            (
                "(F) Hindi (Devanagari)",
                vec![
                    0x092F, 0x0939, 0x0932, 0x094B, 0x0917, 0x0939, 0x093F, 0x0928, 0x094D, 0x0926,
                    0x0940, 0x0915, 0x094D, 0x092F, 0x094B, 0x0902, 0x0928, 0x0939, 0x0940, 0x0902,
                    0x092C, 0x094B, 0x0932, 0x0938, 0x0915, 0x0924, 0x0947, 0x0939, 0x0948, 0x0902,
                ],
                "i1baa7eci9glrd9b2ae1bj0hfcgg6iyaf8o0a1dig0cd",
            ),
            (
                "(G) Japanese (kanji and hiragana)",
                vec![
                    0x306A, 0x305C, 0x307F, 0x3093, 0x306A, 0x65E5, 0x672C, 0x8A9E, 0x3092, 0x8A71,
                    0x3057, 0x3066, 0x304F, 0x308C, 0x306A, 0x3044, 0x306E, 0x304B,
                ],
                "n8jok5ay5dzabd5bym9f0cm5685rrjetr6pdxa",
            ),
            (
                "(H) Korean (Hangul syllables)",
                vec![
                    0xC138, 0xACC4, 0xC758, 0xBAA8, 0xB4E0, 0xC0AC, 0xB78C, 0xB4E4, 0xC774, 0xD55C,
                    0xAD6D, 0xC5B4, 0xB97C, 0xC774, 0xD574, 0xD55C, 0xB2E4, 0xBA74, 0xC5BC, 0xB9C8,
                    0xB098, 0xC88B, 0xC744, 0xAE4C,
                ],
                "989aomsvi5e83db1d2a355cv1e0vak1dwrv93d5xbh15a0dt30a5jpsd879ccm6fea98c",
            ),
            (
                "(I) Russian (Cyrillic)",
                vec![
                    0x043F, 0x043E, 0x0447, 0x0435, 0x043C, 0x0443, 0x0436, 0x0435, 0x043E, 0x043D,
                    0x0438, 0x043D, 0x0435, 0x0433, 0x043E, 0x0432, 0x043E, 0x0440, 0x044F, 0x0442,
                    0x043F, 0x043E, 0x0440, 0x0443, 0x0441, 0x0441, 0x043A, 0x0438,
                ],
                "b1abfaaepdrnnbgefbadotcwatmq2g4l",
            ),
            (
                "(J) Spanish",
                vec![
                    0x0050, 0x006F, 0x0072, 0x0071, 0x0075, 0x00E9, 0x006E, 0x006F, 0x0070, 0x0075,
                    0x0065, 0x0064, 0x0065, 0x006E, 0x0073, 0x0069, 0x006D, 0x0070, 0x006C, 0x0065,
                    0x006D, 0x0065, 0x006E, 0x0074, 0x0065, 0x0068, 0x0061, 0x0062, 0x006C, 0x0061,
                    0x0072, 0x0065, 0x006E, 0x0045, 0x0073, 0x0070, 0x0061, 0x00F1, 0x006F, 0x006C,
                ],
                "PorqunopuedensimplementehablarenEspaol-fmd56a",
            ),
            (
                "(K) Vietnamese",
                vec![
                    0x0054, 0x1EA1, 0x0069, 0x0073, 0x0061, 0x006F, 0x0068, 0x1ECD, 0x006B, 0x0068,
                    0x00F4, 0x006E, 0x0067, 0x0074, 0x0068, 0x1EC3, 0x0063, 0x0068, 0x1EC9, 0x006E,
                    0x00F3, 0x0069, 0x0074, 0x0069, 0x1EBF, 0x006E, 0x0067, 0x0056, 0x0069, 0x1EC7,
                    0x0074,
                ],
                "TisaohkhngthchnitingVit-kjcr8268qyxafd2f1b9g",
            ),
            (
                "(L) 3<nen>B<gumi><kinpachi><sensei>",
                vec![
                    0x0033, 0x5E74, 0x0042, 0x7D44, 0x91D1, 0x516B, 0x5148, 0x751F,
                ],
                "3B-ww4c5e180e575a65lsy2b",
            ),
            (
                "(M) <amuro><namie>-with-SUPER-MONKEYS",
                vec![
                    0x5B89, 0x5BA4, 0x5948, 0x7F8E, 0x6075, 0x002D, 0x0077, 0x0069, 0x0074, 0x0068,
                    0x002D, 0x0053, 0x0055, 0x0050, 0x0045, 0x0052, 0x002D, 0x004D, 0x004F, 0x004E,
                    0x004B, 0x0045, 0x0059, 0x0053,
                ],
                "-with-SUPER-MONKEYS-pc58ag80a8qai00g7n9n",
            ),
            (
                "(N) Hello-Another-Way-<sorezore><no><basho>",
                vec![
                    0x0048, 0x0065, 0x006C, 0x006C, 0x006F, 0x002D, 0x0041, 0x006E, 0x006F, 0x0074,
                    0x0068, 0x0065, 0x0072, 0x002D, 0x0057, 0x0061, 0x0079, 0x002D, 0x305D, 0x308C,
                    0x305E, 0x308C, 0x306E, 0x5834, 0x6240,
                ],
                "Hello-Another-Way--fc4qua05auwb3674vfr0b",
            ),
            (
                "(O) <hitotsu><yane><no><shita>2",
                vec![
                    0x3072, 0x3068, 0x3064, 0x5C4B, 0x6839, 0x306E, 0x4E0B, 0x0032,
                ],
                "2-u9tlzr9756bt3uc0v",
            ),
            (
                "(P) Maji<de>Koi<suru>5<byou><mae>",
                vec![
                    0x004D, 0x0061, 0x006A, 0x0069, 0x3067, 0x004B, 0x006F, 0x0069, 0x3059, 0x308B,
                    0x0035, 0x79D2, 0x524D,
                ],
                "MajiKoi5-783gue6qz075azm5e",
            ),
            (
                "(Q) <pafii>de<runba>",
                vec![
                    0x30D1, 0x30D5, 0x30A3, 0x30FC, 0x0064, 0x0065, 0x30EB, 0x30F3, 0x30D0,
                ],
                "de-jg4avhby1noc0d",
            ),
            (
                "(R) <sono><supiido><de>",
                vec![0x305D, 0x306E, 0x30B9, 0x30D4, 0x30FC, 0x30C9, 0x3067],
                "d9juau41awczczp",
            ),
            (
                "(S) -> $1.00 <-",
                "-> $1.00 <-".chars().map(u32::from).collect(),
                "-> $1.00 <--",
            ),
        ]
    }

    fn chars(code_points: &[u32]) -> Vec<char> {
        code_points
            .iter()
            .map(|&c| char::from_u32(c).unwrap())
            .collect()
    }

    #[test]
    fn rfc_3492_samples_decode() {
        for (name, code_points, encoded) in rfc_samples() {
            assert_eq!(decode(encoded), Some(chars(&code_points)), "{name}");
        }
    }

    #[test]
    fn rfc_3492_samples_encode_to_the_lowercase_form() {
        // The RFC's mixed case comes from uppercase basic code points (kept verbatim) and from case
        // annotations on the deltas (which an encoder need not write): compare against the sample
        // with the deltas lowercased.
        for (name, code_points, encoded) in rfc_samples() {
            let input = chars(&code_points);
            let (basic, deltas) = encoded.rsplit_once('-').unwrap_or(("", encoded));
            let expected = if input.iter().any(|c| !c.is_ascii()) {
                let separator = if basic.is_empty() { "" } else { "-" };
                format!("{basic}{separator}{}", deltas.to_ascii_lowercase())
            } else {
                encoded.to_string()
            };
            assert_eq!(encode(&input).as_deref(), Some(expected.as_str()), "{name}");
        }
    }

    #[test]
    fn common_labels_round_trip() {
        for (label, encoded) in [
            ("bücher", "bcher-kva"),
            ("例え", "r8jz45g"),
            ("テスト", "zckzah"),
            ("münchen", "mnchen-3ya"),
            ("ß", "zca"),
        ] {
            let label: Vec<char> = label.chars().collect();
            assert_eq!(encode(&label).as_deref(), Some(encoded), "{encoded}");
            assert_eq!(decode(encoded), Some(label), "{encoded}");
        }
    }

    #[test]
    fn invalid_punycode_is_refused() {
        let cases = [
            // A delta cut short, a byte that is not a digit, a non-ASCII basic part.
            "z",
            "bcher-kv",
            "bcher-kv!",
            "ü-kva",
            // A delta that overflows 32 bits (the RFC's decoder must refuse it, not wrap).
            "999999999999a",
            // A delta that lands on a surrogate (U+D800), or beyond U+10FFFF.
            "ib9b",
            "99999a",
        ];
        for case in cases {
            assert_eq!(decode(case), None, "{case:?}");
        }
    }

    #[test]
    fn empty_and_all_basic_inputs() {
        assert_eq!(decode(""), Some(vec![]));
        assert_eq!(decode("abc-"), Some(vec!['a', 'b', 'c']));
        assert_eq!(encode(&[]).as_deref(), Some(""));
        assert_eq!(encode(&['a', 'b']).as_deref(), Some("ab-"));
    }
}
