//! The hot queries use an index on both backends: each is planned with representative parameters
//! bound, and a sequential scan of a table fails the test with the plan in the message.
//!
//! The SQL is the very text the origin runs: each module that runs a hot query exports it as a
//! `pub const`. Postgres is asked with `enable_seqscan = off`, because on tables this small a
//! sequential scan is legitimately cheapest; off, the planner still picks one when no index can
//! serve the query, which is exactly what this test is after. SQLite is asked with
//! `EXPLAIN QUERY PLAN`, and a `SCAN <table>` row that is not `USING (COVERING) INDEX` fails.

use breakwater_origin::order::{history, outbox, store};
use breakwater_origin::ranking::By;
use breakwater_origin::{Db, idempotency, product};
use serde_json::Value;

use crate::helpers::{Backend, on_each_backend, spawn_app};

const PRINCIPAL: &str = "ip:203.0.113.7";

/// A parameter to bind.
#[derive(Debug, Clone, Copy)]
enum Param {
    Int(i64),
    Text(&'static str),
}

/// One hot query and what to bind to it.
struct HotQuery {
    name: &'static str,
    sql: &'static str,
    params: &'static [Param],
    /// SQLite only: this table may be walked whole in rowid order. The rowid table *is* its
    /// integer primary key's b-tree, so `ORDER BY id LIMIT` reads it in key order and stops
    /// after the page, the same work as an index scan; SQLite still prints `SCAN <table>`. The
    /// plan must then show no sort (`USE TEMP B-TREE`), which would mean a real full scan.
    sqlite_rowid_walk: Option<&'static str>,
}

const fn hot(name: &'static str, sql: &'static str, params: &'static [Param]) -> HotQuery {
    HotQuery {
        name,
        sql,
        params,
        sqlite_rowid_walk: None,
    }
}

const HOT_QUERIES: [HotQuery; 12] = [
    hot("product by id", product::BY_ID, &[Param::Int(42)]),
    hot("product list total", product::COUNT, &[]),
    HotQuery {
        sqlite_rowid_walk: Some("products"),
        ..hot(
            "product list page",
            product::PAGE,
            &[Param::Int(24), Param::Int(48)],
        )
    },
    hot(
        "order by id for a principal",
        store::ORDER_BY_ID,
        &[Param::Int(1), Param::Text(PRINCIPAL)],
    ),
    hot("items of an order", store::ITEMS_OF_ORDER, &[Param::Int(1)]),
    hot(
        "orders of a principal, total",
        history::COUNT_BY_PRINCIPAL,
        &[Param::Text(PRINCIPAL)],
    ),
    hot(
        "orders of a principal, newest first",
        history::PAGE_BY_PRINCIPAL,
        &[Param::Text(PRINCIPAL), Param::Int(24), Param::Int(0)],
    ),
    hot(
        "idempotency record lookup",
        idempotency::FIND,
        &[Param::Text(PRINCIPAL), Param::Text("\"8e03978e\"")],
    ),
    hot("outbox pending scan", outbox::PENDING_COUNT, &[]),
    hot("rankings by sales", By::Sales.sql(), &[Param::Int(10)]),
    hot("rankings by views", By::Views.sql(), &[Param::Int(10)]),
    hot("rankings by votes", By::Votes.sql(), &[Param::Int(10)]),
];

on_each_backend!(no_hot_query_scans_a_table);
async fn no_hot_query_scans_a_table(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut failures = Vec::new();
    for query in &HOT_QUERIES {
        let (plan, scans) = plan_of(&app.db, query).await;
        if !scans.is_empty() {
            failures.push(format!(
                "{} scans {scans:?}\n  SQL: {}\n  plan: {plan}",
                query.name, query.sql
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "hot queries without an index on {backend:?}:\n{}",
        failures.join("\n")
    );
}

/// The plan of `query` as text, and the tables it scans sequentially.
async fn plan_of(db: &Db, query: &HotQuery) -> (String, Vec<String>) {
    macro_rules! bound {
        ($query:expr) => {{
            let mut bound = $query;
            for param in query.params {
                bound = match *param {
                    Param::Int(value) => bound.bind(value),
                    Param::Text(value) => bound.bind(value),
                };
            }
            bound
        }};
    }
    match db {
        Db::Postgres(pool) => {
            // One connection: the setting holds for the session it is made in.
            let mut connection = pool.acquire().await.unwrap();
            sqlx::raw_sql("SET enable_seqscan = off")
                .execute(&mut *connection)
                .await
                .unwrap();
            let explain = format!("EXPLAIN (FORMAT JSON) {}", query.sql);
            let sqlx::types::Json(plan): sqlx::types::Json<Value> =
                bound!(sqlx::query_scalar(&explain))
                    .fetch_one(&mut *connection)
                    .await
                    .unwrap_or_else(|e| panic!("{}: {e}", query.name));
            sqlx::raw_sql("RESET enable_seqscan")
                .execute(&mut *connection)
                .await
                .unwrap();
            let scans = postgres_seq_scans(&plan);
            (plan.to_string(), scans)
        }
        Db::Sqlite(pool) => {
            let explain = format!("EXPLAIN QUERY PLAN {}", query.sql);
            let rows: Vec<(i64, i64, i64, String)> = bound!(sqlx::query_as(&explain))
                .fetch_all(pool)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", query.name));
            let details: Vec<String> = rows.into_iter().map(|row| row.3).collect();
            let scans = sqlite_table_scans(&details, query.sqlite_rowid_walk);
            (details.join(" | "), scans)
        }
    }
}

/// The relations of every `Seq Scan` node, anywhere in the plan tree.
fn postgres_seq_scans(plan: &Value) -> Vec<String> {
    let mut scans = Vec::new();
    let mut nodes: Vec<&Value> = plan
        .as_array()
        .into_iter()
        .flatten()
        .map(|top| &top["Plan"])
        .collect();
    while let Some(node) = nodes.pop() {
        if node["Node Type"] == "Seq Scan" {
            scans.push(node["Relation Name"].as_str().unwrap_or("?").to_owned());
        }
        nodes.extend(node["Plans"].as_array().into_iter().flatten());
    }
    scans
}

/// The tables a SQLite plan scans without an index. A subquery the plan runs as a co-routine or
/// materialises is scanned by its alias (`SCAN o`), which is not a table; its own rows are
/// judged on their own.
fn sqlite_table_scans(details: &[String], rowid_walk: Option<&str>) -> Vec<String> {
    let subqueries: Vec<&str> = details
        .iter()
        .filter_map(|d| {
            d.strip_prefix("CO-ROUTINE ")
                .or_else(|| d.strip_prefix("MATERIALIZE "))
        })
        .collect();
    let sorts = details.iter().any(|d| d.starts_with("USE TEMP B-TREE"));
    details
        .iter()
        .filter_map(|d| d.strip_prefix("SCAN "))
        .filter(|scan| !scan.contains(" USING INDEX ") && !scan.contains(" USING COVERING INDEX "))
        .filter(|scan| !subqueries.contains(scan) && *scan != "CONSTANT ROW")
        .filter(|scan| sorts || rowid_walk != Some(*scan))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_plan_readers_find_scans_and_only_scans() {
    let plan: Value = serde_json::json!([{"Plan": {
        "Node Type": "Nested Loop",
        "Plans": [
            {"Node Type": "Index Scan", "Relation Name": "orders"},
            {"Node Type": "Sort", "Plans": [{"Node Type": "Seq Scan", "Relation Name": "outbox"}]}
        ]
    }}]);
    assert_eq!(postgres_seq_scans(&plan), ["outbox"]);

    let details = |rows: &[&str]| rows.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>();
    let joined = details(&[
        "CO-ROUTINE o",
        "SEARCH orders USING INDEX orders_by_principal (principal=?)",
        "SCAN o",
        "SEARCH i USING INDEX sqlite_autoindex_order_items_1 (order_id=?) LEFT-JOIN",
        "SCAN outbox USING COVERING INDEX outbox_pending",
    ]);
    assert!(sqlite_table_scans(&joined, None).is_empty());
    let walk = details(&["SCAN products"]);
    assert_eq!(sqlite_table_scans(&walk, None), ["products"]);
    assert!(sqlite_table_scans(&walk, Some("products")).is_empty());
    let sorted = details(&["SCAN products", "USE TEMP B-TREE FOR ORDER BY"]);
    assert_eq!(sqlite_table_scans(&sorted, Some("products")), ["products"]);
}
