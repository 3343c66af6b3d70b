//! Bearer tokens and scopes on every endpoint; token management over HTTP.

use pincher::config::AuthMode;
use pincher::domain::token::Scope;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{assert_problem, spawn_app, spawn_app_with};

both_backends! {
    async fn requests_without_a_token_are_401_with_a_challenge(backend) {
        let app = spawn_app(backend).await;
        for (method, path) in [
            (Method::GET, "/services"),
            (Method::GET, "/services/billing"),
            (Method::POST, "/services"),
            (Method::DELETE, "/services/billing"),
            (Method::GET, "/tokens"),
            (Method::GET, "/no/such/route"),
        ] {
            let response = app.anonymous(method.clone(), path).send().await.expect("send");
            assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"pincher\"", "{method} {path}");
            assert_problem(response, 401).await;
        }
        let response = app.anonymous(Method::GET, "/services").bearer_auth("pincher_not-a-real-token").send().await.expect("send");
        assert!(response.headers()["www-authenticate"].to_str().expect("text").contains("invalid_token"));
        assert_problem(response, 401).await;
        let response = app
            .anonymous(Method::GET, "/services")
            .header("authorization", format!("Basic {}", app.token))
            .send()
            .await
            .expect("send");
        assert_problem(response, 401).await;
    }

    async fn public_endpoints_need_no_token(backend) {
        let app = spawn_app(backend).await;
        for path in ["/", "/status", "/status/live", "/status/ready", "/metrics"] {
            let response = app.anonymous(Method::GET, path).send().await.expect("send");
            assert_eq!(response.status(), 200, "{path}");
        }
    }

    async fn scopes_limit_what_a_token_may_do(backend) {
        let app = spawn_app(backend).await;
        let read = app.create_token("reader", Scope::Read).await;
        let write = app.create_token("writer", Scope::Write).await;
        let body = json!({"name": "billing", "owner": "payments"});

        let response = app.anonymous(Method::POST, "/services").bearer_auth(&read).json(&body).send().await.expect("send");
        assert!(response.headers()["www-authenticate"].to_str().expect("text").contains("insufficient_scope"));
        let problem = assert_problem(response, 403).await;
        assert!(problem["detail"].as_str().expect("detail").contains("write"), "{problem}");

        let response = app.anonymous(Method::POST, "/services").bearer_auth(&write).json(&body).send().await.expect("send");
        assert_eq!(response.status(), 201);
        let response = app.anonymous(Method::GET, "/services/billing").bearer_auth(&read).send().await.expect("send");
        assert_eq!(response.status(), 200);
        let response = app.anonymous(Method::GET, "/tokens").bearer_auth(&write).send().await.expect("send");
        assert_problem(response, 403).await;
        let response = app.anonymous(Method::DELETE, "/services/billing").bearer_auth(&read).send().await.expect("send");
        assert_problem(response, 403).await;
        assert_eq!(app.get("/services/billing").await.status(), 200, "nothing was deleted");
    }

    async fn tokens_are_managed_over_http_and_shown_once(backend) {
        let app = spawn_app(backend).await;
        let response = app.request(Method::POST, "/tokens").json(&json!({"name": "ci", "scope": "read"})).send().await.expect("send");
        assert_eq!(response.status(), 201);
        let created: Value = response.json().await.expect("json");
        let secret = created["token"].as_str().expect("token").to_owned();
        assert!(secret.starts_with("pincher_"));
        assert_eq!(created["scope"], "read");
        assert!(secret.starts_with(created["prefix"].as_str().expect("prefix")));

        let response = app.anonymous(Method::GET, "/services").bearer_auth(&secret).send().await.expect("send");
        assert_eq!(response.status(), 200);

        let listed = app.get("/tokens").await.text().await.expect("text");
        assert!(!listed.contains(&secret), "{listed}");
        assert!(!listed.contains(&pincher::domain::token::hash(&secret)), "{listed}");
        let listed: Value = serde_json::from_str(&listed).expect("json");
        let names: Vec<_> = listed.as_array().expect("array").iter().map(|t| t["name"].clone()).collect();
        assert_eq!(names, vec![json!("test-admin"), json!("ci")]);

        let response = app.request(Method::POST, "/tokens").json(&json!({"name": "ci", "scope": "read"})).send().await.expect("send");
        assert_problem(response, 409).await;
        let response = app.request(Method::POST, "/tokens").json(&json!({"name": "x", "scope": "root", "ttl": 1})).send().await.expect("send");
        let problem = assert_problem(response, 422).await;
        assert_eq!(crate::helpers::problem_fields(&problem), vec!["ttl", "scope"]);

        let response = app.request(Method::DELETE, "/tokens/ci").send().await.expect("send");
        assert_eq!(response.status(), 204);
        let response = app.anonymous(Method::GET, "/services").bearer_auth(&secret).send().await.expect("send");
        assert_problem(response, 401).await;
        let listed: Value = app.get("/tokens").await.json().await.expect("json");
        assert!(listed[1]["revoked_at"].is_string(), "{listed}");
        assert_problem(app.request(Method::DELETE, "/tokens/nope").send().await.expect("send"), 404).await;
    }

    async fn refused_requests_are_counted_by_reason(backend) {
        let app = spawn_app(backend).await;
        let read = app.create_token("reader", Scope::Read).await;
        app.anonymous(Method::GET, "/services").send().await.expect("send");
        app.anonymous(Method::GET, "/services").bearer_auth("pincher_wrong").send().await.expect("send");
        app.anonymous(Method::GET, "/services").bearer_auth("pincher_wrong").send().await.expect("send");
        app.anonymous(Method::GET, "/tokens").bearer_auth(&read).send().await.expect("send");
        let metrics = app.get("/metrics").await.text().await.expect("text");
        for (reason, count) in [("missing", 1), ("invalid", 2), ("scope", 1)] {
            assert!(metrics.contains(&format!("pincher_auth_failures_total{{reason=\"{reason}\"}} {count}")), "{reason}\n{metrics}");
        }
        assert!(!metrics.contains(&read));
    }

    async fn disabled_auth_lets_everything_through(backend) {
        let app = spawn_app_with(backend, |s| s.auth.mode = AuthMode::Disabled).await;
        let response = app.anonymous(Method::POST, "/services").json(&json!({"name": "a", "owner": "b"})).send().await.expect("send");
        assert_eq!(response.status(), 201);
        assert_eq!(app.anonymous(Method::GET, "/tokens").send().await.expect("send").status(), 200);
    }
}

/// The value of `pincher_token_lookups_total{result}` in a scrape.
fn lookups(metrics: &str, result: &str) -> u64 {
    let prefix = format!("pincher_token_lookups_total{{result=\"{result}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

both_backends! {
    async fn a_repeated_bad_token_reaches_the_database_once(backend) {
        // The negative cache outlives the run however slow the machine (250 refusals).
        let app = spawn_app_with(backend, |s| s.auth.negative_cache_secs = 300).await;
        let bogus = format!("pincher_{}", "A".repeat(43));
        for _ in 0..200 {
            let response = app.anonymous(Method::GET, "/services").bearer_auth(&bogus).send().await.expect("send");
            assert_eq!(response.status(), 401);
        }
        // Not even shaped like a token: refused without a lookup.
        for _ in 0..50 {
            let response = app.anonymous(Method::GET, "/services").bearer_auth("pincher_short").send().await.expect("send");
            assert_eq!(response.status(), 401);
        }
        let metrics = app.get("/metrics").await.text().await.expect("text");
        assert_eq!(lookups(&metrics, "unknown"), 1, "{metrics}");
        assert!(metrics.contains("pincher_auth_failures_total{reason=\"invalid\"} 250"), "{metrics}");
    }

    async fn tokens_expire_and_record_their_last_use(backend) {
        let app = spawn_app(backend).await;
        let past = json!({"name": "old", "scope": "read", "expires_at": "2020-01-01T00:00:00Z"});
        let response = app.request(Method::POST, "/tokens").json(&past).send().await.expect("send");
        let problem = assert_problem(response, 422).await;
        assert_eq!(crate::helpers::problem_fields(&problem), vec!["expires_at"]);

        let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
        let soon = soon.format(&time::format_description::well_known::Rfc3339).expect("format");
        let response = app
            .request(Method::POST, "/tokens")
            .json(&json!({"name": "brief", "scope": "read", "expires_at": soon}))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 201);
        let created: Value = response.json().await.expect("json");
        assert!(created["expires_at"].is_string(), "{created}");
        assert!(created["last_used_at"].is_null(), "{created}");
        let secret = created["token"].as_str().expect("token").to_owned();

        let response = app.anonymous(Method::GET, "/services").bearer_auth(&secret).send().await.expect("send");
        assert_eq!(response.status(), 200);
        let listed: Value = app.get("/tokens").await.json().await.expect("json");
        let brief = listed.as_array().expect("array").iter().find(|t| t["name"] == "brief").expect("listed").clone();
        assert!(brief["last_used_at"].is_string(), "{brief}");

        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        let response = app.anonymous(Method::GET, "/services").bearer_auth(&secret).send().await.expect("send");
        assert_problem(response, 401).await;
    }
}
