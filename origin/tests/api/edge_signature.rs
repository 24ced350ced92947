//! Edge keys configured: the origin believes `Breakwater-Principal` and serves admin routes only
//! for requests the edge signed (`Breakwater-Signature`); anyone reaching it directly is nobody.

use breakwater_core::signing::{self, MAX_SKEW_S, Signed};
use breakwater_origin::clock::unix_now;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, assert_problem, spawn_app_with};

const KEY: &str = "edge-key-0123456789abcdef0123456789";
const OLD_KEY: &str = "old-edge-key-0123456789abcdef01234";
const ALICE: &str = "user:alice";
const ORDER: &str = r#"{"items":[{"product_id":3,"quantity":1}]}"#;

async fn app_with_keys(keys: &[&str]) -> TestApp {
    spawn_app_with(Backend::Sqlite, |settings| {
        settings.edge_keys = keys.iter().map(|k| (*k).to_owned()).collect();
    })
    .await
}

/// What the edge would send, signed with `key` at `at` under `nonce`.
struct Edge<'a> {
    key: &'a str,
    at: u64,
    nonce: &'a str,
}

impl Default for Edge<'_> {
    fn default() -> Self {
        Self {
            key: KEY,
            at: unix_now().as_secs(),
            nonce: "",
        }
    }
}

impl Edge<'_> {
    fn request(
        &self,
        app: &TestApp,
        method: Method,
        path: &str,
        principal: Option<&str>,
        body: &str,
    ) -> RequestBuilder {
        let nonce = if self.nonce.is_empty() {
            format!("{:032x}", rand_nonce())
        } else {
            self.nonce.to_owned()
        };
        let header = signing::sign(
            self.key.as_bytes(),
            self.at,
            &nonce,
            &Signed {
                method: method.as_str(),
                path_and_query: path,
                principal,
                body: body.as_bytes(),
            },
        );
        unsigned(app, method, path, principal, body).header(signing::HEADER, header)
    }
}

fn unsigned(
    app: &TestApp,
    method: Method,
    path: &str,
    principal: Option<&str>,
    body: &str,
) -> RequestBuilder {
    let mut request = app
        .client
        .request(method, format!("{}{path}", app.address))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(principal) = principal {
        request = request.header("breakwater-principal", principal);
    }
    request
}

/// A distinct nonce per call: the tests' own counter mixed with the time.
fn rand_nonce() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    (u128::from(NEXT.fetch_add(1, Ordering::Relaxed)) << 64) | unix_now().as_nanos()
}

fn order(app: &TestApp, edge: &Edge<'_>, key: &str) -> RequestBuilder {
    edge.request(app, Method::POST, "/api/orders", Some(ALICE), ORDER)
        .header("idempotency-key", format!("\"{key}\""))
}

async fn refused(response: reqwest::Response, kind: &str) -> Value {
    assert!(
        response.headers().contains_key("www-authenticate"),
        "a 401 names a challenge"
    );
    let body = assert_problem(response, 401).await;
    assert!(body["type"].as_str().unwrap().ends_with(kind), "{body}");
    body
}

#[tokio::test]
async fn signed_requests_act_as_their_principal_and_unsigned_ones_as_nobody() {
    let app = app_with_keys(&[KEY]).await;
    let edge = Edge::default();
    let placed = order(&app, &edge, "edge-signed-1").send().await.unwrap();
    assert_eq!(placed.status(), 201);
    let listed = edge
        .request(&app, Method::GET, "/api/orders", Some(ALICE), "")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let listed: Value = listed.json().await.unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");

    // Straight to the origin, claiming Alice: the claim is ignored.
    let direct = unsigned(&app, Method::GET, "/api/orders", Some(ALICE), "")
        .send()
        .await
        .unwrap();
    assert_problem(direct, 401).await;
    let direct = unsigned(&app, Method::POST, "/api/orders", Some(ALICE), ORDER)
        .header("idempotency-key", "\"edge-signed-2\"")
        .send()
        .await
        .unwrap();
    assert_problem(direct, 401).await;
    // Public reads need nobody.
    let product = unsigned(&app, Method::GET, "/api/products/3", None, "")
        .send()
        .await
        .unwrap();
    assert_eq!(product.status(), 200);
}

#[tokio::test]
async fn tampered_stale_replayed_and_malformed_signatures_are_refused() {
    let app = app_with_keys(&[KEY]).await;
    let edge = Edge::default();
    // Signed for one body, sent with another.
    let header = signing::sign(
        KEY.as_bytes(),
        edge.at,
        "tampered",
        &Signed {
            method: "POST",
            path_and_query: "/api/orders",
            principal: Some(ALICE),
            body: ORDER.as_bytes(),
        },
    );
    let tampered = unsigned(
        &app,
        Method::POST,
        "/api/orders",
        Some(ALICE),
        &ORDER.replace("\"quantity\":1", "\"quantity\":9"),
    )
    .header("idempotency-key", "\"edge-tampered\"")
    .header(signing::HEADER, &header)
    .send()
    .await
    .unwrap();
    let body = refused(tampered, "edge-signature-invalid").await;
    assert!(body["detail"].as_str().unwrap().contains("does not match"));

    for at in [edge.at - MAX_SKEW_S - 5, edge.at + MAX_SKEW_S + 5] {
        let stale = Edge {
            at,
            ..Edge::default()
        };
        let sent = order(&app, &stale, "edge-stale").send().await.unwrap();
        let body = refused(sent, "edge-signature-invalid").await;
        assert!(body["detail"].as_str().unwrap().contains("clock"), "{body}");
    }

    let once = Edge {
        nonce: "replayed-nonce",
        ..Edge::default()
    };
    assert_eq!(
        order(&app, &once, "edge-replay")
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    let again = order(&app, &once, "edge-replay").send().await.unwrap();
    let body = refused(again, "edge-signature-invalid").await;
    assert!(body["detail"].as_str().unwrap().contains("already used"));

    let malformed = unsigned(&app, Method::GET, "/api/orders", Some(ALICE), "")
        .header(signing::HEADER, "t=1, v1=00")
        .send()
        .await
        .unwrap();
    refused(malformed, "edge-signature-invalid").await;
    let orders: i64 = app_orders(&app).await;
    assert_eq!(orders, 1, "only the one valid order was placed");
}

#[tokio::test]
async fn admin_routes_serve_only_the_edge() {
    let app = app_with_keys(&[KEY]).await;
    let update = json!({"price_cents": 4242}).to_string();
    let direct = unsigned(&app, Method::PUT, "/api/products/3", None, &update)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    refused(direct, "edge-signature-missing").await;
    let through_edge = Edge::default()
        .request(&app, Method::PUT, "/api/products/3", None, &update)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(through_edge.status(), 200);
    assert_eq!(app.get_json("/api/products/3").await["price_cents"], 4242);
}

#[tokio::test]
async fn the_previous_key_is_accepted_during_a_rotation_and_no_other() {
    let app = app_with_keys(&[KEY, OLD_KEY]).await;
    for (key, status) in [
        (KEY, 201),
        (OLD_KEY, 201),
        ("some-other-key-0123456789abcdef012", 401),
    ] {
        let edge = Edge {
            key,
            ..Edge::default()
        };
        let sent = order(&app, &edge, &format!("edge-rotation-{status}-{key}"))
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), status, "{key}");
    }
}

async fn app_orders(app: &TestApp) -> i64 {
    let listed = Edge::default()
        .request(app, Method::GET, "/api/orders", Some(ALICE), "")
        .send()
        .await
        .unwrap();
    let listed: Value = listed.json().await.unwrap();
    listed["items"].as_array().unwrap().len() as i64
}
