//! Response-only OTPs (protocols.md section 6): RFC 6238 TOTP with HMAC-SHA256, 30-second
//! steps, a window of one step each way.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::crypto::ct_eq;

pub const STEP_SECS: i64 = 30;
pub const DIGITS: u32 = 6;

/// RFC 4226 dynamic truncation of HMAC-SHA256(key, counter), `digits` long.
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(&counter.to_be_bytes());
    let h = m.finalize().into_bytes();
    let offset = (h[h.len() - 1] & 0x0f) as usize;
    let bin = u32::from_be_bytes([
        h[offset] & 0x7f,
        h[offset + 1],
        h[offset + 2],
        h[offset + 3],
    ]);
    format!(
        "{:0width$}",
        bin % 10u32.pow(digits),
        width = digits as usize
    )
}

/// The TOTP for a Unix time.
pub fn totp(key: &[u8], unix: i64, digits: u32) -> String {
    hotp(key, (unix / STEP_SECS) as u64, digits)
}

/// The time step at which `otp` verifies within one step of `unix`, if any. Every candidate
/// is compared in constant time.
pub fn verify_totp(key: &[u8], otp: &str, unix: i64) -> Option<i64> {
    let digits = otp.len() as u32;
    if !(6..=8).contains(&digits) || !otp.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = unix / STEP_SECS;
    let mut found = None;
    for step in [now - 1, now, now + 1] {
        if step >= 0 && ct_eq(hotp(key, step as u64, digits).as_bytes(), otp.as_bytes()) {
            found = found.or(Some(step));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, the SHA-256 rows (32-byte ASCII seed, 8 digits).
    #[test]
    fn rfc6238_sha256_vectors() {
        let key = b"12345678901234567890123456789012";
        for (t, want) in [
            (59, "46119246"),
            (1111111109, "68084774"),
            (1111111111, "67062674"),
            (1234567890, "91819424"),
            (2000000000, "90698825"),
            (20000000000, "77737706"),
        ] {
            assert_eq!(totp(key, t, 8), want, "T = {t}");
        }
    }

    #[test]
    fn window_is_one_step_each_way() {
        let key = [9u8; 32];
        let t = 1_800_000_000;
        let otp = totp(&key, t, 6);
        assert!(verify_totp(&key, &otp, t).is_some());
        assert!(verify_totp(&key, &otp, t + STEP_SECS).is_some());
        assert!(verify_totp(&key, &otp, t - STEP_SECS).is_some());
        assert!(verify_totp(&key, &otp, t + 3 * STEP_SECS).is_none());
        assert!(verify_totp(&key, "12345", t).is_none());
        assert!(verify_totp(&key, "abcdef", t).is_none());
    }
}
