//! `/reports/aws/*`: the AWS reports over HTTP, through the same plugin functions as the CLI,
//! as JSON (the default), CSV, Markdown, HTML or a text table by `format=` or `Accept`.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use super::error::ApiError;
use crate::app::AppState;
use crate::db::services as repo;
use crate::domain::service::{ServiceFilter, ServiceKey};
use crate::plugins::NoProgress;
use crate::plugins::aws::ec2::{self, Ec2Query};
use crate::plugins::aws::{
    AccountSelection, AwsError, RegionSelection, ServiceMatcher, Targets, parse_tag,
};
use crate::render::{Extras, ReportFormat, Templates, render_report};
use crate::report::{Completeness, Report, Tabular};

/// Response header telling whether every part of a report was read: `complete`, `partial`
/// or `failed` (the failed parts are in the report's `errors`).
pub const COMPLETENESS_HEADER: &str = "pincher-report-completeness";

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/reports/aws/ec2", get(ec2_report))
}

impl From<AwsError> for ApiError {
    fn from(e: AwsError) -> Self {
        match e {
            AwsError::Invalid(detail) => Self::BadRequest {
                detail,
                errors: Vec::new(),
            },
            other => {
                tracing::warn!(error = %other, "AWS could not be read");
                Self::Unavailable(format!("AWS could not be read: {other}"))
            }
        }
    }
}

/// The parameters every AWS report takes, and the ones left for the report itself.
struct ReportParams {
    targets: Targets,
    format: ReportFormat,
    rest: Vec<(String, String)>,
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn flag(name: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "" | "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ApiError::bad_parameter(name, "expected true or false")),
    }
}

impl ReportParams {
    fn parse(raw: Option<&str>, headers: &HeaderMap) -> Result<Self, ApiError> {
        let mut format = None;
        let mut region = Vec::new();
        let mut all_regions = false;
        let mut accounts = Vec::new();
        let mut all_accounts = false;
        let mut rest = Vec::new();
        for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "format" => format = Some(value.into_owned()),
                "region" | "regions" => region.extend(list(&value)),
                "all_regions" => all_regions = flag("all_regions", &value)?,
                "accounts" | "account" => accounts.extend(list(&value)),
                "all_accounts" => all_accounts = flag("all_accounts", &value)?,
                _ => rest.push((key.into_owned(), value.into_owned())),
            }
        }
        if all_regions && !region.is_empty() {
            return Err(ApiError::bad_parameter(
                "all_regions",
                "give either all_regions or regions, not both",
            ));
        }
        if all_accounts && !accounts.is_empty() {
            return Err(ApiError::bad_parameter(
                "all_accounts",
                "give either all_accounts or accounts, not both",
            ));
        }
        let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
        let format = ReportFormat::negotiate(format.as_deref(), accept)
            .map_err(|m| ApiError::bad_parameter("format", m))?;
        Ok(Self {
            targets: Targets {
                accounts: if all_accounts {
                    AccountSelection::All
                } else if accounts.is_empty() {
                    AccountSelection::Current
                } else {
                    AccountSelection::Listed(accounts)
                },
                regions: if all_regions {
                    RegionSelection::AllEnabled
                } else if region.is_empty() {
                    RegionSelection::Home
                } else {
                    RegionSelection::Listed(region)
                },
            },
            format,
            rest,
        })
    }
}

fn unknown(name: &str, expected: &str) -> ApiError {
    ApiError::bad_parameter(
        name,
        format!(
            "unknown parameter; expected {expected}, format, region(s), all_regions, accounts or all_accounts"
        ),
    )
}

/// Renders a report as the negotiated format.
fn respond<R, S>(
    state: &AppState,
    report: &Report<R, S>,
    format: ReportFormat,
    extras: &Extras,
) -> Result<Response, ApiError>
where
    R: Tabular + Serialize,
    S: Serialize,
{
    let templates = Templates::new(state.settings.templates_dir.as_deref())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let body = render_report(report, format, &templates, extras)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let completeness = match report.completeness() {
        Completeness::Complete => "complete",
        Completeness::Partial => "partial",
        Completeness::Failed => "failed",
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(COMPLETENESS_HEADER, HeaderValue::from_static(completeness));
    Ok(response)
}

#[tracing::instrument(skip_all)]
async fn ec2_report(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = ReportParams::parse(raw.as_deref(), &headers)?;
    let mut query = Ec2Query {
        targets: params.targets,
        ..Ec2Query::default()
    };
    let mut service = None;
    for (key, value) in params.rest {
        match key.as_str() {
            "state" => query.states.extend(list(&value)),
            "type" => query.types.extend(list(&value)),
            "tag" => query
                .tags
                .push(parse_tag(&value).map_err(|m| ApiError::bad_parameter("tag", m))?),
            "service" => service = Some(value),
            "tags" => query.include_tags = flag("tags", &value)?,
            other => return Err(unknown(other, "state, type, tag, service, tags")),
        }
    }
    if let Some(name) = service {
        let key = ServiceKey::parse(&name).map_err(|m| ApiError::bad_parameter("service", m))?;
        let found = repo::get(&state.db, &key).await.map_err(|e| match e {
            crate::db::DbError::NotFound(_) => {
                ApiError::bad_parameter("service", format!("no registered service {name:?}"))
            }
            other => other.into(),
        })?;
        query.service = Some((found.name, found.tags));
    }
    let services = repo::list_all(&state.db, &ServiceFilter::default()).await?;
    let aws = state.aws.get(&state.settings.aws).await;
    let report =
        ec2::instance_report(aws, &query, &ServiceMatcher::new(&services), &NoProgress).await?;
    respond(&state, &report, params.format, &Extras::default())
}
