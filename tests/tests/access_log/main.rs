//! access-log end to end: the module in a real Envoy 1.40 in front of real upstreams, every record
//! parsed as JSON and checked against what the client sent and the upstream saw.

mod collector;
mod common;
mod failures;
mod policy;
mod record;
mod sampling;
mod tls;
