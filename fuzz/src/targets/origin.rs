//! `origin`: what the origin reads from a request (`origin/src/`): the JSON bodies of its write
//! routes and the parsers behind them, the `Breakwater-Principal` and `Breakwater-Consistency`
//! values, the query parameters of its lists, path ids, and `If-Match`/`If-None-Match`.
//!
//! Input: the body is read as every JSON body the origin takes (an order, a product patch, a
//! cart quantity, credentials, a vote); `:principal`, `:lsn`, `:query` and `:id` are header,
//! query and path values; `if-match` and `if-none-match` are header fields, evaluated against the
//! strong `ETag` of `:etag-of`.
//!
//! Asserts: an accepted order has 1 to 50 lines of distinct positive products and 1 to 100
//! units, and its price adds up exactly and stays within 2^53 - 1 cents; an accepted patch
//! changes only the editable fields, to trimmed text within its length and without control
//! characters, and amounts within 0..2^53 - 1, and applying it twice changes nothing more; a cart
//! quantity is 1 to 100; an accepted email is lower-case, within 254 characters, with one `@`,
//! and parses back to itself; passwords respect their lengths; principals are 1 to 255 visible
//! ASCII characters and never `anonymous`; WAL positions round-trip; pages, page sizes and
//! ranking limits are within range; path ids are positive; `*` in `If-Match` lets a write
//! proceed and a current tag in `If-None-Match` makes a read `304`.

use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use breakwater_core::writebehind::EventKind;
use breakwater_origin::auth::password::{MAX_CHARS, MIN_CHARS, Password};
use breakwater_origin::auth::user::{Email, MAX_EMAIL_CHARS};
use breakwater_origin::cart::{MAX_QUANTITY as CART_MAX, Quantity, QuantityBody};
use breakwater_origin::conditional::{ETag, Precondition, Preconditions};
use breakwater_origin::error::positive_id;
use breakwater_origin::order::request::{MAX_ITEMS, MAX_QUANTITY, Price};
use breakwater_origin::order::{OrderBody, OrderRequest};
use breakwater_origin::pagination::{MAX_PER_PAGE, Pagination};
use breakwater_origin::principal::{MAX_LEN, Principal};
use breakwater_origin::product::Product;
use breakwater_origin::product_patch::{
    MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, MAX_SAFE_INTEGER, ProductPatch, ProductPatchBody,
};
use breakwater_origin::ranking::{By, Limit, MAX_LIMIT};
use breakwater_origin::replica::lsn::Lsn;
use serde_json::{Value, json};

use super::{Outcome, Target, bucket, ensure};
use crate::draw::{self, pick};
use crate::envelope::Envelope;
use crate::rng::Rng;

pub const TARGET: Target = Target {
    name: "origin",
    about: "the origin's request bodies (orders, product patches, cart quantities, credentials, \
            votes), principals, consistency tokens, list queries, path ids and preconditions",
    generate,
    run,
    dictionary: DICTIONARY,
    max_len: 8 * 1024,
};

const DICTIONARY: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "null",
    "\"items\"",
    "\"product_id\"",
    "\"quantity\"",
    "\"name\"",
    "\"description\"",
    "\"price_cents\"",
    "\"stock\"",
    "\"email\"",
    "\"password\"",
    "\"value\"",
    "\\n",
    "\\u0000",
    "\\t",
    "@",
    ".",
    "İ",
    "9007199254740991",
    "9007199254740992",
    ":principal: ",
    ":lsn: ",
    ":query: ",
    ":id: ",
    "if-match: ",
    "if-none-match: ",
    "page=",
    "per_page=",
    "limit=",
    "by=",
    "&",
    "%20",
    "+",
    "/",
    "anonymous",
    "W/",
    "*",
];

/// The catalogue orders are priced against: 60 products in EUR, one priced near the largest
/// safe total and one in another currency.
fn catalogue() -> HashMap<i64, Price> {
    (1..=60)
        .map(|id| {
            let cents = match id {
                7 => MAX_SAFE_INTEGER / 10,
                _ => id * 137 % 10_000,
            };
            let currency = if id == 13 { "USD" } else { "EUR" };
            (
                id,
                Price {
                    cents,
                    currency: currency.to_owned(),
                },
            )
        })
        .collect()
}

fn product() -> Product {
    Product {
        id: 7,
        sku: "BW-000007".into(),
        name: "Calm Kettle".into(),
        description: "Boils.".into(),
        category: "Kitchen".into(),
        price_cents: 1999,
        currency: "EUR".into(),
        stock: 3,
    }
}

fn generate(rng: &mut Rng) -> Vec<u8> {
    let body = match rng.below(6) {
        0 => {
            let items: Vec<Value> = (0..rng.below(6))
                .map(|_| json!({"product_id": draw::json_number(rng), "quantity": draw::json_number(rng)}))
                .collect();
            let fixed: Vec<Value> = (0..rng.below(4))
                .map(|_| json!({"product_id": rng.range(1, 70), "quantity": rng.range(1, 101)}))
                .collect();
            json!({"items": if rng.one_in(2) { items } else { fixed }})
        }
        1 => {
            let mut patch = serde_json::Map::new();
            for key in ["name", "description", "price_cents", "stock"] {
                if rng.one_in(2) {
                    let value = match key {
                        "name" | "description" => Value::String(draw::noise(rng, 40)),
                        _ => draw::json_number(rng),
                    };
                    patch.insert(key.to_owned(), value);
                }
            }
            Value::Object(patch)
        }
        2 => json!({"quantity": draw::json_number(rng)}),
        3 => {
            // Local parts of any length up to and past the limit, in any case and script.
            let local: String = (0..rng.range(1, 250))
                .map(|_| {
                    *rng.pick(&['a', 'Z', 'é', 'İ', 'ß', '.', '+'])
                        .unwrap_or(&'a')
                })
                .collect();
            let local = if rng.one_in(2) {
                local
            } else {
                draw::noise(rng, 8)
            };
            let domain = pick(
                rng,
                &["example.com", "x", ".a.b", "a..b", "EXAMPLE.COM", "İ.com"],
            );
            json!({"email": format!("{local}@{domain}"), "password": draw::noise(rng, 20)})
        }
        4 => json!({"value": draw::json_number(rng)}),
        _ => draw::object(
            rng,
            &["items", "name", "quantity", "email", "value", "stock"],
            &["x"],
            2,
        ),
    };
    let mut e = Envelope::new();
    let fields: [(&str, draw::MakeFn); 6] = [
        (":principal", |r| {
            pick(
                r,
                &[
                    "ip:203.0.113.9",
                    "key:abc",
                    "user:1",
                    "anonymous",
                    "a b",
                    "",
                ],
            )
            .to_owned()
        }),
        (":lsn", |r| {
            format!(
                "{}/{}",
                draw::text(r, b"0123456789abcdefABCDEF+-", 9),
                draw::text(r, b"0123456789ABCDEF", 9)
            )
        }),
        (":query", |r| {
            let params: Vec<String> = (0..r.below(4))
                .map(|_| {
                    format!(
                        "{}={}",
                        pick(r, &["page", "per_page", "limit", "by", "x"]),
                        draw::number(r)
                    )
                })
                .collect();
            params.join("&")
        }),
        (":id", |r| draw::number(r)),
        ("if-match", |r| {
            pick(r, &["*", "\"x\"", "W/\"x\"", ""]).to_owned()
        }),
        ("if-none-match", |r| pick(r, &["*", "\"x\"", ""]).to_owned()),
    ];
    for (name, value) in fields {
        if rng.one_in(2) {
            e = e.field(name, value(rng));
        }
    }
    e.with_body(draw::json_text(rng, &body).into_bytes())
        .to_bytes()
}

fn run(input: &[u8]) -> Result<Outcome, String> {
    let e = Envelope::parse(input);
    let mut out = Outcome::default();
    check_order(&e.body, &mut out)?;
    check_patch(&e.body, &mut out)?;
    if let Ok(body) = serde_json::from_slice::<QuantityBody>(&e.body)
        && let Ok(q) = Quantity::parse(body)
    {
        out.note("quantity");
        ensure!(
            (1..=CART_MAX).contains(&q.get()),
            "cart: a quantity is 1 to 100"
        );
    }
    if let Ok(body) = serde_json::from_slice::<Value>(&e.body) {
        check_credentials(&body, &mut out)?;
        if let Some(value) = body.get("value").and_then(Value::as_i64) {
            out.note_num(u64::from(EventKind::Vote.allows(value)));
        }
    }
    check_values(&e, &mut out)?;
    check_preconditions(&e, &mut out)?;
    Ok(out)
}

fn check_order(body: &[u8], out: &mut Outcome) -> Result<(), String> {
    let Ok(order) = serde_json::from_slice::<OrderBody>(body) else {
        return Ok(());
    };
    let Ok(request) = OrderRequest::parse(order) else {
        out.note("order-refused");
        return Ok(());
    };
    let lines = request.lines();
    out.note_num(bucket(lines.len()));
    ensure!(
        (1..=MAX_ITEMS).contains(&lines.len()),
        "order: 1 to 50 lines"
    );
    for (i, line) in lines.iter().enumerate() {
        ensure!(
            line.product_id > 0 && (1..=MAX_QUANTITY).contains(&line.quantity),
            "order: positive products, 1 to 100 units",
            "{line:?}"
        );
        ensure!(
            lines[..i].iter().all(|l| l.product_id != line.product_id),
            "order: each product once"
        );
    }
    match request.price(&catalogue()) {
        Ok(priced) => {
            out.note("priced");
            let sum: i64 = priced.items.iter().map(|l| l.line_total_cents).sum();
            ensure!(
                priced.total_cents == sum
                    && sum <= MAX_SAFE_INTEGER
                    && priced.items.len() == lines.len(),
                "order: the total is the sum of its lines, within 2^53 - 1",
                "{} vs {sum}",
                priced.total_cents
            );
            for line in &priced.items {
                ensure!(
                    line.unit_price_cents.checked_mul(line.quantity) == Some(line.line_total_cents),
                    "order: a line costs its units times its price"
                );
            }
            let order = priced.into_order(1, 0);
            ensure!(
                serde_json::to_string(&order).is_ok(),
                "order: the answer serialises"
            );
        }
        Err(error) => out.note(&format!("{}", error.status())),
    }
    Ok(())
}

fn check_patch(body: &[u8], out: &mut Outcome) -> Result<(), String> {
    let Ok(patch) = serde_json::from_slice::<ProductPatchBody>(body) else {
        return Ok(());
    };
    let Ok(patch) = ProductPatch::parse(patch) else {
        out.note("patch-refused");
        return Ok(());
    };
    out.note("patch");
    let before = product();
    let after = patch.apply(before.clone());
    ensure!(
        after.id == before.id
            && after.sku == before.sku
            && after.currency == before.currency
            && after.category == before.category,
        "patch: identity, currency and category never change"
    );
    let text_ok = |s: &str, max: usize, multiline: bool| {
        !s.is_empty()
            && s.trim() == s
            && s.chars().count() <= max
            && !s
                .chars()
                .any(|c| c.is_control() && !(multiline && c == '\n'))
    };
    ensure!(
        text_ok(&after.name, MAX_NAME_CHARS, false)
            && (after.description == before.description
                || text_ok(&after.description, MAX_DESCRIPTION_CHARS, true)),
        "patch: text trimmed, within its length, without controls",
        "{:?} / {:?}",
        after.name,
        after.description
    );
    ensure!(
        (0..=MAX_SAFE_INTEGER).contains(&after.price_cents)
            && (0..=MAX_SAFE_INTEGER).contains(&after.stock),
        "patch: amounts within 0 to 2^53 - 1"
    );
    ensure!(
        patch.apply(after.clone()) == after,
        "patch: applying twice changes nothing more"
    );
    Ok(())
}

fn check_credentials(body: &Value, out: &mut Outcome) -> Result<(), String> {
    if let Some(raw) = body.get("email").and_then(Value::as_str) {
        match Email::parse(raw) {
            Ok(email) => {
                out.note("email");
                let e = email.as_str();
                ensure!(
                    e.chars().count() <= MAX_EMAIL_CHARS,
                    "email: at most 254 characters as stored",
                    "{} characters from {raw:?}",
                    e.chars().count()
                );
                ensure!(
                    e == e.to_lowercase() && e.matches('@').count() == 1,
                    "email: lower-case, one '@'",
                    "{e:?}"
                );
                ensure!(
                    Email::parse(e).as_ref().ok() == Some(&email),
                    "email: a stored address parses back to itself",
                    "{raw:?} → {e:?}"
                );
            }
            Err(_) => out.note("email-refused"),
        }
    }
    if let Some(raw) = body.get("password").and_then(Value::as_str) {
        let chars = raw.chars().count();
        ensure!(
            Password::new_account(raw.to_owned()).is_ok()
                == (MIN_CHARS..=MAX_CHARS).contains(&chars),
            "password: a new one is 12 to 1024 characters"
        );
        ensure!(
            Password::presented(raw.to_owned()).is_some() == (chars <= MAX_CHARS),
            "password: one presented is at most 1024 characters"
        );
    }
    Ok(())
}

fn check_values(e: &Envelope, out: &mut Outcome) -> Result<(), String> {
    if let Some(raw) = e.get(":principal")
        && let Ok(p) = Principal::parse(raw)
    {
        out.note("principal");
        let s = p.as_str();
        ensure!(
            (1..=MAX_LEN).contains(&s.len())
                && s.bytes().all(|b| b.is_ascii_graphic())
                && s != "anonymous",
            "principal: 1 to 255 visible ASCII, never anonymous",
            "{s:?}"
        );
    }
    if let Some(raw) = e.get(":lsn")
        && let Ok(lsn) = raw.parse::<Lsn>()
    {
        out.note("lsn");
        let text = lsn.to_string();
        ensure!(
            text.parse::<Lsn>() == Ok(lsn),
            "lsn: round-trips",
            "{raw:?} → {text:?}"
        );
    }
    let query = e.get(":query");
    if let Ok(p) = Pagination::from_query(query) {
        ensure!(
            p.page() >= 1 && (1..=MAX_PER_PAGE).contains(&p.per_page()) && p.offset() >= 0,
            "pagination: a page from 1, 1 to 100 per page"
        );
        for total in [0, 1, 1_000_000_000_000] {
            let pages = p.total_pages(total);
            ensure!(
                pages * i64::from(p.per_page()) >= total && pages >= 0,
                "pagination: the pages hold the total"
            );
        }
    } else {
        out.note("page-refused");
    }
    if let Ok(limit) = Limit::from_query(query) {
        ensure!(
            (1..=MAX_LIMIT).contains(&limit.get()),
            "ranking: a limit of 1 to 100"
        );
    }
    if let Ok(by) = By::from_query(query) {
        out.note(by.as_str());
    }
    if let Some(raw) = e.get(":id")
        && let Ok(id) = positive_id(raw)
    {
        out.note("id");
        ensure!(id > 0, "id: positive");
    }
    Ok(())
}

fn check_preconditions(e: &Envelope, out: &mut Outcome) -> Result<(), String> {
    let mut headers = HeaderMap::new();
    for (name, value) in e.headers() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    let preconditions = Preconditions::from_headers(&headers);
    let current = ETag::of(e.get(":etag-of").unwrap_or("{}").as_bytes());
    let read = preconditions.evaluate(&Method::GET, &current);
    let write = preconditions.evaluate(&Method::PUT, &current);
    out.note(&format!("{read:?}{write:?}"));
    let if_match = headers.contains_key("if-match");
    let if_none_match = headers.contains_key("if-none-match");
    if !if_match && !if_none_match {
        ensure!(
            read == Precondition::Proceed && write == Precondition::Proceed,
            "preconditions: none means proceed"
        );
    }
    let lists_star = |name: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|m| m.trim() == "*"))
        })
    };
    if lists_star("if-match") && !if_none_match {
        ensure!(
            write == Precondition::Proceed,
            "preconditions: If-Match * lets a write proceed"
        );
    }
    // A quote opens an entity tag whose commas do not split (core::conditional), so only a value
    // without quotes is read as a plain list here.
    let unquoted = headers
        .get_all("if-none-match")
        .iter()
        .all(|v| !v.as_bytes().contains(&b'"'));
    if !if_match && unquoted && lists_star("if-none-match") {
        ensure!(
            read == Precondition::NotModified && write == Precondition::Failed,
            "preconditions: If-None-Match * is a 304 for a read, a 412 for a write"
        );
    }
    Ok(())
}
