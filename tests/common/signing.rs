//! The signed webhook's receiver check, written once from the contract alone: HMAC-SHA256 of
//! `"<timestamp>.<raw body>"` keyed with the secret, lowercase hex after `v1=`.
#![allow(dead_code)]

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Whether `signature` is `secret`'s over `timestamp` and `body`, as a receiver checks it.
pub fn verifies(secret: &str, timestamp: &str, signature: &str, body: &[u8]) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    let hex: String = (mac.finalize().into_bytes().iter())
        .map(|b| format!("{b:02x}"))
        .collect();
    signature == format!("v1={hex}")
}
