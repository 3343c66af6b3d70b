//! Benchmark baseline: the smallest axum + sqlx handler that reads one service by primary key
//! from pincher's SQLite schema, with no middleware. `bench/services.sh` compares
//! `GET /services/{id}` against it.
//!
//! Usage: `bare_axum SQLITE_URL PORT [POOL_SIZE]` (the pool size defaults to 10)

use std::str::FromStr;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

async fn show(
    State(pool): State<SqlitePool>,
    Path(id): Path<Uuid>,
) -> Result<Json<Value>, StatusCode> {
    let row = sqlx::query(
        "SELECT id, name, display_name, description, owner, tags, links, metadata, created_at, \
         updated_at FROM services WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&pool)
    .await
    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
    .ok_or(StatusCode::NOT_FOUND)?;
    let text = |i: usize| row.try_get::<Option<String>, _>(i).ok().flatten();
    let parsed = |i: usize| {
        text(i)
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .unwrap_or(Value::Null)
    };
    Ok(Json(json!({
        "id": row.try_get::<Uuid, _>(0).ok(),
        "name": text(1),
        "display_name": text(2),
        "description": text(3),
        "owner": text(4),
        "tags": parsed(5),
        "links": parsed(6),
        "metadata": parsed(7),
        "created_at": text(8),
        "updated_at": text(9),
    })))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or("usage: bare_axum SQLITE_URL PORT")?;
    let port: u16 = args
        .next()
        .ok_or("usage: bare_axum SQLITE_URL PORT")?
        .parse()?;
    let pool_size: u32 = args.next().map_or(Ok(10), |size| size.parse())?;
    // The same connection and pool options as pincher's SQLite pool (src/db/mod.rs), so the
    // comparison measures the request path and nothing else.
    let options = SqliteConnectOptions::from_str(&url)?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(5))
        .max_connections(pool_size)
        .connect_with(options)
        .await?;
    let app = Router::new()
        .route("/services/{id}", get(show))
        .with_state(pool);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
