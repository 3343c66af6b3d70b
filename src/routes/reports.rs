//! `/reports/*`: the report actions over HTTP — their params read from the query string —
//! as JSON (the default), CSV, Markdown, HTML or a text table by `format=` or `Accept`.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{self, RefOr, ResponseBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::actions::chef_reconcile::ChefReconcile;
use crate::actions::cost_report::CostReport;
use crate::actions::ebs_report::EbsReport;
use crate::actions::ec2_report::Ec2Report;
use crate::actions::lambda_report::LambdaReport;
use crate::actions::organizations_report::OrganizationsReport;
use crate::actions::params::from_query;
use crate::actions::rds_report::RdsReport;
use crate::actions::runner::execute;
use crate::actions::savings_report::SavingsReport;
use crate::actions::service_report::ServiceReport;
use crate::actions::{Action, ActionError, Preapproved, RunOptions, Valid};
use crate::domain::ValidationErrors;
use crate::domain::run::Trigger;
use crate::middleware::{ApiError, AppState};
use crate::plugins::NoProgress;
use crate::render::{ReportFormat, render_report};
use crate::report::{Completeness, Headline, Report, Tabular};

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
        let problem = crate::middleware::error::problem_response;
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
        .routes(routes!(ebs_report))
        .routes(routes!(savings_report))
        .routes(routes!(lambda_report))
        .routes(routes!(organizations_report))
        .routes(routes!(cost_report))
        .routes(routes!(service_report))
        .routes(routes!(chef_reconcile))
}

/// The query parameters every AWS report takes (documentation; the action's params parse
/// them).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "documents the parameters that the report actions' params parse"
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

/// A 400 naming each query parameter at fault.
fn bad_query(errors: ValidationErrors) -> ApiError {
    let detail = errors
        .0
        .iter()
        .map(|e| format!("invalid query parameter {}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ");
    ApiError::BadRequest {
        detail,
        errors: errors.0,
    }
}

/// The response format (from `format=` or `Accept`) and the params of `A` (the rest of the
/// query).
pub fn query_params<A: Action>(
    raw: Option<&str>,
    headers: &HeaderMap,
) -> Result<(ReportFormat, Valid<A::Params>), ApiError> {
    let mut format = None;
    let mut rest = Vec::new();
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if key == "format" {
            format = Some(value.into_owned());
        } else {
            rest.push((key.into_owned(), value.into_owned()));
        }
    }
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = ReportFormat::negotiate(format.as_deref(), accept)
        .map_err(|m| ApiError::bad_parameter("format", m))?;
    let params = from_query::<A::Params>(&rest)
        .and_then(Valid::from_json)
        .map_err(bad_query)?;
    Ok((format, params))
}

/// Runs a report action for a request (not recorded) and maps its failure to a problem.
pub(crate) async fn run_report<A: Action>(
    state: &AppState,
    params: &Valid<A::Params>,
) -> Result<A::Outcome, ApiError> {
    let options = RunOptions {
        trigger: Trigger::Http,
        actor: "http".into(),
        dry_run: false,
        record: false,
    };
    execute::<A>(&state.app, params, &options, &NoProgress, &Preapproved)
        .await
        .result
        .map_err(report_error)
}

/// A report action's failure as a problem: bad params are the query's fault (400).
fn report_error(e: ActionError) -> ApiError {
    match e {
        ActionError::Invalid(errors) => bad_query(errors),
        ActionError::NotFound(detail) => ApiError::NotFound(detail),
        ActionError::NotConfigured(detail) | ActionError::Refused(detail) => {
            ApiError::Conflict(detail)
        }
        ActionError::Declined => ApiError::Conflict(e.to_string()),
        ActionError::Unavailable(detail) => {
            tracing::warn!(error = %detail, "a report could not be read");
            ApiError::Unavailable(detail)
        }
        ActionError::Internal(detail) => ApiError::Internal(detail),
    }
}

fn completeness_value(completeness: Completeness) -> HeaderValue {
    HeaderValue::from_static(match completeness {
        Completeness::Complete => "complete",
        Completeness::Partial => "partial",
        Completeness::Failed => "failed",
    })
}

/// Renders a report as the negotiated format.
fn respond<R, S>(
    state: &AppState,
    report: &Report<R, S>,
    format: ReportFormat,
) -> Result<Response, ApiError>
where
    R: Tabular + Serialize,
    S: Serialize + Headline<R>,
{
    let body = render_report(report, format, &state.templates)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(
        COMPLETENESS_HEADER,
        completeness_value(report.completeness()),
    );
    if format == ReportFormat::Html {
        // Report data comes from AWS tags and Chef attributes: even if some escaped the
        // template's escaping, no script, frame or outside resource could run or load.
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(report_csp()),
        );
    }
    Ok(response)
}

/// The Content-Security-Policy of HTML reports: inline styles and SVG, and the one script
/// that sorts the table, allowed by its hash; no other script, no outside resource, no
/// framing, no form.
pub fn report_csp() -> &'static str {
    static CSP: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src '{}'; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            crate::render::script_hash(crate::render::SORT_SCRIPT)
        )
    });
    &CSP
}

/// Runs the report action `A` on the request's query and renders its report.
async fn report<A, R, S>(
    state: &AppState,
    raw: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, ApiError>
where
    A: Action<Outcome = Report<R, S>>,
    R: Tabular + Serialize + Send + Sync + 'static,
    S: Serialize + Headline<R> + Send + Sync + 'static,
{
    let (format, params) = query_params::<A>(raw, headers)?;
    let report = run_report::<A>(state, &params).await?;
    respond(state, &report, format)
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
    report::<Ec2Report, _, _>(&state, raw.as_deref(), &headers).await
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
    report::<RdsReport, _, _>(&state, raw.as_deref(), &headers).await
}

/// EBS volumes and snapshots across accounts and regions, each with an estimated monthly
/// cost from the price table.
#[utoipa::path(
    get,
    path = "/reports/aws/ebs",
    tag = "reports",
    security(("bearer" = [])),
    params(
        TargetQuery,
        ("kind" = Option<String>, Query, description = "Comma-separated kinds: volumes, snapshots (default both)"),
        ("tag" = Option<Vec<String>>, Query, description = "key=value; repeatable", style = Form, explode),
        ("service" = Option<String>, Query, description = "Only the resources of this registered service")
    ),
    responses(AwsReportResponses)
)]
#[tracing::instrument(skip_all)]
async fn ebs_report(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    report::<EbsReport, _, _>(&state, raw.as_deref(), &headers).await
}

/// Waste across accounts and regions: each finding with why it is waste, its fix and an
/// estimated monthly cost, sorted by money, with totals by kind, account and service.
#[utoipa::path(
    get,
    path = "/reports/aws/savings",
    tag = "reports",
    security(("bearer" = [])),
    params(
        TargetQuery,
        ("kind" = Option<String>, Query, description = "Comma-separated kinds of finding (default all): unattached-volume, idle-address, orphaned-snapshot, stopped-instance, previous-generation, gp2-volume, deprecated-runtime, stopped-database, old-database-snapshot"),
        ("tag" = Option<Vec<String>>, Query, description = "key=value; repeatable", style = Form, explode),
        ("service" = Option<String>, Query, description = "Only the resources of this registered service"),
        ("snapshot_age_days" = Option<i64>, Query, description = "EBS snapshots of deleted volumes count from this age (default `savings.snapshot_age_days`)"),
        ("stopped_days" = Option<i64>, Query, description = "Instances count when stopped this many days (default `savings.stopped_days`)"),
        ("database_snapshot_age_days" = Option<i64>, Query, description = "Manual RDS snapshots count from this age (default `savings.database_snapshot_age_days`)")
    ),
    responses(AwsReportResponses)
)]
#[tracing::instrument(skip_all)]
async fn savings_report(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    report::<SavingsReport, _, _>(&state, raw.as_deref(), &headers).await
}

/// Lambda functions with their tags and registered service, deprecated runtimes flagged.
#[utoipa::path(
    get,
    path = "/reports/aws/lambda",
    tag = "reports",
    security(("bearer" = [])),
    params(
        TargetQuery,
        ("runtime" = Option<String>, Query, description = "Comma-separated runtimes"),
        ("deprecated" = Option<bool>, Query, description = "Only functions on deprecated runtimes"),
        ("tag" = Option<Vec<String>>, Query, description = "key=value; repeatable", style = Form, explode),
        ("service" = Option<String>, Query, description = "Only the functions of this registered service")
    ),
    responses(AwsReportResponses)
)]
#[tracing::instrument(skip_all)]
async fn lambda_report(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    report::<LambdaReport, _, _>(&state, raw.as_deref(), &headers).await
}

/// Accounts of the organization with their OU path.
#[utoipa::path(
    get,
    path = "/reports/aws/organizations",
    tag = "reports",
    security(("bearer" = [])),
    params(("format" = Option<String>, Query, description = "json (default), csv, markdown, html or table; or use Accept")),
    responses(AwsReportResponses)
)]
#[tracing::instrument(skip_all)]
async fn organizations_report(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    report::<OrganizationsReport, _, _>(&state, raw.as_deref(), &headers).await
}

/// Cost Explorer: cost for a period, grouped, with change and top movers.
#[utoipa::path(
    get,
    path = "/reports/aws/ce",
    tag = "reports",
    security(("bearer" = [])),
    params(
        ("format" = Option<String>, Query, description = "json (default), csv, markdown, html or table; or use Accept"),
        ("start" = Option<String>, Query, description = "First day (YYYY-MM-DD)"),
        ("end" = Option<String>, Query, description = "First day not included (YYYY-MM-DD)"),
        ("granularity" = Option<String>, Query, description = "daily or monthly"),
        ("metric" = Option<String>, Query, description = "UnblendedCost, AmortizedCost, NetUnblendedCost, …"),
        ("group_by" = Option<String>, Query, description = "service, account, region, tag:KEY or registered-service"),
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
    report::<CostReport, _, _>(&state, raw.as_deref(), &headers).await
}

/// A registered service's resources (found by its tags), the waste among them, and its cost
/// for the period.
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
        (status = 200, description = "The service, its EC2, RDS, EBS and Lambda resources, the waste among them, and its cost", body = Object),
        (status = 404, description = "No such service", body = crate::middleware::error::Problem, content_type = "application/problem+json"),
        (status = 400, description = "Bad parameter, named in errors", body = crate::middleware::error::Problem, content_type = "application/problem+json"),
        crate::middleware::error::AuthProblems,
        (status = 503, description = "AWS or the database could not be read at all", body = crate::middleware::error::Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all, fields(service = %key))]
async fn service_report(
    State(state): State<AppState>,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // The service named in the path: a name that is not one, or not registered, is a 404.
    let not_found = |e: ApiError| match &e {
        ApiError::BadRequest { errors, .. } if errors.iter().any(|f| f.field == "service") => {
            ApiError::NotFound(format!("service {key:?} not found"))
        }
        _ => e,
    };
    let mut query = raw.unwrap_or_default();
    if !query.is_empty() {
        query.push('&');
    }
    query.push_str(
        &url::form_urlencoded::Serializer::new(String::new())
            .append_pair("service", &key)
            .finish(),
    );
    let (format, params) =
        query_params::<ServiceReport>(Some(&query), &headers).map_err(not_found)?;
    if format != ReportFormat::Json {
        return Err(ApiError::bad_parameter(
            "format",
            "the service report is JSON only",
        ));
    }
    let outcome = run_report::<ServiceReport>(&state, &params)
        .await
        .map_err(not_found)?;
    let completeness = completeness_value(outcome.completeness());
    let mut response = axum::Json(outcome).into_response();
    response
        .headers_mut()
        .insert(COMPLETENESS_HEADER, completeness);
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
        (status = 400, description = "Bad parameter, named in errors", body = crate::middleware::error::Problem, content_type = "application/problem+json"),
        crate::middleware::error::AuthProblems,
        (status = 409, description = "Chef is not configured", body = crate::middleware::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Chef or AWS could not be read at all", body = crate::middleware::error::Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
async fn chef_reconcile(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    report::<ChefReconcile, _, _>(&state, raw.as_deref(), &headers).await
}
