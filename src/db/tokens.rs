//! The API tokens repository.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Db, DbError, on_pool, on_reader};
use crate::domain::token::{ApiToken, Scope};

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: Uuid,
    name: String,
    scope: String,
    prefix: String,
    created_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
    expires_at: Option<OffsetDateTime>,
    last_used_at: Option<OffsetDateTime>,
}

impl TryFrom<TokenRow> for ApiToken {
    type Error = DbError;

    fn try_from(row: TokenRow) -> Result<Self, DbError> {
        Ok(Self {
            id: row.id,
            name: row.name,
            scope: Scope::parse(&row.scope).map_err(DbError::Corrupt)?,
            prefix: row.prefix,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
        })
    }
}

const COLUMNS: &str = "id, name, scope, prefix, created_at, revoked_at, expires_at, last_used_at";

/// Drops sub-microsecond digits, which PostgreSQL does not keep.
fn micros(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(at.nanosecond() / 1000 * 1000)
        .unwrap_or(at)
}

/// Stores a new token's hash; it stops working at `expires_at` when one is given.
#[tracing::instrument(level = "debug", name = "db tokens.create", skip_all, fields(otel.kind = "client"))]
pub async fn create(
    db: &Db,
    name: &str,
    scope: Scope,
    hash: &str,
    prefix: &str,
    expires_at: Option<OffsetDateTime>,
) -> Result<ApiToken, DbError> {
    let now = micros(OffsetDateTime::now_utc());
    let row: TokenRow = on_pool!(db, pool => {
        sqlx::query_as(&format!(
            "INSERT INTO api_tokens (id, name, scope, token_hash, prefix, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(name)
        .bind(scope.as_str())
        .bind(hash)
        .bind(prefix)
        .bind(now)
        .bind(expires_at.map(micros))
        .fetch_one(pool)
        .await
    })
    .map_err(|e| match DbError::from(e) {
        DbError::Query(sqlx::Error::Database(d)) if d.is_unique_violation() => {
            DbError::Conflict(format!("a token named {name:?} already exists"))
        }
        other => other,
    })?;
    row.try_into()
}

/// Every token, revoked ones included, oldest first.
#[tracing::instrument(level = "debug", name = "db tokens.list", skip_all, fields(otel.kind = "client"))]
pub async fn list(db: &Db) -> Result<Vec<ApiToken>, DbError> {
    let rows: Vec<TokenRow> = on_reader!(db, pool => {
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_tokens ORDER BY created_at, name"))
            .fetch_all(pool)
            .await
    })?;
    rows.into_iter().map(ApiToken::try_from).collect()
}

/// The token with this hash, unless it is revoked or expired; its use is recorded.
#[tracing::instrument(level = "debug", name = "db tokens.find_active", skip_all, fields(otel.kind = "client"))]
pub async fn find_active(db: &Db, hash: &str) -> Result<Option<ApiToken>, DbError> {
    let row: Option<TokenRow> = on_reader!(db, pool => {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL"
        ))
        .bind(hash)
        .fetch_optional(pool)
        .await
    })?;
    let now = micros(OffsetDateTime::now_utc());
    let Some(mut token) = row.map(ApiToken::try_from).transpose()? else {
        return Ok(None);
    };
    if token.expired(now) {
        return Ok(None);
    }
    on_pool!(db, pool => {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(token.id)
            .execute(pool)
            .await
            .map(drop)
    })?;
    token.last_used_at = Some(now);
    Ok(Some(token))
}

/// Revokes the token with this id or name; returns it, or `NotFound`.
#[tracing::instrument(level = "debug", name = "db tokens.revoke", skip_all, fields(otel.kind = "client"))]
pub async fn revoke(db: &Db, key: &str) -> Result<ApiToken, DbError> {
    let now = OffsetDateTime::now_utc();
    let row: Option<TokenRow> = match Uuid::parse_str(key) {
        Ok(id) => on_pool!(db, pool => {
            sqlx::query_as(&format!(
                "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 RETURNING {COLUMNS}"
            ))
            .bind(now)
            .bind(id)
            .fetch_optional(pool)
            .await
        })?,
        Err(_) => on_pool!(db, pool => {
            sqlx::query_as(&format!(
                "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE name = $2 RETURNING {COLUMNS}"
            ))
            .bind(now)
            .bind(key)
            .fetch_optional(pool)
            .await
        })?,
    };
    row.map(ApiToken::try_from)
        .transpose()?
        .ok_or_else(|| DbError::NotFound(format!("token {key:?}")))
}
