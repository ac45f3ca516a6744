//! Deterministic sampling: whether a record is kept depends only on its key (the request id), so
//! every gateway and every worker that sees the same `x-request-id` makes the same choice and a
//! sampled request can be followed from ingress to egress.
//!
//! The hash is 64-bit FNV-1a (<http://www.isthe.com/chongo/tech/comp/fnv/>) followed by
//! MurmurHash3's 64-bit finaliser `fmix64`, whose top 53 bits become a fraction in [0, 1); a key is
//! kept when its fraction is below the sample rate. FNV-1a alone spreads the last bytes of a key
//! poorly into its top bits (ids counting `req-1`, `req-2`… kept 55% at a rate of 0.5); the
//! finaliser fixes that. Both are a few lines in any language, so a collector can predict what a
//! gateway keeps.

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

pub fn fnv1a_64(key: &[u8]) -> u64 {
    key.iter().fold(FNV_OFFSET_BASIS, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(FNV_PRIME)
    })
}

pub fn fmix64(mut hash: u64) -> u64 {
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

/// The key's place in [0, 1): the mixed hash's top 53 bits, which an f64 holds exactly.
pub fn fraction(key: &[u8]) -> f64 {
    (fmix64(fnv1a_64(key)) >> 11) as f64 / (1u64 << 53) as f64
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
    fn fnv1a_64_matches_the_reference_vectors() {
        let cases: &[(&[u8], u64)] = &[
            (b"", 0xcbf2_9ce4_8422_2325),
            (b"a", 0xaf63_dc4c_8601_ec8c),
            (b"foobar", 0x8594_4171_f739_67e8),
        ];
        for (key, hash) in cases {
            assert_eq!(fnv1a_64(key), *hash, "{key:?}");
        }
    }

    #[test]
    fn fmix64_matches_murmur3() {
        // Values of the reference C implementation (MurmurHash3.cpp, fmix64).
        assert_eq!(fmix64(0), 0);
        assert_eq!(fmix64(1), 0xb456_bcfc_34c2_cb2c);
    }

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
