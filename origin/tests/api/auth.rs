//! Accounts and sessions: registering, signing in, using the access token, refresh rotation with
//! reuse detection, logout, and the published keys. The token attacks are in [`attacks`].

mod attacks;

use std::sync::Arc;

use breakwater_core::token::{JwkSet, Verifier};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::helpers::{Backend, TestApp, assert_problem, on_each_backend, on_pool, spawn_app};

pub const PASSWORD: &str = "correct horse battery staple";
const INVALID_TOKEN_CHALLENGE: &str = r#"Bearer realm="breakwater", error="invalid_token""#;
const PLAIN_CHALLENGE: &str = r#"Bearer realm="breakwater""#;

/// A `POST` of `body` as JSON.
pub async fn post(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.address))
        .json(body)
        .send()
        .await
        .expect("request reaches the origin")
}

/// Registers `email` with [`PASSWORD`] and returns the new user's id.
pub async fn register(app: &TestApp, email: &str) -> i64 {
    let response = post(
        app,
        "/api/users",
        &json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(response.status(), 201, "register {email}");
    response.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap()
}

/// Signs `email` in with [`PASSWORD`]: the token answer.
pub async fn login(app: &TestApp, email: &str) -> Value {
    let response = post(
        app,
        "/api/auth/login",
        &json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(response.status(), 200, "login {email}");
    response.json().await.unwrap()
}

/// Registers and signs in `email`: its access token.
pub async fn signed_in(app: &TestApp, email: &str) -> String {
    register(app, email).await;
    login(app, email).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn refresh(app: &TestApp, refresh_token: &Value) -> reqwest::Response {
    post(
        app,
        "/api/auth/refresh",
        &json!({ "refresh_token": refresh_token }),
    )
    .await
}

async fn cart_with(app: &TestApp, access_token: &str) -> reqwest::Response {
    app.get_with(
        "/api/cart",
        &[("authorization", &format!("Bearer {access_token}"))],
    )
    .await
}

/// Asserts a 401 problem with the `invalid_token` challenge.
pub async fn assert_invalid_token(response: reqwest::Response, case: &str) {
    assert_eq!(response.status(), 401, "{case}");
    assert_eq!(
        response.headers()["www-authenticate"],
        INVALID_TOKEN_CHALLENGE,
        "{case}"
    );
    let problem = assert_problem(response, 401).await;
    assert_eq!(
        problem["type"], "https://breakwater.dev/problems/access-token-invalid",
        "{case}"
    );
}

async fn assert_refresh_refused(response: reqwest::Response) {
    assert_eq!(response.headers()["www-authenticate"], PLAIN_CHALLENGE);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let problem = assert_problem(response, 401).await;
    assert_eq!(
        problem["type"],
        "https://breakwater.dev/problems/refresh-token-invalid"
    );
}

/// (revoked, total) refresh tokens of `user_id`.
async fn revoked_tokens(app: &TestApp, user_id: i64) -> (i64, i64) {
    let sql = "SELECT COUNT(revoked_at), COUNT(*) FROM refresh_tokens WHERE user_id = $1";
    on_pool!(&app.db, pool => {
        sqlx::query_as::<_, (i64, i64)>(sql).bind(user_id).fetch_one(pool).await
    })
    .unwrap()
}

on_each_backend!(a_user_registers_signs_in_and_uses_the_access_token);
async fn a_user_registers_signs_in_and_uses_the_access_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = post(
        &app,
        "/api/users",
        &json!({"email": "Ann@Example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["email"], "ann@example.com");
    assert!(user.get("password_hash").is_none(), "{user}");
    let id = user["id"].as_i64().unwrap();

    // Any case of the address signs in.
    let response = post(
        &app,
        "/api/auth/login",
        &json!({"email": "ANN@example.COM", "password": PASSWORD}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let session: Value = response.json().await.unwrap();
    assert_eq!(session["token_type"], "Bearer");
    assert_eq!(session["expires_in"], 900);
    assert_eq!(session["refresh_expires_in"], 30 * 24 * 3600);
    let access = session["access_token"].as_str().unwrap();
    assert_eq!(cart_with(&app, access).await.status(), 200);

    // The published keys verify it, exactly as the edge will.
    let response = app.get("/.well-known/jwks.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let jwks: JwkSet = response.json().await.unwrap();
    assert_eq!(jwks.keys.len(), 1);
    let key = jwks.keys[0].to_public_key().unwrap();
    let verifier = Verifier::new("breakwater-origin", "breakwater").with_key(key);
    let now = breakwater_origin::auth::unix_now().as_secs();
    let claims = verifier.verify(access, now).unwrap();
    assert_eq!(claims.sub, format!("user:{id}"));
    assert_eq!(claims.exp - claims.iat, 900);
    assert!(claims.jti.len() >= 16, "{claims:?}");

    // The stored hash is a salted Argon2id string, never the password.
    let sql = "SELECT password_hash FROM users WHERE id = $1";
    let hash: String = on_pool!(&app.db, pool => {
        sqlx::query_scalar(sql).bind(id).fetch_one(pool).await
    })
    .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
}

on_each_backend!(a_wrong_password_and_an_unknown_user_get_the_same_401);
async fn a_wrong_password_and_an_unknown_user_get_the_same_401(backend: Backend) {
    let app = spawn_app(backend).await;
    register(&app, "ann@example.com").await;
    let mut answers = Vec::new();
    for (email, password) in [
        ("ann@example.com", "not the password at all"),
        ("nobody@example.com", PASSWORD),
        ("not an address", PASSWORD),
        ("ann@example.com", ""),
    ] {
        let response = post(
            &app,
            "/api/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await;
        assert_eq!(response.headers()["www-authenticate"], PLAIN_CHALLENGE);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let mut problem = assert_problem(response, 401).await;
        problem.as_object_mut().unwrap().remove("request_id");
        answers.push(problem);
    }
    assert_eq!(
        answers[0]["type"],
        "https://breakwater.dev/problems/invalid-credentials"
    );
    assert!(
        answers.iter().all(|answer| *answer == answers[0]),
        "{answers:?}"
    );
}

on_each_backend!(registration_refuses_taken_addresses_and_weak_passwords);
async fn registration_refuses_taken_addresses_and_weak_passwords(backend: Backend) {
    let app = spawn_app(backend).await;
    register(&app, "ann@example.com").await;
    let taken = post(
        &app,
        "/api/users",
        &json!({"email": "ANN@example.com", "password": "another long password"}),
    )
    .await;
    let problem = assert_problem(taken, 409).await;
    assert_eq!(
        problem["type"],
        "https://breakwater.dev/problems/email-taken"
    );

    let long = "x".repeat(1025);
    for (body, field) in [
        (
            json!({"email": "bob@example.com", "password": "elevenchars"}),
            "`password`",
        ),
        (
            json!({"email": "bob@example.com", "password": long}),
            "`password`",
        ),
        (json!({"email": "bob", "password": PASSWORD}), "`email`"),
        (json!({"email": "bob@example.com"}), "password"),
        (
            json!({"email": "bob@example.com", "password": PASSWORD, "admin": true}),
            "admin",
        ),
    ] {
        let problem = assert_problem(post(&app, "/api/users", &body).await, 422).await;
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{problem}"
        );
    }
    let count: i64 = on_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await
    })
    .unwrap();
    assert_eq!(count, 1);
}

on_each_backend!(a_refresh_rotates_both_tokens);
async fn a_refresh_rotates_both_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    register(&app, "ann@example.com").await;
    let first = login(&app, "ann@example.com").await;
    let response = refresh(&app, &first["refresh_token"]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let second: Value = response.json().await.unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_ne!(second["access_token"], first["access_token"]);
    assert_eq!(second["expires_in"], 900);
    assert_eq!(
        cart_with(&app, second["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    let third = refresh(&app, &second["refresh_token"]).await;
    assert_eq!(third.status(), 200);

    // Only hashes are stored.
    let presented = second["refresh_token"].as_str().unwrap();
    let sql = "SELECT COUNT(*) FROM refresh_tokens WHERE token_hash = $1";
    for (value, expected) in [
        (presented.to_owned(), 0),
        (format!("{:x}", Sha256::digest(presented.as_bytes())), 1),
    ] {
        let count: i64 = on_pool!(&app.db, pool => {
            sqlx::query_scalar(sql).bind(&value).fetch_one(pool).await
        })
        .unwrap();
        assert_eq!(count, expected);
    }
}

on_each_backend!(reusing_a_rotated_refresh_token_revokes_the_whole_family);
async fn reusing_a_rotated_refresh_token_revokes_the_whole_family(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = register(&app, "ann@example.com").await;
    let stolen = login(&app, "ann@example.com").await["refresh_token"].clone();
    let other_session = login(&app, "ann@example.com").await["refresh_token"].clone();
    let rotated: Value = refresh(&app, &stolen).await.json().await.unwrap();

    // The thief replays the old token: refused, and the family dies with it ...
    assert_refresh_refused(refresh(&app, &stolen).await).await;
    // ... including the legitimate client's newest token.
    assert_refresh_refused(refresh(&app, &rotated["refresh_token"]).await).await;
    // The two tokens of that family are revoked; the other session's one is not.
    assert_eq!(revoked_tokens(&app, id).await, (2, 3));
    assert_eq!(refresh(&app, &other_session).await.status(), 200);
}

on_each_backend!(concurrent_refreshes_with_one_token_leave_no_live_family);
async fn concurrent_refreshes_with_one_token_leave_no_live_family(backend: Backend) {
    let app = Arc::new(spawn_app(backend).await);
    let id = register(&app, "ann@example.com").await;
    let token = login(&app, "ann@example.com").await["refresh_token"].clone();
    let racers = 8;
    let barrier = Arc::new(Barrier::new(racers));
    let mut tasks = JoinSet::new();
    for _ in 0..racers {
        let (app, barrier, token) = (Arc::clone(&app), Arc::clone(&barrier), token.clone());
        tasks.spawn(async move {
            barrier.wait().await;
            let response = refresh(&app, &token).await;
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        });
    }
    let answers = tasks.join_all().await;
    let winners: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    assert!(
        answers.iter().all(|(s, _)| matches!(s, 200 | 401)),
        "{answers:?}"
    );
    // The losers were reuse: the winner's new token is revoked with the rest of the family.
    assert_refresh_refused(refresh(&app, &winners[0]["refresh_token"]).await).await;
    assert_eq!(revoked_tokens(&app, id).await, (2, 2));
}

on_each_backend!(logout_revokes_the_family_and_is_idempotent);
async fn logout_revokes_the_family_and_is_idempotent(backend: Backend) {
    let app = spawn_app(backend).await;
    register(&app, "ann@example.com").await;
    let first = login(&app, "ann@example.com").await;
    let second: Value = refresh(&app, &first["refresh_token"])
        .await
        .json()
        .await
        .unwrap();
    let token = &second["refresh_token"];
    for _ in 0..2 {
        let response = post(&app, "/api/auth/logout", &json!({ "refresh_token": token })).await;
        assert_eq!(response.status(), 204);
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
    assert_refresh_refused(refresh(&app, token).await).await;
    let unknown = "A".repeat(43);
    for other in [unknown.as_str(), "garbage", ""] {
        let response = post(&app, "/api/auth/logout", &json!({ "refresh_token": other })).await;
        assert_eq!(response.status(), 204, "{other:?}");
    }
    let problem = assert_problem(post(&app, "/api/auth/logout", &json!({})).await, 422).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("refresh_token"),
        "{problem}"
    );
}

on_each_backend!(expired_unknown_and_malformed_refresh_tokens_are_refused);
async fn expired_unknown_and_malformed_refresh_tokens_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    register(&app, "ann@example.com").await;
    let session = login(&app, "ann@example.com").await;
    app.execute("UPDATE refresh_tokens SET expires_at = 0")
        .await;
    assert_refresh_refused(refresh(&app, &session["refresh_token"]).await).await;
    for token in [json!("A".repeat(43)), json!("not-a-token"), json!("")] {
        assert_refresh_refused(refresh(&app, &token).await).await;
    }
    let problem = assert_problem(refresh(&app, &json!(42)).await, 422).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("string"),
        "{problem}"
    );
}

/// The `name=value` of the refresh cookie a response sets, and the whole `Set-Cookie`.
fn refresh_cookie_of(response: &reqwest::Response) -> (String, String) {
    let set = response
        .headers()
        .get("set-cookie")
        .expect("a Set-Cookie")
        .to_str()
        .unwrap()
        .to_owned();
    let pair = set.split(';').next().unwrap().to_owned();
    assert!(pair.starts_with("__Secure-breakwater-refresh="), "{set}");
    (pair, set)
}

/// A `POST` of `body` with `cookie` as the `Cookie` field.
async fn post_with_cookie(app: &TestApp, path: &str, cookie: &str) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.address))
        .header("cookie", cookie)
        .json(&json!({}))
        .send()
        .await
        .expect("request reaches the origin")
}

on_each_backend!(a_browser_session_keeps_its_refresh_token_in_a_cookie);
async fn a_browser_session_keeps_its_refresh_token_in_a_cookie(backend: Backend) {
    let app = spawn_app(backend).await;
    register(&app, "ann@example.com").await;
    let signed_in = post(
        &app,
        "/api/auth/login",
        &json!({"email": "ann@example.com", "password": PASSWORD, "refresh_in_cookie": true}),
    )
    .await;
    assert_eq!(signed_in.status(), 200);
    let (first, set) = refresh_cookie_of(&signed_in);
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/api/auth",
        "Max-Age=2592000",
    ] {
        assert!(set.contains(attribute), "{set}");
    }
    let body: Value = signed_in.json().await.unwrap();
    assert!(
        body.get("refresh_token").is_none(),
        "the body carries no refresh token: {body}"
    );
    assert_eq!(
        cart_with(&app, body["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    // A refresh with the cookie (and no token in the body) rotates it, in a cookie again.
    let rotated = post_with_cookie(&app, "/api/auth/refresh", &first).await;
    assert_eq!(rotated.status(), 200);
    let (second, _) = refresh_cookie_of(&rotated);
    assert_ne!(second, first);
    let body: Value = rotated.json().await.unwrap();
    assert!(
        body["access_token"].is_string() && body.get("refresh_token").is_none(),
        "{body}"
    );

    // The used cookie again: reuse revokes the family, and the answer clears the cookie.
    let reused = post_with_cookie(&app, "/api/auth/refresh", &first).await;
    let (cleared, set) = refresh_cookie_of(&reused);
    assert_eq!(cleared, "__Secure-breakwater-refresh=");
    assert!(set.contains("Max-Age=0"), "{set}");
    assert_refresh_refused(reused).await;
    assert_refresh_refused(post_with_cookie(&app, "/api/auth/refresh", &second).await).await;

    // Two refresh cookies at once are refused like none: which is the session's is unknowable.
    let doubled = format!("{second}; {first}");
    let problem = assert_problem(
        post_with_cookie(&app, "/api/auth/refresh", &doubled).await,
        422,
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("refresh_token"),
        "{problem}"
    );

    // Logout by cookie revokes the family and clears it.
    let again = post(
        &app,
        "/api/auth/login",
        &json!({"email": "ann@example.com", "password": PASSWORD, "refresh_in_cookie": true}),
    )
    .await;
    let (third, _) = refresh_cookie_of(&again);
    let out = post_with_cookie(&app, "/api/auth/logout", &third).await;
    assert_eq!(out.status(), 204);
    assert_eq!(refresh_cookie_of(&out).0, "__Secure-breakwater-refresh=");
    assert_refresh_refused(post_with_cookie(&app, "/api/auth/refresh", &third).await).await;
}
