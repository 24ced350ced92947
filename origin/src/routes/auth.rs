//! Accounts and sessions: `POST /api/users`, `POST /api/auth/login`, `POST /api/auth/refresh`,
//! `POST /api/auth/logout`, and the public keys at `GET /.well-known/jwks.json`.
//!
//! Browsers keep the refresh token where no script can read it: a sign-in with
//! `"refresh_in_cookie": true` answers it in the [`REFRESH_COOKIE`] cookie (`HttpOnly; Secure;
//! SameSite=Strict; Path=/api/auth`) instead of the body; a refresh or logout without
//! `refresh_token` in its body uses the cookie, and answers in kind (a new cookie, or a cleared
//! one). The access token stays in the page's memory only.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::auth::password::Password;
use crate::auth::refresh::{self, REFRESH_TTL, RefreshToken, Rotation};
use crate::auth::tokens::ACCESS_TTL;
use crate::auth::user::{self, Email};
use crate::auth::{unix_now, unix_now_ms};
use crate::error::ApiError;
use crate::overload::OverloadLayer;

/// Credentials and tokens: no cache, shared or private, may keep any answer of these routes
/// (RFC 6749 §5.1).
const NO_STORE: &str = "no-store";
/// The public keys change only with a key rotation, which keeps the old key published for longer
/// than this, so a verifier's copy is never missing a key in use.
const JWKS_CACHE_CONTROL: &str = "public, max-age=300";

/// The routes of this module, every answer marked `no-store` except the public keys'. The
/// account routes pass `writes`, the write bulkhead's overload limiter (their queries use the
/// write pool); the public keys, computed in memory and needed by the edge to verify every
/// token, are never shed.
pub fn router(writes: OverloadLayer) -> Router<AppState> {
    Router::new()
        .route("/api/users", post(register))
        .route("/api/auth/login", post(login))
        .route("/api/auth/refresh", post(refresh))
        .route("/api/auth/logout", post(logout))
        .route_layer(writes)
        .layer(axum::middleware::map_response(no_store))
        .route("/.well-known/jwks.json", get(jwks))
}

async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
    response
}

/// The cookie that carries a browser session's refresh token; `__Secure-` makes browsers refuse
/// it unless `Secure`.
pub const REFRESH_COOKIE: &str = "__Secure-breakwater-refresh";
/// Only the routes that take a refresh token receive the cookie.
const REFRESH_COOKIE_PATH: &str = "/api/auth";

/// `{"email", "password"}`, for registering.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsBody {
    email: String,
    password: String,
}

/// `{"email", "password", "refresh_in_cookie"?}`, for signing in.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    email: String,
    password: String,
    /// The refresh token in [`REFRESH_COOKIE`] rather than in the answer's body.
    #[serde(default)]
    refresh_in_cookie: bool,
}

/// `{"refresh_token"?}`: absent, the [`REFRESH_COOKIE`]'s.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    refresh_token: Option<String>,
}

/// Where a session's refresh token travels, both ways.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Carrier {
    Body,
    Cookie,
}

impl RefreshBody {
    /// The refresh token presented, from the body or else the cookie: `422` with neither.
    fn presented(self, headers: &HeaderMap) -> Result<(String, Carrier), ApiError> {
        if let Some(token) = self.refresh_token {
            return Ok((token, Carrier::Body));
        }
        refresh_cookie(headers)
            .map(|token| (token, Carrier::Cookie))
            .ok_or_else(|| {
                ApiError::InvalidBody(format!(
                    "missing field `refresh_token` (and no {REFRESH_COOKIE} cookie)"
                ))
            })
    }
}

/// The value of the one [`REFRESH_COOKIE`] in the `Cookie` fields; none when absent or sent
/// twice (which of two would be the session's is unknowable).
fn refresh_cookie(headers: &HeaderMap) -> Option<String> {
    let mut values = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == REFRESH_COOKIE)
        .map(|(_, value)| value.to_owned());
    match (values.next(), values.next()) {
        (Some(value), None) => Some(value),
        _ => None,
    }
}

/// The `Set-Cookie` value carrying `token`, or clearing the cookie with `None`.
fn set_refresh_cookie(token: Option<&str>) -> HeaderValue {
    let (value, max_age) = token.map_or(("", 0), |t| (t, REFRESH_TTL.as_secs()));
    let cookie = format!(
        "{REFRESH_COOKIE}={value}; Max-Age={max_age}; Path={REFRESH_COOKIE_PATH}; Secure; \
         HttpOnly; SameSite=Strict"
    );
    // Refresh tokens are base64url: always a valid header value.
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A login's or refresh's answer (RFC 6749 §5.1, with the refresh token's lifetime added).
#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    /// Absent when the cookie carries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    refresh_expires_in: u64,
}

/// `POST /api/users`: `201` with the account, `409` when the address is taken, `422` for an
/// implausible address or a password of fewer than 12 (or more than 1024) characters.
pub async fn register(
    State(state): State<AppState>,
    body: Result<Json<CredentialsBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(ApiError::from_json_rejection)?;
    let email = Email::parse(&body.email)?;
    let password = Password::new_account(body.password)?;
    let hash = state.auth.passwords.hash(&password).await?;
    let user = user::create(&state.db, &email, &hash, unix_now_ms())
        .await?
        .ok_or(ApiError::EmailTaken)?;
    tracing::info!(user = user.id, "account created");
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

/// `POST /api/auth/login`: a new session (an access token and the first refresh token of a new
/// family), or a `401` that is the same, and takes as long, for an unknown address as for a
/// wrong password.
pub async fn login(
    State(state): State<AppState>,
    body: Result<Json<LoginBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(ApiError::from_json_rejection)?;
    let Some(password) = Password::presented(body.password) else {
        return Err(ApiError::InvalidCredentials);
    };
    // Any string is looked up (lowercased): a malformed address is simply an unknown one.
    let account = user::credentials(&state.db, &body.email.to_lowercase()).await?;
    let (user_id, hash) = account.unzip();
    let matches = state.auth.passwords.verify(&password, hash).await?;
    let Some(user_id) = user_id.filter(|_| matches) else {
        tracing::info!("login refused");
        return Err(ApiError::InvalidCredentials);
    };
    let refresh_token = refresh::start_family(&state.db, user_id, unix_now_ms()).await?;
    tracing::info!(user = user_id, "signed in");
    let carrier = if body.refresh_in_cookie {
        Carrier::Cookie
    } else {
        Carrier::Body
    };
    session(&state, user_id, refresh_token, carrier)
}

/// `POST /api/auth/refresh`: the next access and refresh tokens of the family, the presented
/// refresh token used up. A used, expired, revoked or unknown token is a `401`; a used one also
/// revokes its whole family.
pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<RefreshBody>, JsonRejection>,
) -> Result<Response, Response> {
    let Json(body) = body.map_err(|e| ApiError::from_json_rejection(e).into_response())?;
    let (token, carrier) = body
        .presented(&headers)
        .map_err(IntoResponse::into_response)?;
    // A refused cookie is cleared, so the browser stops presenting it.
    let refused = |e: ApiError| match carrier {
        Carrier::Cookie => ([(header::SET_COOKIE, set_refresh_cookie(None))], e).into_response(),
        Carrier::Body => e.into_response(),
    };
    // A failure of the database says nothing of the token: the cookie stays.
    let rotation = refresh::rotate(&state.db, &token, unix_now_ms())
        .await
        .map_err(IntoResponse::into_response)?;
    let result = match rotation {
        Rotation::Rotated { user_id, token } => session(&state, user_id, token, carrier),
        Rotation::Reused { family_id, user_id } => {
            tracing::warn!(
                family = family_id,
                user = user_id,
                "refresh token reused: its family is revoked"
            );
            Err(ApiError::InvalidRefreshToken)
        }
        other => {
            tracing::info!(reason = other.as_str(), "refresh refused");
            Err(ApiError::InvalidRefreshToken)
        }
    };
    result.map_err(refused)
}

/// `POST /api/auth/logout`: revokes the refresh token's family. Always `204`, known token or
/// not, so calling it twice (or with a stale token) is harmless.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<RefreshBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(ApiError::from_json_rejection)?;
    let (token, carrier) = body.presented(&headers)?;
    if refresh::revoke_family_of(&state.db, &token, unix_now_ms()).await? {
        tracing::info!("signed out");
    }
    Ok(match carrier {
        Carrier::Cookie => (
            StatusCode::NO_CONTENT,
            [(header::SET_COOKIE, set_refresh_cookie(None))],
        )
            .into_response(),
        Carrier::Body => StatusCode::NO_CONTENT.into_response(),
    })
}

/// `GET /.well-known/jwks.json`: the public keys that verify access tokens (RFC 8037 JWKs).
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static(JWKS_CACHE_CONTROL),
        )],
        Json(state.auth.tokens.jwks()),
    )
}

/// The token answer for `user_id`, with a fresh access token.
fn session(
    state: &AppState,
    user_id: i64,
    refresh_token: RefreshToken,
    carrier: Carrier,
) -> Result<Response, ApiError> {
    let access_token = state.auth.tokens.issue(user_id, unix_now().as_secs())?;
    let in_body = carrier == Carrier::Body;
    let body = TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ACCESS_TTL.as_secs(),
        refresh_token: in_body.then(|| refresh_token.as_str().to_owned()),
        refresh_expires_in: REFRESH_TTL.as_secs(),
    };
    let mut response = Json(body).into_response();
    if !in_body {
        response.headers_mut().insert(
            header::SET_COOKIE,
            set_refresh_cookie(Some(refresh_token.as_str())),
        );
    }
    Ok(response)
}
