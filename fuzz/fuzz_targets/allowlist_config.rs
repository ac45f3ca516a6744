//! host-allowlist's plugin configuration: any bytes are refused with field-named errors or
//! compiled, with its warnings one line each; a compiled allowlist then decides a few requests, over
//! host-name, Istio and malformed SNIs, without panicking.
#![no_main]

use gateway_core::allowlist::{Allowlist, RequestHost};
use gateway_fuzz::{Connection, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Allowlist::from_json(data) {
        Ok(allowlist) => {
            for warning in allowlist.warnings() {
                assert!(warning.field.starts_with("host_regex["), "{warning:?}");
                assert!(!warning.to_string().contains('\n'), "one warning per log line: {warning:?}");
            }
            let snis = ["www.google.com", "outbound|80|google|egress.istio-system.svc.cluster.local", "a b", ""];
            for (authority, sni) in ["www.google.com", "a.b.example.com:8443", "[::1]", "10.0.0.7", ""].into_iter().zip(snis.into_iter().cycle()) {
                let request = Request {
                    authority: Some(authority.to_string()),
                    downstream_tls: true,
                    sni: Some(sni.to_string()),
                };
                let verdict = allowlist.decide_request(&request);
                let _ = (verdict.decision.filter_state().count(), verdict.log_message(), request.authority());
                let connection = Connection { sni: Some(authority.to_string()), port: Some(443) };
                let _ = allowlist.decide_connection(&connection);
            }
        }
        Err(errors) => {
            assert!(errors.iter().next().is_some(), "a refusal names at least one problem");
            for error in errors.iter() {
                assert!(!error.reason.is_empty(), "{error:?}");
                assert!(!error.to_string().contains('\n'), "one problem per log line: {error:?}");
            }
        }
    }
});
