//! Accounts for the web console in tests: an argon2id hash of a password, in the PHC form
//! `[[web.accounts]] password_hash` takes, made with the smallest costs so tests stay fast (the
//! console verifies whatever costs the hash names).

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// The argon2id hash of `password` (1 MiB, one pass), as `switchboard console-password` prints
/// one but cheaper to make and to check.
pub fn password_hash(password: &str) -> String {
    let params = Params::new(1024, 1, 1, None).expect("valid argon2 costs");
    // A fixed salt: these hashes are test fixtures, never stored for a real account.
    let salt = SaltString::from_b64("c3dpdGNoYm9hcmQtdGVzdA").expect("a valid salt");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params).hash_password(password.as_bytes(), &salt).expect("argon2 hashes").to_string()
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};

    #[test]
    fn the_hash_verifies_its_password_and_no_other() {
        let hash = super::password_hash("secret words");
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(argon2::Argon2::default().verify_password(b"secret words", &parsed).is_ok());
        assert!(argon2::Argon2::default().verify_password(b"other words", &parsed).is_err());
    }
}
