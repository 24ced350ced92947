//! Private data never crosses users: shoppers with accounts (access tokens), guests (session
//! cookies) and anonymous callers, all behind one address, send a shuffled mix of requests at
//! once over private routes (their orders, one order by id, their cart) and a cached shared one
//! (a product). Every answer is checked against what only its sender may see: their own order
//! ids, their own cart, `401` for nobody, `404` for someone else's order, and a product answer
//! that carries no one's data. Concurrency is the point: single-flight, the memory tier and the
//! idempotency records all see these requests side by side.
//!
//! `E2E_PRIVACY_REQUESTS` sets the number of requests (default 1,000; the issue's full run is
//! 10,000).

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::harness::Env;

pub const CASES: [(&str, crate::Case); 1] = [(
    "privacy::no_answer_crosses_users_under_shuffled_concurrent_load",
    no_answer_crosses_users_under_shuffled_concurrent_load,
)];

const ACCOUNTS: usize = 8;
const GUESTS: usize = 16;
const ANONYMOUS: usize = 6;
const IN_FLIGHT: usize = 16;

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

/// One shopper and what only they may see.
struct Shopper {
    name: String,
    /// `authorization` or `cookie`, if any.
    credential: Option<(&'static str, String)>,
    orders: BTreeSet<i64>,
    /// The product in their cart (accounts only).
    cart_product: Option<i64>,
}

#[derive(Clone, Copy, Debug)]
enum Ask {
    Orders,
    OwnOrder,
    /// Another shopper's order, by id.
    OthersOrder(usize),
    Cart,
    Product(i64),
}

fn order_body(product: i64) -> String {
    json!({"items": [{"product_id": product, "quantity": 1}]}).to_string()
}

fn setup(env: &Env, run: u32) -> Result<Vec<Shopper>, String> {
    let mut shoppers = Vec::new();
    let json_type = ("content-type", "application/json");
    for i in 0..ACCOUNTS {
        let body = json!({
            "email": format!("privacy-{run}-{i}@example.com"),
            "password": "correct horse battery staple",
        })
        .to_string();
        let created = env.send("POST", "/api/users", &[json_type], Some(&body))?;
        check(created.status == 201, || {
            format!("sign-up: {}", created.text())
        })?;
        let login = env.send("POST", "/api/auth/login", &[json_type], Some(&body))?;
        let token = login.json()?["access_token"]
            .as_str()
            .ok_or_else(|| format!("login: {}", login.text()))?
            .to_owned();
        let auth = format!("Bearer {token}");
        let cart_product = 200 + i as i64;
        let cart = env.send(
            "PUT",
            &format!("/api/cart/items/{cart_product}"),
            &[json_type, ("authorization", &auth)],
            Some(r#"{"quantity": 1}"#),
        )?;
        check(cart.status == 200, || {
            format!("cart: {} {}", cart.status, cart.text())
        })?;
        let key = format!("privacy-{run}-account-{i}-order");
        let order = env.send(
            "POST",
            "/api/orders",
            &[
                json_type,
                ("authorization", &auth),
                ("idempotency-key", &key),
            ],
            Some(&order_body(cart_product)),
        )?;
        check(order.status == 201, || format!("order: {}", order.text()))?;
        shoppers.push(Shopper {
            name: format!("account {i}"),
            credential: Some(("authorization", auth)),
            orders: BTreeSet::from([order.json()?["id"].as_i64().ok_or("no order id")?]),
            cart_product: Some(cart_product),
        });
    }
    for i in 0..GUESTS {
        let key = format!("privacy-{run}-guest-{i}-order");
        let order = env.send(
            "POST",
            "/api/orders",
            &[json_type, ("idempotency-key", &key)],
            Some(&order_body(300 + i as i64)),
        )?;
        check(order.status == 201, || {
            format!("guest order: {}", order.text())
        })?;
        let cookie = order
            .header("set-cookie")
            .and_then(|c| c.split(';').next())
            .ok_or("no guest cookie")?
            .to_owned();
        shoppers.push(Shopper {
            name: format!("guest {i}"),
            credential: Some(("cookie", cookie)),
            orders: BTreeSet::from([order.json()?["id"].as_i64().ok_or("no order id")?]),
            cart_product: None,
        });
    }
    for i in 0..ANONYMOUS {
        shoppers.push(Shopper {
            name: format!("anonymous {i}"),
            credential: None,
            orders: BTreeSet::new(),
            cart_product: None,
        });
    }
    Ok(shoppers)
}

/// A deterministic shuffle of `count` asks over the shoppers (xorshift, fixed seed).
fn plan(shoppers: usize, count: usize) -> Vec<(usize, Ask)> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |bound: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    };
    (0..count)
        .map(|_| {
            let who = next(shoppers as u64) as usize;
            let ask = match next(5) {
                0 => Ask::Orders,
                1 => Ask::OwnOrder,
                2 => Ask::OthersOrder(next(shoppers as u64) as usize),
                3 => Ask::Cart,
                _ => Ask::Product(9200 + next(20) as i64),
            };
            (who, ask)
        })
        .collect()
}

/// What `shopper` may get for `ask`; `Err` names the crossing or the wrong answer.
fn judge(
    shoppers: &[Shopper],
    who: usize,
    ask: Ask,
    status: u16,
    body: &[u8],
) -> Result<(), String> {
    let me = &shoppers[who];
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let ids = |v: &Value| -> BTreeSet<i64> {
        v["items"]
            .as_array()
            .map(|items| items.iter().filter_map(|o| o["id"].as_i64()).collect())
            .unwrap_or_default()
    };
    let someone = !me.orders.is_empty();
    let ok = match ask {
        Ask::Orders | Ask::OwnOrder if !someone => status == 401,
        Ask::Orders => status == 200 && json.as_ref().map(ids) == Some(me.orders.clone()),
        Ask::OwnOrder => {
            status == 200
                && json
                    .as_ref()
                    .and_then(|v| v["id"].as_i64())
                    .is_some_and(|id| me.orders.contains(&id))
        }
        Ask::OthersOrder(other) => match shoppers[other].orders.first() {
            // Their order: not found for anyone else, nobody's for the anonymous.
            Some(_) if other == who => status == 200,
            Some(_) => status == if someone { 404 } else { 401 },
            None => true,
        },
        Ask::Cart => match me.cart_product {
            Some(product) => {
                status == 200
                    && json.as_ref().is_some_and(|v| {
                        let products: Vec<i64> = v["items"]
                            .as_array()
                            .map(|items| {
                                items
                                    .iter()
                                    .filter_map(|i| i["product_id"].as_i64())
                                    .collect()
                            })
                            .unwrap_or_default();
                        products == [product]
                    })
            }
            None => status == 401,
        },
        Ask::Product(id) => {
            status == 200 && json.as_ref().and_then(|v| v["id"].as_i64()) == Some(id)
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{} asked {ask:?}: {status} {}",
            me.name,
            String::from_utf8_lossy(body)
                .chars()
                .take(300)
                .collect::<String>()
        ))
    }
}

fn no_answer_crosses_users_under_shuffled_concurrent_load(env: &Env) -> Result<(), String> {
    let count: usize = std::env::var("E2E_PRIVACY_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let shoppers = Arc::new(setup(env, std::process::id())?);
    let asks = plan(shoppers.len(), count);
    let edge = env.edge.clone();
    let failures: Vec<String> = env.rt.block_on(async {
        let client = reqwest::Client::new();
        let gate = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        let mut tasks = tokio::task::JoinSet::new();
        for (who, ask) in asks {
            let (client, gate, shoppers, edge) =
                (client.clone(), gate.clone(), shoppers.clone(), edge.clone());
            tasks.spawn(async move {
                let _slot = gate.acquire().await.map_err(|e| e.to_string())?;
                let path = match ask {
                    Ask::Orders => "/api/orders".to_owned(),
                    Ask::OwnOrder => format!(
                        "/api/orders/{}",
                        shoppers[who].orders.first().copied().unwrap_or(1)
                    ),
                    Ask::OthersOrder(other) => format!(
                        "/api/orders/{}",
                        shoppers[other].orders.first().copied().unwrap_or(1)
                    ),
                    Ask::Cart => "/api/cart".to_owned(),
                    Ask::Product(id) => format!("/api/products/{id}"),
                };
                let mut request = client.get(format!("{edge}{path}"));
                if let Some((name, value)) = &shoppers[who].credential {
                    request = request.header(*name, value);
                }
                let response = request.send().await.map_err(|e| format!("{path}: {e}"))?;
                let status = response.status().as_u16();
                let body = response.bytes().await.map_err(|e| e.to_string())?;
                judge(&shoppers, who, ask, status, &body)
            });
        }
        let mut failures = Vec::new();
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done.map_err(|e| e.to_string()).and_then(|r| r) {
                failures.push(e);
            }
        }
        failures
    });
    eprintln!(
        "    {count} requests from {} shoppers ({ACCOUNTS} accounts, {GUESTS} guests, {ANONYMOUS} anonymous), {IN_FLIGHT} at once: {} wrong",
        shoppers.len(),
        failures.len()
    );
    check(failures.is_empty(), || {
        format!(
            "{} of {count} answers wrong, e.g.:\n  {}",
            failures.len(),
            failures
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n  ")
        )
    })
}
