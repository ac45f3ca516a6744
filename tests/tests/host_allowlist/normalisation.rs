//! Normalisation through real Envoy: case, trailing dots, ports, IP literals and numeric IPv4
//! spellings, internationalised names, and hostile authorities sent byte for byte over HTTP/1.1.
//! Whatever the spelling, a denied destination never reaches the upstream.

use serde_json::json;

use crate::support::{Expect, HttpGateway, Observed, ALLOWED, DENIED};

fn normalising_gateway(name: &str) -> HttpGateway {
    HttpGateway::plain(
        name,
        &json!({
            "hosts": [
                "www.example.com",
                "wide.example.com:*",
                "Mixed.Example.COM.",
                "api.example.com:8443",
                "plain.example.com:80",
                "10.0.0.7",
                "[2001:db8::7]:*",
                "0x7f000001",
                "xn--bcher-kva.example"
            ]
        })
        .to_string(),
    )
}

#[test]
fn case_dots_ports_and_ip_literals_over_http1_and_h2c() {
    let gateway = normalising_gateway("allowlist-normalise");
    let cases = [
        // Case and one trailing dot, in requests and in entries.
        ("www.example.com", Expect::Passes),
        ("WWW.Example.COM", Expect::Passes),
        ("www.example.com.", Expect::Passes),
        ("mixed.example.com", Expect::Passes),
        ("MIXED.example.com.", Expect::Passes),
        // An entry without a port allows 80 and 443 only, `host:*` every port, `host:port` that
        // port only; a request without a port is on its connection's default (plain text: 80).
        ("www.example.com:80", Expect::Passes),
        ("www.example.com:443", Expect::Passes),
        ("www.example.com:8080", Expect::Denied("host_not_listed")),
        ("www.example.com.:22", Expect::Denied("host_not_listed")),
        ("wide.example.com", Expect::Passes),
        ("wide.example.com.:8080", Expect::Passes),
        ("wide.example.com:22", Expect::Passes),
        ("api.example.com:8443", Expect::Passes),
        ("API.example.com.:8443", Expect::Passes),
        ("api.example.com", Expect::Denied("host_not_listed")),
        ("api.example.com:443", Expect::Denied("host_not_listed")),
        ("api.example.com:8444", Expect::Denied("host_not_listed")),
        ("plain.example.com", Expect::Passes),
        ("plain.example.com:80", Expect::Passes),
        ("plain.example.com:8080", Expect::Denied("host_not_listed")),
        // IP literals match only as listed; IPv6 by value.
        ("10.0.0.7", Expect::Passes),
        ("10.0.0.7:9000", Expect::Denied("host_not_listed")),
        ("10.0.0.8", Expect::Denied("host_not_listed")),
        ("[2001:db8::7]", Expect::Passes),
        ("[2001:DB8:0:0::7]:8080", Expect::Passes),
        ("[2001:db8::8]", Expect::Denied("host_not_listed")),
        ("[::ffff:10.0.0.7]", Expect::Denied("host_not_listed")),
        // Numeric IPv4 spellings are neither names nor the address they may denote: only the
        // listed spelling (after lowercasing) passes.
        ("0x7f000001", Expect::Passes),
        ("0X7F000001", Expect::Passes),
        ("127.0.0.1", Expect::Denied("host_not_listed")),
        ("2130706433", Expect::Denied("host_not_listed")),
        ("0177.0.0.1", Expect::Denied("host_not_listed")),
        ("127.1", Expect::Denied("host_not_listed")),
        ("167772167", Expect::Denied("host_not_listed")),
        ("10.0.0.07", Expect::Denied("host_not_listed")),
        ("010.0.0.7", Expect::Denied("host_not_listed")),
        ("10.7", Expect::Denied("host_not_listed")),
        // Internationalised names match as their punycode A-labels.
        ("xn--bcher-kva.example", Expect::Passes),
        ("XN--BCHER-KVA.example.", Expect::Passes),
        ("bucher.example", Expect::Denied("host_not_listed")),
        // An `xn--` label that is not valid punycode is no name at all.
        ("xn--abc-.example", Expect::Denied("invalid_host")),
    ];
    gateway.check_authorities(&cases);
    let passed = cases
        .iter()
        .filter(|(_, expect)| *expect == Expect::Passes)
        .count() as u64;
    assert_eq!(gateway.counter(ALLOWED), 2 * passed);
    assert_eq!(gateway.counter(DENIED), 2 * (cases.len() as u64 - passed));
    // An allowed authority goes on in its canonical spelling, so that the route and the upstream
    // see the host that was allowed; the port stays unless it is the scheme's default.
    assert_canonicalised(
        &gateway,
        &[
            ("WWW.Example.COM", "www.example.com"),
            ("www.example.com.", "www.example.com"),
            ("www.example.com:80", "www.example.com"),
            ("wide.example.com.:8080", "wide.example.com:8080"),
            ("[2001:DB8:0:0::7]:8080", "[2001:db8::7]:8080"),
            ("0X7F000001", "0x7f000001"),
        ],
    );
}

/// Each `(sent, canonical)`: the upstream saw the canonical spelling and never the one sent.
fn assert_canonicalised(gateway: &HttpGateway, pairs: &[(&str, &str)]) {
    let seen: Vec<String> = gateway
        .upstream
        .requests()
        .iter()
        .filter_map(|request| request.authority().map(str::to_string))
        .collect();
    for (sent, canonical) in pairs {
        assert!(
            !seen.iter().any(|authority| authority == sent),
            "{sent:?} reached the upstream: {seen:?}"
        );
        assert!(
            seen.iter().any(|authority| authority == canonical),
            "{canonical:?} not in {seen:?}"
        );
    }
}

/// A request line and a Host header written exactly as given.
fn with_host(host: &[u8]) -> Vec<u8> {
    let mut bytes = b"GET / HTTP/1.1\r\nhost: ".to_vec();
    bytes.extend_from_slice(host);
    bytes.extend_from_slice(b"\r\nconnection: close\r\n\r\n");
    bytes
}

#[test]
fn hostile_authorities_over_raw_http1_never_reach_the_upstream() {
    let gateway = normalising_gateway("allowlist-hostile");
    let invalid = Expect::Denied("invalid_host");
    let refused = Expect::RefusedByEnvoy;
    let cases: Vec<(Vec<u8>, Expect)> = vec![
        // The control: the listed name, written plainly, passes.
        (with_host(b"www.example.com"), Expect::Passes),
        // Raw UTF-8 is not a valid HTTP/1.1 Host for Envoy: clients send the punycode A-labels,
        // which the first test covers.
        (with_host("bücher.example".as_bytes()), refused),
        (with_host("ＷＷＷ.example.com".as_bytes()), refused),
        // User information, in every position a parser might take it.
        (with_host(b"user@www.example.com"), invalid),
        (with_host(b"www.example.com@evil.example"), invalid),
        (with_host(b"user:pass@www.example.com"), invalid),
        // Percent-encoding passes Envoy's codec; the filter refuses it.
        (with_host(b"www%2eexample.com"), invalid),
        (with_host(b"%77ww.example.com"), invalid),
        // Whitespace, control characters and URL delimiters: Envoy's codec refuses them first.
        (with_host(b"www.example .com"), refused),
        (with_host(b"www.example.com\x01"), refused),
        (with_host(b"www.exa\x00mple.com"), refused),
        (with_host(b"www.example.com\x7f"), refused),
        (with_host(b"evil.example/www.example.com"), refused),
        (with_host(b"evil.example?www.example.com"), refused),
        (with_host(b"evil.example#www.example.com"), refused),
        (with_host(b"evil.example\\www.example.com"), refused),
        (with_host(b"www.example.com,evil.example"), invalid),
        (with_host(b"www.example.com;evil.example"), invalid),
        // Brackets and IPv6.
        (with_host(b"[[www.example.com]]"), invalid),
        (with_host(b"[www.example.com]"), invalid),
        (with_host(b"[2001:db8::7"), invalid),
        (with_host(b"2001:db8::7"), invalid),
        (with_host(b"[2001:db8::7]x"), invalid),
        // Ports and labels.
        (with_host(b"www.example.com:0"), invalid),
        (with_host(b"www.example.com:65536"), invalid),
        (with_host(b"www.example.com:80a"), invalid),
        (with_host(b"www.example.com:+80"), invalid),
        (with_host(b"www.example.com:"), invalid),
        (with_host(b"www.example.com:80:80"), invalid),
        (with_host(b"www..example.com"), invalid),
        (with_host(b".www.example.com"), invalid),
        (with_host(b"www.example.com.."), invalid),
        (with_host(format!("{}.example.com", "a".repeat(64)).as_bytes()), invalid),
        (with_host(format!("{}com", "a.".repeat(127)).as_bytes()), invalid),
        (with_host(b"www_example!.com"), invalid),
        // No usable Host.
        (with_host(b""), Expect::Denied("missing_host")),
        (b"GET / HTTP/1.1\r\nconnection: close\r\n\r\n".to_vec(), refused),
        // Two Host headers: Envoy joins them ("www.example.com,evil.example"), which is no host.
        (
            b"GET / HTTP/1.1\r\nhost: www.example.com\r\nhost: evil.example\r\nconnection: close\r\n\r\n".to_vec(),
            invalid,
        ),
        // An absolute-form target names the destination; Envoy takes it as the authority.
        (
            b"GET http://evil.example/ HTTP/1.1\r\nhost: www.example.com\r\nconnection: close\r\n\r\n".to_vec(),
            Expect::Denied("host_not_listed"),
        ),
    ];
    let mismatches: Vec<String> = cases
        .iter()
        .filter_map(|(bytes, expect)| {
            let observed = gateway.observe_raw(None, bytes);
            (observed != Observed::from(*expect)).then(|| {
                format!(
                    "{:?}: expected {expect:?}, observed {observed:?}",
                    String::from_utf8_lossy(bytes)
                )
            })
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "{}\n{}",
        mismatches.join("\n"),
        gateway.log_tail()
    );
    let denied_by_filter = cases
        .iter()
        .filter(|(_, expect)| matches!(expect, Expect::Denied(_)))
        .count();
    assert_eq!(gateway.counter(DENIED), denied_by_filter as u64);
}

/// Without entries that name a port the filter does not read `:scheme`; a default port in the
/// authority must still be dropped on the way upstream, and a regex in ASCII mode still knows `\d`.
#[test]
fn portless_entries_canonicalise_the_default_port_and_regexes_know_ascii_classes() {
    let gateway = HttpGateway::plain(
        "allowlist-portless",
        &json!({
            "hosts": ["www.example.com"],
            "host_regex": ["bucket-\\d+\\.example\\.com"]
        })
        .to_string(),
    );
    let cases = [
        ("www.example.com", Expect::Passes),
        ("www.example.com:80", Expect::Passes),
        ("WWW.example.com:443", Expect::Passes),
        ("WWW.example.com:8080", Expect::Denied("host_not_listed")),
        ("bucket-42.example.com", Expect::Passes),
        (
            "bucket-42.example.com:8080",
            Expect::Denied("host_not_listed"),
        ),
        ("BUCKET-7.example.com:80", Expect::Passes),
        ("bucket-x.example.com", Expect::Denied("host_not_listed")),
        (
            "bucket-42.example.com.evil.net",
            Expect::Denied("host_not_listed"),
        ),
    ];
    gateway.check_authorities(&cases);
    assert_canonicalised(
        &gateway,
        &[
            ("www.example.com:80", "www.example.com"),
            ("BUCKET-7.example.com:80", "bucket-7.example.com"),
            // Not the plain-text connection's default port: it stays.
            ("WWW.example.com:443", "www.example.com:443"),
        ],
    );
}
