//! `GET /`, unknown routes and the middleware every response goes through.

use reqwest::Method;

use crate::both_backends;
use crate::helpers::{assert_problem, spawn_app};

both_backends! {
    async fn index_links_to_the_api(backend) {
        let app = spawn_app(backend).await;
        let response = app.get("/").await;
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["name"], "pincher");
        assert_eq!(body["links"]["services"], "/services");
        assert_eq!(body["links"]["reports.aws.ec2"], "/reports/aws/ec2");
        assert_eq!(body["links"]["backups.opsmanager"], "/backups/opsmanager");
        // Every GET without a path parameter in the OpenAPI document is linked.
        let doc: serde_json::Value = app.get("/openapi.json").await.json().await.expect("json");
        let linked: Vec<&str> = body["links"].as_object().expect("links").values().filter_map(|v| v.as_str()).collect();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            if item.get("get").is_some() && !path.contains('{') && path != "/" {
                assert!(linked.contains(&path.as_str()), "{path} is not linked from /: {body}");
            }
        }
    }

    async fn unknown_routes_are_problem_404s(backend) {
        let app = spawn_app(backend).await;
        assert_problem(app.get("/no/such/thing").await, 404).await;
    }

    async fn wrong_methods_are_problem_405s(backend) {
        let app = spawn_app(backend).await;
        let response = app.request(Method::DELETE, "/services").send().await.expect("send");
        assert_problem(response, 405).await;
    }

    async fn request_ids_are_echoed_or_generated(backend) {
        let app = spawn_app(backend).await;
        let response = app
            .request(Method::GET, "/")
            .header("x-request-id", "trace-me-42")
            .send()
            .await
            .expect("send");
        assert_eq!(response.headers()["x-request-id"], "trace-me-42");
        let response = app.get("/services").await;
        let generated = response.headers()["x-request-id"].to_str().expect("text");
        assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");
    }
}
