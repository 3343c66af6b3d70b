//! The services repository: every SQL statement about registered services.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Db, DbError, on_reader, write_one};
use crate::domain::service::{Service, ServiceFilter, ServiceKey, ServiceSpec};

#[derive(sqlx::FromRow)]
struct ServiceRow {
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

impl TryFrom<ServiceRow> for Service {
    type Error = DbError;

    fn try_from(row: ServiceRow) -> Result<Self, DbError> {
        fn parse<T: serde::de::DeserializeOwned>(text: &str, column: &str) -> Result<T, DbError> {
            serde_json::from_str(text)
                .map_err(|e| DbError::Corrupt(format!("services.{column} is not valid JSON: {e}")))
        }
        Ok(Self {
            id: row.id,
            tags: parse::<BTreeMap<String, String>>(&row.tags, "tags")?,
            links: parse::<BTreeMap<String, String>>(&row.links, "links")?,
            metadata: parse::<Map<String, Value>>(&row.metadata, "metadata")?,
            name: row.name,
            display_name: row.display_name,
            description: row.description,
            owner: row.owner,
            revision: row.revision,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// The JSON text stored for a document column.
fn json_text<T: serde::Serialize>(value: &T) -> Result<String, DbError> {
    serde_json::to_string(value).map_err(|e| DbError::Corrupt(e.to_string()))
}

macro_rules! columns {
    () => {
        "id, name, display_name, description, owner, tags, links, metadata, revision, \
         created_at, updated_at"
    };
}
const COLUMNS: &str = columns!();
const SELECT_BY_ID: &str = concat!("SELECT ", columns!(), " FROM services WHERE id = $1");
const SELECT_BY_NAME: &str = concat!("SELECT ", columns!(), " FROM services WHERE name = $1");
const INSERT: &str = concat!(
    "INSERT INTO services (id, name, display_name, description, owner, tags, links, \
     metadata, revision, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9) RETURNING ",
    columns!()
);
const UPDATE: &str = concat!(
    "UPDATE services SET name = $1, display_name = $2, description = $3, owner = $4, \
     tags = $5, links = $6, metadata = $7, revision = revision + 1, updated_at = $8 \
     WHERE id = $9 AND revision = $10 RETURNING ",
    columns!()
);

/// A spec's columns as owned values, for a statement that may run on another task.
struct SpecColumns {
    name: String,
    display_name: Option<String>,
    description: String,
    owner: String,
    tags: String,
    links: String,
    metadata: String,
}

impl SpecColumns {
    fn new(spec: &ServiceSpec) -> Result<Self, DbError> {
        Ok(Self {
            name: spec.name.as_str().to_owned(),
            display_name: spec.display_name.clone(),
            description: spec.description.clone(),
            owner: spec.owner.clone(),
            tags: json_text(&spec.tags)?,
            links: json_text(&spec.links)?,
            metadata: json_text(&spec.metadata)?,
        })
    }
}

/// Binds a spec's columns to `$query` in the order INSERT and UPDATE name them.
macro_rules! bind_spec {
    ($query:expr, $columns:expr) => {
        $query
            .bind($columns.name)
            .bind($columns.display_name)
            .bind($columns.description)
            .bind($columns.owner)
            .bind($columns.tags)
            .bind($columns.links)
            .bind($columns.metadata)
    };
}

/// One page of services in name order.
#[derive(Debug, Clone)]
pub struct ServicePage {
    /// The services on this page.
    pub items: Vec<Service>,
    /// Name of the last item when more follow (the position to continue after).
    pub next_after: Option<String>,
}

fn now() -> OffsetDateTime {
    // Microsecond precision: what PostgreSQL stores, so values read back compare equal.
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1000 * 1000)
        .unwrap_or(now)
}

fn name_taken(e: DbError, name: &str) -> DbError {
    match e {
        DbError::Query(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            DbError::Conflict(format!("a service named {name:?} already exists"))
        }
        other => other,
    }
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Lists services in name order, `limit` at a time, after the name `after`.
#[tracing::instrument(level = "debug", name = "db services.list", skip_all, fields(otel.kind = "client"))]
pub async fn list(
    db: &Db,
    filter: &ServiceFilter,
    limit: u32,
    after: Option<&str>,
) -> Result<ServicePage, DbError> {
    let fetch = i64::from(limit) + 1;
    let rows: Vec<ServiceRow> = on_reader!(db, pool => {
        let mut qb = sqlx::QueryBuilder::new(format!("SELECT {COLUMNS} FROM services s WHERE 1 = 1"));
        if let Some(owner) = &filter.owner {
            qb.push(" AND s.owner = ").push_bind(owner.clone());
        }
        if let Some(prefix) = &filter.name_prefix {
            qb.push(" AND s.name LIKE ")
                .push_bind(escape_like(&prefix.to_lowercase()))
                .push(" ESCAPE '\\'");
        }
        for (key, value) in &filter.tags {
            qb.push(" AND EXISTS (SELECT 1 FROM service_tags t WHERE t.service_id = s.id AND t.key = ")
                .push_bind(key.clone())
                .push(" AND t.value = ")
                .push_bind(value.clone())
                .push(")");
        }
        if let Some(after) = after {
            qb.push(" AND s.name > ").push_bind(after.to_owned());
        }
        qb.push(" ORDER BY s.name LIMIT ").push_bind(fetch);
        qb.build_query_as().fetch_all(pool).await
    })?;
    let mut items: Vec<Service> = rows
        .into_iter()
        .map(Service::try_from)
        .collect::<Result<_, _>>()?;
    let next_after = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|s| s.name.clone())
    } else {
        None
    };
    Ok(ServicePage { items, next_after })
}

/// How many services are registered.
#[tracing::instrument(level = "debug", name = "db services.count", skip_all, fields(otel.kind = "client"))]
pub async fn count(db: &Db) -> Result<i64, DbError> {
    let count: i64 = on_reader!(db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM services").fetch_one(pool).await
    })?;
    Ok(count)
}

/// Every service matching `filter`, in name order (read page by page).
#[tracing::instrument(level = "debug", name = "db services.list_all", skip_all, fields(otel.kind = "client"))]
pub async fn list_all(db: &Db, filter: &ServiceFilter) -> Result<Vec<Service>, DbError> {
    let mut services = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = list(db, filter, 500, after.as_deref()).await?;
        services.extend(page.items);
        match page.next_after {
            Some(next) => after = Some(next),
            None => return Ok(services),
        }
    }
}

/// One service by id or name.
#[tracing::instrument(level = "debug", name = "db services.get", skip_all, fields(otel.kind = "client"))]
pub async fn get(db: &Db, key: &ServiceKey) -> Result<Service, DbError> {
    let row: Option<ServiceRow> = match key {
        ServiceKey::Id(id) => on_reader!(db, pool => {
            sqlx::query_as(SELECT_BY_ID)
                .bind(*id)
                .fetch_optional(pool)
                .await
        })?,
        ServiceKey::Name(name) => on_reader!(db, pool => {
            sqlx::query_as(SELECT_BY_NAME)
                .bind(name.as_str())
                .fetch_optional(pool)
                .await
        })?,
    };
    row.map(Service::try_from).transpose()?.ok_or_else(|| {
        DbError::NotFound(match key {
            ServiceKey::Id(id) => format!("service {id}"),
            ServiceKey::Name(name) => format!("service {name:?}"),
        })
    })
}

/// Registers a new service.
#[tracing::instrument(level = "debug", name = "db services.create", skip_all, fields(otel.kind = "client"))]
pub async fn create(db: &Db, spec: &ServiceSpec) -> Result<Service, DbError> {
    let id = Uuid::now_v7();
    let at = now();
    let columns = SpecColumns::new(spec)?;
    // One statement, so it can be committed in a group: the database fills service_tags from
    // the tags column (migration 0008).
    let row: ServiceRow = write_one!(db, conn => {
        bind_spec!(sqlx::query_as(INSERT).bind(id), columns)
            .bind(at)
            .fetch_one(conn)
            .await
    })
    .map_err(|e| name_taken(e.into(), spec.name.as_str()))?;
    row.try_into()
}

/// Replaces the writable fields of service `id`, provided it is still at `revision`.
/// A service that moved on in between is a [`DbError::Conflict`].
#[tracing::instrument(level = "debug", name = "db services.update", skip_all, fields(otel.kind = "client"))]
pub async fn update(
    db: &Db,
    id: Uuid,
    revision: i64,
    spec: &ServiceSpec,
) -> Result<Service, DbError> {
    let columns = SpecColumns::new(spec)?;
    let at = now();
    // One statement, so it can be committed in a group: the database replaces the service's
    // service_tags rows (migration 0008).
    let row: Option<ServiceRow> = write_one!(db, conn => {
        bind_spec!(sqlx::query_as(UPDATE), columns)
            .bind(at)
            .bind(id)
            .bind(revision)
            .fetch_optional(conn)
            .await
    })
    .map_err(|e| name_taken(e.into(), spec.name.as_str()))?;
    row.map(Service::try_from).transpose()?.ok_or_else(|| {
        DbError::Conflict(format!(
            "service {id} was changed or deleted by another request; fetch it again and retry"
        ))
    })
}

/// Deletes service `id`, provided it is still at `revision` when one is given.
/// Returns whether a row was deleted.
#[tracing::instrument(level = "debug", name = "db services.delete", skip_all, fields(otel.kind = "client"))]
pub async fn delete(db: &Db, id: Uuid, revision: Option<i64>) -> Result<bool, DbError> {
    let result = write_one!(db, conn => {
        sqlx::query("DELETE FROM services WHERE id = $1 AND (CAST($2 AS BIGINT) IS NULL OR revision = $2)")
            .bind(id)
            .bind(revision)
            .execute(conn)
            .await
            .map(|done| done.rows_affected())
    })?;
    Ok(result > 0)
}

#[cfg(test)]
mod tests {
    use super::escape_like;

    #[test]
    fn like_patterns_match_only_the_prefix_given() {
        assert_eq!(escape_like("a_b%"), "a\\_b\\%%");
    }
}
