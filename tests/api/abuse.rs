//! What a hostile client sends, answered with a 4xx naming the limit it broke: too many tag
//! filters, huge or deep metadata, dates outside the calendar pincher reports on, and more
//! regions or accounts than a report may name.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{assert_problem, spawn_app};

/// Every message in a problem: its detail and its field errors.
fn messages(problem: &Value) -> String {
    let mut text = problem["detail"].as_str().unwrap_or_default().to_owned();
    for error in problem["errors"].as_array().into_iter().flatten() {
        text.push('\n');
        text.push_str(&error.to_string());
    }
    text
}

/// `{"a": {"a": … 1 …}}`, `depth` objects deep.
fn nested(depth: usize) -> Value {
    let mut value = json!(1);
    for _ in 0..depth {
        value = json!({ "a": value });
    }
    value
}

both_backends! {
    async fn too_many_tag_filters_are_400_naming_the_limit(backend) {
        let app = spawn_app(backend).await;
        let query: Vec<String> = (0..2000).map(|i| format!("tag=k{i}:v")).collect();
        let response = app.get(&format!("/services?{}", query.join("&"))).await;
        let problem = assert_problem(response, 400).await;
        assert!(messages(&problem).contains("limits.tag_filters"), "{problem}");

        let query: Vec<String> = (0..20).map(|i| format!("tag=k{i}:v")).collect();
        let response = app.get(&format!("/services?{}", query.join("&"))).await;
        assert_eq!(response.status(), 200);
        let query: Vec<String> = (0..21).map(|i| format!("tag=k{i}:v")).collect();
        let response = app.get(&format!("/services?{}", query.join("&"))).await;
        assert_problem(response, 400).await;
    }

    async fn metadata_is_capped_in_size_and_depth(backend) {
        let app = spawn_app(backend).await;
        let big = "x".repeat(650 * 1024);
        let response = app
            .create_service(&json!({"name": "big", "owner": "t", "metadata": {"blob": big}}))
            .await;
        let problem = assert_problem(response, 422).await;
        assert!(messages(&problem).contains("limits.metadata_bytes"), "{problem}");

        let response = app
            .create_service(&json!({"name": "deep", "owner": "t", "metadata": nested(33)}))
            .await;
        let problem = assert_problem(response, 422).await;
        assert!(messages(&problem).contains("limits.metadata_depth"), "{problem}");

        let response = app
            .create_service(&json!({"name": "fits", "owner": "t", "metadata": nested(32)}))
            .await;
        assert_eq!(response.status(), 201);
        // A patch cannot grow a service past the limit either.
        let response = app
            .request(Method::PATCH, "/services/fits")
            .header("content-type", "application/merge-patch+json")
            .json(&json!({"metadata": {"blob": "y".repeat(70 * 1024)}}))
            .send()
            .await
            .expect("send");
        assert_problem(response, 422).await;
        let response = app.get("/services?limit=500").await;
        assert_eq!(response.status(), 200);
        let page: Value = response.json().await.expect("json");
        assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    }

    async fn report_dates_outside_2000_to_2100_are_refused(backend) {
        let app = spawn_app(backend).await;
        for query in [
            "start=0000-01-02&end=9999-12-31",
            "start=1999-12-31&end=2000-02-01",
            "start=2100-12-01&end=2101-01-01",
        ] {
            let response = app.get(&format!("/reports/aws/ce?{query}")).await;
            let status = response.status().as_u16();
            assert!((400..500).contains(&status), "{query}: {status}");
            let problem: Value = response.json().await.expect("problem");
            assert!(messages(&problem).contains("limits."), "{query}: {problem}");
        }
    }

    async fn regions_and_accounts_are_deduplicated_then_capped(backend) {
        let app = spawn_app(backend).await;
        let regions: Vec<String> = (0..51).map(|i| format!("r-{i}")).collect();
        let response = app
            .request(Method::POST, "/actions/aws.ec2.report/runs")
            .json(&json!({"regions": regions}))
            .send()
            .await
            .expect("send");
        let problem = assert_problem(response, 422).await;
        assert!(messages(&problem).contains("limits.regions"), "{problem}");

        let accounts: Vec<String> = (0..1001).map(|i| format!("{i:012}")).collect();
        let response = app
            .request(Method::POST, "/actions/aws.ec2.report/runs")
            .json(&json!({"accounts": accounts}))
            .send()
            .await
            .expect("send");
        let problem = assert_problem(response, 422).await;
        assert!(messages(&problem).contains("limits.accounts"), "{problem}");

    }
}
