//! Identifier shapes: GUIDs, AWS unique ids (`AIDA…`, `AROA…`, `ASIA…`), hex and base64 runs.
//!
//! Ids that must be stable for a principal across records (a user's `principalId`, a role's
//! `AROA…` id) are derived by hashing, not drawn from the record's rng, so the same user looks
//! the same everywhere in a tree.

const HEX: &[u8; 16] = b"0123456789abcdef";
const UPPER_ALNUM: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const ALNUM: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// SplitMix64 finaliser: a cheap, well-mixed 64-bit hash step.
#[inline]
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Hashes two values into one.
#[inline]
pub(crate) fn mix2(a: u64, b: u64) -> u64 {
    mix(a ^ mix(b))
}

/// FNV-1a of a string, for deriving stable ids from names.
pub(crate) fn hash_str(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in s.as_bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// Appends a random lowercase GUID (`8-4-4-4-12`, version 4).
#[inline]
pub(crate) fn push_uuid(out: &mut String, rng: &mut fastrand::Rng) {
    push_uuid_from(out, rng.u128(..));
}

/// Appends the GUID spelled by `v` (version/variant bits forced).
pub(crate) fn push_uuid_from(out: &mut String, v: u128) {
    let v = (v & !(0xF000u128 << 64) | (0x4000u128 << 64)) & !(0xC000u128 << 48) | (0x8000u128 << 48);
    for i in 0..32 {
        if matches!(i, 8 | 12 | 16 | 20) {
            out.push('-');
        }
        let nib = (v >> (124 - 4 * i)) & 0xF;
        out.push(HEX[nib as usize] as char);
    }
}

/// Appends `n` lowercase hex digits.
pub(crate) fn push_hex(out: &mut String, rng: &mut fastrand::Rng, n: usize) {
    push_hex_from(out, rng.u64(..), n.min(16));
    if n > 16 {
        push_hex(out, rng, n - 16);
    }
}

/// Appends the low `n` (≤ 16) hex digits of `v`.
pub(crate) fn push_hex_from(out: &mut String, v: u64, n: usize) {
    for i in (0..n).rev() {
        out.push(HEX[((v >> (4 * i)) & 0xF) as usize] as char);
    }
}

fn push_from_alphabet(out: &mut String, mut state: u64, n: usize, alphabet: &[u8]) {
    let len = alphabet.len() as u64;
    for i in 0..n {
        if i % 8 == 0 {
            state = mix(state);
        }
        let x = (state >> ((i % 8) * 8)) & 0xFF;
        out.push(alphabet[(x % len) as usize] as char);
    }
}

/// Appends `n` uppercase letters/digits derived from `seed` (stable ids).
pub(crate) fn push_upper_from(out: &mut String, seed: u64, n: usize) {
    push_from_alphabet(out, seed, n, UPPER_ALNUM);
}

/// Appends `n` random uppercase letters/digits.
pub(crate) fn push_upper(out: &mut String, rng: &mut fastrand::Rng, n: usize) {
    push_from_alphabet(out, rng.u64(..), n, UPPER_ALNUM);
}

/// Appends `n` random mixed-case letters/digits (file-name suffixes).
pub(crate) fn push_alnum(out: &mut String, rng: &mut fastrand::Rng, n: usize) {
    push_from_alphabet(out, rng.u64(..), n, ALNUM);
}

/// Appends `n` random base64 characters (tokens, `x-amz-id-2`).
pub(crate) fn push_b64(out: &mut String, rng: &mut fastrand::Rng, n: usize) {
    let mut left = n;
    while left > 0 {
        let mut v = rng.u64(..);
        for _ in 0..left.min(10) {
            out.push(B64[(v & 63) as usize] as char);
            v >>= 6;
        }
        left -= left.min(10);
    }
}

/// A 12-digit AWS account id (no leading zero) derived from `seed` and `index`.
pub(crate) fn account_id(seed: u64, index: usize) -> String {
    let n = 100_000_000_000 + mix2(seed ^ 0xACC0_u64, index as u64) % 900_000_000_000;
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut s = String::new();
        push_uuid(&mut s, &mut rng);
        assert_eq!(s.len(), 36);
        let parts: Vec<&str> = s.split('-').collect();
        assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
        assert!(parts[2].starts_with('4'));
        assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn accounts_are_12_digits_and_distinct() {
        let ids: Vec<String> = (0..50).map(|i| account_id(42, i)).collect();
        for id in &ids {
            assert_eq!(id.len(), 12);
            assert!(id.bytes().all(|b| b.is_ascii_digit()));
        }
        let mut d = ids.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), ids.len());
    }

    #[test]
    fn alphabets() {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut s = String::new();
        push_b64(&mut s, &mut rng, 37);
        assert_eq!(s.len(), 37);
        s.clear();
        push_alnum(&mut s, &mut rng, 16);
        assert!(s.len() == 16 && s.bytes().all(|b| b.is_ascii_alphanumeric()));
        s.clear();
        push_hex(&mut s, &mut rng, 40);
        assert!(s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
