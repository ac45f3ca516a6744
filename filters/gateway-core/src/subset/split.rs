//! Weighted splits and the sticky hash.
//!
//! The hash is part of the product's contract: gateway replicas, workers and restarts must all send
//! one key to one subset, and users may want to predict a key's subset outside the gateway. So it is
//! spelled out here and never taken from std's (randomly seeded) hasher:
//!
//! 1. `h` = the product's [stable hash](crate::stable_hash) of the key's UTF-8 bytes:
//!    `fmix64(fnv1a_64(key))`.
//! 2. `bucket` = `floor(h × total_weight / 2^64)`, a number in `0..total_weight`: the key sits at
//!    the fixed point `h / 2^64` of `[0, 1)`, whatever the total.
//! 3. The split's entries own consecutive bucket ranges in the order they are listed, each as wide as
//!    its weight; the key goes to the entry whose range holds `bucket`.
//!
//! Because a key's point does not depend on the total, scaling every weight keeps every key where it
//! is, and moving weight from one entry to its neighbour (90/10 to 80/20) moves only the keys that
//! must move.

use super::request::Request;
use crate::stable_hash::stable_hash;

/// The sticky hash of a key: step 1 above.
pub fn sticky_hash(key: &str) -> u64 {
    stable_hash(key.as_bytes())
}

/// `floor(hash × total / 2^64)`: the bucket of step 2 above.
fn bucket(hash: u64, total: u64) -> u64 {
    let product = u128::from(hash) * u128::from(total);
    // The product is below 2^64 × total, so the shifted value is below `total` and fits in a u64.
    u64::try_from(product >> 64).unwrap_or(u64::MAX)
}

/// Where the sticky key is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StickyKey {
    Cookie(String),
    /// A lowercase header name.
    Header(String),
    Query(String),
}

impl StickyKey {
    /// The request's key, if it carries a non-empty one.
    fn read<'r>(&self, request: &'r Request) -> Option<std::borrow::Cow<'r, str>> {
        let key = match self {
            StickyKey::Cookie(name) => request.cookie(name).map(std::borrow::Cow::Borrowed),
            StickyKey::Header(name) => request.header(name),
            StickyKey::Query(name) => request.query(name).map(std::borrow::Cow::Borrowed),
        };
        key.filter(|key| !key.is_empty())
    }
}

/// What decides the subset when the request carries no sticky key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// Hash the request id (`x-request-id`, which Envoy sets on every request), so one request keeps
    /// its subset through every gateway that tags it; random when the request has none.
    #[default]
    RequestId,
    /// Randomness from the host.
    Random,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SameSite {
    Strict,
    #[default]
    Lax,
    None,
}

/// The `Set-Cookie` attributes for a key handed to a client that had none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SetCookie {
    pub(crate) path: String,
    pub(crate) max_age: Option<u64>,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) same_site: SameSite,
}

impl SetCookie {
    fn header_value(&self, cookie: &str, key: &str) -> String {
        let mut value = format!("{cookie}={key}; Path={}", self.path);
        if let Some(max_age) = self.max_age {
            value.push_str(&format!("; Max-Age={max_age}"));
        }
        if self.secure {
            value.push_str("; Secure");
        }
        if self.http_only {
            value.push_str("; HttpOnly");
        }
        value.push_str(match self.same_site {
            SameSite::Strict => "; SameSite=Strict",
            SameSite::Lax => "; SameSite=Lax",
            SameSite::None => "; SameSite=None",
        });
        value
    }
}

/// One entry of a split: its subset and the exclusive upper end of its bucket range.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Share {
    subset: String,
    upper: u64,
}

/// A weighted split, validated: at least one entry and a positive total weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Split {
    shares: Vec<Share>,
    total: u64,
    sticky: Option<StickyKey>,
    fallback: Fallback,
    /// Only with a cookie sticky key: the client gets that cookie back.
    set_cookie: Option<SetCookie>,
}

/// The subset a split chose, and the cookie to hand out when the client had no key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pick<'s> {
    pub(crate) subset: &'s str,
    pub(crate) set_cookie: Option<String>,
}

impl Split {
    /// `entries` are (subset, weight) in the configured order; the caller has checked that there is
    /// at least one and that the weights sum to more than 0.
    pub(crate) fn new(
        entries: Vec<(String, u32)>,
        sticky: Option<StickyKey>,
        fallback: Fallback,
        set_cookie: Option<SetCookie>,
    ) -> Self {
        let mut total = 0u64;
        let shares = entries
            .into_iter()
            .map(|(subset, weight)| {
                total += u64::from(weight);
                Share {
                    subset,
                    upper: total,
                }
            })
            .collect();
        Self {
            shares,
            total,
            sticky,
            fallback,
            set_cookie,
        }
    }

    pub(crate) fn subsets(&self) -> impl Iterator<Item = &str> {
        self.shares.iter().map(|share| share.subset.as_str())
    }

    /// The subset for a sticky key.
    fn subset_for(&self, key: &str) -> Option<&str> {
        let bucket = bucket(sticky_hash(key), self.total);
        let index = self.shares.partition_point(|share| share.upper <= bucket);
        self.shares.get(index).map(|share| share.subset.as_str())
    }

    /// Chooses the subset for `request`: by its sticky key, or else by a key made from the fallback,
    /// which `set_cookie` hands to the client so its next requests stick. `None` only if the split
    /// were empty, which validation refuses.
    pub(crate) fn pick(&self, request: &Request, random: impl FnOnce() -> u64) -> Option<Pick<'_>> {
        if let Some(key) = self.sticky.as_ref().and_then(|sticky| sticky.read(request)) {
            return Some(Pick {
                subset: self.subset_for(&key)?,
                set_cookie: None,
            });
        }
        let seed = match (self.fallback, request.header("x-request-id")) {
            (Fallback::RequestId, Some(request_id)) if !request_id.is_empty() => {
                sticky_hash(&request_id)
            }
            _ => random(),
        };
        // The new key is a plain token, valid as a cookie value, and is hashed exactly as a key the
        // client sends back will be: the cookie keeps the client on the subset chosen now.
        let key = format!("{seed:016x}");
        let set_cookie = match (&self.sticky, &self.set_cookie) {
            (Some(StickyKey::Cookie(cookie)), Some(set_cookie)) => {
                Some(set_cookie.header_value(cookie, &key))
            }
            _ => None,
        };
        Some(Pick {
            subset: self.subset_for(&key)?,
            set_cookie,
        })
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Request {
        Request::new(
            pairs
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        )
    }

    fn split(weights: &[(&str, u32)], sticky: Option<StickyKey>) -> Split {
        Split::new(
            weights.iter().map(|(s, w)| (s.to_string(), *w)).collect(),
            sticky,
            Fallback::RequestId,
            None,
        )
    }

    #[test]
    fn bucket_is_the_key_point_scaled_to_the_total() {
        let cases = [
            (0u64, 100u64, 0u64),
            (u64::MAX, 100, 99),
            (1 << 63, 100, 50),
            (1 << 63, 3, 1),
            (
                u64::MAX,
                u64::from(u32::MAX) * 8,
                u64::from(u32::MAX) * 8 - 1,
            ),
        ];
        for (hash, total, expected) in cases {
            assert_eq!(
                bucket(hash, total),
                expected,
                "hash {hash:#x} total {total}"
            );
        }
    }

    #[test]
    fn hundred_thousand_keys_land_within_one_percent_of_each_weight() {
        let cases: &[&[(&str, u32)]] = &[
            &[("v1", 90), ("v2", 10)],
            &[("a", 1), ("b", 1), ("c", 1)],
            &[("stable", 70), ("canary", 25), ("shadow", 5)],
            &[("x", 999), ("y", 1)],
        ];
        const KEYS: usize = 100_000;
        for weights in cases {
            let split = split(weights, None);
            let total: u32 = weights.iter().map(|(_, w)| w).sum();
            let mut counts = vec![0usize; weights.len()];
            for n in 0..KEYS {
                let subset = split.subset_for(&format!("user-{n}")).unwrap();
                let index = weights.iter().position(|(s, _)| *s == subset).unwrap();
                counts[index] += 1;
            }
            for ((subset, weight), count) in weights.iter().zip(&counts) {
                let expected = f64::from(*weight) / f64::from(total);
                let observed = *count as f64 / KEYS as f64;
                assert!(
                    (observed - expected).abs() < 0.01,
                    "{subset}: {observed:.4} of keys for weight share {expected:.4} in {weights:?}"
                );
            }
        }
    }

    #[test]
    fn one_key_always_gets_one_subset() {
        let first = split(&[("v1", 50), ("v2", 50)], None);
        // A second, separately built split stands for another worker, replica or restart.
        let second = split(&[("v1", 50), ("v2", 50)], None);
        for n in 0..1000 {
            let key = format!("session-{n}");
            let subset = first.subset_for(&key);
            for _ in 0..3 {
                assert_eq!(first.subset_for(&key), subset);
            }
            assert_eq!(second.subset_for(&key), subset);
        }
    }

    #[test]
    fn known_keys_keep_their_hashes_and_subsets() {
        // Computed independently (a few lines of Python over the documented steps) and pinned: a
        // change of hash or bucket method would move every user of every gateway, so it must fail.
        let split = split(&[("v1", 90), ("v2", 10)], None);
        let cases = [
            ("alice", 0x3507_d047_a67c_08f4_u64, 20, "v1"),
            ("bob", 0xf649_3629_e565_4ae0, 96, "v2"),
            ("carol", 0x2b10_fd68_7aea_520e, 16, "v1"),
            ("frank", 0xe6b4_45c4_141b_ab07, 90, "v2"),
            ("heidi", 0x742e_20e4_19c2_1282, 45, "v1"),
        ];
        for (key, hash, bucket_of_100, subset) in cases {
            assert_eq!(sticky_hash(key), hash, "{key}");
            assert_eq!(bucket(hash, 100), bucket_of_100, "{key}");
            assert_eq!(split.subset_for(key), Some(subset), "{key}");
        }
    }

    #[test]
    fn scaling_all_weights_moves_no_key() {
        let small = split(&[("v1", 9), ("v2", 1)], None);
        let large = split(&[("v1", 900), ("v2", 100)], None);
        for n in 0..10_000 {
            let key = format!("k{n}");
            assert_eq!(small.subset_for(&key), large.subset_for(&key), "{key}");
        }
    }

    #[test]
    fn ramping_a_canary_moves_keys_only_towards_it() {
        let before = split(&[("v1", 90), ("v2", 10)], None);
        let after = split(&[("v1", 80), ("v2", 20)], None);
        for n in 0..10_000 {
            let key = format!("k{n}");
            if before.subset_for(&key) == Some("v2") {
                assert_eq!(after.subset_for(&key), Some("v2"), "{key}");
            }
        }
    }

    #[test]
    fn zero_weight_entries_get_no_keys() {
        let split = split(&[("v1", 0), ("v2", 5), ("v3", 0)], None);
        for n in 0..1000 {
            assert_eq!(split.subset_for(&format!("k{n}")), Some("v2"));
        }
    }

    #[test]
    fn sticky_key_sources() {
        let cases = [
            (
                StickyKey::Cookie("session".into()),
                headers(&[("cookie", "a=1; session=abc")]),
                "abc",
            ),
            (
                StickyKey::Header("x-user".into()),
                headers(&[("x-user", "abc")]),
                "abc",
            ),
            (
                StickyKey::Query("uid".into()),
                headers(&[(":path", "/p?x=1&uid=abc")]),
                "abc",
            ),
        ];
        for (sticky, request, key) in cases {
            let split = split(&[("v1", 1), ("v2", 1), ("v3", 1)], Some(sticky.clone()));
            let pick = split
                .pick(&request, || panic!("a keyed request needs no randomness"))
                .unwrap();
            assert_eq!(Some(pick.subset), split.subset_for(key), "{sticky:?}");
            assert_eq!(pick.set_cookie, None);
        }
    }

    #[test]
    fn empty_key_counts_as_missing() {
        let split = split(
            &[("v1", 1), ("v2", 1)],
            Some(StickyKey::Cookie("session".into())),
        );
        let request = headers(&[("cookie", "session="), ("x-request-id", "r-1")]);
        let pick = split
            .pick(&request, || panic!("the request id decides"))
            .unwrap();
        assert_eq!(
            Some(pick.subset),
            split.subset_for(&format!("{:016x}", sticky_hash("r-1")))
        );
    }

    #[test]
    fn fallbacks_without_a_key() {
        let request_with_id = headers(&[("x-request-id", "4e2a-99")]);
        let request_without_id = headers(&[]);
        let by_id = format!("{:016x}", sticky_hash("4e2a-99"));
        let by_random = format!("{:016x}", 0xdead_beef_u64);
        let cases = [
            (Fallback::RequestId, &request_with_id, &by_id),
            (Fallback::RequestId, &request_without_id, &by_random),
            (Fallback::Random, &request_with_id, &by_random),
            (Fallback::Random, &request_without_id, &by_random),
        ];
        for (fallback, request, key) in cases {
            let split = Split::new(
                vec![
                    ("v1".into(), 1),
                    ("v2".into(), 1),
                    ("v3".into(), 1),
                    ("v4".into(), 1),
                ],
                None,
                fallback,
                None,
            );
            let pick = split.pick(request, || 0xdead_beef).unwrap();
            assert_eq!(Some(pick.subset), split.subset_for(key), "{fallback:?}");
        }
    }

    #[test]
    fn set_cookie_hands_out_the_key_that_chose_the_subset() {
        let set_cookie = SetCookie {
            path: "/".into(),
            max_age: Some(3600),
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
        };
        let split = Split::new(
            vec![("v1".into(), 50), ("v2".into(), 50)],
            Some(StickyKey::Cookie("session".into())),
            Fallback::Random,
            Some(set_cookie),
        );
        for seed in [1u64, 2, 3, 0xffff_ffff_ffff_ffff] {
            let first = split.pick(&headers(&[]), || seed).unwrap();
            let cookie = first.set_cookie.unwrap();
            assert_eq!(
                cookie,
                format!(
                    "session={seed:016x}; Path=/; Max-Age=3600; Secure; HttpOnly; SameSite=Lax"
                )
            );
            let key = cookie.split(';').next().unwrap();
            let again = split
                .pick(&headers(&[("cookie", key)]), || panic!())
                .unwrap();
            assert_eq!(again.subset, first.subset, "seed {seed}");
            assert_eq!(again.set_cookie, None);
        }
    }

    #[test]
    fn set_cookie_attributes() {
        let cases = [
            (
                None,
                false,
                false,
                SameSite::Strict,
                "c=k; Path=/app; SameSite=Strict",
            ),
            (
                Some(0),
                true,
                false,
                SameSite::None,
                "c=k; Path=/app; Max-Age=0; Secure; SameSite=None",
            ),
            (
                Some(60),
                false,
                true,
                SameSite::Lax,
                "c=k; Path=/app; Max-Age=60; HttpOnly; SameSite=Lax",
            ),
        ];
        for (max_age, secure, http_only, same_site, expected) in cases {
            let set_cookie = SetCookie {
                path: "/app".into(),
                max_age,
                secure,
                http_only,
                same_site,
            };
            assert_eq!(set_cookie.header_value("c", "k"), expected);
        }
    }
}
