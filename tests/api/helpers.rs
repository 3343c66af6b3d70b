//! `spawn_app()`: the application on a free port with a fresh, migrated database.

use std::sync::Once;

use pincher::config::{DatabaseUrl, Settings};
use pincher::domain::token::Scope;
use pincher::middleware::AppState;
use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::Value;

use crate::support::database::{Backend, TestDatabase};

/// A running application and what it needs to be torn down.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// A client without redirects or proxies.
    pub client: Client,
    /// The application's state.
    pub state: AppState,
    /// The admin token `client` sends (empty for an unmigrated app).
    pub token: String,
    /// The database, dropped (PostgreSQL) when the test ends.
    _database: Option<TestDatabase>,
}

fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let target = pincher::config::logging::LogTarget::default();
            if let Ok(guard) = pincher::config::logging::init(
                pincher::config::LogFormat::Pretty,
                "debug",
                &target,
                &Default::default(),
            ) {
                // Kept for the rest of the test process: its writer thread must live on.
                std::mem::forget(guard);
            }
        }
    });
}

/// Starts the app on `backend` with default settings.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts the app on `backend` after `configure` adjusts the settings.
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let database = TestDatabase::create(backend).await;
    let url = database.url.clone();
    let mut app = spawn_app_unmigrated(&url, configure).await;
    app.state
        .db
        .migrate()
        .await
        .expect("migrate the test database");
    app._database = Some(database);
    let token = app.create_token("test-admin", Scope::Admin).await;
    app.client = client_with_token(Some(&token));
    app.token = token;
    app
}

/// A client without redirects or proxies, sending `token` on every request if given.
pub fn client_with_token(token: Option<&str>) -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        let mut value =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).expect("header");
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .default_headers(headers)
        .build()
        .expect("build a client")
}

/// Starts the app on the database at `url` as it is: not created, not migrated (it may be
/// unreachable).
pub async fn spawn_app_unmigrated(url: &str, configure: impl FnOnce(&mut Settings)) -> TestApp {
    init_tracing();
    let mut settings = Settings::default();
    settings.database.url = DatabaseUrl::new(url);
    settings.server.port = 0;
    configure(&mut settings);
    let state = AppState::new(settings).expect("build the app state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let address = format!("http://{}", listener.local_addr().expect("local address"));
    let app = pincher::routes::router(state.clone());
    let limits = pincher::server::ConnectionLimits::from_settings(&state.settings.server);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        pincher::server::serve(listener, move || app.connection(), limits, stopped).await;
        drop(stop);
    });
    let client = client_with_token(None);
    TestApp {
        address,
        client,
        state,
        token: String::new(),
        _database: None,
    }
}

impl TestApp {
    /// A request to `path` on the app.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
    }

    /// Creates a token in the app's database and returns its secret.
    pub async fn create_token(&self, name: &str, scope: Scope) -> String {
        let new = pincher::domain::token::generate().expect("randomness");
        pincher::db::tokens::create(&self.state.db, name, scope, &new.hash, &new.prefix, None)
            .await
            .expect("store the token");
        new.expose().to_owned()
    }

    /// The SQLite file of the app, when it runs on SQLite.
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        self._database
            .as_ref()
            .filter(|d| d.url.starts_with("sqlite:"))
            .map(|d| d.dir.path().join("pincher.db"))
    }

    /// A request to `path` without the default token.
    pub fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        client_with_token(None).request(method, format!("{}{path}", self.address))
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.expect("send")
    }

    /// `POST /services` with a JSON body.
    pub async fn create_service(&self, body: &Value) -> Response {
        self.request(Method::POST, "/services")
            .json(body)
            .send()
            .await
            .expect("send")
    }
}

/// Asserts `response` is a problem document with `status`, and returns it.
pub async fn assert_problem(response: Response, status: u16) -> Value {
    assert_eq!(
        response.status().as_u16(),
        status,
        "status of {}",
        response.url()
    );
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("a JSON problem body");
    assert_eq!(body["status"], status);
    assert!(body["type"].is_string() && body["title"].is_string() && body["detail"].is_string());
    body
}

/// The field names of a problem's `errors` list.
pub fn problem_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
