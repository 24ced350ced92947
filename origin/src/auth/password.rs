//! Passwords: the policy a new one must meet, and Argon2id hashing off the async runtime.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) with the argon2
//! crate's default parameters (OWASP's minimum for Argon2id); each string names its own
//! parameters, so raising them later leaves existing hashes verifiable. One hash takes tens of
//! milliseconds and 19 MiB, so it runs on the blocking pool, at most [`Passwords::concurrency`]
//! at a time: a burst of logins queues (bounded by the request timeout) instead of exhausting
//! memory.

use std::fmt;
use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Fewest characters in a new password: length is what makes a password hard to guess.
pub const MIN_CHARS: usize = 12;
/// Most characters in any password: bounds the hashing work a request can ask for.
pub const MAX_CHARS: usize = 1024;

/// A password as the client sent it, at most [`MAX_CHARS`] long. Its `Debug` hides it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// A password for a new account: [`MIN_CHARS`] to [`MAX_CHARS`] characters.
    pub fn new_account(raw: String) -> Result<Self, ApiError> {
        let chars = raw.chars().count();
        if (MIN_CHARS..=MAX_CHARS).contains(&chars) {
            Ok(Self(raw))
        } else {
            Err(ApiError::InvalidField {
                field: "password".into(),
                reason: format!("must be from {MIN_CHARS} to {MAX_CHARS} characters long"),
            })
        }
    }

    /// A password presented at login: any length up to [`MAX_CHARS`], so that a policy change
    /// never locks out an existing account. `None` when longer, which no account can have.
    pub fn presented(raw: String) -> Option<Self> {
        (raw.chars().count() <= MAX_CHARS).then_some(Self(raw))
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Hashes and verifies passwords, a bounded number at a time.
#[derive(Debug)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    concurrency: usize,
    /// What an unknown account's login is checked against, so that it costs what a known
    /// account's does and its 401 cannot be told apart by timing.
    dummy_hash: String,
}

impl Passwords {
    /// Hashes one throw-away password for [`Passwords::verify`]'s unknown-account path, with the
    /// same parameters as every real hash. Blocks for one hash.
    pub fn new() -> Result<Self, HashError> {
        let mut throwaway = [0u8; 32];
        getrandom::fill(&mut throwaway).map_err(|_| HashError::Random)?;
        let dummy_hash = hash_now(&throwaway)?;
        let concurrency = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency)),
            concurrency,
            dummy_hash,
        })
    }

    /// How many hashes may run at once: the CPUs (at most 8).
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The PHC string of `password` with a fresh salt.
    pub async fn hash(&self, password: &Password) -> Result<String, ApiError> {
        let password = password.0.clone();
        self.blocking(move || hash_now(password.as_bytes()))
            .await?
            .map_err(|error| {
                tracing::error!(%error, "cannot hash a password");
                ApiError::Internal
            })
    }

    /// Whether `password` matches `stored` (a PHC string). With no stored hash (no such account)
    /// the same work is done against a dummy hash, and the answer is `false`.
    pub async fn verify(
        &self,
        password: &Password,
        stored: Option<String>,
    ) -> Result<bool, ApiError> {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.clone());
        let password = password.0.clone();
        let matches = self
            .blocking(move || {
                PasswordHash::new(&stored).is_ok_and(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
            })
            .await?;
        Ok(known && matches)
    }

    /// Runs `work` on the blocking pool once a permit is free.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| ApiError::Internal)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|_| ApiError::Internal)
    }
}

/// Why a password could not be hashed (never the client's fault).
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("no random salt available")]
    Random,
    #[error("argon2: {0}")]
    Argon2(argon2::password_hash::Error),
}

/// Argon2id with the crate's default parameters and a 16-byte random salt. Blocks.
fn hash_now(password: &[u8]) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| HashError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(HashError::Argon2)?;
    Argon2::default()
        .hash_password(password, &salt)
        .map(|hash| hash.to_string())
        .map_err(HashError::Argon2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_passwords_must_be_12_to_1024_characters() {
        assert!(Password::new_account("a".repeat(MIN_CHARS)).is_ok());
        assert!(Password::new_account("é".repeat(MIN_CHARS)).is_ok());
        assert!(Password::new_account("a".repeat(MAX_CHARS)).is_ok());
        for bad in [
            "",
            "short",
            &"a".repeat(MIN_CHARS - 1),
            &"a".repeat(MAX_CHARS + 1),
        ] {
            let error = Password::new_account(bad.to_owned()).unwrap_err();
            assert!(error.to_string().contains("`password`"), "{error}");
        }
        assert!(Password::presented("x".into()).is_some());
        assert!(Password::presented("a".repeat(MAX_CHARS + 1)).is_none());
    }

    #[test]
    fn a_password_never_appears_in_debug_output() {
        let password = Password::new_account("correct horse battery".into()).unwrap();
        assert_eq!(format!("{password:?}"), "Password(<redacted>)");
    }

    #[tokio::test]
    async fn hashes_are_salted_argon2id_and_verify_only_their_password() {
        let passwords = Passwords::new().unwrap();
        let password = Password::new_account("correct horse battery".into()).unwrap();
        let (first, second) = (
            passwords.hash(&password).await.unwrap(),
            passwords.hash(&password).await.unwrap(),
        );
        assert!(
            first.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{first}"
        );
        assert_ne!(first, second, "each hash has its own salt");
        assert!(
            passwords
                .verify(&password, Some(first.clone()))
                .await
                .unwrap()
        );
        let wrong = Password::presented("correct horse battery!".into()).unwrap();
        assert!(!passwords.verify(&wrong, Some(first)).await.unwrap());
        assert!(!passwords.verify(&password, None).await.unwrap());
        assert!(
            !passwords
                .verify(&password, Some("not a phc string".into()))
                .await
                .unwrap()
        );
        assert!(passwords.concurrency() >= 1);
    }
}
