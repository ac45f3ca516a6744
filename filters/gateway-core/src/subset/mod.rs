//! subset-tagger: rules that choose the routing-subset tag a VirtualService matches on.
//!
//! - [`config`]: the plugin configuration, validated and compiled.
//! - `matching`: rule conditions (path, method, headers, query).
//! - `split`: weighted splits and the documented sticky hash.
//! - [`flow`]: one request's decision, read through the small [`RequestHost`] trait.

pub mod config;
pub mod flow;
mod matching;
mod request;
mod split;

pub use config::{RuleId, TaggerConfig};
pub use flow::{Decision, HeaderAction, Outcome, RequestHost};
pub use split::{sticky_hash, Fallback, SameSite};
