//! The request and connection flows: read what the client asked for, decide, and say what the filter
//! must do. The proxy is read only through [`RequestHost`] and [`ConnectionHost`]; the filter crate
//! implements them over proxy-wasm host calls, the tests over fixed values.

use std::fmt;

use super::config::{Mode, OnSniMismatch};
use super::decision::{Decision, Outcome, Reason};
use super::Allowlist;
use crate::host::{Authority, AuthorityError, Host};

/// Response header that carries the [`Reason`] code of a denial.
pub const REASON_HEADER: &str = "x-gateway-wasm-denied-reason";
/// RFC 9110 `421 Misdirected Request`: the connection's TLS name is not the request's host.
pub const MISDIRECTED_STATUS: u32 = 421;
pub const MISDIRECTED_BODY: &str =
    "misdirected request: the TLS server name does not match the requested host";

/// What the HTTP flow reads from the proxy. Each method is called at most once per request, and
/// only when the decision needs it.
pub trait RequestHost {
    /// `:authority` (HTTP/1 `Host`), as received.
    fn authority(&self) -> Option<String>;
    /// Whether the client's connection to Envoy is TLS (`connection.tls_version` is set). An
    /// authority without a port targets 443 over TLS and 80 in plain text: the port the client
    /// addressed, which `:scheme` cannot tell (an h2c client may send `:scheme: https`).
    fn downstream_is_tls(&self) -> bool;
    /// The downstream TLS SNI (`connection.requested_server_name`): `None` or empty when the listener
    /// does not terminate TLS or the client sent none.
    fn requested_server_name(&self) -> Option<String>;
}

/// What the TLS passthrough (network filter) flow reads from the proxy, once per connection.
pub trait ConnectionHost {
    /// The TLS SNI (`connection.requested_server_name`), read by Envoy's TLS inspector.
    fn requested_server_name(&self) -> Option<String>;
    /// The port the connection arrived on (`destination.port`), for `host:port` entries.
    fn destination_port(&self) -> Option<u16>;
}

/// What the filter must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    /// Let the request or connection through.
    Continue,
    /// Answer the HTTP request locally; nothing of it reaches the upstream.
    Respond(DenyResponse<'a>),
    /// Close the downstream connection before any byte reaches the upstream.
    Close,
}

/// A local answer to a denied HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenyResponse<'a> {
    pub status: u32,
    pub body: &'a str,
    pub reason: Reason,
}

impl DenyResponse<'_> {
    pub fn headers(&self) -> [(&'static str, &'static str); 2] {
        [
            (REASON_HEADER, self.reason.as_str()),
            ("content-type", "text/plain; charset=utf-8"),
        ]
    }
}

/// What was decided on, kept as received so that log lines show what the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Subject {
    Authority(Option<String>),
    AuthorityOverSni { authority: String, sni: String },
    Sni(Option<String>),
}

/// The outcome of one decision: what to publish, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict<'a> {
    pub decision: Decision<'a>,
    pub action: Action<'a>,
    /// For an allowed HTTP request whose authority is not written in its canonical form (case, a
    /// trailing dot, the scheme's default port, an IPv6 spelling): that form, which the filter sets
    /// as `:authority` before the request goes on. Envoy's router matches `virtual_hosts` domains
    /// on the authority as received, so without it `WWW.Example.COM.` or `example.com:80` would be
    /// allowed as `example.com` and then routed as another host (a catch-all route, or a 404).
    /// Always `None` in audit mode, which changes nothing on the request.
    pub canonical_authority: Option<String>,
    subject: Subject,
    invalid: Option<AuthorityError>,
}

impl Verdict<'_> {
    /// One log line, e.g. `would deny "evil.example:443": host_not_listed`. Client-sent text is quoted
    /// and escaped, so a crafted header cannot forge log lines, and cut after
    /// [`LOGGED_CLIENT_TEXT_MAX`] bytes, so a client cannot make every request write kilobytes.
    pub fn log_message(&self) -> String {
        let verb = match self.decision.outcome {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::AuditDenied => "would deny",
        };
        let mut message = format!("{verb} {}: {}", self.subject, self.decision.reason.as_str());
        if let Some(rule) = self.decision.rule {
            message.push_str(&format!(" by {rule:?}"));
        }
        if let Some(error) = self.invalid {
            message.push_str(&format!(" ({error})"));
        }
        message
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Authority(Some(authority)) => write!(f, "authority {}", ClientText(authority)),
            Self::Authority(None) => f.write_str("request without authority"),
            Self::AuthorityOverSni { authority, sni } => write!(
                f,
                "authority {} over TLS server name {}",
                ClientText(authority),
                ClientText(sni)
            ),
            Self::Sni(Some(sni)) => write!(f, "TLS server name {}", ClientText(sni)),
            Self::Sni(None) => f.write_str("connection without TLS server name"),
        }
    }
}

/// The most bytes of one piece of client-sent text (an authority, an SNI) a log line carries.
pub const LOGGED_CLIENT_TEXT_MAX: usize = 256;

/// Client-sent text as a log line shows it: quoted and escaped, and when longer than
/// [`LOGGED_CLIENT_TEXT_MAX`] bytes, its start followed by `…(cut, N bytes)`.
struct ClientText<'a>(&'a str);

impl fmt::Display for ClientText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        if text.len() <= LOGGED_CLIENT_TEXT_MAX {
            return write!(f, "{text:?}");
        }
        let mut end = LOGGED_CLIENT_TEXT_MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        write!(f, "{:?}…(cut, {} bytes)", &text[..end], text.len())
    }
}

impl Allowlist {
    /// The HTTP flow, run on every request: the authority must be allowed; when the listener
    /// terminates TLS and the SNI names another host, that host must be allowed too (else 421),
    /// unless `on_sni_mismatch` is `allow`; under `strict` it must be the authority's host (see
    /// [`Allowlist::sni_misdirects`]).
    pub fn decide_request(&self, request: &impl RequestHost) -> Verdict<'_> {
        let Some(raw) = request.authority().filter(|raw| !raw.is_empty()) else {
            return self.deny_request(Reason::MissingHost, Subject::Authority(None), None);
        };
        let authority = match Authority::parse(&raw) {
            Ok(authority) => authority,
            Err(error) => {
                return self.deny_request(
                    Reason::InvalidHost,
                    Subject::Authority(Some(raw)),
                    Some(error),
                )
            }
        };
        let connection_port = self.connection_default_port(&authority, request);
        let canonical = canonical_authority(&authority, connection_port);
        let port = target_port(&authority, connection_port);
        let Some(matched) = self.find_request(authority.host(), port) else {
            return self.deny_request(Reason::HostNotListed, Subject::Authority(Some(raw)), None);
        };
        if self.on_sni_mismatch != OnSniMismatch::Allow {
            if let Some(sni) = request
                .requested_server_name()
                .filter(|sni| !sni.is_empty())
            {
                if self.sni_misdirects(&sni, &authority, port) {
                    let subject = Subject::AuthorityOverSni {
                        authority: raw,
                        sni,
                    };
                    return self.deny(Reason::SniMismatch, subject, None, self.misdirected());
                }
            }
        }
        // Audit mode observes only: a rewritten authority (and the route re-selection it causes)
        // would break requests that sign the Host header, and an audit must change nothing.
        let canonical = (self.mode == Mode::Enforce && canonical != raw).then_some(canonical);
        Verdict {
            canonical_authority: canonical,
            ..allow(Subject::Authority(Some(raw)), matched.entry)
        }
    }

    /// The TLS passthrough flow, run once when a connection opens: its SNI must be allowed (entries
    /// with a port match the port the connection arrived on).
    pub fn decide_connection(&self, connection: &impl ConnectionHost) -> Verdict<'_> {
        let Some(sni) = connection
            .requested_server_name()
            .filter(|sni| !sni.is_empty())
        else {
            return self.deny(Reason::MissingSni, Subject::Sni(None), None, Action::Close);
        };
        let host = match Host::parse(&sni) {
            Ok(host) => host,
            Err(error) => {
                return self.deny(
                    Reason::InvalidSni,
                    Subject::Sni(Some(sni)),
                    Some(error),
                    Action::Close,
                )
            }
        };
        match self.find(&host, connection.destination_port()) {
            Some(matched) => allow(Subject::Sni(Some(sni)), matched.entry),
            None => self.deny(
                Reason::HostNotListed,
                Subject::Sni(Some(sni)),
                None,
                Action::Close,
            ),
        }
    }

    fn deny_request(
        &self,
        reason: Reason,
        subject: Subject,
        invalid: Option<AuthorityError>,
    ) -> Verdict<'_> {
        let response = DenyResponse {
            status: self.deny.status,
            body: &self.deny.body,
            reason,
        };
        self.deny(reason, subject, invalid, Action::Respond(response))
    }

    fn misdirected(&self) -> Action<'_> {
        Action::Respond(DenyResponse {
            status: MISDIRECTED_STATUS,
            body: MISDIRECTED_BODY,
            reason: Reason::SniMismatch,
        })
    }

    /// In audit mode a denial only becomes a record: the request or connection goes on.
    fn deny<'a>(
        &'a self,
        reason: Reason,
        subject: Subject,
        invalid: Option<AuthorityError>,
        enforce: Action<'a>,
    ) -> Verdict<'a> {
        let (outcome, action) = match self.mode {
            Mode::Enforce => (Outcome::Denied, enforce),
            Mode::Audit => (Outcome::AuditDenied, Action::Continue),
        };
        Verdict {
            decision: Decision {
                outcome,
                reason,
                rule: None,
            },
            action,
            canonical_authority: None,
            subject,
            invalid,
        }
    }
}

fn allow(subject: Subject, rule: &str) -> Verdict<'_> {
    Verdict {
        decision: Decision {
            outcome: Outcome::Allowed,
            reason: Reason::HostListed,
            rule: Some(rule),
        },
        action: Action::Continue,
        canonical_authority: None,
        subject,
        invalid: None,
    }
}

impl Allowlist {
    /// The default port of the client's connection (443 over TLS, 80 in plain text), read only when
    /// it can matter: for a port in the authority (the canonical form drops a default one) or for
    /// entries that name ports; otherwise its read is saved, as each read costs.
    fn connection_default_port(
        &self,
        authority: &Authority,
        request: &impl RequestHost,
    ) -> Option<u16> {
        (authority.port().is_some() || self.hosts.has_port_entries()).then(|| {
            if request.downstream_is_tls() {
                HTTPS_PORT
            } else {
                HTTP_PORT
            }
        })
    }
}

const HTTP_PORT: u16 = 80;
const HTTPS_PORT: u16 = 443;

/// The port a request targets: the authority's, else the connection's default. When neither is
/// known, no entry names a port, and 80 and 443 match the same entries.
fn target_port(authority: &Authority, connection_port: Option<u16>) -> u16 {
    authority.port().or(connection_port).unwrap_or(HTTP_PORT)
}

/// The one spelling of an authority: the normalised host, and its port unless it is the
/// connection's default (RFC 3986, section 6.2.3).
fn canonical_authority(authority: &Authority, connection_port: Option<u16>) -> String {
    match authority.port() {
        Some(port) if Some(port) != connection_port => format!("{}:{port}", authority.host()),
        _ => authority.host().to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use std::cell::Cell;

    use super::*;

    /// Test implementation of the host traits: fixed values, and a count of every read so that the
    /// tests can hold the flow to reading each property at most once.
    #[derive(Default)]
    struct FixedHost {
        authority: Option<&'static str>,
        scheme: Option<&'static str>,
        sni: Option<&'static str>,
        port: Option<u16>,
        reads: Cell<[u32; 4]>,
    }

    impl FixedHost {
        fn request(
            authority: Option<&'static str>,
            scheme: &'static str,
            sni: Option<&'static str>,
        ) -> Self {
            Self {
                authority,
                scheme: Some(scheme),
                sni,
                ..Self::default()
            }
        }

        fn connection(sni: Option<&'static str>, port: u16) -> Self {
            Self {
                sni,
                port: Some(port),
                ..Self::default()
            }
        }

        fn read<T>(&self, which: usize, value: T) -> T {
            let mut reads = self.reads.get();
            reads[which] += 1;
            assert!(reads[which] <= 1, "property {which} read twice");
            self.reads.set(reads);
            value
        }
    }

    impl RequestHost for FixedHost {
        fn authority(&self) -> Option<String> {
            self.read(0, self.authority.map(str::to_string))
        }
        /// The tests write the connection as the scheme a client on it would use.
        fn downstream_is_tls(&self) -> bool {
            self.read(1, self.scheme == Some("https"))
        }
        fn requested_server_name(&self) -> Option<String> {
            self.read(2, self.sni.map(str::to_string))
        }
    }

    impl ConnectionHost for FixedHost {
        fn requested_server_name(&self) -> Option<String> {
            self.read(2, self.sni.map(str::to_string))
        }
        fn destination_port(&self) -> Option<u16> {
            self.read(3, self.port)
        }
    }

    const CONFIG: &str = r#"{
        "hosts": ["www.google.com", "google.com", "*.googleapis.com", "api.example.com:8443",
                  "secure.example.com:443", "10.0.0.7", "[2001:db8::7]", "127.1", "dev.example.com:*"],
        "host_regex": ["^bucket-[0-9]+\\.storage\\.example\\.com$"],
        "deny": {"status": 403, "body": "host not allowed"}
    }"#;

    fn allowlist(extra: &str) -> Allowlist {
        let mut config: serde_json::Value = serde_json::from_str(CONFIG).unwrap();
        let extra: serde_json::Value = serde_json::from_str(extra).unwrap();
        for (key, value) in extra.as_object().unwrap() {
            config[key] = value.clone();
        }
        Allowlist::from_json(config.to_string().as_bytes()).unwrap()
    }

    /// (outcome, reason, rule, status of the local answer when one is sent)
    type Expected<'a> = (Outcome, Reason, Option<&'a str>, Option<u32>);

    fn summary<'a>(verdict: &Verdict<'a>) -> Expected<'a> {
        let status = match verdict.action {
            Action::Respond(response) => Some(response.status),
            Action::Continue | Action::Close => None,
        };
        (
            verdict.decision.outcome,
            verdict.decision.reason,
            verdict.decision.rule,
            status,
        )
    }

    #[test]
    #[rustfmt::skip] // one case per line
    fn http_requests_in_enforce_mode() {
        use Outcome::*;
        use Reason::*;
        let allowlist = allowlist("{}");
        // (authority, scheme, SNI, expected)
        type Case = (Option<&'static str>, &'static str, Option<&'static str>, Expected<'static>);
        let cases: &[Case] = &[
            (Some("www.google.com"), "http", None, (Allowed, HostListed, Some("www.google.com"), None)),
            (Some("WWW.Google.com."), "http", None, (Allowed, HostListed, Some("www.google.com"), None)),
            (Some("google.com:80"), "http", None, (Allowed, HostListed, Some("google.com"), None)),
            (Some("storage.googleapis.com"), "https", None, (Allowed, HostListed, Some("*.googleapis.com"), None)),
            (Some("googleapis.com"), "https", None, (Denied, HostNotListed, None, Some(403))),
            (Some("bucket-7.storage.example.com"), "http", None,
                (Allowed, HostListed, Some("^bucket-[0-9]+\\.storage\\.example\\.com$"), None)),
            (Some("bucket-x.storage.example.com"), "http", None, (Denied, HostNotListed, None, Some(403))),
            (Some("api.example.com:8443"), "https", None, (Allowed, HostListed, Some("api.example.com:8443"), None)),
            (Some("api.example.com"), "https", None, (Denied, HostNotListed, None, Some(403))),
            // The connection's default port (443 over TLS, 80 in plain text) applies to an authority
            // without one.
            (Some("secure.example.com"), "https", None, (Allowed, HostListed, Some("secure.example.com:443"), None)),
            (Some("secure.example.com"), "http", None, (Denied, HostNotListed, None, Some(403))),
            (Some("secure.example.com:443"), "http", None, (Allowed, HostListed, Some("secure.example.com:443"), None)),
            // An entry without a port, and a regex, covers 80 and 443 only; `:*` every port.
            (Some("10.0.0.7:8080"), "http", None, (Denied, HostNotListed, None, Some(403))),
            (Some("10.0.0.7:443"), "http", None, (Allowed, HostListed, Some("10.0.0.7"), None)),
            (Some("www.google.com:22"), "https", None, (Denied, HostNotListed, None, Some(403))),
            (Some("bucket-7.storage.example.com:8080"), "http", None, (Denied, HostNotListed, None, Some(403))),
            (Some("dev.example.com:22"), "http", None, (Allowed, HostListed, Some("dev.example.com:*"), None)),
            (Some("dev.example.com"), "https", None, (Allowed, HostListed, Some("dev.example.com:*"), None)),
            (Some("[2001:db8::7]"), "http", None, (Allowed, HostListed, Some("[2001:db8::7]"), None)),
            (Some("127.1"), "http", None, (Allowed, HostListed, Some("127.1"), None)),
            (Some("127.0.0.1"), "http", None, (Denied, HostNotListed, None, Some(403))),
            (Some("2130706433"), "http", None, (Denied, HostNotListed, None, Some(403))),
            (Some("0x7f000001"), "http", None, (Denied, HostNotListed, None, Some(403))),
            (Some("0177.0.0.1"), "http", None, (Denied, HostNotListed, None, Some(403))),
            (Some("evil.com"), "http", None, (Denied, HostNotListed, None, Some(403))),
            (Some("www.google.com.evil.com"), "http", None, (Denied, HostNotListed, None, Some(403))),
            (None, "http", None, (Denied, MissingHost, None, Some(403))),
            (Some(""), "http", None, (Denied, MissingHost, None, Some(403))),
            (Some("user@www.google.com"), "http", None, (Denied, InvalidHost, None, Some(403))),
            (Some("www.google.com%2eevil.com"), "http", None, (Denied, InvalidHost, None, Some(403))),
            (Some("www.google.com evil.com"), "http", None, (Denied, InvalidHost, None, Some(403))),
            (Some("www.google.com\r\nx: y"), "http", None, (Denied, InvalidHost, None, Some(403))),
            (Some("[[www.google.com]]"), "http", None, (Denied, InvalidHost, None, Some(403))),
            (Some("2001:db8::7"), "http", None, (Denied, InvalidHost, None, Some(403))),
            (Some("www.google.com:0"), "http", None, (Denied, InvalidHost, None, Some(403))),
            (Some("www.google.com:65536"), "http", None, (Denied, InvalidHost, None, Some(403))),
            (Some("www.google.com.."), "http", None, (Denied, InvalidHost, None, Some(403))),
            // SNI on a TLS-terminating listener.
            (Some("www.google.com"), "https", Some("www.google.com"), (Allowed, HostListed, Some("www.google.com"), None)),
            (Some("www.google.com"), "https", Some("WWW.GOOGLE.COM."), (Allowed, HostListed, Some("www.google.com"), None)),
            (Some("www.google.com"), "https", Some(""), (Allowed, HostListed, Some("www.google.com"), None)),
            // Coalescing: both names allowed.
            (Some("google.com"), "https", Some("www.google.com"), (Allowed, HostListed, Some("google.com"), None)),
            (Some("www.google.com"), "https", Some("evil.com"), (Denied, SniMismatch, None, Some(421))),
            // An SNI that is not a host name cannot front for one (Istio's cluster names among them).
            (Some("www.google.com"), "https", Some("bad sni"), (Allowed, HostListed, Some("www.google.com"), None)),
            (Some("www.google.com"), "https", Some("outbound|80|google|istio-egressgateway.istio-system.svc.cluster.local"),
                (Allowed, HostListed, Some("www.google.com"), None)),
            (Some("www.google.com"), "https", Some("outbound_.80_.google_.istio-egressgateway.istio-system.svc.cluster.local"),
                (Allowed, HostListed, Some("www.google.com"), None)),
            (Some("www.google.com"), "https", Some("inbound|8080||"), (Allowed, HostListed, Some("www.google.com"), None)),
            // ... but a denied authority stays denied.
            (Some("evil.com"), "https", Some("outbound|80|google|istio-egressgateway.istio-system.svc.cluster.local"),
                (Denied, HostNotListed, None, Some(403))),
            // A name that merely looks like Istio's DNS SRV form is compared as the name it is.
            (Some("www.google.com"), "https", Some("outbound_.example.com"), (Denied, SniMismatch, None, Some(421))),
            // A denied authority is a plain denial, whatever the SNI says.
            (Some("evil.com"), "https", Some("www.google.com"), (Denied, HostNotListed, None, Some(403))),
            // The SNI is held to the request's port: api.example.com is listed for 8443 only.
            (Some("www.google.com:443"), "https", Some("api.example.com"), (Denied, SniMismatch, None, Some(421))),
        ];
        for (authority, scheme, sni, expected) in cases {
            let request = FixedHost::request(*authority, scheme, *sni);
            let verdict = allowlist.decide_request(&request);
            assert_eq!(summary(&verdict), *expected, "{authority:?} {scheme} sni={sni:?}");
        }
    }

    #[test]
    #[rustfmt::skip] // one case per line
    fn allowed_requests_carry_the_canonical_authority_when_written_otherwise() {
        let enforcing = allowlist("{}");
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("www.google.com", "http", None),
            ("dev.example.com:8080", "http", None),
            ("WWW.Google.COM", "http", Some("www.google.com")),
            ("www.google.com.", "http", Some("www.google.com")),
            ("DEV.example.com.:8080", "http", Some("dev.example.com:8080")),
            ("google.com:80", "http", Some("google.com")),
            ("google.com:443", "http", None),
            ("google.com:443", "https", Some("google.com")),
            ("secure.example.com:443", "https", Some("secure.example.com")),
            ("[2001:DB8:0::7]", "http", Some("[2001:db8::7]")),
            ("[2001:db8::7]:80", "http", Some("[2001:db8::7]")),
            ("10.0.0.7:80", "http", Some("10.0.0.7")),
            ("BUCKET-7.storage.example.com", "http", Some("bucket-7.storage.example.com")),
        ];
        for (authority, scheme, canonical) in cases {
            let verdict = enforcing.decide_request(&FixedHost::request(Some(authority), scheme, None));
            assert_eq!(verdict.decision.outcome, Outcome::Allowed, "{authority}");
            assert_eq!(verdict.canonical_authority.as_deref(), *canonical, "{authority} over {scheme}");
        }
        // Denials and audit-mode denials rewrite nothing: the request is answered, or passes as sent.
        for mode in [r#"{}"#, r#"{"mode":"audit"}"#] {
            let allowlist = allowlist(mode);
            let verdict = allowlist.decide_request(&FixedHost::request(Some("EVIL.com."), "http", None));
            assert_eq!(verdict.canonical_authority, None, "{mode}");
        }
    }

    #[test]
    #[rustfmt::skip] // one case per line
    fn sni_mismatch_strict_misdirects_any_other_host_but_istio_cluster_names() {
        use Outcome::*;
        use Reason::*;
        let allowlist = allowlist(r#"{"on_sni_mismatch":"strict"}"#);
        // (authority, SNI, expected)
        let cases: &[(&str, Option<&str>, Expected)] = &[
            ("www.google.com", Some("www.google.com"), (Allowed, HostListed, Some("www.google.com"), None)),
            ("WWW.Google.com.:443", Some("www.GOOGLE.com."), (Allowed, HostListed, Some("www.google.com"), None)),
            ("www.google.com", None, (Allowed, HostListed, Some("www.google.com"), None)),
            ("www.google.com", Some(""), (Allowed, HostListed, Some("www.google.com"), None)),
            // Both allowed, yet another host: what `reject` lets through as coalescing.
            ("google.com", Some("www.google.com"), (Denied, SniMismatch, None, Some(421))),
            ("storage.googleapis.com", Some("www.googleapis.com"), (Denied, SniMismatch, None, Some(421))),
            ("www.google.com", Some("evil.com"), (Denied, SniMismatch, None, Some(421))),
            ("www.google.com", Some("bad sni"), (Denied, SniMismatch, None, Some(421))),
            ("www.google.com", Some("inbound|8080||"), (Denied, SniMismatch, None, Some(421))),
            ("www.google.com", Some("outbound|80|google|istio-egressgateway.istio-system.svc.cluster.local"),
                (Allowed, HostListed, Some("www.google.com"), None)),
            ("www.google.com", Some("outbound_.80_.google_.istio-egressgateway.istio-system.svc.cluster.local"),
                (Allowed, HostListed, Some("www.google.com"), None)),
            ("evil.com", Some("evil.com"), (Denied, HostNotListed, None, Some(403))),
        ];
        for (authority, sni, expected) in cases {
            let verdict = allowlist.decide_request(&FixedHost::request(Some(authority), "https", *sni));
            assert_eq!(summary(&verdict), *expected, "{authority:?} sni={sni:?}");
        }
    }

    #[test]
    fn audit_mode_never_rewrites_an_allowed_authority() {
        let allowlist = allowlist(r#"{"mode":"audit"}"#);
        for (authority, scheme) in [
            ("secure.example.com:443", "https"),
            ("WWW.Google.COM.", "http"),
            ("google.com:80", "http"),
        ] {
            let verdict =
                allowlist.decide_request(&FixedHost::request(Some(authority), scheme, None));
            assert_eq!(verdict.decision.outcome, Outcome::Allowed, "{authority}");
            assert_eq!(verdict.canonical_authority, None, "{authority}");
        }
    }

    #[test]
    fn log_lines_cut_long_client_text() {
        let allowlist = allowlist(r#"{"mode":"audit"}"#);
        let long: &'static str =
            Box::leak(format!("{}.evil.com", "a".repeat(60 * 1024)).into_boxed_str());
        let message = allowlist
            .decide_request(&FixedHost::request(Some(long), "http", None))
            .log_message();
        let expected_start = format!(
            "would deny authority \"{}\"…(cut, {} bytes)",
            "a".repeat(256),
            long.len()
        );
        assert!(message.starts_with(&expected_start), "{message}");
        assert!(message.len() < 400, "{} bytes", message.len());
        // A cut never splits a character.
        let wide: &'static str = Box::leak(format!("b{}", "é".repeat(200)).into_boxed_str());
        let message = allowlist
            .decide_request(&FixedHost::request(Some(wide), "http", None))
            .log_message();
        assert!(
            message.contains(&format!(
                "\"b{}\"…(cut, {} bytes)",
                "é".repeat(127),
                wide.len()
            )),
            "{message}"
        );
        // Exactly the limit is not cut.
        let limit: &'static str = Box::leak("c".repeat(LOGGED_CLIENT_TEXT_MAX).into_boxed_str());
        let message = allowlist
            .decide_connection(&FixedHost::connection(Some(limit), 443))
            .log_message();
        assert!(!message.contains("cut"), "{message}");
    }

    #[test]
    fn sni_mismatch_allow_decides_on_the_authority_alone() {
        let allowlist = allowlist(r#"{"on_sni_mismatch":"allow"}"#);
        let request = FixedHost::request(Some("www.google.com"), "https", Some("evil.com"));
        let verdict = allowlist.decide_request(&request);
        assert_eq!(verdict.decision.outcome, Outcome::Allowed);
        assert_eq!(request.reads.get()[2], 0, "the SNI is not even read");
    }

    #[test]
    fn audit_mode_passes_everything_and_records_would_deny() {
        use Outcome::*;
        use Reason::*;
        let allowlist = allowlist(r#"{"mode":"audit"}"#);
        let cases: &[(Option<&'static str>, Option<&'static str>, Outcome, Reason)] = &[
            (Some("www.google.com"), None, Allowed, HostListed),
            (Some("evil.com"), None, AuditDenied, HostNotListed),
            (Some("a b"), None, AuditDenied, InvalidHost),
            (None, None, AuditDenied, MissingHost),
            (
                Some("www.google.com"),
                Some("evil.com"),
                AuditDenied,
                SniMismatch,
            ),
        ];
        for (authority, sni, outcome, reason) in cases {
            let verdict = allowlist.decide_request(&FixedHost::request(*authority, "https", *sni));
            assert_eq!(verdict.action, Action::Continue, "{authority:?}");
            assert_eq!(
                (verdict.decision.outcome, verdict.decision.reason),
                (*outcome, *reason)
            );
        }
        let verdict =
            allowlist.decide_request(&FixedHost::request(Some("evil.com:8080"), "http", None));
        assert_eq!(
            verdict.log_message(),
            "would deny authority \"evil.com:8080\": host_not_listed"
        );
    }

    #[test]
    fn denial_answers_with_configured_status_body_and_reason_header() {
        let allowlist = allowlist(r#"{"deny":{"status":451,"body":"blocked by policy"}}"#);
        let verdict = allowlist.decide_request(&FixedHost::request(Some("evil.com"), "http", None));
        let Action::Respond(response) = verdict.action else {
            panic!("expected a local answer, got {:?}", verdict.action);
        };
        assert_eq!((response.status, response.body), (451, "blocked by policy"));
        assert_eq!(
            response.headers(),
            [
                ("x-gateway-wasm-denied-reason", "host_not_listed"),
                ("content-type", "text/plain; charset=utf-8")
            ]
        );
        let verdict = allowlist.decide_request(&FixedHost::request(
            Some("www.google.com"),
            "https",
            Some("evil.com"),
        ));
        let Action::Respond(response) = verdict.action else {
            panic!("expected a 421, got {:?}", verdict.action);
        };
        assert_eq!((response.status, response.body), (421, MISDIRECTED_BODY));
        assert_eq!(response.headers()[0], (REASON_HEADER, "sni_mismatch"));
    }

    #[test]
    #[rustfmt::skip] // one case per line
    fn tls_passthrough_connections() {
        use Outcome::*;
        use Reason::*;
        let allowlist = allowlist("{}");
        // (SNI, destination port, outcome, reason, rule)
        type Case = (Option<&'static str>, u16, Outcome, Reason, Option<&'static str>);
        let cases: &[Case] = &[
            (Some("www.google.com"), 443, Allowed, HostListed, Some("www.google.com")),
            (Some("WWW.GOOGLE.COM."), 443, Allowed, HostListed, Some("www.google.com")),
            (Some("storage.googleapis.com"), 443, Allowed, HostListed, Some("*.googleapis.com")),
            (Some("bucket-1.storage.example.com"), 443, Allowed, HostListed,
                Some("^bucket-[0-9]+\\.storage\\.example\\.com$")),
            (Some("api.example.com"), 8443, Allowed, HostListed, Some("api.example.com:8443")),
            (Some("api.example.com"), 443, Denied, HostNotListed, None),
            (Some("evil.com"), 443, Denied, HostNotListed, None),
            (Some("googleapis.com"), 443, Denied, HostNotListed, None),
            (None, 443, Denied, MissingSni, None),
            (Some(""), 443, Denied, MissingSni, None),
            (Some("www.google.com:443"), 443, Denied, InvalidSni, None),
            (Some("a b"), 443, Denied, InvalidSni, None),
            (Some("xn--a.com"), 443, Denied, InvalidSni, None),
        ];
        for (sni, port, outcome, reason, rule) in cases {
            let verdict = allowlist.decide_connection(&FixedHost::connection(*sni, *port));
            assert_eq!(
                (verdict.decision.outcome, verdict.decision.reason, verdict.decision.rule),
                (*outcome, *reason, *rule),
                "{sni:?}:{port}"
            );
            let expected_action = if *outcome == Allowed { Action::Continue } else { Action::Close };
            assert_eq!(verdict.action, expected_action, "{sni:?}");
        }
    }

    #[test]
    fn tls_passthrough_in_audit_mode_keeps_the_connection() {
        let allowlist = allowlist(r#"{"mode":"audit"}"#);
        let verdict = allowlist.decide_connection(&FixedHost::connection(None, 443));
        assert_eq!(verdict.action, Action::Continue);
        assert_eq!(verdict.decision.outcome, Outcome::AuditDenied);
        assert_eq!(
            verdict.log_message(),
            "would deny connection without TLS server name: missing_sni"
        );
    }

    #[test]
    fn log_lines_escape_what_the_client_sent() {
        let allowlist = allowlist("{}");
        let cases: &[(FixedHost, &str)] = &[
            (
                FixedHost::request(Some("evil.com\n[info] forged"), "http", None),
                "denied authority \"evil.com\\n[info] forged\": invalid_host (whitespace is not allowed)",
            ),
            (
                FixedHost::request(Some("google.com"), "https", Some("evil.com")),
                "denied authority \"google.com\" over TLS server name \"evil.com\": sni_mismatch",
            ),
            (
                FixedHost::request(Some("Google.com"), "http", None),
                "allowed authority \"Google.com\": host_listed by \"google.com\"",
            ),
            (
                FixedHost::request(None, "http", None),
                "denied request without authority: missing_host",
            ),
        ];
        for (request, expected) in cases {
            assert_eq!(allowlist.decide_request(request).log_message(), *expected);
        }
        let verdict = allowlist.decide_connection(&FixedHost::connection(Some("a:1"), 443));
        assert_eq!(
            verdict.log_message(),
            "denied TLS server name \"a:1\": invalid_sni (':' is not allowed in a host name)"
        );
    }

    #[test]
    fn a_denied_request_reads_nothing_it_does_not_need() {
        let allowlist = allowlist("{}");
        let request = FixedHost::request(Some("evil.com"), "https", Some("evil.com"));
        allowlist.decide_request(&request);
        assert_eq!(request.reads.get(), [1, 1, 0, 0]);
        let request = FixedHost::request(Some("www.google.com"), "https", Some("www.google.com"));
        allowlist.decide_request(&request);
        assert_eq!(request.reads.get(), [1, 1, 1, 0]);
    }

    #[test]
    fn the_scheme_is_read_only_when_a_port_can_matter() {
        let allowlist = Allowlist::from_json(br#"{"hosts": ["www.google.com"]}"#).unwrap();
        let request = FixedHost::request(Some("www.google.com"), "https", None);
        assert_eq!(
            allowlist.decide_request(&request).decision.outcome,
            Outcome::Allowed
        );
        assert_eq!(
            request.reads.get(),
            [1, 0, 1, 0],
            "no port anywhere: the scheme is not read"
        );
        // A port in the authority: the scheme tells whether it is the default one, dropped from the
        // canonical form.
        let request = FixedHost::request(Some("www.google.com:443"), "https", None);
        let verdict = allowlist.decide_request(&request);
        assert_eq!(
            verdict.canonical_authority.as_deref(),
            Some("www.google.com")
        );
        assert_eq!(request.reads.get(), [1, 1, 1, 0]);
        // Entries with ports: the scheme's default port decides which apply.
        let allowlist = Allowlist::from_json(br#"{"hosts": ["www.google.com:443"]}"#).unwrap();
        let request = FixedHost::request(Some("www.google.com"), "https", None);
        assert_eq!(
            allowlist.decide_request(&request).decision.outcome,
            Outcome::Allowed
        );
        assert_eq!(request.reads.get(), [1, 1, 1, 0]);
    }
}
