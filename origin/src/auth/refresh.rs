//! Refresh tokens: opaque, rotated on every use, and revoked a whole family at a time.
//!
//! A token is 256 random bits, base64url; only its SHA-256 is stored. Login starts a *family*;
//! each refresh marks the presented token used and issues the next one in the same family, in
//! one transaction whose conditional `UPDATE … WHERE used_at IS NULL AND revoked_at IS NULL`
//! lets exactly one of two concurrent refreshes with one token win.
//!
//! A used token presented again means two parties hold the family (a stolen token, or a client
//! that raced itself); the server cannot tell which is legitimate, so the whole family is revoked,
//! the newest token included, and both must sign in again. The loser of a concurrent refresh is
//! treated the same way, so one token never yields two live chains. Access tokens already issued
//! stay valid until they expire (15 minutes at most).

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::db::{Db, on_pool};
use crate::error::ApiError;

/// How long a refresh token stays usable. Each refresh issues a new one with the full lifetime,
/// so a client that refreshes at least this often stays signed in.
pub const REFRESH_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Random bytes in a refresh token.
const TOKEN_BYTES: usize = 32;

/// A refresh token as the client holds it. Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl RefreshToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshToken(<redacted>)")
    }
}

/// What a refresh did. Refusals all answer the same 401; the variant is for logs.
#[derive(Debug)]
pub enum Rotation {
    /// The presented token is now used; `token` is its successor.
    Rotated {
        user_id: i64,
        token: RefreshToken,
    },
    /// No such token (or not even the shape of one).
    Unknown,
    Expired,
    /// Its family was revoked (logout, or reuse seen earlier).
    Revoked,
    /// The token was already used: its family has just been revoked.
    Reused {
        family_id: String,
        user_id: i64,
    },
}

impl Rotation {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Rotated { .. } => "rotated",
            Self::Unknown => "unknown",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::Reused { .. } => "reused",
        }
    }
}

/// Starts a new family for `user_id` (a login) and returns its first token.
pub async fn start_family(db: &Db, user_id: i64, now_ms: i64) -> Result<RefreshToken, ApiError> {
    let family_id = hex(&random::<16>()?);
    let (token, token_hash) = mint()?;
    on_pool!(db, pool => {
        sqlx::query(INSERT)
            .bind(&token_hash)
            .bind(&family_id)
            .bind(user_id)
            .bind(now_ms)
            .bind(expires_at(now_ms))
            .execute(pool)
            .await
            .map(drop)
    })?;
    Ok(token)
}

/// Exchanges `presented` for its successor, or says why not (revoking the family on reuse).
pub async fn rotate(db: &Db, presented: &str, now_ms: i64) -> Result<Rotation, ApiError> {
    let Some(presented_hash) = hash_of(presented) else {
        return Ok(Rotation::Unknown);
    };
    let (next, next_hash) = mint()?;
    let find = "SELECT id, family_id, user_id, expires_at, used_at, revoked_at \
                FROM refresh_tokens WHERE token_hash = $1";
    let mark_used = "UPDATE refresh_tokens SET used_at = $2 \
                     WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL";
    let begin = db.begin_write();
    on_pool!(db, pool => {
        // Every early return drops `tx`, which rolls it back.
        let mut tx = pool.begin_with(begin).await?;
        let row = sqlx::query_as::<_, (i64, String, i64, i64, Option<i64>, Option<i64>)>(find)
            .bind(&presented_hash)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((id, family_id, user_id, valid_until_ms, used_at, revoked_at)) = row else {
            return Ok(Rotation::Unknown);
        };
        if revoked_at.is_some() {
            return Ok(Rotation::Revoked);
        }
        if used_at.is_none() && valid_until_ms <= now_ms {
            return Ok(Rotation::Expired);
        }
        let won = used_at.is_none()
            && sqlx::query(mark_used)
                .bind(id)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        if !won {
            // Used before, or by a concurrent refresh that committed first: reuse either way.
            sqlx::query(REVOKE_FAMILY)
                .bind(&family_id)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(Rotation::Reused { family_id, user_id });
        }
        sqlx::query(INSERT)
            .bind(&next_hash)
            .bind(&family_id)
            .bind(user_id)
            .bind(now_ms)
            .bind(expires_at(now_ms))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Rotation::Rotated { user_id, token: next })
    })
}

/// Revokes the family `presented` belongs to, if it names one; says whether it did.
pub async fn revoke_family_of(db: &Db, presented: &str, now_ms: i64) -> Result<bool, ApiError> {
    let Some(presented_hash) = hash_of(presented) else {
        return Ok(false);
    };
    let sql = "UPDATE refresh_tokens SET revoked_at = $2 WHERE revoked_at IS NULL AND family_id = \
               (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)";
    let revoked = on_pool!(db, pool => {
        sqlx::query(sql)
            .bind(&presented_hash)
            .bind(now_ms)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(revoked > 0)
}

const REVOKE_FAMILY: &str =
    "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL";

const INSERT: &str = "INSERT INTO refresh_tokens \
     (token_hash, family_id, user_id, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)";

fn expires_at(now_ms: i64) -> i64 {
    now_ms.saturating_add(REFRESH_TTL.as_millis() as i64)
}

/// A fresh token and the hash stored for it.
fn mint() -> Result<(RefreshToken, String), ApiError> {
    let token = super::b64url(&random::<TOKEN_BYTES>()?);
    let hash = hash_hex(&token);
    Ok((RefreshToken(token), hash))
}

/// The stored hash of `presented`, or `None` when it is not shaped like a token this server
/// issues, so that no lookup is made for it.
fn hash_of(presented: &str) -> Option<String> {
    let bytes = super::b64url_decode(presented)?;
    (bytes.len() == TOKEN_BYTES).then(|| hash_hex(presented))
}

fn hash_hex(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn random<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|_| ApiError::Internal)?;
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_random_bits_stored_only_as_their_hash() {
        let (token, hash) = mint().unwrap();
        assert_eq!(token.as_str().len(), 43);
        assert_eq!(hash_of(token.as_str()), Some(hash.clone()));
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(token.as_str()));
        assert_ne!(mint().unwrap().0, token);
        assert_eq!(format!("{token:?}"), "RefreshToken(<redacted>)");
    }

    #[test]
    fn only_token_shaped_input_is_looked_up() {
        let (token, _) = mint().unwrap();
        for bad in [
            "",
            "short",
            &format!("{}=", token.as_str()),
            &format!("{}A", token.as_str()),
            &token
                .as_str()
                .replace(|c: char| c.is_ascii_alphabetic(), "+"),
        ] {
            assert_eq!(hash_of(bad), None, "{bad:?}");
        }
    }
}
