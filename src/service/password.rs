//! Argon2id password hashing, run on the blocking pool so a login never stalls
//! an async worker, and through a [`Gate`] so that at most one hash per core
//! runs at a time: each costs `argon2_memory_kib` of memory, and sign-up and
//! login are open to anyone.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::Refusal;
use crate::service::gate::Gate;
use crate::store::StoreError;

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    gate: Gate,
    /// A hash of a random password, verified against when an email is
    /// unknown so that the answer takes as long as for a known email.
    dummy_hash: String,
}

impl PasswordHasher {
    pub fn new(memory_kib: u32, iterations: u32) -> Result<PasswordHasher, StoreError> {
        let params = Params::new(memory_kib, iterations, 1, None)
            .map_err(|e| StoreError::Other(format!("argon2 parameters: {e}")))?;
        let dummy_hash = hash_with(&params, "jangteo-dummy-password-for-timing")?;
        let workers = Gate::cores();
        Ok(PasswordHasher {
            params,
            gate: Gate::new("password hashing", workers, workers * 32),
            dummy_hash,
        })
    }

    pub async fn hash(&self, password: String) -> Result<String, Refusal> {
        let params = self.params.clone();
        Ok(self
            .gate
            .run(move || hash_with(&params, &password))
            .await??)
    }

    /// Verify `password` against `hash`; with `None`, burn the same time
    /// against the dummy hash and return false.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, Refusal> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        let ok = self
            .gate
            .run(move || verify_with(&password, &hash))
            .await??;
        Ok(ok && known)
    }
}

fn argon(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_with(params: &Params, password: &str) -> Result<String, StoreError> {
    let salt = SaltString::generate(&mut OsRng);
    argon(params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Other(format!("argon2 hash: {e}")))
}

fn verify_with(password: &str, hash: &str) -> Result<bool, StoreError> {
    let parsed = PasswordHash::new(hash)
        .map_err(|e| StoreError::Other(format!("stored hash unreadable: {e}")))?;
    // Parameters come from the stored hash, so old hashes keep verifying
    // after the configured cost changes.
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let h = PasswordHasher::new(64, 1).expect("params");
        let hash = h.hash("correct horse".into()).await.expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(h
            .verify("correct horse".into(), Some(hash.clone()))
            .await
            .expect("verify"));
        assert!(!h
            .verify("wrong horse".into(), Some(hash))
            .await
            .expect("verify"));
        assert!(!h.verify("anything".into(), None).await.expect("verify"));
    }
}
