//! The authority and SNI normaliser: any string either parses or is refused, and a parsed value is
//! in normal form, so printing and parsing it again gives the same value (one destination, one
//! spelling).
#![no_main]

use gateway_core::host::{Authority, Host, MAX_LABEL_LENGTH, MAX_NAME_LENGTH};
use libfuzzer_sys::fuzz_target;

fn check_name(host: &Host, input: &str) {
    if let Host::Name(name) = host {
        assert!(!name.is_empty() && name.len() <= MAX_NAME_LENGTH, "{input:?} -> {name:?}");
        assert!(
            name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)),
            "{input:?} -> {name:?}"
        );
        assert!(name.split('.').all(|l| !l.is_empty() && l.len() <= MAX_LABEL_LENGTH), "{input:?} -> {name:?}");
    }
}

fuzz_target!(|input: &str| {
    if let Ok(authority) = Authority::parse(input) {
        check_name(authority.host(), input);
        assert_ne!(authority.port(), Some(0), "{input:?}");
        let printed = authority.to_string();
        assert_eq!(Authority::parse(&printed).as_ref(), Ok(&authority), "{input:?} printed as {printed:?}");
    }
    if let Ok(host) = Host::parse(input) {
        check_name(&host, input);
        let printed = host.to_string();
        assert_eq!(Host::parse(&printed).as_ref(), Ok(&host), "{input:?} printed as {printed:?}");
        // A bare host is also an authority without a port.
        let authority = Authority::parse(&printed).expect("a printed host is an authority");
        assert_eq!(authority.host(), &host);
        assert_eq!(authority.port(), None);
    }
});
