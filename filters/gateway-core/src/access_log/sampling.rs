//! Deterministic sampling: whether a record is kept depends only on its key (the request id), so
//! every gateway and every worker that sees the same `x-request-id` makes the same choice and a
//! sampled request can be followed from ingress to egress.
//!
//! The product's [stable hash](crate::stable_hash) of the key, whose top 53 bits become a
//! fraction in [0, 1); a key is kept when its fraction is below the sample rate. A collector can
//! predict what a gateway keeps. (FNV-1a without the finaliser kept 55% of ids counting `req-1`,
//! `req-2`… at a rate of 0.5.)

use crate::stable_hash::stable_hash;

/// The key's place in [0, 1): the mixed hash's top 53 bits, which an f64 holds exactly.
pub fn fraction(key: &[u8]) -> f64 {
    (stable_hash(key) >> 11) as f64 / (1u64 << 53) as f64
}

/// Whether the record with this key is kept at `rate` (0 keeps none, 1 keeps all).
pub fn keeps(rate: f64, key: &[u8]) -> bool {
    fraction(key) < rate
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn rates_zero_and_one_keep_none_and_all() {
        for id in ["", "a", "ae1828af-fa79-4273-81b1-7b08b1c7d2f8", "\u{ff}"] {
            assert!(!keeps(0.0, id.as_bytes()), "{id}");
            assert!(keeps(1.0, id.as_bytes()), "{id}");
            let place = fraction(id.as_bytes());
            assert!((0.0..1.0).contains(&place), "{id}: {place}");
        }
    }

    #[test]
    fn the_same_key_always_gets_the_same_answer() {
        let id = b"e5855aa2-6317-414e-840c-b85d73ec5e12";
        let place = fraction(id);
        assert!(
            !keeps(place, id),
            "a rate equal to the fraction excludes it"
        );
        assert!(keeps(place + 1e-9, id));
        for _ in 0..3 {
            assert_eq!(fraction(id), place);
        }
    }

    #[test]
    fn kept_share_follows_the_rate() {
        // Sequential ids are the hard case for FNV-1a; UUIDs differ in many bytes.
        for format in [
            |n: u32| format!("req-{n}"),
            |n: u32| format!("{n:08x}-fa79-4273-81b1"),
        ] {
            for rate in [0.01, 0.1, 0.5, 0.9] {
                let kept = (0..20_000)
                    .filter(|n| keeps(rate, format(*n).as_bytes()))
                    .count();
                let share = kept as f64 / 20_000.0;
                assert!((share - rate).abs() < 0.01, "rate {rate}: kept {share}");
            }
        }
    }
}
