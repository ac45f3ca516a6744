//! The one stable hash of the product: `fmix64(fnv1a_64(bytes))`.
//!
//! Both the subset-tagger's sticky splits and the access log's sampling must give one key the same
//! answer on every gateway replica, worker and restart, and users may want to predict it outside
//! the gateway, so it is spelled out here and never taken from std's (randomly seeded) hasher:
//! 64-bit FNV-1a (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`,
//! <http://www.isthe.com/chongo/tech/comp/fnv/>), then MurmurHash3's 64-bit finaliser. FNV-1a alone
//! barely carries a key's last bytes into its top bits (`req-1`, `req-2`, … crowd together); the
//! finaliser spreads every input bit over all 64. Both are a few lines in any language.

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The stable hash of `bytes`.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    fmix64(fnv1a_64(bytes))
}

/// FNV-1a, 64 bits.
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET_BASIS, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
    })
}

/// MurmurHash3's 64-bit finaliser (`fmix64`): a bijection that spreads every input bit over all
/// output bits. Besides finishing [`stable_hash`], it turns weak randomness (a clock, a counter)
/// into values that neither repeat nor reveal their source.
pub fn fmix64(mut value: u64) -> u64 {
    value ^= value >> 33;
    value = value.wrapping_mul(0xff51_afd7_ed55_8ccd);
    value ^= value >> 33;
    value = value.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    value ^ (value >> 33)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn fnv1a_64_matches_the_reference_vectors() {
        // From the FNV reference test suite (Fowler, Noll, Vo).
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
    fn fmix64_matches_murmur3_and_spreads_consecutive_inputs() {
        // fmix64 is a bijection with 0 as a fixed point; 1 maps to MurmurHash3's published value.
        assert_eq!(fmix64(0), 0);
        assert_eq!(fmix64(1), 0xb456_bcfc_34c2_cb2c);
        let tops: std::collections::HashSet<u64> = (0..1000).map(|n| fmix64(n) >> 48).collect();
        // Unmixed, all 1000 would share top bits 0; random values would collide about 8 times.
        assert!(
            tops.len() > 980,
            "{} distinct top 16 bits of 1000",
            tops.len()
        );
    }
}
