//! The record's Envoy attributes in one host call. Every value Envoy hands to a filter costs a call
//! back into the VM to allocate it, which makes one `get_property` per attribute the access log's
//! largest cost (BENCHMARKS.md). Envoy can instead evaluate one CEL expression, a list of the
//! attributes, through its `expr_create` / `expr_evaluate` foreign functions, and hand over every
//! value in one answer. The lists, their expression and the reading of the answer are here; the
//! filter creates the expression once per configuration and falls back to one read per attribute
//! when Envoy cannot create or evaluate it.

use std::ops::Range;

use super::config::AccessLogConfig;
use super::host::{property, UPSTREAM_SERVICE_TIME_HEADER};

/// One attribute of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute {
    pub path: &'static [&'static str],
    /// An attribute that Envoy may not have (no upstream for a local reply, no route matched): it
    /// is read behind `has()`, since a missing one would fail the whole evaluation. The others are
    /// always set when `on_log` runs, so they skip the extra lookup; should one be missing after
    /// all, the evaluation fails and the filter reads the attributes one by one.
    pub may_be_absent: bool,
}

impl Attribute {
    /// `request.time`; a map's entry as `response.headers['x-envoy-upstream-service-time']`. One
    /// that may be absent is guarded with `has()` (a field) or `in` (a map's key).
    fn cel_element(&self) -> String {
        let (name, guard) = match self.path {
            [map @ .., key] if self.path.len() > 2 => {
                let map = map.join(".");
                (format!("{map}['{key}']"), format!("'{key}' in {map}"))
            }
            _ => {
                let name = self.path.join(".");
                let guard = format!("has({name})");
                (name, guard)
            }
        };
        if self.may_be_absent {
            format!("{guard} ? {name} : ''")
        } else {
            name
        }
    }
}

const fn always(path: &'static [&'static str]) -> Attribute {
    Attribute {
        path,
        may_be_absent: false,
    }
}

const fn maybe(path: &'static [&'static str]) -> Attribute {
    Attribute {
        path,
        may_be_absent: true,
    }
}

/// The response header the record writes as `upstream_service_time`, in the list as the
/// `response.headers` map's entry.
const UPSTREAM_SERVICE_TIME: &[&str] = &["response", "headers", UPSTREAM_SERVICE_TIME_HEADER];

/// A TCP connection's record, and the part of an HTTP request's that is the connection's and the
/// upstream's. A connection has no `request.duration`; it is listed all the same, as the record
/// asks for it.
const CONNECTION_RECORD: [Attribute; 11] = [
    always(property::REQUEST_TIME),
    always(property::RESPONSE_FLAGS),
    always(property::REQUEST_SIZE),
    always(property::RESPONSE_SIZE),
    maybe(property::REQUEST_DURATION),
    maybe(property::UPSTREAM_ADDRESS),
    maybe(property::CLUSTER_NAME),
    maybe(property::UPSTREAM_TRANSPORT_FAILURE_REASON),
    always(property::DESTINATION_ADDRESS),
    always(property::SOURCE_ADDRESS),
    always(property::REQUESTED_SERVER_NAME),
];

/// What an HTTP request's record reads besides. The response code, which sampling needs, is added
/// when every record is kept ([`AttributeList::http_record`]).
const HTTP_ONLY: [Attribute; 4] = [
    always(property::REQUEST_PROTOCOL),
    always(property::RESPONSE_CODE_DETAILS),
    maybe(property::ROUTE_NAME),
    maybe(UPSTREAM_SERVICE_TIME),
];

/// The attributes of one kind of record that are read together. What sampling needs is read before
/// the decision, on its own, so that a sampled-out request pays for nothing more; the request
/// headers' attributes come from the one read of the header map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeList(Vec<Attribute>);

impl AttributeList {
    /// An HTTP request's record. When `config` keeps every record, sampling reads nothing first, and
    /// the response code is in the list too.
    pub fn http_record(config: &AccessLogConfig) -> Self {
        let mut attributes = [CONNECTION_RECORD.as_slice(), &HTTP_ONLY].concat();
        if config.keeps_every_record() {
            // Missing when the client left before any response.
            attributes.push(maybe(property::RESPONSE_CODE));
        }
        Self(attributes)
    }

    /// A TCP connection's record.
    pub fn connection_record() -> Self {
        Self(CONNECTION_RECORD.to_vec())
    }

    /// The CEL expression for `expr_create`: a list with one element per attribute, in order. An
    /// attribute Envoy does not have is an empty string, which is how `get_property` reports an
    /// empty value too: the record leaves both out.
    pub fn cel_expression(&self) -> String {
        let elements: Vec<String> = self.0.iter().map(Attribute::cel_element).collect();
        format!("[{}]", elements.join(", "))
    }

    /// Whether the list has the attribute at `path`.
    pub fn covers(&self, path: &[&str]) -> bool {
        self.0.iter().any(|attribute| attribute.path == path)
    }

    /// The values in an `expr_evaluate` answer: the list in proxy-wasm's pairs format (a count,
    /// then each element's size, then the elements, each followed by a NUL; Envoy writes a list's
    /// element as a pair's key with an empty value). `None` for an answer of any other shape. The
    /// answer is kept whole, so each value is copied once, when it is read.
    pub fn values(&self, answer: Vec<u8>) -> Option<AttributeValues> {
        let elements = pairs_key_ranges(&answer)?;
        if elements.len() != self.0.len() {
            return None;
        }
        let values = self
            .0
            .iter()
            .map(|attribute| attribute.path)
            .zip(elements)
            .collect();
        Some(AttributeValues { answer, values })
    }
}

/// Where the keys are in a proxy-wasm pairs buffer whose values are all empty, or `None`.
fn pairs_key_ranges(buffer: &[u8]) -> Option<Vec<Range<usize>>> {
    let (count, mut rest) = take_u32(buffer)?;
    let mut sizes = Vec::new();
    for _ in 0..count {
        let (key_size, after_key) = take_u32(rest)?;
        let (value_size, after_value) = take_u32(after_key)?;
        if value_size != 0 {
            return None;
        }
        sizes.push(usize::try_from(key_size).ok()?);
        rest = after_value;
    }
    let mut start = buffer.len() - rest.len();
    let mut keys = Vec::with_capacity(sizes.len());
    for size in sizes {
        let end = start.checked_add(size)?;
        // The key, its NUL, then the empty value's.
        match buffer.get(start..)?.get(size..)? {
            [0, 0, ..] => keys.push(start..end),
            _ => return None,
        }
        start = end + 2;
    }
    (start == buffer.len()).then_some(keys)
}

fn take_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (word, rest) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*word), rest))
}

/// The values of one evaluation, by attribute: where each is in the answer.
#[derive(Debug, PartialEq, Eq)]
pub struct AttributeValues {
    answer: Vec<u8>,
    values: Vec<(&'static [&'static str], Range<usize>)>,
}

impl AttributeValues {
    /// `Some` with the attribute's value (`None` when absent or empty) if the list has it; `None`
    /// if it does not, and the attribute must be read on its own.
    pub fn get(&self, path: &[&str]) -> Option<Option<Vec<u8>>> {
        let (_, range) = self.values.iter().find(|(listed, _)| *listed == path)?;
        Some(
            self.answer
                .get(range.clone())
                .filter(|value| !value.is_empty())
                .map(<[u8]>::to_vec),
        )
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    /// A pairs buffer as Envoy writes a list: every element a key with an empty value.
    fn list_answer(elements: &[&[u8]]) -> Vec<u8> {
        let mut buffer = u32::try_from(elements.len())
            .unwrap()
            .to_le_bytes()
            .to_vec();
        for element in elements {
            buffer.extend(u32::try_from(element.len()).unwrap().to_le_bytes());
            buffer.extend(0u32.to_le_bytes());
        }
        for element in elements {
            buffer.extend(*element);
            buffer.extend([0, 0]);
        }
        buffer
    }

    fn config(json: &str) -> AccessLogConfig {
        AccessLogConfig::from_json(json.as_bytes()).unwrap()
    }

    #[test]
    fn the_expression_lists_every_attribute_and_guards_those_that_may_be_absent() {
        assert_eq!(
            AttributeList::connection_record().cel_expression(),
            "[request.time, response.flags, request.size, response.size, \
             has(request.duration) ? request.duration : '', \
             has(upstream.address) ? upstream.address : '', \
             has(xds.cluster_name) ? xds.cluster_name : '', \
             has(upstream.transport_failure_reason) ? upstream.transport_failure_reason : '', \
             destination.address, source.address, connection.requested_server_name]"
        );
        let http = AttributeList::http_record(&config("{}")).cel_expression();
        assert!(
            http.contains(
                "'x-envoy-upstream-service-time' in response.headers ? \
                 response.headers['x-envoy-upstream-service-time'] : ''"
            ),
            "{http}"
        );
        let lists = [
            AttributeList::connection_record(),
            AttributeList::http_record(&config("{}")),
            AttributeList::http_record(&config(r#"{"sample_rate": 0.5}"#)),
        ];
        for list in lists {
            let expression = list.cel_expression();
            for (index, attribute) in list.0.iter().enumerate() {
                let name = attribute.path.join(".");
                assert!(
                    expression.contains(&attribute.cel_element()),
                    "{name} in {expression}"
                );
                assert!(
                    !list.0[index + 1..].contains(attribute),
                    "{name} is listed twice"
                );
            }
        }
    }

    #[test]
    fn the_response_code_is_listed_only_when_sampling_reads_nothing_first() {
        let keeps_all = AttributeList::http_record(&config("{}"));
        assert!(keeps_all.covers(property::RESPONSE_CODE));
        for sampled in [r#"{"sample_rate": 0.5}"#, r#"{"sample_rate": 0}"#] {
            let list = AttributeList::http_record(&config(sampled));
            assert!(!list.covers(property::RESPONSE_CODE), "{sampled}");
            assert_eq!(list.0.len() + 1, keeps_all.0.len(), "{sampled}");
        }
        assert!(!AttributeList::connection_record().covers(property::RESPONSE_CODE));
    }

    #[test]
    fn an_answer_gives_each_attribute_its_value_and_empty_ones_are_absent() {
        let time = 1_700_000_000_123_000_000_i64.to_le_bytes();
        // An integer may contain NUL bytes: sizes, not terminators, delimit the elements.
        let size = 0_i64.to_le_bytes();
        let answer = list_answer(&[
            &time,
            b"0",
            &size,
            &size,
            b"",
            b"10.0.0.9:443",
            b"outbound|443||example.com",
            b"",
            b"10.0.0.1:8443",
            b"10.0.0.2:50000",
            b"example.com",
        ]);
        let values = AttributeList::connection_record().values(answer).unwrap();
        assert_eq!(
            values.get(property::REQUEST_TIME),
            Some(Some(time.to_vec()))
        );
        assert_eq!(
            values.get(property::RESPONSE_SIZE),
            Some(Some(size.to_vec()))
        );
        assert_eq!(values.get(property::REQUEST_DURATION), Some(None));
        assert_eq!(
            values.get(property::UPSTREAM_TRANSPORT_FAILURE_REASON),
            Some(None)
        );
        assert_eq!(
            values.get(property::REQUESTED_SERVER_NAME),
            Some(Some(b"example.com".to_vec()))
        );
        // Not in the list: read on its own.
        assert_eq!(values.get(property::ROUTE_NAME), None);
        assert_eq!(values.get(property::CONNECTION_ID), None);
    }

    #[test]
    fn an_answer_of_another_shape_is_refused() {
        let list = AttributeList::connection_record();
        let eleven: Vec<&[u8]> = vec![b"x"; 11];
        let good = list_answer(&eleven);
        assert!(list.values(good.clone()).is_some());
        let mut trailing = good.clone();
        trailing.push(0);
        let mut map = good.clone();
        // The first element's value size: a map's pair, not a list's element.
        map[8] = 1;
        let mut far = good.clone();
        far[4] = 0xff;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("count only", 11u32.to_le_bytes().to_vec()),
            ("one element short", list_answer(&eleven[1..])),
            (
                "one element over",
                list_answer(&[eleven.as_slice(), &[b"x"]].concat()),
            ),
            ("truncated", good[..good.len() - 1].to_vec()),
            ("trailing byte", trailing),
            ("a value", map),
            ("a size past the end", far),
        ];
        for (what, answer) in cases {
            assert_eq!(list.values(answer), None, "{what}");
        }
    }
}
