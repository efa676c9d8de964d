//! What a key is: `tw_<id>_<secret>` from the OS random source, and its Argon2id hash with the
//! server-side pepper as Argon2's secret parameter.
//!
//! The id is public (it is stored in the clear in the keys file) and only says which entry to
//! check, so a verification costs one Argon2 run whatever the number of keys. The secret carries
//! all the entropy (256 bits).

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use sha2::{Digest, Sha256};

use super::KeysError;

/// Every generated key starts with this.
pub const PREFIX: &str = "tw_";
/// Hex digits of a key id.
const ID_LEN: usize = 8;
/// Random bytes of a key's secret part.
const SECRET_BYTES: usize = 32;
/// What the pepper fingerprint hashes: a file remembers which pepper made its keys without
/// storing the pepper (`KeysFile::pepper_check`).
const PEPPER_CHECK: &[u8] = b"tickwire api-key pepper check";

/// Bytes from the OS random source (`getrandom`).
pub fn random_bytes<const N: usize>() -> Result<[u8; N], KeysError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| KeysError::Random(e.to_string()))?;
    Ok(b)
}

/// A random token for a one-off key (the demo's): 256 bits, URL-safe base64.
pub fn random_token() -> Result<String, KeysError> {
    let b = random_bytes::<SECRET_BYTES>()?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// A new key: its public id and the whole key (`tw_<id>_<secret>`).
pub fn generate() -> Result<(String, String), KeysError> {
    let id: String = random_bytes::<{ ID_LEN / 2 }>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let key = format!("{PREFIX}{id}_{}", random_token()?);
    Ok((id, key))
}

/// The id of a key of the generated shape, or None (then no entry can match it).
pub fn key_id(key: &str) -> Option<&str> {
    let (id, secret) = key.strip_prefix(PREFIX)?.split_once('_')?;
    (is_id(id) && !secret.is_empty()).then_some(id)
}

/// True for a well-formed key id (lowercase hex of the right length).
pub fn is_id(id: &str) -> bool {
    id.len() == ID_LEN && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn argon2(pepper: &[u8]) -> Result<Argon2<'_>, KeysError> {
    if pepper.is_empty() {
        return Ok(Argon2::default());
    }
    Argon2::new_with_secret(
        pepper,
        Algorithm::Argon2id,
        Version::V0x13,
        Params::default(),
    )
    .map_err(|e| KeysError::Hash(e.to_string()))
}

/// The Argon2id PHC string of `key` (fresh random salt, the crate's recommended cost).
pub fn hash(key: &[u8], pepper: &[u8]) -> Result<String, KeysError> {
    let salt = random_bytes::<16>()?;
    argon2(pepper)?
        .hash_password_with_salt(key, &salt)
        .map(|h| h.to_string())
        .map_err(|e| KeysError::Hash(e.to_string()))
}

/// True when `key` hashes to `phc` with this pepper (the cost parameters come from `phc`).
pub fn verify(key: &[u8], phc: &str, pepper: &[u8]) -> bool {
    argon2(pepper).is_ok_and(|a| a.verify_password(key, phc).is_ok())
}

/// True when `phc` is an Argon2id PHC string (checked when a keys file is read).
pub fn is_argon2id(phc: &str) -> bool {
    argon2::PasswordHash::new(phc)
        .is_ok_and(|h| h.algorithm.as_str() == "argon2id" && h.salt.is_some() && h.hash.is_some())
}

/// The fingerprint of a pepper: an Argon2id hash of a fixed text with the pepper as secret.
pub fn fingerprint(pepper: &[u8]) -> Result<String, KeysError> {
    hash(PEPPER_CHECK, pepper)
}

/// True when `fingerprint` was made with this pepper.
pub fn pepper_matches(fingerprint: &str, pepper: &[u8]) -> bool {
    verify(PEPPER_CHECK, fingerprint, pepper)
}

/// What the verification cache is keyed by: a digest of the presented key, so the cache holds
/// no key in the clear.
pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_verify_with_their_pepper_only() {
        let (id, key) = generate().unwrap();
        assert_eq!(key_id(&key), Some(id.as_str()));
        assert!(key.len() > 50, "{key}");
        let phc = hash(key.as_bytes(), b"pepper").unwrap();
        assert!(is_argon2id(&phc), "{phc}");
        assert!(verify(key.as_bytes(), &phc, b"pepper"));
        assert!(!verify(key.as_bytes(), &phc, b"other"));
        assert!(!verify(key.as_bytes(), &phc, b""));
        assert!(!verify(b"tw_00000000_x", &phc, b"pepper"));
        let fp = fingerprint(b"").unwrap();
        assert!(pepper_matches(&fp, b""));
        assert!(!pepper_matches(&fp, b"pepper"));
    }

    #[test]
    fn key_ids() {
        assert_eq!(key_id("tw_0123abcd_secret"), Some("0123abcd"));
        assert_eq!(key_id("tw_0123abcd_se_cr_et"), Some("0123abcd"));
        for bad in [
            "",
            "k1",
            "tw_0123abcd_",
            "tw_0123ABCD_x",
            "tw_0123abc_x",
            "xx_0123abcd_x",
        ] {
            assert_eq!(key_id(bad), None, "{bad}");
        }
        assert!(!is_argon2id(
            "$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaA"
        ));
        assert!(!is_argon2id("plain"));
    }
}
