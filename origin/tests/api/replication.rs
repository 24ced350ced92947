//! The Postgres replica is real: what the origin writes on the primary streams to the replica
//! that `scripts/postgres.sh` runs, and is read back there.

use std::time::Duration;

use breakwater_origin::Db;
use breakwater_origin::replica::Reads;
use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::helpers::{
    Backend, eventually, postgres_ready, replica_shared, replica_url_of, spawn_app_with,
};

/// Replication usually takes milliseconds; this bounds it on a loaded machine.
const REPLICATION_DEADLINE: Duration = Duration::from_secs(30);
/// Postgres's SQLSTATE for a database that does not exist (yet, on the replica).
const INVALID_CATALOG_NAME: &str = "3D000";
/// ... and for a write attempted in a read-only transaction, as every one on a standby is.
const READ_ONLY: &str = "25006";

/// A pool on this test's database on the replica, once the replica has replayed its
/// `CREATE DATABASE` (the database was created on the primary moments ago).
async fn replica_pool(url: &str, reads: &Reads) -> PgPool {
    eventually(
        "the test database on the replica",
        REPLICATION_DEADLINE,
        reads,
        || async {
            match PgPoolOptions::new().max_connections(1).connect(url).await {
                Ok(pool) => Some(pool),
                Err(sqlx::Error::Database(e))
                    if e.code().as_deref() == Some(INVALID_CATALOG_NAME) =>
                {
                    None
                }
                Err(e) => panic!("cannot connect to the replica: {e}"),
            }
        },
    )
    .await
}

#[tokio::test]
async fn an_order_written_through_the_origin_is_read_back_from_the_replica() {
    if !postgres_ready() {
        return;
    }
    let _shared = replica_shared().await;
    // With the replica configured, so that the origin's replica monitor measures it: what the
    // waits below wait on.
    let app = spawn_app_with(Backend::Postgres, |settings| {
        settings.replica_urls = vec![replica_url_of(&settings.database_url)];
        settings.replica_policy.check_interval = Duration::from_millis(20);
    })
    .await;
    let Db::Postgres(primary) = &app.db else {
        panic!("spawn_app(Backend::Postgres) gave {:?}", app.db);
    };
    let replica = replica_pool(&app.database().replica_url(), &app.reads).await;
    for (pool, standby, role) in [(primary, false, "primary"), (&replica, true, "replica")] {
        let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(
            in_recovery, standby,
            "the {role} URL leads to the wrong server"
        );
    }

    let response = app
        .client
        .post(format!("{}/api/orders", app.address))
        .header("breakwater-principal", "ip:203.0.113.9")
        .header("idempotency-key", "\"replicated-order\"")
        .json(&serde_json::json!({ "items": [{ "product_id": 7, "quantity": 3 }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let order: Value = response.json().await.unwrap();
    let id = order["id"].as_i64().unwrap();

    let (principal, total_cents): (String, i64) = eventually(
        "the order on the replica",
        REPLICATION_DEADLINE,
        &app.reads,
        || async {
            sqlx::query_as("SELECT principal, total_cents FROM orders WHERE id = $1")
                .bind(id)
                .fetch_optional(&replica)
                .await
                .unwrap()
        },
    )
    .await;
    assert_eq!(principal, "ip:203.0.113.9");
    assert_eq!(total_cents, order["total_cents"].as_i64().unwrap());

    // And it is a standby: it refuses writes of its own.
    match sqlx::query("DELETE FROM orders").execute(&replica).await {
        Err(sqlx::Error::Database(e)) => assert_eq!(e.code().as_deref(), Some(READ_ONLY), "{e}"),
        other => panic!("the replica did not refuse a write: {other:?}"),
    }
    replica.close().await;
}
