//! `/reports/aws/*`: the AWS reports over HTTP, through the same plugin functions as the CLI,
//! as JSON (the default), CSV, Markdown, HTML or a text table by `format=` or `Accept`.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{self, Ref, RefOr, ResponseBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use crate::app::AppState;
use crate::db::services as repo;
use crate::domain::service::{ServiceFilter, ServiceKey};
use crate::plugins::NoProgress;
use crate::plugins::aws::ce;
use crate::plugins::aws::ec2::{self, Ec2Query};
use crate::plugins::aws::lambdas::{self, LambdaQuery};
use crate::plugins::aws::organizations;
use crate::plugins::aws::rds::{self, RdsQuery};
use crate::plugins::aws::{
    AccountSelection, AwsError, RegionSelection, ServiceMatcher, Targets, parse_tag,
};
use crate::render::{Extras, ReportFormat, Templates, chart, render_report};
use crate::report::{Completeness, Report, Tabular};

/// The responses every AWS report route documents: the report in each format, or a problem.
struct AwsReportResponses;

impl utoipa::IntoResponses for AwsReportResponses {
    fn responses() -> BTreeMap<String, RefOr<openapi::Response>> {
        let typed = |kind: Type| {
            ContentBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(kind)))
                .build()
        };
        let mut report = ResponseBuilder::new().description(
            "The report; header pincher-report-completeness says complete, partial or failed",
        );
        report = report.content("application/json", typed(Type::Object));
        for text in ["text/csv", "text/markdown", "text/html", "text/plain"] {
            report = report.content(text, typed(Type::String));
        }
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
                .into()
        };
        BTreeMap::from([
            ("200".to_owned(), report.build().into()),
            ("400".to_owned(), problem("Bad parameter, named in errors")),
            ("401".to_owned(), problem("Missing or invalid token")),
            ("403".to_owned(), problem("The token lacks the scope")),
            (
                "503".to_owned(),
                problem("AWS or the database could not be read at all"),
            ),
        ])
    }
}

/// Response header telling whether every part of a report was read: `complete`, `partial`
/// or `failed` (the failed parts are in the report's `errors`).
pub const COMPLETENESS_HEADER: &str = "pincher-report-completeness";

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ec2_report))
        .routes(routes!(rds_report))
        .routes(routes!(lambda_report))
        .routes(routes!(organizations_report))
        .routes(routes!(cost_report))
        .routes(routes!(service_report))
        .routes(routes!(chef_reconcile))
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

/// The query parameters every report takes (documentation; `ReportParams` parses them).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "documents the parameters that ReportParams parses"
)]
struct TargetQuery {
    /// json (default), csv, markdown, html or table; or use Accept.
    format: Option<String>,
    /// Comma-separated regions (default: the home region).
    regions: Option<String>,
    /// Every enabled region.
    all_regions: Option<bool>,
    /// Comma-separated account ids (default: the current account).
    accounts: Option<String>,
    /// Every account of the organization, through the assumed role.
    all_accounts: Option<bool>,
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

/// EC2 instances across accounts and regions.
#[utoipa::path(
    get,
    path = "/reports/aws/ec2",
    tag = "reports",
    security(("bearer" = [])),
    params(
        TargetQuery,
        ("state" = Option<String>, Query, description = "Only instances in this state"),
        ("type" = Option<String>, Query, description = "Only this instance type"),
        ("tag" = Option<Vec<String>>, Query, description = "key=value; repeatable", style = Form, explode),
        ("service" = Option<String>, Query, description = "Only the resources of this registered service"),
        ("tags" = Option<bool>, Query, description = "Include every tag of each instance")
    ),
    responses(AwsReportResponses)
)]
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

/// RDS DB instances across accounts and regions.
#[utoipa::path(
    get,
    path = "/reports/aws/rds",
    tag = "reports",
    security(("bearer" = [])),
    params(
        TargetQuery,
        ("engine" = Option<String>, Query, description = "Comma-separated engines"),
        ("tag" = Option<Vec<String>>, Query, description = "key=value; repeatable", style = Form, explode),
        ("service" = Option<String>, Query, description = "Only the resources of this registered service")
    ),
    responses(AwsReportResponses)
)]
#[tracing::instrument(skip_all)]
async fn rds_report(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = ReportParams::parse(raw.as_deref(), &headers)?;
    let mut query = RdsQuery {
        targets: params.targets,
        ..RdsQuery::default()
    };
    for (key, value) in params.rest {
        match key.as_str() {
            "engine" => query.engines.extend(list(&value)),
            "tag" => query
                .tags
                .push(parse_tag(&value).map_err(|m| ApiError::bad_parameter("tag", m))?),
            "service" => query.service = Some(value),
            other => return Err(unknown(other, "engine, tag, service")),
        }
    }
    let services = repo::list_all(&state.db, &ServiceFilter::default()).await?;
    let aws = state.aws.get(&state.settings.aws).await;
    let report =
        rds::instance_report(aws, &query, &ServiceMatcher::new(&services), &NoProgress).await?;
    respond(&state, &report, params.format, &Extras::default())
}

/// Lambda functions, deprecated runtimes flagged.
#[utoipa::path(
    get,
    path = "/reports/aws/lambda",
    tag = "reports",
    security(("bearer" = [])),
    params(
        TargetQuery
    ),
    responses(AwsReportResponses)
)]
#[tracing::instrument(skip_all)]
async fn lambda_report(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = ReportParams::parse(raw.as_deref(), &headers)?;
    let mut query = LambdaQuery {
        targets: params.targets,
        ..LambdaQuery::default()
    };
    for (key, value) in params.rest {
        match key.as_str() {
            "runtime" => query.runtimes.extend(list(&value)),
            "deprecated" => query.deprecated_only = flag("deprecated", &value)?,
            other => return Err(unknown(other, "runtime, deprecated")),
        }
    }
    let aws = state.aws.get(&state.settings.aws).await;
    let report = lambdas::function_report(aws, &query, &NoProgress).await?;
    respond(&state, &report, params.format, &Extras::default())
}

/// Accounts of the organization with their OU path.
#[utoipa::path(
    get,
    path = "/reports/aws/organizations",
    tag = "reports",
    security(("bearer" = [])),
    params(
        TargetQuery
    ),
    responses(AwsReportResponses)
)]
#[tracing::instrument(skip_all)]
async fn organizations_report(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = ReportParams::parse(raw.as_deref(), &headers)?;
    if let Some((other, _)) = params.rest.first() {
        return Err(unknown(other, "no report-specific parameters"));
    }
    let aws = state.aws.get(&state.settings.aws).await;
    let report = organizations::account_report(aws, &NoProgress).await?;
    respond(&state, &report, params.format, &Extras::default())
}

fn parse_date(name: &str, value: &str) -> Result<time::Date, ApiError> {
    time::Date::parse(
        value,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|e| ApiError::bad_parameter(name, format!("expected YYYY-MM-DD: {e}")))
}

/// The registered services that have tags, as (name, tags).
async fn tagged_services(
    state: &AppState,
) -> Result<Vec<(String, std::collections::BTreeMap<String, String>)>, ApiError> {
    Ok(repo::list_all(&state.db, &ServiceFilter::default())
        .await?
        .into_iter()
        .filter(|s| !s.tags.is_empty())
        .map(|s| (s.name, s.tags))
        .collect())
}

/// Cost Explorer: cost for a period, grouped, with change and top movers.
#[utoipa::path(
    get,
    path = "/reports/aws/ce",
    tag = "reports",
    security(("bearer" = [])),
    params(
        TargetQuery,
        ("start" = Option<String>, Query, description = "First day (YYYY-MM-DD)"),
        ("end" = Option<String>, Query, description = "First day not included (YYYY-MM-DD)"),
        ("granularity" = Option<String>, Query, description = "daily or monthly"),
        ("metric" = Option<String>, Query, description = "UnblendedCost, AmortizedCost, NetUnblendedCost, …"),
        ("group_by" = Option<String>, Query, description = "service, account, region, tag:KEY or registered_service"),
        ("forecast" = Option<bool>, Query, description = "Add a forecast through GetCostForecast")
    ),
    responses(AwsReportResponses)
)]
#[tracing::instrument(skip_all)]
async fn cost_report(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = ReportParams::parse(raw.as_deref(), &headers)?;
    let defaults = ce::default_period(time::OffsetDateTime::now_utc().date());
    let mut query = ce::CeQuery {
        period: defaults,
        granularity: ce::Granularity::Monthly,
        metric: "UnblendedCost".into(),
        group_by: None,
        forecast: false,
    };
    for (key, value) in params.rest {
        match key.as_str() {
            "start" => query.period.start = parse_date("start", &value)?,
            "end" => query.period.end = parse_date("end", &value)?,
            "granularity" => {
                query.granularity = ce::Granularity::parse(&value)
                    .map_err(|e| ApiError::bad_parameter("granularity", e.to_string()))?;
            }
            "metric" => query.metric = value,
            "group_by" => {
                query.group_by = Some(
                    ce::GroupBy::parse(&value)
                        .map_err(|e| ApiError::bad_parameter("group_by", e.to_string()))?,
                );
            }
            "forecast" => query.forecast = flag("forecast", &value)?,
            other => {
                return Err(unknown(
                    other,
                    "start, end, granularity, metric, group_by, forecast",
                ));
            }
        }
    }
    if let Err(e) = query.validate() {
        let name = if ce::METRICS.contains(&query.metric.as_str()) {
            "end"
        } else {
            "metric"
        };
        return Err(ApiError::bad_parameter(name, e.to_string()));
    }
    let services = if query.group_by == Some(ce::GroupBy::RegisteredService) {
        tagged_services(&state).await?
    } else {
        Vec::new()
    };
    let aws = state.aws.get(&state.settings.aws).await;
    let report = ce::cost_report(aws, &query, &services, &NoProgress).await?;
    let extras = Extras {
        chart_svg: Some(chart::cost_over_time(
            &ce::cost_over_time(&report.rows),
            &report.summary.unit,
        )),
    };
    respond(&state, &report, params.format, &extras)
}

/// What `GET /services/{key}/report` returns: the service, its resources found by its tags,
/// and its cost for the period.
#[derive(Debug, Serialize)]
pub struct ServiceReport {
    /// The registered service.
    pub service: crate::domain::service::Service,
    /// Its EC2 instances.
    pub ec2: Report<ec2::Ec2Row, ec2::Ec2Summary>,
    /// Its RDS DB instances.
    pub rds: Report<rds::RdsRow, rds::RdsSummary>,
    /// Its cost (Cost Explorer filtered on all of its tags).
    pub cost: Report<ce::CostRow, ce::CostSummary>,
}

fn worst(completeness: &[Completeness]) -> &'static str {
    if completeness.iter().all(|c| *c == Completeness::Complete) {
        "complete"
    } else if completeness.iter().all(|c| *c == Completeness::Failed) {
        "failed"
    } else {
        "partial"
    }
}

/// A registered service's resources (found by its tags) and its cost for the period.
#[utoipa::path(
    get,
    path = "/services/{key}/report",
    tag = "reports",
    security(("bearer" = [])),
    params(
        ("key" = String, Path, description = "Service id (UUID) or name"),
        TargetQuery,
        ("start" = Option<String>, Query, description = "First day (YYYY-MM-DD)"),
        ("end" = Option<String>, Query, description = "First day not included (YYYY-MM-DD)")
    ),
    responses(
        (status = 200, description = "The service, its EC2 and RDS resources and its cost", body = Object),
        (status = 404, description = "No such service", body = crate::routes::error::Problem, content_type = "application/problem+json"),
        (status = 400, description = "Bad parameter, named in errors", body = crate::routes::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = crate::routes::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the scope", body = crate::routes::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "AWS or the database could not be read at all", body = crate::routes::error::Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all, fields(service = %key))]
async fn service_report(
    State(state): State<AppState>,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = ReportParams::parse(raw.as_deref(), &headers)?;
    if params.format != ReportFormat::Json {
        return Err(ApiError::bad_parameter(
            "format",
            "the service report is JSON only",
        ));
    }
    let mut period = ce::default_period(time::OffsetDateTime::now_utc().date());
    for (name, value) in params.rest {
        match name.as_str() {
            "start" => period.start = parse_date("start", &value)?,
            "end" => period.end = parse_date("end", &value)?,
            other => return Err(unknown(other, "start, end")),
        }
    }
    let key = ServiceKey::parse(&key)
        .map_err(|_| ApiError::NotFound(format!("service {key:?} not found")))?;
    let service = repo::get(&state.db, &key).await?;
    let matcher = ServiceMatcher::new(&repo::list_all(&state.db, &ServiceFilter::default()).await?);
    let aws = state.aws.get(&state.settings.aws).await;
    let ec2_query = Ec2Query {
        targets: params.targets.clone(),
        service: Some((service.name.clone(), service.tags.clone())),
        ..Ec2Query::default()
    };
    let rds_query = RdsQuery {
        targets: params.targets,
        service: Some(service.name.clone()),
        ..RdsQuery::default()
    };
    let cost_query = ce::CeQuery {
        period,
        granularity: ce::Granularity::Monthly,
        metric: "UnblendedCost".into(),
        group_by: Some(ce::GroupBy::RegisteredService),
        forecast: false,
    };
    let ec2 = ec2::instance_report(aws, &ec2_query, &matcher, &NoProgress).await?;
    let rds = rds::instance_report(aws, &rds_query, &matcher, &NoProgress).await?;
    let services = if service.tags.is_empty() {
        Vec::new()
    } else {
        vec![(service.name.clone(), service.tags.clone())]
    };
    let cost = ce::cost_report(aws, &cost_query, &services, &NoProgress).await?;
    let completeness = worst(&[ec2.completeness(), rds.completeness(), cost.completeness()]);
    let mut response = axum::Json(ServiceReport {
        service,
        ec2,
        rds,
        cost,
    })
    .into_response();
    response
        .headers_mut()
        .insert(COMPLETENESS_HEADER, HeaderValue::from_static(completeness));
    Ok(response)
}

/// Chef nodes joined with the EC2 inventory: instances with no Chef node, and nodes whose
/// instance is gone or stopped.
#[utoipa::path(
    get,
    path = "/reports/chef/reconcile",
    tag = "reports",
    security(("bearer" = [])),
    params(
        TargetQuery,
        ("environment" = Option<String>, Query, description = "Only Chef nodes of this environment")
    ),
    responses(
        (status = 200, description = "The report; header pincher-report-completeness says complete, partial or failed", content(
            (Object = "application/json"),
            (String = "text/csv"),
            (String = "text/markdown"),
            (String = "text/html"),
            (String = "text/plain")
        )),
        (status = 400, description = "Bad parameter, named in errors", body = crate::routes::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = crate::routes::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the scope", body = crate::routes::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Chef is not configured", body = crate::routes::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Chef or AWS could not be read at all", body = crate::routes::error::Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
async fn chef_reconcile(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = ReportParams::parse(raw.as_deref(), &headers)?;
    let mut environment = None;
    for (key, value) in params.rest {
        match key.as_str() {
            "environment" => environment = Some(value),
            other => return Err(unknown(other, "environment")),
        }
    }
    if state.settings.chef.server_url.is_none() {
        return Err(ApiError::Conflict(
            "Chef is not configured: set chef.server_url, chef.client_name and chef.client_key"
                .into(),
        ));
    }
    let chef = crate::plugins::chef::ChefClient::from_settings(&state.settings.chef)
        .map_err(|e| ApiError::Unavailable(format!("cannot use the Chef settings: {e}")))?;
    let aws = state.aws.get(&state.settings.aws).await;
    let report = crate::plugins::chef::reconcile::reconcile_live(
        &chef,
        aws,
        &params.targets,
        environment.as_deref(),
        &NoProgress,
    )
    .await
    .map_err(|e| {
        tracing::warn!(error = %e, "reconcile failed");
        ApiError::Unavailable(e.to_string())
    })?;
    respond(&state, &report, params.format, &Extras::default())
}
