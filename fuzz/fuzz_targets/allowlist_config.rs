//! host-allowlist's plugin configuration: any bytes are refused with field-named errors or
//! compiled; a compiled allowlist then decides a few requests without panicking.
#![no_main]

use gateway_core::allowlist::{Allowlist, RequestHost};
use gateway_fuzz::{Connection, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Allowlist::from_json(data) {
        Ok(allowlist) => {
            for authority in ["www.google.com", "a.b.example.com:8443", "[::1]", "10.0.0.7", ""] {
                let request = Request {
                    authority: Some(authority.to_string()),
                    downstream_tls: true,
                    sni: None,
                };
                let verdict = allowlist.decide_request(&request);
                let _ = (verdict.decision.to_json(), verdict.log_message(), request.authority());
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
