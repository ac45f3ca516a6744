//! Parsing and normalising an HTTP authority (`host[:port]`) or a bare host such as a TLS SNI.
//!
//! The point is that one destination has one spelling: case, one trailing dot, punycode spellings of
//! a label and the many ways of writing an IPv4 address must not make a denied destination look like
//! an allowed one, nor the reverse. Input that is not clearly a host is an error, never a best guess.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::idn;

/// Longest DNS name, in bytes, without the trailing dot (RFC 1035).
pub const MAX_NAME_LENGTH: usize = 253;
/// Longest DNS label, in bytes (RFC 1035).
pub const MAX_LABEL_LENGTH: usize = 63;

/// Input longer than this is refused before any other processing, so that the cost of parsing a
/// hostile header stays bounded. A valid name with a port, or a bracketed IPv6 address, is far shorter.
const MAX_INPUT_LENGTH: usize = 1024;

/// Why a string is not an authority or a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorityError {
    Empty,
    UserInfo,
    PercentEncoded,
    Whitespace,
    ControlCharacter,
    InvalidCharacter(char),
    UnbracketedIpv6,
    InvalidBrackets,
    InvalidPort,
    EmptyLabel,
    LabelTooLong,
    NameTooLong,
    InvalidIdn,
}

impl fmt::Display for AuthorityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the host is empty"),
            Self::UserInfo => f.write_str("user information (\"user@\") is not allowed"),
            Self::PercentEncoded => f.write_str("percent-encoding is not allowed"),
            Self::Whitespace => f.write_str("whitespace is not allowed"),
            Self::ControlCharacter => f.write_str("control characters are not allowed"),
            Self::InvalidCharacter(c) => write!(f, "{c:?} is not allowed in a host name"),
            Self::UnbracketedIpv6 => f.write_str("an IPv6 address must be written in brackets"),
            Self::InvalidBrackets => {
                f.write_str("brackets must enclose exactly one IPv6 address, at the start")
            }
            Self::InvalidPort => f.write_str("the port must be a number from 1 to 65535"),
            Self::EmptyLabel => f.write_str("the name has an empty label"),
            Self::LabelTooLong => write!(f, "a label is longer than {MAX_LABEL_LENGTH} bytes"),
            Self::NameTooLong => write!(f, "the name is longer than {MAX_NAME_LENGTH} bytes"),
            Self::InvalidIdn => f.write_str("not a valid internationalised domain name"),
        }
    }
}

impl std::error::Error for AuthorityError {}

/// A normalised host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name: lowercase ASCII with internationalised labels as canonical punycode A-labels, no
    /// trailing dot, only `[a-z0-9._-]`, labels of 1 to 63 bytes, at most 253 bytes.
    Name(String),
    /// An IPv4 address written as a dotted quad without leading zeros.
    Ipv4(Ipv4Addr),
    /// An IPv6 address (written in brackets).
    Ipv6(Ipv6Addr),
    /// A spelling that resolvers and URL parsers read as an IPv4 address although it is not a dotted
    /// quad (`2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1`). It is kept as written (lowercased),
    /// so it matches only a configured entry with that exact spelling: never a name, never the
    /// address it may denote.
    NumericSpelling(String),
}

impl Host {
    /// Parses and normalises a host without a port: a name, an IPv4 address, or an IPv6 address in
    /// brackets. This is how a TLS SNI is read. A name must be ASCII (RFC 6066: an SNI carries
    /// A-labels); non-ASCII is [`AuthorityError::InvalidIdn`].
    pub fn parse(input: &str) -> Result<Self, AuthorityError> {
        check_input(input)?;
        parse_host(input)
    }

    /// The DNS name, when this host is one.
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Name(name) => Some(name),
            _ => None,
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) | Self::NumericSpelling(name) => f.write_str(name),
            Self::Ipv4(address) => write!(f, "{address}"),
            Self::Ipv6(address) => write!(f, "[{address}]"),
        }
    }
}

/// A normalised HTTP authority: a host and, when the client gave one, a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Authority {
    host: Host,
    port: Option<u16>,
}

impl Authority {
    pub fn new(host: Host, port: Option<u16>) -> Self {
        Self { host, port }
    }

    /// Parses and normalises `host[:port]` as found in `:authority` or `Host`. IPv6 addresses must be
    /// in brackets; the port is 1 to 65535 in ASCII digits.
    pub fn parse(input: &str) -> Result<Self, AuthorityError> {
        check_input(input)?;
        let (host, port) = split_host_port(input)?;
        Ok(Self {
            host: parse_host(host)?,
            port: port.map(parse_port).transpose()?,
        })
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The same authority with `port` filled in when none was given, e.g. the scheme's default port,
    /// so that an entry such as `example.com:443` applies to `https://example.com/`.
    pub fn with_default_port(self, port: u16) -> Self {
        Self {
            port: self.port.or(Some(port)),
            ..self
        }
    }
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.host),
            None => write!(f, "{}", self.host),
        }
    }
}

/// Refuses, over the whole input, what can never be part of a host and deserves a precise reason:
/// user information, percent-encoding, whitespace and control characters.
fn check_input(input: &str) -> Result<(), AuthorityError> {
    if input.is_empty() {
        return Err(AuthorityError::Empty);
    }
    if input.len() > MAX_INPUT_LENGTH {
        return Err(AuthorityError::NameTooLong);
    }
    for c in input.chars() {
        match forbidden(c) {
            Some(AuthorityError::InvalidCharacter(_)) | None => {}
            Some(error) => return Err(error),
        }
    }
    Ok(())
}

/// The error for a character that may not appear in a normalised name, or `None` if it may.
fn forbidden(c: char) -> Option<AuthorityError> {
    match c {
        'a'..='z' | '0'..='9' | '.' | '-' | '_' => None,
        '@' => Some(AuthorityError::UserInfo),
        '%' => Some(AuthorityError::PercentEncoded),
        c if c.is_whitespace() => Some(AuthorityError::Whitespace),
        c if c.is_control() => Some(AuthorityError::ControlCharacter),
        c => Some(AuthorityError::InvalidCharacter(c)),
    }
}

/// Splits `host[:port]`, aware of `[IPv6]` brackets. The host keeps its brackets.
fn split_host_port(input: &str) -> Result<(&str, Option<&str>), AuthorityError> {
    if input.starts_with('[') {
        let Some(close) = input.find(']') else {
            return Err(AuthorityError::InvalidBrackets);
        };
        let (host, rest) = input.split_at(close + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if rest.is_empty() => Ok((host, None)),
            None => Err(AuthorityError::InvalidBrackets),
        };
    }
    match input.split_once(':') {
        None => Ok((input, None)),
        Some((host, port)) if !port.contains(':') => Ok((host, Some(port))),
        Some(_) if input.parse::<Ipv6Addr>().is_ok() => Err(AuthorityError::UnbracketedIpv6),
        Some(_) => Err(AuthorityError::InvalidCharacter(':')),
    }
}

/// 1 to 65535, ASCII digits only (no sign, no spaces), at most five of them.
fn parse_port(port: &str) -> Result<u16, AuthorityError> {
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthorityError::InvalidPort);
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(AuthorityError::InvalidPort),
        Ok(port) => Ok(port),
    }
}

fn parse_host(host: &str) -> Result<Host, AuthorityError> {
    if host.is_empty() {
        return Err(AuthorityError::Empty);
    }
    if let Some(inner) = host.strip_prefix('[') {
        let address = inner
            .strip_suffix(']')
            .and_then(|inner| inner.parse::<Ipv6Addr>().ok())
            .ok_or(AuthorityError::InvalidBrackets)?;
        return Ok(Host::Ipv6(address));
    }
    if host.contains(['[', ']']) {
        return Err(AuthorityError::InvalidBrackets);
    }
    normalise_name(host)
}

/// ASCII only, lowercase, one trailing dot removed, then the strict DNS shape with canonical A-labels.
fn normalise_name(host: &str) -> Result<Host, AuthorityError> {
    // Clients send internationalised names as A-labels: Envoy refuses a raw UTF-8 Host, and an SNI is
    // ASCII. Non-ASCII here is refused rather than mapped, so no Unicode form (full-width letters,
    // another dot) can ever be read as a listed name.
    if !host.is_ascii() {
        return Err(AuthorityError::InvalidIdn);
    }
    let lowercase = host.to_ascii_lowercase();
    let name = lowercase.strip_suffix('.').unwrap_or(&lowercase);
    if name.is_empty() {
        return Err(AuthorityError::Empty);
    }
    if let Some(error) = name.chars().find_map(forbidden) {
        return Err(error);
    }
    if name.len() > MAX_NAME_LENGTH {
        return Err(AuthorityError::NameTooLong);
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(AuthorityError::EmptyLabel);
        }
        if label.len() > MAX_LABEL_LENGTH {
            return Err(AuthorityError::LabelTooLong);
        }
        if !idn::is_valid_label(label) {
            return Err(AuthorityError::InvalidIdn);
        }
    }
    Ok(classify_name(name))
}

/// Tells names from IPv4 spellings the way the URL standard does: a host whose last label is a
/// number (decimal, or `0x` hex) is an address, not a name. Only the dotted quad is an address we
/// compare by value; every other numeric spelling is kept verbatim.
fn classify_name(name: &str) -> Host {
    let last_label = name.rsplit('.').next().unwrap_or(name);
    if !is_ipv4_number(last_label) {
        return Host::Name(name.to_string());
    }
    // The standard library accepts only the dotted quad, without leading zeros.
    match name.parse::<Ipv4Addr>() {
        Ok(address) => Host::Ipv4(address),
        Err(_) => Host::NumericSpelling(name.to_string()),
    }
}

fn is_ipv4_number(label: &str) -> bool {
    match label.strip_prefix("0x") {
        Some(hex) => hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit()),
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn name(name: &str) -> Host {
        Host::Name(name.to_string())
    }

    fn numeric(spelling: &str) -> Host {
        Host::NumericSpelling(spelling.to_string())
    }

    #[test]
    fn authorities_normalise() {
        let v4 = |a, b, c, d| Host::Ipv4(Ipv4Addr::new(a, b, c, d));
        let v6 = |text: &str| Host::Ipv6(text.parse().unwrap());
        let cases: &[(&str, Host, Option<u16>)] = &[
            ("www.google.com", name("www.google.com"), None),
            ("WWW.Google.COM", name("www.google.com"), None),
            ("www.google.com.", name("www.google.com"), None),
            ("www.google.com.:443", name("www.google.com"), Some(443)),
            ("api.example.com:8443", name("api.example.com"), Some(8443)),
            ("a:1", name("a"), Some(1)),
            ("a:65535", name("a"), Some(65535)),
            ("a:00080", name("a"), Some(80)),
            ("under_score.example", name("under_score.example"), None),
            ("-leading.example", name("-leading.example"), None),
            ("localhost", name("localhost"), None),
            ("10.0.0.7", v4(10, 0, 0, 7), None),
            ("10.0.0.7:8080", v4(10, 0, 0, 7), Some(8080)),
            ("10.0.0.7.", v4(10, 0, 0, 7), None),
            ("[2001:db8::7]", v6("2001:db8::7"), None),
            ("[2001:DB8:0::7]:443", v6("2001:db8::7"), Some(443)),
            ("[::ffff:127.0.0.1]", v6("::ffff:7f00:1"), None),
            ("[::1]:8080", v6("::1"), Some(8080)),
            // Numeric IPv4 spellings are kept verbatim, never read as the address.
            ("2130706433", numeric("2130706433"), None),
            ("0x7f000001", numeric("0x7f000001"), None),
            ("0X7F000001", numeric("0x7f000001"), None),
            ("0177.0.0.1", numeric("0177.0.0.1"), None),
            ("127.1", numeric("127.1"), None),
            ("127.0.0.01", numeric("127.0.0.01"), None),
            ("127.0.0.256", numeric("127.0.0.256"), None),
            ("1.2.3.4.5", numeric("1.2.3.4.5"), None),
            ("example.123", numeric("example.123"), None),
            ("example.0x", numeric("example.0x"), None),
            ("127.1:80", numeric("127.1"), Some(80)),
            // A last label that only looks hex-ish is a name.
            ("example.0xg", name("example.0xg"), None),
            ("1.2.3.4.example", name("1.2.3.4.example"), None),
            // Internationalised names arrive as canonical A-labels, in any case.
            ("xn--bcher-kva.de", name("xn--bcher-kva.de"), None),
            ("XN--BCHER-KVA.de.:443", name("xn--bcher-kva.de"), Some(443)),
            (
                "xn--r8jz45g.xn--zckzah",
                name("xn--r8jz45g.xn--zckzah"),
                None,
            ),
        ];
        for (input, host, port) in cases {
            let authority = Authority::parse(input)
                .unwrap_or_else(|error| panic!("{input:?} should parse: {error}"));
            assert_eq!(authority.host(), host, "{input:?}");
            assert_eq!(authority.port(), *port, "{input:?}");
        }
    }

    #[test]
    fn malformed_authorities_are_errors() {
        use AuthorityError::*;
        let long_label = format!("{}.com", "a".repeat(64));
        let long_name = format!("{}.com", vec!["a".repeat(60); 5].join("."));
        let huge = "a".repeat(MAX_INPUT_LENGTH + 1);
        let cases: &[(&str, AuthorityError)] = &[
            ("", Empty),
            (":80", Empty),
            (".", Empty),
            ("user@example.com", UserInfo),
            ("user:pass@example.com", UserInfo),
            ("example.com@evil.com", UserInfo),
            ("ex%61mple.com", PercentEncoded),
            ("%2e", PercentEncoded),
            ("exa mple.com", Whitespace),
            (" example.com", Whitespace),
            ("example.com\t", Whitespace),
            ("example.com\u{3000}", Whitespace),
            ("exa\u{0}mple.com", ControlCharacter),
            ("example.com\u{7f}", ControlCharacter),
            ("exa\u{85}mple.com", Whitespace),
            ("example.com/path", InvalidCharacter('/')),
            ("example.com\\", InvalidCharacter('\\')),
            ("example.com?", InvalidCharacter('?')),
            ("example.com#x", InvalidCharacter('#')),
            ("*.example.com", InvalidCharacter('*')),
            ("exa\"mple", InvalidCharacter('"')),
            ("a:b:c", InvalidCharacter(':')),
            ("2001:db8::7", UnbracketedIpv6),
            ("::1", UnbracketedIpv6),
            ("[[::1]]", InvalidBrackets),
            ("[[x]]", InvalidBrackets),
            ("[x]", InvalidBrackets),
            ("[127.0.0.1]", InvalidBrackets),
            ("[::1", InvalidBrackets),
            ("[::1]x", InvalidBrackets),
            ("[::1]:", InvalidPort),
            ("ex[a]mple.com", InvalidBrackets),
            ("example.com]", InvalidBrackets),
            ("example.com:", InvalidPort),
            ("example.com:0", InvalidPort),
            ("example.com:65536", InvalidPort),
            ("example.com:99999", InvalidPort),
            ("example.com:000443", InvalidPort),
            ("example.com:+443", InvalidPort),
            ("example.com:-1", InvalidPort),
            ("example.com:44a", InvalidPort),
            ("example.com:４４３", InvalidPort),
            ("example.com..", EmptyLabel),
            (".example.com", EmptyLabel),
            ("a..b", EmptyLabel),
            (long_label.as_str(), LabelTooLong),
            (long_name.as_str(), NameTooLong),
            (huge.as_str(), NameTooLong),
            ("xn--a.com", InvalidIdn),
            ("xn--zz-zzzzzz.com", InvalidIdn),
            ("xn--abc-.com", InvalidIdn),
            ("www.xn--qi7cdauna.com", InvalidIdn),
            ("exa\u{200b}mple\u{fffd}.com", InvalidIdn),
            ("example。com％", InvalidIdn),
            // Non-ASCII is refused, never mapped: neither Unicode labels nor compatibility forms
            // (full-width letters, the ideographic full stop) become a name.
            ("bücher.de", InvalidIdn),
            ("BÜCHER.de:443", InvalidIdn),
            ("ｇｏｏｇｌｅ.com", InvalidIdn),
            ("google。com", InvalidIdn),
            ("例え.テスト", InvalidIdn),
        ];
        for (input, expected) in cases {
            assert_eq!(Authority::parse(input), Err(*expected), "{input:?}");
        }
    }

    #[test]
    fn label_and_name_limits_are_inclusive() {
        let label = "a".repeat(MAX_LABEL_LENGTH);
        assert!(Authority::parse(&format!("{label}.com")).is_ok());
        // 4 × 63 + 1 = 253 with dots.
        let longest = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61),
        ]
        .join(".");
        assert_eq!(longest.len(), MAX_NAME_LENGTH);
        assert!(Authority::parse(&longest).is_ok());
        assert!(
            Authority::parse(&format!("{longest}.")).is_ok(),
            "trailing dot is not counted"
        );
        assert_eq!(
            Authority::parse(&format!("{longest}a")),
            Err(AuthorityError::NameTooLong)
        );
    }

    #[test]
    fn host_parse_reads_a_bare_host_such_as_an_sni() {
        assert_eq!(Host::parse("WWW.Google.com."), Ok(name("www.google.com")));
        assert_eq!(
            Host::parse("XN--Bcher-KVA.de"),
            Ok(name("xn--bcher-kva.de"))
        );
        assert_eq!(Host::parse("bücher.de"), Err(AuthorityError::InvalidIdn));
        assert_eq!(
            Host::parse("10.0.0.7"),
            Ok(Host::Ipv4(Ipv4Addr::new(10, 0, 0, 7)))
        );
        assert_eq!(Host::parse("[::1]"), Ok(Host::Ipv6(Ipv6Addr::LOCALHOST)));
        assert_eq!(
            Host::parse("example.com:443"),
            Err(AuthorityError::InvalidCharacter(':'))
        );
        assert_eq!(Host::parse(""), Err(AuthorityError::Empty));
    }

    #[test]
    fn display_gives_the_normalised_form() {
        let cases = [
            ("WWW.Example.com.", "www.example.com"),
            ("Example.com:0443", "example.com:443"),
            ("[2001:DB8:0:0::7]:8443", "[2001:db8::7]:8443"),
            ("0X7F.1", "0x7f.1"),
            ("XN--BCHER-KVA.DE", "xn--bcher-kva.de"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                Authority::parse(input).unwrap().to_string(),
                expected,
                "{input:?}"
            );
        }
    }

    #[test]
    fn default_port_fills_only_a_missing_port() {
        let without = Authority::parse("example.com")
            .unwrap()
            .with_default_port(443);
        assert_eq!(without.port(), Some(443));
        let with = Authority::parse("example.com:8443")
            .unwrap()
            .with_default_port(443);
        assert_eq!(with.port(), Some(8443));
    }

    #[test]
    fn host_name_is_only_for_names() {
        assert_eq!(name("a.b").name(), Some("a.b"));
        assert_eq!(numeric("127.1").name(), None);
        assert_eq!(Host::Ipv4(Ipv4Addr::LOCALHOST).name(), None);
    }
}
