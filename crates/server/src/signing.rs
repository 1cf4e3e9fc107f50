//! HMAC-signed, expiring URLs for the unauthenticated upload PUT and image GET.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Signs and checks (action, resource, expiry) triples.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    /// A signer over a secret.
    pub fn new(secret: &[u8]) -> Signer {
        Signer {
            key: secret.to_vec(),
        }
    }

    fn mac(&self, action: &str, resource: &str, expires: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key size");
        mac.update(action.as_bytes());
        mac.update(b"\n");
        mac.update(resource.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// The hex signature for an action on a resource until `expires` (unix seconds).
    pub fn sign(&self, action: &str, resource: &str, expires: i64) -> String {
        hex::encode(self.mac(action, resource, expires).finalize().into_bytes())
    }

    /// Whether `sig` is valid and `expires` has not passed; compares in constant time.
    pub fn verify(&self, action: &str, resource: &str, expires: i64, sig: &str) -> bool {
        if expires < chrono::Utc::now().timestamp() {
            return false;
        }
        let Ok(raw) = hex::decode(sig) else {
            return false;
        };
        self.mac(action, resource, expires)
            .verify_slice(&raw)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_every_part_and_expire() {
        let s = Signer::new(b"secret");
        let exp = chrono::Utc::now().timestamp() + 60;
        let sig = s.sign("PUT", "abc", exp);
        assert!(s.verify("PUT", "abc", exp, &sig));
        assert!(!s.verify("GET", "abc", exp, &sig));
        assert!(!s.verify("PUT", "abd", exp, &sig));
        assert!(!s.verify("PUT", "abc", exp + 1, &sig));
        assert!(!Signer::new(b"other").verify("PUT", "abc", exp, &sig));
        assert!(!s.verify("PUT", "abc", exp, "zz"));
        let past = chrono::Utc::now().timestamp() - 1;
        let old = s.sign("PUT", "abc", past);
        assert!(!s.verify("PUT", "abc", past, &old));
    }
}
