//! Accounts: the email address that names one, and the queries on `users`.

use serde::Serialize;

use crate::db::{Db, on_pool};
use crate::error::ApiError;
use crate::order::rfc3339;

/// Most characters in an address (RFC 5321's path limit less the angle brackets).
pub const MAX_EMAIL_CHARS: usize = 254;

/// An email address, lowercased: one `@` with something on each side, a dot in the domain, no
/// spaces or control characters, at most [`MAX_EMAIL_CHARS`]. A sanity check, not RFC 5322: the
/// address is proven only by mail reaching it, which is beyond this shop. Lowercasing the whole
/// address makes `Ann@Example.com` and `ann@example.com` one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let invalid = |reason: &str| ApiError::InvalidField {
            field: "email".into(),
            reason: reason.to_owned(),
        };
        // Counted as stored: lower-casing can lengthen an address (`İ` becomes `i̇`).
        let lower = raw.to_lowercase();
        if lower.chars().count() > MAX_EMAIL_CHARS {
            return Err(invalid("must be at most 254 characters long"));
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("must not contain spaces or control characters"));
        }
        let Some((local, domain)) = raw.split_once('@') else {
            return Err(invalid("must be an address like name@example.com"));
        };
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..");
        if local.is_empty() || domain.contains('@') || !domain_ok {
            return Err(invalid("must be an address like name@example.com"));
        }
        Ok(Self(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An account as `POST /api/users` answers it (never with its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: i64,
    pub email: String,
    /// RFC 3339, UTC, milliseconds.
    pub created_at: String,
}

/// Creates the account; `None` when the address is taken.
pub async fn create(
    db: &Db,
    email: &Email,
    password_hash: &str,
    now_ms: i64,
) -> Result<Option<User>, sqlx::Error> {
    let sql = "INSERT INTO users (email, password_hash, created_at) VALUES ($1, $2, $3) \
               RETURNING id";
    let inserted = on_pool!(db, pool => {
        sqlx::query_scalar::<_, i64>(sql)
            .bind(email.as_str())
            .bind(password_hash)
            .bind(now_ms)
            .fetch_one(pool)
            .await
    });
    match inserted {
        Ok(id) => Ok(Some(User {
            id,
            email: email.as_str().to_owned(),
            created_at: rfc3339(now_ms),
        })),
        Err(error) if is_unique_violation(&error) => Ok(None),
        Err(error) => Err(error),
    }
}

/// The id and password hash of the account with this (already lowercased) address.
pub async fn credentials(db: &Db, email: &str) -> Result<Option<(i64, String)>, sqlx::Error> {
    let sql = "SELECT id, password_hash FROM users WHERE email = $1";
    on_pool!(db, pool => {
        sqlx::query_as::<_, (i64, String)>(sql)
            .bind(email)
            .fetch_optional(pool)
            .await
    })
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|error| error.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_lowercased() {
        for (raw, stored) in [
            ("Ann@Example.COM", "ann@example.com"),
            ("a.b+tag@mail.example.org", "a.b+tag@mail.example.org"),
            ("ÉMILE@exemple.fr", "émile@exemple.fr"),
            ("İ@example.com", "i\u{307}@example.com"),
        ] {
            assert_eq!(Email::parse(raw).unwrap().as_str(), stored);
        }
    }

    #[test]
    fn implausible_addresses_are_refused() {
        let long = format!("{}@example.com", "a".repeat(MAX_EMAIL_CHARS));
        let lengthens = format!("{}@example.com", "İ".repeat(MAX_EMAIL_CHARS - 12));
        for raw in [
            "",
            "ann",
            "@example.com",
            "ann@",
            "ann@example",
            "ann@.example.com",
            "ann@example.com.",
            "ann@example..com",
            "ann@b@example.com",
            "ann @example.com",
            " ann@example.com",
            "ann@example.com\n",
            long.as_str(),
            // Found by the fuzzer (fuzz target `origin`): 254 characters as sent, 496 once
            // lower-cased, stored past the limit.
            lengthens.as_str(),
        ] {
            let error = Email::parse(raw).unwrap_err();
            assert!(error.to_string().contains("`email`"), "{raw:?}: {error}");
        }
    }
}
