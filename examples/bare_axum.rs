//! Benchmark baseline: the smallest axum + sqlx server a user would write for two of pincher's
//! routes, with no middleware: `GET /services/{id}` reading one service by primary key from
//! pincher's schema (SQLite or PostgreSQL) and returning the same document, and
//! `GET /status/live` answering the same body as pincher's liveness probe.
//! `bench/pairs.sh` and `bench/services.sh` compare pincher against it.
//!
//! Usage: `bare_axum DATABASE_URL PORT [POOL]`. `POOL` is a number (a pool of that size with
//! the same connection options as pincher's, so that only the request path differs) or
//! `default` (`SqlitePool::connect` / `PgPool::connect`: sqlx's default pool settings, as a
//! user would first write it). It defaults to `default`.

use std::str::FromStr;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use time::OffsetDateTime;
use uuid::Uuid;

/// One row of `services`, as pincher reads it.
#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    name: String,
    display_name: Option<String>,
    description: String,
    owner: String,
    tags: String,
    links: String,
    metadata: String,
    revision: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

/// The document pincher answers for a service.
#[derive(Serialize)]
struct Service {
    id: Uuid,
    name: String,
    display_name: Option<String>,
    description: String,
    owner: String,
    tags: Value,
    links: Value,
    metadata: Value,
    revision: i64,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

const SELECT: &str = "SELECT id, name, display_name, description, owner, tags, links, metadata, \
                      revision, created_at, updated_at FROM services WHERE id = $1";

fn document(row: Row) -> Result<Json<Service>, StatusCode> {
    let parse = |text: &str| {
        serde_json::from_str::<Value>(text).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
    };
    Ok(Json(Service {
        tags: parse(&row.tags)?,
        links: parse(&row.links)?,
        metadata: parse(&row.metadata)?,
        id: row.id,
        name: row.name,
        display_name: row.display_name,
        description: row.description,
        owner: row.owner,
        revision: row.revision,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }))
}

async fn show_sqlite(
    State(pool): State<SqlitePool>,
    Path(id): Path<Uuid>,
) -> Result<Json<Service>, StatusCode> {
    let row: Row = sqlx::query_as(SELECT)
        .bind(id)
        .fetch_optional(&pool)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
        .ok_or(StatusCode::NOT_FOUND)?;
    document(row)
}

async fn show_postgres(
    State(pool): State<PgPool>,
    Path(id): Path<Uuid>,
) -> Result<Json<Service>, StatusCode> {
    let row: Row = sqlx::query_as(SELECT)
        .bind(id)
        .fetch_optional(&pool)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
        .ok_or(StatusCode::NOT_FOUND)?;
    document(row)
}

async fn live() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/health+json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Json(json!({"status": "pass", "version": env!("CARGO_PKG_VERSION")})),
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    const USAGE: &str = "usage: bare_axum DATABASE_URL PORT [POOL_SIZE|default]";
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or(USAGE)?;
    let port: u16 = args.next().ok_or(USAGE)?.parse()?;
    let pool_size: Option<u32> = match args.next().as_deref() {
        None | Some("default") => None,
        Some(size) => Some(size.parse()?),
    };
    let app = if url.starts_with("postgres") {
        let pool = match pool_size {
            None => PgPool::connect(&url).await?,
            // pincher's pool: the size, the acquire timeout, nothing else set.
            Some(size) => {
                PgPoolOptions::new()
                    .max_connections(size)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect(&url)
                    .await?
            }
        };
        Router::new()
            .route("/services/{id}", get(show_postgres))
            .with_state(pool)
    } else {
        let pool = match pool_size {
            None => SqlitePool::connect(&url).await?,
            // The same connection and pool options as pincher's SQLite pool (src/db/mod.rs).
            Some(size) => {
                let options = SqliteConnectOptions::from_str(&url)?
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5));
                SqlitePoolOptions::new()
                    .test_before_acquire(false)
                    .acquire_timeout(Duration::from_secs(5))
                    .max_connections(size)
                    .connect_with(options)
                    .await?
            }
        };
        Router::new()
            .route("/services/{id}", get(show_sqlite))
            .with_state(pool)
    };
    let app = app.route("/status/live", get(live));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
