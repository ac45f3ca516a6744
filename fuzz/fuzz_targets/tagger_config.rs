//! subset-tagger's plugin configuration: any bytes are refused with field-named errors or
//! accepted; an accepted configuration then tags a request without panicking.
#![no_main]

use gateway_core::subset::TaggerConfig;
use gateway_fuzz::Headers;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match TaggerConfig::from_json(data) {
        Ok(config) => {
            let subsets = config.subsets();
            let mut request = Headers {
                headers: vec![
                    (":authority".into(), "shop.example.com".into()),
                    (":path".into(), "/api/x?token=1".into()),
                    (":method".into(), "GET".into()),
                    ("cookie".into(), "session=abc".into()),
                ],
                random: 7,
            };
            let decision = config.decide(&mut request);
            if let Some(subset) = decision.tagged_subset() {
                assert!(subsets.contains(&subset), "{subset:?} not in {subsets:?}");
            }
            let _ = decision.published_subset();
        }
        Err(errors) => {
            for error in errors.iter() {
                assert!(!error.to_string().contains('\n'), "one problem per log line: {error:?}");
            }
        }
    }
});
