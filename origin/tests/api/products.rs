//! The catalogue: paging, single products, their cache headers and conditional GETs.

use std::collections::HashSet;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::helpers::{Backend, TestApp, assert_problem, on_each_backend, spawn_app};

const ITEM_CACHE_CONTROL: &str =
    "public, max-age=60, s-maxage=300, stale-while-revalidate=60, stale-if-error=600";
const LIST_CACHE_CONTROL: &str =
    "public, max-age=30, s-maxage=60, stale-while-revalidate=30, stale-if-error=600";

/// The documented ETag scheme, computed independently: the first 128 bits of the SHA-256 of
/// the body, lowercase hex, quoted.
pub fn etag_of(body: &[u8]) -> String {
    let hex: String = Sha256::digest(body)[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("\"{hex}\"")
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers()[name].to_str().unwrap().to_owned()
}

fn ids(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .expect("items is an array")
        .iter()
        .map(|p| p["id"].as_i64().expect("numeric id"))
        .collect()
}

/// Pages needed for `total` items, `per_page` at a time.
fn pages(total: i64, per_page: i64) -> i64 {
    (total as u64).div_ceil(per_page as u64) as i64
}

async fn total(app: &TestApp) -> i64 {
    app.get_json("/api/products").await["total"]
        .as_i64()
        .unwrap()
}

on_each_backend!(the_first_page_has_the_default_size_and_cache_headers);
async fn the_first_page_has_the_default_size_and_cache_headers(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.get("/api/products").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], LIST_CACHE_CONTROL);
    assert_eq!(
        response.headers()["cdn-cache-control"],
        "max-age=60, stale-while-revalidate=30, stale-if-error=600"
    );
    let tags = header(&response, "cache-tag");
    let etag = header(&response, "etag");
    let bytes = response.bytes().await.unwrap();
    assert_eq!(etag, etag_of(&bytes));
    let page: Value = serde_json::from_slice(&bytes).unwrap();
    let expected_tags: Vec<String> = std::iter::once("products".to_owned())
        .chain(ids(&page).iter().map(|id| format!("product:{id}")))
        .collect();
    assert_eq!(tags, expected_tags.join(", "));

    assert_eq!(page["page"], 1);
    assert_eq!(page["per_page"], 24);
    assert_eq!(page["items"].as_array().unwrap().len(), 24);
    let total = page["total"].as_i64().unwrap();
    assert!(total >= 10_000, "only {total} products");
    assert_eq!(page["total_pages"].as_i64().unwrap(), pages(total, 24));
    // page=1 spelled out is the same page.
    assert_eq!(app.get_json("/api/products?page=1").await, page);
}

on_each_backend!(walking_every_page_yields_every_product_once_in_id_order);
async fn walking_every_page_yields_every_product_once_in_id_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let total = total(&app).await;
    let total_pages = pages(total, 100);
    let mut seen = Vec::new();
    for page in 1..=total_pages {
        let body = app
            .get_json(&format!("/api/products?page={page}&per_page=100"))
            .await;
        assert_eq!(body["total_pages"], total_pages);
        seen.extend(ids(&body));
    }
    assert_eq!(seen.len() as i64, total);
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "not strictly ordered by id"
    );
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len());
    let skus: HashSet<String> = HashSet::from_iter(
        app.get_json("/api/products?page=2&per_page=50").await["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["sku"].as_str().unwrap().to_owned()),
    );
    assert_eq!(skus.len(), 50, "SKUs repeat within a page");
}

on_each_backend!(the_last_page_is_partial_and_past_the_end_is_empty);
async fn the_last_page_is_partial_and_past_the_end_is_empty(backend: Backend) {
    let app = spawn_app(backend).await;
    let per_page = 7; // does not divide 10 000, so the last page is partial
    let total = total(&app).await;
    let last = pages(total, per_page);

    let body = app
        .get_json(&format!("/api/products?page={last}&per_page={per_page}"))
        .await;
    let expected = total - (last - 1) * per_page;
    assert_eq!(ids(&body).len() as i64, expected);

    let past = app
        .get_json(&format!(
            "/api/products?page={}&per_page={per_page}",
            last + 1
        ))
        .await;
    assert!(ids(&past).is_empty());
    assert_eq!(past["total"], total);
    let far = app.get_json("/api/products?page=4294967295").await;
    assert!(ids(&far).is_empty());
}

on_each_backend!(per_page_is_bounded);
async fn per_page_is_bounded(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(
        ids(&app.get_json("/api/products?per_page=1").await).len(),
        1
    );
    assert_eq!(
        ids(&app.get_json("/api/products?per_page=100").await).len(),
        100
    );
    for bad in ["0", "101", "-5", "ten", ""] {
        let response = app.get(&format!("/api/products?per_page={bad}")).await;
        let problem = assert_problem(response, 400).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("per_page"),
            "{problem}"
        );
    }
}

on_each_backend!(a_malformed_page_is_a_problem_naming_the_parameter);
async fn a_malformed_page_is_a_problem_naming_the_parameter(backend: Backend) {
    let app = spawn_app(backend).await;
    for bad in ["0", "-1", "abc", "", "1.5", "4294967296", "%FF"] {
        let response = app.get(&format!("/api/products?page={bad}")).await;
        let problem = assert_problem(response, 400).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("page"),
            "{problem}"
        );
        assert_eq!(problem["instance"], "/api/products");
    }
    // Parameters the origin does not know are not errors (cache busters, tracking tags).
    assert_eq!(
        app.get("/api/products?utm_source=mail&x=").await.status(),
        200
    );
}

on_each_backend!(a_product_by_id_is_the_same_as_its_list_entry);
async fn a_product_by_id_is_the_same_as_its_list_entry(backend: Backend) {
    let app = spawn_app(backend).await;
    let listed = app.get_json("/api/products?page=3&per_page=10").await["items"][4].clone();
    let id = listed["id"].as_i64().unwrap();

    let response = app.get(&format!("/api/products/{id}")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], ITEM_CACHE_CONTROL);
    assert_eq!(
        response.headers()["cdn-cache-control"],
        "max-age=300, stale-while-revalidate=60, stale-if-error=600"
    );
    assert_eq!(response.headers()["cache-tag"], format!("product:{id}"));
    assert_eq!(response.headers()["content-type"], "application/json");
    let etag = header(&response, "etag");
    let bytes = response.bytes().await.unwrap();
    assert_eq!(etag, etag_of(&bytes));
    let single: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(single, listed);
    for field in ["sku", "name", "description", "category", "currency"] {
        assert!(!single[field].as_str().unwrap().is_empty(), "{field} empty");
    }
    assert!(single["price_cents"].as_i64().unwrap() > 0);
    assert!(single["stock"].as_i64().unwrap() >= 0);
}

on_each_backend!(an_unknown_id_is_404_and_a_malformed_one_400);
async fn an_unknown_id_is_404_and_a_malformed_one_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let beyond = total(&app).await + 1;
    let problem = assert_problem(app.get(&format!("/api/products/{beyond}")).await, 404).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains(&beyond.to_string())
    );

    for bad in ["abc", "-3", "0", "1.5", "99999999999999999999"] {
        let problem = assert_problem(app.get(&format!("/api/products/{bad}")).await, 400).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("id"),
            "{problem}"
        );
    }
}

on_each_backend!(a_matching_if_none_match_is_a_304_with_the_fields_of_the_200);
async fn a_matching_if_none_match_is_a_304_with_the_fields_of_the_200(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/api/products/42", "/api/products?page=2&per_page=5"] {
        let full = app.get(path).await;
        assert_eq!(full.status(), 200);
        let etag = header(&full, "etag");
        let weak = format!("W/{etag}");
        let list = format!("\"0000\", {etag}");
        for if_none_match in [etag.as_str(), &weak, &list, "*"] {
            let response = app
                .get_with(path, &[("if-none-match", if_none_match)])
                .await;
            assert_eq!(
                response.status(),
                304,
                "{path} If-None-Match: {if_none_match}"
            );
            for name in ["etag", "cache-control", "cache-tag"] {
                assert_eq!(
                    response.headers()[name],
                    full.headers()[name],
                    "{path} {name}"
                );
            }
            assert!(response.bytes().await.unwrap().is_empty());
        }
    }
}

on_each_backend!(a_head_revalidates_like_a_get);
async fn a_head_revalidates_like_a_get(backend: Backend) {
    let app = spawn_app(backend).await;
    let etag = header(&app.get("/api/products/7").await, "etag");
    let response = app
        .client
        .head(format!("{}/api/products/7", app.address))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 304);
    assert_eq!(header(&response, "etag"), etag);
}

on_each_backend!(a_non_matching_if_none_match_is_a_full_200);
async fn a_non_matching_if_none_match_is_a_full_200(backend: Backend) {
    let app = spawn_app(backend).await;
    let other_page = header(&app.get("/api/products?page=2").await, "etag");
    let other_product = header(&app.get("/api/products/2").await, "etag");
    for (path, stale) in [
        ("/api/products", other_page.as_str()),
        ("/api/products/1", other_product.as_str()),
        ("/api/products/1", "not-a-quoted-tag"),
    ] {
        let response = app.get_with(path, &[("if-none-match", stale)]).await;
        assert_eq!(response.status(), 200, "{path} If-None-Match: {stale}");
        let etag = header(&response, "etag");
        assert_ne!(etag, stale);
        assert_eq!(etag, etag_of(&response.bytes().await.unwrap()));
    }
}

on_each_backend!(a_get_whose_if_match_fails_is_412);
async fn a_get_whose_if_match_fails_is_412(backend: Backend) {
    let app = spawn_app(backend).await;
    let etag = header(&app.get("/api/products/3").await, "etag");
    let response = app
        .get_with("/api/products/3", &[("if-match", "\"0000\"")])
        .await;
    assert_problem(response, 412).await;
    let matching = app
        .get_with("/api/products/3", &[("if-match", &etag)])
        .await;
    assert_eq!(matching.status(), 200);
}
