//! Every filter's plugin configuration, as `cargo xtask check-config` checks it: any bytes give the
//! warnings of an accepted configuration or at least one error, each a single line naming its field.
#![no_main]

use gateway_core::plugin_config::PluginFilter;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for filter in PluginFilter::ALL {
        let problems = match filter.check(data) {
            Ok(warnings) => warnings,
            Err(errors) => {
                assert!(errors.iter().next().is_some(), "a refusal names at least one problem");
                errors.0
            }
        };
        for problem in &problems {
            assert!(!problem.reason.is_empty(), "{filter:?}: {problem:?}");
            assert!(!problem.to_string().contains('\n'), "one problem per line: {problem:?}");
        }
    }
});
