//! The dashboard a browser gets at `/`, each service's page, and the login and logout forms.
//! Server-rendered from minijinja templates, with inline CSS and SVG and no script. The API
//! tokens sign in here too: the login form keeps the token in an HttpOnly, SameSite=Strict
//! cookie; the one form that changes state (run a rule) carries a CSRF token derived from it.
//! These pages are not part of the API, so not in its OpenAPI document.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::{Value as TemplateValue, context};

use super::extract::FormFields;
use crate::actions::Valid;
use crate::actions::service_report::{ServiceReport, ServiceReportParams};
use crate::config::AuthMode;
use crate::domain::run::RunFilter;
use crate::domain::service::ServiceKey;
use crate::domain::token::Scope;
use crate::middleware::auth::{self, SESSION_COOKIE};
use crate::middleware::{ApiError, AppState};
use crate::render::Section;
use crate::render::chart;

/// The page routes, for the router and for the metrics' route label.
pub const ROUTES: &[&str] = &[
    "/login",
    "/logout",
    "/dashboard/services/{key}",
    "/dashboard/rules/{key}/run",
];

/// The Content-Security-Policy of the dashboard's pages: inline styles and SVG, forms to this
/// origin only; no script, no outside resource, no framing.
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                        form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The CSRF key of sessions when authentication is disabled (there is no token to derive it
/// from): random per process.
static ANONYMOUS_KEY: LazyLock<String> = LazyLock::new(|| {
    let mut bytes = [0u8; 32];
    // Without randomness the forms refuse every post, which is safe.
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
});

/// The routes of the pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/dashboard/services/{key}", get(service_page))
        .route("/dashboard/rules/{key}/run", post(run_rule))
}

/// Who is looking at a page, and what they may do there.
struct Viewer {
    /// The token's name, when signed in.
    name: Option<String>,
    scope: Option<Scope>,
    /// The key the page's CSRF tokens derive from.
    key: Option<String>,
}

impl Viewer {
    fn can_write(&self) -> bool {
        self.scope.is_some_and(|s| s >= Scope::Write)
    }

    fn csrf(&self) -> String {
        self.key
            .as_deref()
            .map(auth::csrf_token)
            .unwrap_or_default()
    }
}

/// The viewer of a page, or `None` when the page needs a login it does not have.
async fn viewer(state: &AppState, headers: &HeaderMap) -> Option<Viewer> {
    if state.settings.auth.mode == AuthMode::Disabled {
        return Some(Viewer {
            name: None,
            scope: Some(Scope::Admin),
            key: Some(ANONYMOUS_KEY.clone()),
        });
    }
    match auth::session(state, headers).await {
        Some((token, presented)) => Some(Viewer {
            name: Some(token.name),
            scope: Some(token.scope),
            key: Some(presented),
        }),
        None if state.settings.dashboard.public => Some(Viewer {
            name: None,
            scope: None,
            key: None,
        }),
        None => None,
    }
}

/// The report links of every page's header.
fn report_links() -> Vec<(&'static str, &'static str)> {
    vec![
        ("EC2", "/reports/aws/ec2?format=html"),
        ("RDS", "/reports/aws/rds?format=html"),
        ("EBS", "/reports/aws/ebs?format=html"),
        ("Lambda", "/reports/aws/lambda?format=html"),
        ("Savings", "/reports/aws/savings?format=html"),
        ("Cost", "/reports/aws/ce?format=html"),
        ("Accounts", "/reports/aws/organizations?format=html"),
        ("Chef", "/reports/chef/reconcile?format=html"),
    ]
}

/// A rendered page with the dashboard's headers.
fn page(state: &AppState, status: StatusCode, name: &str, ctx: TemplateValue) -> Response {
    match state.templates.render(name, ctx) {
        Ok(html) => {
            let mut response = (status, html).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(PAGE_CSP),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            );
            response
        }
        Err(e) => ApiError::Internal(format!("cannot render {name}: {e}")).into_response(),
    }
}

/// A 303 to `to`.
fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}

fn now() -> String {
    crate::report::timestamp(time::OffsetDateTime::now_utc())
}

/// `GET /` from a browser: the dashboard.
pub async fn home(state: &AppState, headers: &HeaderMap, notice: Option<String>) -> Response {
    let Some(viewer) = viewer(state, headers).await else {
        return auth::to_login("/", None);
    };
    let services = crate::db::services::list_all(&state.db, &Default::default()).await;
    let backups = crate::dashboard::backups(&state.app).await;
    let waste = crate::dashboard::waste(&state.app).await;
    let runs = crate::db::runs::list(&state.db, &RunFilter::default(), 10, None).await;
    let (services, backups, waste, runs) = match (services, backups, waste, runs) {
        (Ok(s), Ok(b), Ok(w), Ok(r)) => (s, b, w, r.items),
        (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => {
            return ApiError::from(e).into_response();
        }
    };
    let costs = state.costs.get(&state.app).await;
    let health = state.health.get(&state.app).await;
    let alert = state.settings.dashboard.backup_alert_hours;
    let runs: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| {
            serde_json::json!({
                "started_at": crate::report::timestamp(r.started_at),
                "action": r.action,
                "trigger": r.trigger,
                "actor": r.actor,
                "outcome": r.outcome,
                "error": r.error,
            })
        })
        .collect();
    page(
        state,
        StatusCode::OK,
        "dashboard.html.j2",
        context! {
            reports => report_links(),
            signed_in => viewer.name.is_some(),
            csrf => viewer.csrf(),
            viewer => viewer.name,
            scope => viewer.scope.map(|s| s.to_string()),
            public => state.settings.dashboard.public,
            now => now(),
            notice => notice,
            services => TemplateValue::from_serialize(&services),
            costs => TemplateValue::from_serialize(&*costs),
            cost_chart => costs.monthly.as_ref().map(chart::render),
            backups => TemplateValue::from_serialize(&backups),
            backup_alert_hours => alert,
            backup_amber_hours => format!("{:.1}", alert as f64 * 0.75),
            waste => TemplateValue::from_serialize(&waste),
            runs => runs,
            health => TemplateValue::from_serialize(&health),
        },
    )
}

/// The note shown once on a page after its run form: `?started=<run id>`.
pub fn notice(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == "started")
        .map(|(_, id)| format!("Run {id} started."))
}

/// A service's page: what it is, its cost, its rules, its resources and their waste.
async fn service_page(
    State(state): State<AppState>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(viewer) = viewer(&state, &headers).await else {
        return auth::to_login(&format!("/dashboard/services/{key}"), None);
    };
    let not_found = || ApiError::NotFound(format!("service {key:?} not found")).into_response();
    let Ok(parsed) = ServiceKey::parse(&key) else {
        return not_found();
    };
    let service = match crate::db::services::get(&state.db, &parsed).await {
        Ok(service) => service,
        Err(crate::db::DbError::NotFound(_)) => return not_found(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let rules = match crate::db::rules::list_all(&state.db).await {
        Ok(rules) => rules
            .into_iter()
            .filter(|r| r.service.as_deref() == Some(service.name.as_str()))
            .collect::<Vec<_>>(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let params = ServiceReportParams {
        service: service.name.clone(),
        ..ServiceReportParams::default()
    };
    let mut problems = Vec::new();
    let report = match serde_json::to_value(params).map(Valid::from_json) {
        Ok(Ok(params)) => super::reports::run_report::<ServiceReport>(&state, &params)
            .await
            .map_err(|e| e.to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let (cost, resources) = match report {
        Ok(outcome) => (
            Some(Section::of(&outcome.cost)),
            vec![
                Section::of(&outcome.ec2),
                Section::of(&outcome.rds),
                Section::of(&outcome.ebs),
                Section::of(&outcome.lambda),
                Section::of(&outcome.savings),
            ],
        ),
        Err(e) => {
            problems.push(format!("Its resources and cost could not be read: {e}"));
            (None, Vec::new())
        }
    };
    page(
        &state,
        StatusCode::OK,
        "service.html.j2",
        context! {
            reports => report_links(),
            signed_in => viewer.name.is_some(),
            csrf => viewer.csrf(),
            can_write => viewer.can_write(),
            notice => notice(query.as_deref()),
            service => TemplateValue::from_serialize(&service),
            rules => TemplateValue::from_serialize(&rules),
            cost => TemplateValue::from_serialize(&cost),
            resources => TemplateValue::from_serialize(&resources),
            problems => problems,
        },
    )
}

/// Where to go after logging in: a path on this site, else `/`.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(next) if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') => {
            next.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn login_page(state: &AppState, status: StatusCode, next: &str, error: Option<&str>) -> Response {
    page(
        state,
        status,
        "login.html.j2",
        context! {
            reports => report_links(),
            signed_in => false,
            next => next,
            error => error,
        },
    )
}

/// The login form.
async fn login_form(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let next = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == "next")
        .map(|(_, next)| next.into_owned());
    let next = local_path(next.as_deref());
    login_page(&state, StatusCode::OK, &next, None)
}

/// Checks the token sent and keeps it in the session cookie.
async fn login(State(state): State<AppState>, headers: HeaderMap, form: FormFields) -> Response {
    let next = local_path(form.0.get("next").map(String::as_str));
    let token = match form.required("token") {
        Ok(token) => token.trim(),
        Err(e) => return e.into_response(),
    };
    if auth::verify(&state, token).await.is_none() {
        return login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            &next,
            Some("That token is not valid, has expired or was revoked."),
        );
    }
    let secure = if https(&headers) { "; Secure" } else { "" };
    let cookie = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}");
    let mut response = see_other(&next);
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Whether the browser reached pincher over TLS (ended at a proxy in front of it).
fn https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// Clears the session cookie.
async fn logout(headers: HeaderMap) -> Response {
    let secure = if https(&headers) { "; Secure" } else { "" };
    let mut response = see_other("/login");
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Runs a rule now from its service's page, for a session with a write token.
async fn run_rule(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    form: FormFields,
) -> Response {
    let Some(viewer) = viewer(&state, &headers).await else {
        return auth::to_login("/", None);
    };
    let sent = form.0.get("csrf").map_or("", String::as_str);
    let valid = viewer
        .key
        .as_deref()
        .is_some_and(|key| auth::csrf_valid(key, sent));
    if !valid {
        return ApiError::Forbidden(
            "the form's CSRF token is missing or wrong; reload the page and try again".into(),
        )
        .into_response();
    }
    if !viewer.can_write() {
        return ApiError::Forbidden("running a rule needs a token with scope write".into())
            .into_response();
    }
    let Ok(parsed) = ServiceKey::parse(&key) else {
        return ApiError::NotFound(format!("rule {key:?} not found")).into_response();
    };
    let rule = match crate::db::rules::get(&state.db, &parsed).await {
        Ok(rule) => rule,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let back = rule
        .service
        .as_ref()
        .map_or_else(|| "/".to_owned(), |s| format!("/dashboard/services/{s}"));
    let actor = viewer.name.unwrap_or_else(|| "anonymous".into());
    let owner = crate::scheduler::replica_name();
    match crate::scheduler::start_now(&state.app, rule, &actor, false, &owner).await {
        Ok((id, _done)) => see_other(&format!("{back}?started={id}")),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_returns_only_to_this_site() {
        assert_eq!(
            local_path(Some("/dashboard/services/web")),
            "/dashboard/services/web"
        );
        assert_eq!(local_path(Some("//evil.example/")), "/");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(None), "/");
    }
}
