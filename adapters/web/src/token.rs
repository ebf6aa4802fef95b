//! Visitor tokens: what a chat page keeps to come back to its conversation after a reload or a
//! restart. A token is `v1.<visitor id>.<signature>`: 128 random bits and their HMAC-SHA-256
//! under the server's secret, so nothing about it is guessable and a forged or altered one is
//! refused (the page then starts a new conversation; it never reaches another's). The secret is
//! `SWITCHBOARD_WEB_SECRET`, or one made at the first start and kept in the store, so every
//! instance on one database and every restart accept the same tokens.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_core::store::Store;

use crate::WebError;

/// The environment variable that holds the signing secret (at least 32 characters).
pub const SECRET_ENV: &str = "SWITCHBOARD_WEB_SECRET";
/// Where a made secret is kept: the store's key-value space.
const SECRET_NAMESPACE: &str = "web";
const SECRET_KEY: &str = "secret";

/// Signs and checks visitor tokens.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<secret>)")
    }
}

/// `n` random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The OS generator failing is not something to go on without.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut b).expect("the operating system's random number generator");
    b
}

/// 128 random bits, URL-safe.
pub fn random_id() -> String {
    B64.encode(random_bytes::<16>())
}

impl Signer {
    /// A signer with this secret.
    pub fn new(secret: &[u8]) -> Signer {
        Signer { key: secret.to_vec() }
    }

    /// The signer of `SWITCHBOARD_WEB_SECRET` (`env`), or of the secret kept in `store`, made
    /// there at the first start.
    pub async fn load(env: Option<&str>, store: &dyn Store) -> Result<Signer, WebError> {
        if let Some(s) = env.map(str::trim).filter(|s| !s.is_empty()) {
            if s.chars().count() < 32 {
                return Err(WebError::Config(format!("{SECRET_ENV} must be at least 32 characters")));
            }
            return Ok(Signer::new(s.as_bytes()));
        }
        if let Some(kept) = store.get_value(SECRET_NAMESPACE, SECRET_KEY).await? {
            return Ok(Signer::new(kept.as_bytes()));
        }
        let made = B64.encode(random_bytes::<32>());
        store.set_value(SECRET_NAMESPACE, SECRET_KEY, &made).await?;
        // Two instances starting at once: the one written last is kept; read it back.
        let kept = store.get_value(SECRET_NAMESPACE, SECRET_KEY).await?.unwrap_or(made);
        Ok(Signer::new(kept.as_bytes()))
    }

    fn mac(&self, purpose: &str, id: &str) -> Vec<u8> {
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(id.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// A new visitor: their id and token.
    pub fn new_visitor(&self) -> (String, String) {
        let id = random_id();
        let token = self.token(&id);
        (id, token)
    }

    /// The token of visitor `id`.
    pub fn token(&self, id: &str) -> String {
        format!("v1.{id}.{}", B64.encode(self.mac("visitor", id)))
    }

    /// The visitor id a token carries, if it is one of ours and unaltered.
    pub fn visitor(&self, token: &str) -> Option<String> {
        let mut parts = token.split('.');
        let (Some("v1"), Some(id), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return None;
        };
        let sig = B64.decode(sig).ok()?;
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(b"visitor\0");
        mac.update(id.as_bytes());
        // Constant time.
        mac.verify_slice(&sig).ok()?;
        (id.len() == 22).then(|| id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_back_only_unaltered_and_under_the_same_secret() {
        let s = Signer::new(b"0123456789abcdef0123456789abcdef");
        let (id, token) = s.new_visitor();
        assert_eq!(s.visitor(&token), Some(id.clone()));
        let (other, _) = s.new_visitor();
        assert_ne!(id, other, "ids are random");
        // Someone else's id with my signature, a cut signature, another secret, junk.
        let sig = token.rsplit('.').next().unwrap_or_default();
        assert_eq!(s.visitor(&format!("v1.{other}.{sig}")), None);
        assert_eq!(s.visitor(&token[..token.len() - 2]), None);
        assert_eq!(Signer::new(b"another secret, just as long....").visitor(&token), None);
        for junk in ["", "v1", "v1..", "v2.a.b", "v1.a.b.c", "<img src=x onerror=alert(1)>"] {
            assert_eq!(s.visitor(junk), None, "{junk}");
        }
    }

    #[tokio::test]
    async fn a_made_secret_is_kept_in_the_store() {
        let store = switchboard_core::store::MemoryStore::new();
        let a = Signer::load(None, &store).await.expect("made");
        let b = Signer::load(None, &store).await.expect("read back");
        let (id, token) = a.new_visitor();
        assert_eq!(b.visitor(&token), Some(id), "a restart accepts earlier tokens");
        assert!(Signer::load(Some("short"), &store).await.is_err());
        let from_env = Signer::load(Some("an environment secret of 32 chars+"), &store).await.expect("env");
        assert_eq!(from_env.visitor(&token), None);
    }
}
