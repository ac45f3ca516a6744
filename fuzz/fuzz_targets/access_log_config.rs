//! access-log's plugin configuration: any bytes are refused with field-named errors or accepted;
//! an accepted configuration then builds a record that is one line of JSON.
#![no_main]

use gateway_core::access_log::{log_http_request, AccessLogConfig, BatchBuffer};
use gateway_fuzz::{assert_record, Sinks, Stream};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match AccessLogConfig::from_json(data) {
        Ok(config) => {
            let mut stream = Stream::default();
            stream.properties.insert("request.path".into(), b"/a?token=x&b=2".to_vec());
            stream.properties.insert("request.id".into(), b"id-1".to_vec());
            stream.request_headers.insert("x-api-key".into(), b"secret".to_vec());
            let mut sinks = Sinks::default();
            let _ = log_http_request(&config, &stream, &mut sinks);
            for record in &sinks.records {
                assert_record(record);
            }
            if let Some(http) = &config.sinks.http {
                let mut buffer = BatchBuffer::new(http);
                let _ = buffer.check_period_ms();
                for record in sinks.records {
                    buffer.push(record);
                }
                let _ = buffer.next_batch(u64::MAX);
            }
        }
        Err(errors) => {
            for error in errors.iter() {
                assert!(!error.to_string().contains('\n'), "one problem per log line: {error:?}");
            }
        }
    }
});
