//! The request as the rules see it, built from one read of the request headers.
//!
//! Envoy hands a Wasm filter its pseudo-headers with the others, so `:authority`, `:path` and
//! `:method` come from the same list, and one host call serves every rule.

use std::borrow::Cow;
use std::cell::OnceCell;

use crate::host::Authority;

#[derive(Debug)]
pub(crate) struct Request {
    /// Every header as the host holds it: lowercase names, in order, repeated names kept.
    headers: Vec<(String, String)>,
    /// `:path` up to, not including, `?` or `#`, as Envoy routes on it.
    path: String,
    /// Query parameters in order, names and values percent-decoded, `+` read as a space.
    query: Vec<(String, String)>,
    /// `:authority`, normalised by the shared host module on first use: only rules with a host
    /// condition pay for it. `None` when it is missing or does not parse.
    authority: OnceCell<Option<Authority>>,
}

impl Request {
    pub(crate) fn new(headers: Vec<(String, String)>) -> Self {
        let full_path = headers
            .iter()
            .find(|(name, _)| name == ":path")
            .map(|(_, value)| value.as_str())
            .unwrap_or_default();
        let without_fragment = full_path.split('#').next().unwrap_or_default();
        let (path, query) = match without_fragment.split_once('?') {
            Some((path, query)) => (path, parse_query(query)),
            None => (without_fragment, Vec::new()),
        };
        Self {
            path: path.to_string(),
            query,
            headers,
            authority: OnceCell::new(),
        }
    }

    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    pub(crate) fn method(&self) -> Option<&str> {
        self.first(":method")
    }

    /// The normalised `:authority`, with the scheme's default port filled in when the client gave
    /// none, so that an entry such as `shop.example.com:443` applies to `https://shop.example.com/`.
    pub(crate) fn authority(&self) -> Option<&Authority> {
        self.authority
            .get_or_init(|| {
                let authority = Authority::parse(self.first(":authority")?).ok()?;
                Some(match self.first(":scheme") {
                    Some("https") => authority.with_default_port(443),
                    Some("http") => authority.with_default_port(80),
                    _ => authority,
                })
            })
            .as_ref()
    }

    fn first(&self, name: &str) -> Option<&str> {
        self.values(name).next()
    }

    /// Every value of header `name` (lowercase), in order.
    pub(crate) fn values<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.headers
            .iter()
            .filter(move |(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }

    /// Header `name`'s value; a repeated header reads as its values joined by `,`, as Envoy's own
    /// header matchers read it.
    pub(crate) fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        let mut values = self.values(name);
        let first = values.next()?;
        match values.next() {
            None => Some(Cow::Borrowed(first)),
            Some(second) => {
                let mut joined = format!("{first},{second}");
                for value in values {
                    joined.push(',');
                    joined.push_str(value);
                }
                Some(Cow::Owned(joined))
            }
        }
    }

    /// The first cookie called `name` in the `cookie` header(s), without surrounding quotes.
    pub(crate) fn cookie(&self, name: &str) -> Option<&str> {
        self.values("cookie")
            .flat_map(|header| header.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(cookie, _)| *cookie == name)
            .map(|(_, value)| {
                let value = value.trim();
                value
                    .strip_prefix('"')
                    .and_then(|value| value.strip_suffix('"'))
                    .unwrap_or(value)
            })
    }

    /// The first query parameter called `name` (matched after decoding).
    pub(crate) fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(parameter, _)| parameter == name)
            .map(|(_, value)| value.as_str())
    }
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(name), decode_component(value))
        })
        .collect()
}

/// Decodes `%XX` and `+`; a malformed escape is kept as written rather than refused, since the
/// tagger only reads the query and never rejects a request.
fn decode_component(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            b'+' => decoded.push(b' '),
            b'%' => {
                let escaped = bytes
                    .get(index + 1..index + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                if let Some(value) = escaped {
                    decoded.push(value);
                    index += 3;
                    continue;
                }
                decoded.push(b'%');
            }
            other => decoded.push(other),
        }
        index += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn request(pairs: &[(&str, &str)]) -> Request {
        Request::new(
            pairs
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        )
    }

    #[test]
    fn path_and_query_are_split() {
        let cases = [
            ("/a/b?x=1", "/a/b", vec![("x", "1")]),
            ("/a?", "/a", vec![]),
            ("/a#frag?x=1", "/a", vec![]),
            ("/a?x=1#frag", "/a", vec![("x", "1")]),
            ("/?a=1&&b&c=", "/", vec![("a", "1"), ("b", ""), ("c", "")]),
            ("", "", vec![]),
        ];
        for (raw, path, query) in cases {
            let request = request(&[(":path", raw)]);
            assert_eq!(request.path(), path, "{raw}");
            let expected: Vec<(String, String)> = query
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            assert_eq!(request.query, expected, "{raw}");
        }
    }

    #[test]
    fn query_components_are_decoded() {
        let cases = [
            ("a%20b", "a b"),
            ("a+b", "a b"),
            ("%41%62", "Ab"),
            ("100%", "100%"),
            ("%zz", "%zz"),
            ("%4", "%4"),
            ("caf%C3%A9", "café"),
            ("%FF", "\u{fffd}"),
        ];
        for (raw, decoded) in cases {
            assert_eq!(decode_component(raw), decoded, "{raw}");
        }
        let request = request(&[(":path", "/p?user%5Fid=a%26b&user_id=second")]);
        assert_eq!(request.query("user_id"), Some("a&b"));
    }

    #[test]
    fn repeated_headers_join_with_commas() {
        let request = request(&[("x-a", "1"), ("x-b", "2"), ("x-a", "3"), ("x-a", "")]);
        assert_eq!(request.header("x-a").as_deref(), Some("1,3,"));
        assert_eq!(request.header("x-b").as_deref(), Some("2"));
        assert_eq!(request.header("x-c"), None);
    }

    #[test]
    fn cookies_are_found_across_headers() {
        let request = request(&[
            ("cookie", "a=1; session=\"q\""),
            ("cookie", "b=2;session=late; =x; junk"),
        ]);
        let cases = [
            ("a", Some("1")),
            ("session", Some("q")),
            ("b", Some("2")),
            ("junk", None),
            ("missing", None),
        ];
        for (name, expected) in cases {
            assert_eq!(request.cookie(name), expected, "{name}");
        }
    }

    #[test]
    fn pseudo_headers() {
        let request = request(&[(":method", "GET"), (":method", "POST")]);
        assert_eq!(request.method(), Some("GET"));
        assert_eq!(request.path(), "");
    }

    #[test]
    fn authority_is_normalised_with_the_scheme_port() {
        let cases = [
            (
                &[(":authority", "Shop.Example.COM.")][..],
                Some("shop.example.com"),
            ),
            (
                &[(":authority", "shop.example.com"), (":scheme", "https")][..],
                Some("shop.example.com:443"),
            ),
            (
                &[(":authority", "shop.example.com"), (":scheme", "http")][..],
                Some("shop.example.com:80"),
            ),
            (
                &[
                    (":authority", "shop.example.com:8443"),
                    (":scheme", "https"),
                ][..],
                Some("shop.example.com:8443"),
            ),
            (
                &[(":authority", "[2001:DB8::1]:80")][..],
                Some("[2001:db8::1]:80"),
            ),
            (&[(":authority", "user@shop.example.com")][..], None),
            (&[(":authority", "shop example")][..], None),
            (&[][..], None),
        ];
        for (headers, expected) in cases {
            let authority = request(headers).authority().map(ToString::to_string);
            assert_eq!(authority.as_deref(), expected, "{headers:?}");
        }
    }
}
