//! The registry's side of the joins: the registered services as resource matchers, and a
//! service named in params, looked up once for every action that takes one.

use std::collections::BTreeMap;

use super::ActionError;
use crate::app::Context;
use crate::db::{DbError, services as repo};
use crate::domain::service::{Service, ServiceFilter, ServiceKey};
use crate::plugins::aws::ServiceMatcher;

/// Every registered service.
pub async fn all(ctx: &Context) -> Result<Vec<Service>, ActionError> {
    repo::list_all(&ctx.db, &ServiceFilter::default())
        .await
        .map_err(|e| registry_unreadable(&e))
}

/// Every registered service as a matcher of cloud resources (by their tags).
pub async fn matcher(ctx: &Context) -> Result<ServiceMatcher, ActionError> {
    Ok(ServiceMatcher::new(&all(ctx).await?))
}

/// The registered services that have tags, as (name, tags): what Cost Explorer groups by.
pub async fn tagged(ctx: &Context) -> Result<Vec<(String, BTreeMap<String, String>)>, ActionError> {
    Ok(all(ctx)
        .await?
        .into_iter()
        .filter(|s| !s.tags.is_empty())
        .map(|s| (s.name, s.tags))
        .collect())
}

/// The service the params field `field` names (by name or id); a name that is not registered
/// is an error of that field.
pub async fn named(ctx: &Context, field: &str, key: &str) -> Result<Service, ActionError> {
    let parsed = ServiceKey::parse(key).map_err(|m| ActionError::field(field, m))?;
    match repo::get(&ctx.db, &parsed).await {
        Ok(service) => Ok(service),
        Err(DbError::NotFound(_)) => Err(ActionError::field(
            field,
            format!("service {key:?} not found in the registry"),
        )),
        Err(e) => Err(registry_unreadable(&e)),
    }
}

/// The name of the service the params field `service` names, if it names one.
pub async fn service_name(ctx: &Context, key: Option<&str>) -> Result<Option<String>, ActionError> {
    match key {
        Some(key) => Ok(Some(named(ctx, "service", key).await?.name)),
        None => Ok(None),
    }
}

fn registry_unreadable(e: &DbError) -> ActionError {
    let message = format!("cannot read the registered services: {e}");
    if e.is_unavailable() {
        ActionError::Unavailable(message)
    } else {
        ActionError::Internal(message)
    }
}
