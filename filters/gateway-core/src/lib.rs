//! The logic of the gateway-wasm filters, in plain Rust with no proxy-wasm dependency, so it is unit
//! tested natively and under wasm-bindgen-test. The filter crates only translate host calls into
//! calls on this crate.

pub mod access_log;
pub mod allowlist;
pub mod config;
pub mod filter_state;
pub mod gateway;
pub mod host;
mod json;
pub mod plugin_config;
pub mod stable_hash;
pub mod subset;
