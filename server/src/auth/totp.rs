//! TOTP (RFC 6238): HMAC-SHA1, 6 digits, 30-second steps, one step of clock drift either way.
//! Secrets travel as unpadded RFC 4648 base32, the form authenticator apps expect.

use super::tokens::constant_time_eq;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;

/// Seconds per TOTP step.
pub const STEP_SECS: u64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Bytes of a generated secret (160 bits, the RFC 4226 recommendation).
pub const SECRET_BYTES: usize = 20;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A fresh random secret, base32-encoded.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::thread_rng().fill_bytes(&mut bytes);
    base32_encode(&bytes)
}

/// Unpadded RFC 4648 base32.
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes base32, ignoring case, spaces and `=` padding; `None` on any other character.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.chars().filter(|c| !c.is_whitespace() && *c != '=') {
        let upper = c.to_ascii_uppercase() as u8;
        let value = BASE32.iter().position(|&b| b == upper)? as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The code for time step `counter` (RFC 4226 HOTP with dynamic truncation).
pub fn hotp(secret: &[u8], counter: u64) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!(
        "{:0width$}",
        binary % 10u32.pow(DIGITS),
        width = DIGITS as usize
    )
}

/// The code valid at `unix_secs` for a base32 secret; `None` when the secret is not base32.
pub fn code_at(secret_b32: &str, unix_secs: u64) -> Option<String> {
    Some(hotp(&base32_decode(secret_b32)?, unix_secs / STEP_SECS))
}

/// Whether `code` is valid at `unix_secs`, allowing one step of drift either way. The comparison
/// does not stop at the first differing digit.
pub fn verify(secret_b32: &str, code: &str, unix_secs: u64) -> bool {
    matching_step(secret_b32, code, unix_secs).is_some()
}

/// The time step whose code `code` is, among the current one and one of drift either way; `None`
/// when it matches none. Callers that accept the code record this step so that it, and every
/// earlier one, cannot be used again (RFC 6238 section 5.2: a code is valid once).
pub fn matching_step(secret_b32: &str, code: &str, unix_secs: u64) -> Option<u64> {
    let secret = base32_decode(secret_b32)?;
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let step = unix_secs / STEP_SECS;
    // Every candidate is compared (no early exit); the latest matching step wins.
    [step.saturating_sub(1), step, step + 1]
        .into_iter()
        .fold(None, |found, s| {
            if constant_time_eq(hotp(&secret, s).as_bytes(), code.as_bytes()) {
                Some(s)
            } else {
                found
            }
        })
}

/// The `otpauth://` URI authenticator apps scan as a QR code.
pub fn otpauth_uri(issuer: &str, account: &str, secret_b32: &str) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA1 rows (8-digit codes; our 6 digits are their last 6).
    #[test]
    fn rfc6238_vectors() {
        let secret = base32_encode(b"12345678901234567890");
        for (time, code8) in [
            (59u64, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(
                code_at(&secret, time).expect("code"),
                code8[2..],
                "t={time}"
            );
        }
    }

    #[test]
    fn base32_round_trips_and_matches_rfc4648() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_decode("mzxw6ytboi======").expect("b32"), b"foobar");
        let secret = generate_secret();
        assert_eq!(secret.len(), 32);
        assert_eq!(base32_decode(&secret).expect("b32").len(), SECRET_BYTES);
        assert!(base32_decode("not*base32").is_none());
    }

    #[test]
    fn verify_allows_one_step_of_drift() {
        let secret = generate_secret();
        let now = 1_700_000_000;
        let code = code_at(&secret, now).expect("code");
        assert!(verify(&secret, &code, now));
        assert!(verify(&secret, &code, now + STEP_SECS));
        assert!(verify(&secret, &code, now - STEP_SECS));
        assert!(!verify(&secret, &code, now + 3 * STEP_SECS));
        assert!(!verify(&secret, "12345", now));
        assert!(!verify(&secret, "abcdef", now));
    }

    #[test]
    fn the_matching_step_is_the_one_the_code_belongs_to() {
        let secret = generate_secret();
        let now = 1_700_000_000;
        let code = code_at(&secret, now).expect("code");
        let step = now / STEP_SECS;
        assert_eq!(matching_step(&secret, &code, now), Some(step));
        assert_eq!(matching_step(&secret, &code, now + STEP_SECS), Some(step));
        assert_eq!(matching_step(&secret, &code, now + 3 * STEP_SECS), None);
    }

    #[test]
    fn uri_names_issuer_and_account() {
        let uri = otpauth_uri("Nox Sync", "ada@example.com", "ABC");
        assert!(uri.starts_with(
            "otpauth://totp/Nox%20Sync:ada%40example.com?secret=ABC&issuer=Nox%20Sync"
        ));
    }
}
