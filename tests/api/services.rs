//! `/services`: CRUD, paging, filters, optimistic concurrency and every error status.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{TestApp, assert_problem, problem_fields, spawn_app, spawn_app_with};

fn billing() -> Value {
    json!({
        "name": "billing",
        "display_name": "Billing API",
        "description": "Charges customers",
        "owner": "payments",
        "tags": {"service": "billing", "env": "prod"},
        "links": {"repo": "https://git.example.com/billing", "runbook": "https://wiki.example.com/billing"},
        "metadata": {"tier": 1, "pager": {"team": "payments"}}
    })
}

async fn create(app: &TestApp, body: Value) -> Value {
    let response = app.create_service(&body).await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{:?}",
        response.text().await
    );
    response.json().await.expect("json")
}

async fn count_services(app: &TestApp) -> usize {
    let body: Value = app
        .get("/services?limit=500")
        .await
        .json()
        .await
        .expect("json");
    body["items"].as_array().map_or(0, Vec::len)
}

async fn names(app: &TestApp, path: &str) -> Vec<String> {
    let response = app.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    let body: Value = response.json().await.expect("json");
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| s["name"].as_str().expect("name").to_owned())
        .collect()
}

both_backends! {
    async fn create_returns_201_with_location_etag_and_body(backend) {
        let app = spawn_app(backend).await;
        let response = app.create_service(&billing()).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let location = response.headers()["location"].to_str().expect("text").to_owned();
        let etag = response.headers()["etag"].to_str().expect("text").to_owned();
        let body: Value = response.json().await.expect("json");
        let id = body["id"].as_str().expect("id");
        assert!(uuid::Uuid::parse_str(id).is_ok());
        assert_eq!(location, format!("/services/{id}"));
        for field in ["name", "display_name", "description", "owner", "tags", "links", "metadata"] {
            assert_eq!(body[field], billing()[field], "{field}");
        }
        assert_eq!(body["created_at"], body["updated_at"]);
        let created = time::OffsetDateTime::parse(
            body["created_at"].as_str().expect("time"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("RFC 3339");
        assert_eq!(created.offset(), time::UtcOffset::UTC);

        let fetched = app.get(&location).await;
        assert_eq!(fetched.status(), 200);
        assert_eq!(fetched.headers()["etag"].to_str().expect("text"), etag);
        let fetched: Value = fetched.json().await.expect("json");
        assert_eq!(fetched, body);
    }

    async fn services_are_found_by_name_as_well_as_id(backend) {
        let app = spawn_app(backend).await;
        let created = create(&app, billing()).await;
        let by_name: Value = app.get("/services/billing").await.json().await.expect("json");
        assert_eq!(by_name["id"], created["id"]);
    }

    async fn a_minimal_service_gets_defaults(backend) {
        let app = spawn_app(backend).await;
        let body = create(&app, json!({"name": "a", "owner": "t"})).await;
        assert_eq!(body["display_name"], Value::Null);
        assert_eq!(body["description"], "");
        assert_eq!(body["tags"], json!({}));
        assert_eq!(body["links"], json!({}));
        assert_eq!(body["metadata"], json!({}));
    }

    async fn duplicate_names_are_409_and_write_nothing(backend) {
        let app = spawn_app(backend).await;
        create(&app, billing()).await;
        let mut again = billing();
        again["owner"] = json!("someone-else");
        let problem = assert_problem(app.create_service(&again).await, 409).await;
        assert!(problem["detail"].as_str().expect("detail").contains("billing"));
        assert_eq!(count_services(&app).await, 1);
        let kept: Value = app.get("/services/billing").await.json().await.expect("json");
        assert_eq!(kept["owner"], "payments");
    }

    async fn invalid_fields_are_422_naming_each(backend) {
        let app = spawn_app(backend).await;
        let response = app
            .create_service(&json!({
                "name": "Not A Slug",
                "owner": 7,
                "tags": {"env": 1, "aws:createdBy": "x"},
                "links": {"repo": "not a url", "docs": "ftp://files.example.com"},
                "metadata": [1, 2],
                "colour": "red"
            }))
            .await;
        let problem = assert_problem(response, 422).await;
        let mut fields = problem_fields(&problem);
        fields.sort();
        assert_eq!(
            fields,
            vec!["colour", "links.docs", "links.repo", "metadata", "name", "owner", "tags.aws:createdBy", "tags.env"]
        );
        assert_eq!(count_services(&app).await, 0);
    }

    async fn names_longer_than_63_are_rejected(backend) {
        let app = spawn_app(backend).await;
        let long = "a".repeat(64);
        let problem = assert_problem(app.create_service(&json!({"name": long, "owner": "t"})).await, 422).await;
        assert_eq!(problem_fields(&problem), vec!["name"]);
        create(&app, json!({"name": "a".repeat(63), "owner": "t"})).await;
    }

    async fn missing_required_fields_are_named(backend) {
        let app = spawn_app(backend).await;
        let problem = assert_problem(app.create_service(&json!({})).await, 422).await;
        assert_eq!(problem_fields(&problem), vec!["name", "owner"]);
        let problem = assert_problem(app.create_service(&json!([1])).await, 422).await;
        assert!(problem["detail"].as_str().expect("detail").contains("object"));
    }

    async fn malformed_json_is_400(backend) {
        let app = spawn_app(backend).await;
        let response = app
            .request(Method::POST, "/services")
            .header("content-type", "application/json")
            .body("{\"name\": ")
            .send()
            .await
            .expect("send");
        let problem = assert_problem(response, 400).await;
        assert!(problem["detail"].as_str().expect("detail").contains("not valid JSON"));
    }

    async fn wrong_content_type_is_415(backend) {
        let app = spawn_app(backend).await;
        let response = app
            .request(Method::POST, "/services")
            .header("content-type", "text/plain")
            .body(billing().to_string())
            .send()
            .await
            .expect("send");
        assert_problem(response, 415).await;
        let response = app
            .request(Method::POST, "/services")
            .body(billing().to_string())
            .send()
            .await
            .expect("send");
        assert_problem(response, 415).await;
        assert_eq!(count_services(&app).await, 0);
    }

    async fn bodies_over_the_limit_are_413(backend) {
        let app = spawn_app_with(backend, |s| s.server.body_limit_bytes = 4096).await;
        let mut big = billing();
        big["description"] = json!("x".repeat(5000));
        assert_problem(app.create_service(&big).await, 413).await;
        let mut fits = billing();
        fits["description"] = json!("x".repeat(3000));
        assert_eq!(app.create_service(&fits).await.status(), 201);
    }

    async fn the_default_body_limit_is_one_mebibyte(backend) {
        let app = spawn_app(backend).await;
        let mut big = billing();
        big["metadata"] = json!({"blob": "x".repeat(1024 * 1024)});
        assert_problem(app.create_service(&big).await, 413).await;
    }

    async fn missing_services_are_404(backend) {
        let app = spawn_app(backend).await;
        assert_problem(app.get("/services/nope").await, 404).await;
        assert_problem(app.get(&format!("/services/{}", uuid::Uuid::new_v4())).await, 404).await;
        assert_problem(app.get("/services/Not%20A%20Name").await, 404).await;
        let response = app.request(Method::DELETE, "/services/nope").send().await.expect("send");
        assert_problem(response, 404).await;
        let response = app.request(Method::PUT, "/services/nope").json(&billing()).send().await.expect("send");
        assert_problem(response, 404).await;
        let response = app
            .request(Method::PATCH, "/services/nope")
            .header("content-type", "application/merge-patch+json")
            .body("{}")
            .send()
            .await
            .expect("send");
        assert_problem(response, 404).await;
    }

    async fn put_replaces_the_whole_service(backend) {
        let app = spawn_app(backend).await;
        let created = create(&app, billing()).await;
        let replacement = json!({"name": "billing-v2", "owner": "finance", "tags": {"service": "billing"}});
        let response = app
            .request(Method::PUT, "/services/billing")
            .json(&replacement)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["id"], created["id"]);
        assert_eq!(body["name"], "billing-v2");
        assert_eq!(body["owner"], "finance");
        assert_eq!(body["description"], "");
        assert_eq!(body["links"], json!({}));
        assert_eq!(body["tags"], json!({"service": "billing"}));
        assert_eq!(body["created_at"], created["created_at"]);
        assert_ne!(body["updated_at"], created["updated_at"]);
        assert_problem(app.get("/services/billing").await, 404).await;
        assert_eq!(names(&app, "/services?tag=env:prod").await, Vec::<String>::new());
        assert_eq!(names(&app, "/services?tag=service:billing").await, vec!["billing-v2"]);
    }

    async fn put_with_a_fetched_document_round_trips(backend) {
        let app = spawn_app(backend).await;
        let created = create(&app, billing()).await;
        let response = app.request(Method::PUT, "/services/billing").json(&created).send().await.expect("send");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["metadata"], created["metadata"]);
    }

    async fn put_validates_and_writes_nothing_on_error(backend) {
        let app = spawn_app(backend).await;
        create(&app, billing()).await;
        create(&app, json!({"name": "ledger", "owner": "finance"})).await;
        let response = app
            .request(Method::PUT, "/services/billing")
            .json(&json!({"name": "billing", "owner": ""}))
            .send()
            .await
            .expect("send");
        let problem = assert_problem(response, 422).await;
        assert_eq!(problem_fields(&problem), vec!["owner"]);
        let response = app
            .request(Method::PUT, "/services/billing")
            .json(&json!({"name": "ledger", "owner": "x"}))
            .send()
            .await
            .expect("send");
        assert_problem(response, 409).await;
        let kept: Value = app.get("/services/billing").await.json().await.expect("json");
        assert_eq!(kept["owner"], "payments");
        assert_eq!(kept["tags"], billing()["tags"]);
    }

    async fn patch_merges_per_rfc_7396(backend) {
        let app = spawn_app(backend).await;
        create(&app, billing()).await;
        let response = app
            .request(Method::PATCH, "/services/billing")
            .header("content-type", "application/merge-patch+json")
            .body(json!({
                "owner": "finance",
                "display_name": null,
                "tags": {"env": null, "team": "finance"},
                "metadata": {"pager": {"team": null, "rota": "primary"}}
            }).to_string())
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["owner"], "finance");
        assert_eq!(body["display_name"], Value::Null);
        assert_eq!(body["description"], "Charges customers");
        assert_eq!(body["tags"], json!({"service": "billing", "team": "finance"}));
        assert_eq!(body["links"], billing()["links"]);
        assert_eq!(body["metadata"], json!({"tier": 1, "pager": {"rota": "primary"}}));
        assert_eq!(names(&app, "/services?tag=team:finance").await, vec!["billing"]);
        assert_eq!(names(&app, "/services?tag=env:prod").await, Vec::<String>::new());
    }

    async fn patch_rejects_invalid_results_and_unknown_fields(backend) {
        let app = spawn_app(backend).await;
        create(&app, billing()).await;
        let response = app
            .request(Method::PATCH, "/services/billing")
            .header("content-type", "application/merge-patch+json")
            .body(json!({"name": null, "links": {"repo": "nope"}, "size": 3}).to_string())
            .send()
            .await
            .expect("send");
        let problem = assert_problem(response, 422).await;
        let mut fields = problem_fields(&problem);
        fields.sort();
        assert_eq!(fields, vec!["links.repo", "name", "size"]);
        let kept: Value = app.get("/services/billing").await.json().await.expect("json");
        assert_eq!(kept["links"], billing()["links"]);
    }

    async fn if_match_guards_every_write(backend) {
        let app = spawn_app(backend).await;
        let response = app.create_service(&billing()).await;
        let etag = response.headers()["etag"].to_str().expect("text").to_owned();
        let stale = "\"00000000000000000000000000000000-1\"";

        for method in [Method::PUT, Method::PATCH, Method::DELETE] {
            let mut request = app.request(method.clone(), "/services/billing").header("if-match", stale);
            if method != Method::DELETE {
                request = request.json(&billing());
            }
            let problem = assert_problem(request.send().await.expect("send"), 412).await;
            assert!(problem["detail"].as_str().expect("detail").contains("ETag"), "{method}");
        }

        let response = app
            .request(Method::PATCH, "/services/billing")
            .header("if-match", &etag)
            .json(&json!({"owner": "finance"}))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200);
        let new_etag = response.headers()["etag"].to_str().expect("text").to_owned();
        assert_ne!(new_etag, etag);

        let response = app
            .request(Method::PUT, "/services/billing")
            .header("if-match", &etag)
            .json(&billing())
            .send()
            .await
            .expect("send");
        assert_problem(response, 412).await;
        let response = app
            .request(Method::DELETE, "/services/billing")
            .header("if-match", &etag)
            .send()
            .await
            .expect("send");
        assert_problem(response, 412).await;

        let response = app
            .request(Method::PUT, "/services/billing")
            .header("if-match", "*")
            .json(&billing())
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200);
        let current = response.headers()["etag"].to_str().expect("text").to_owned();
        let response = app
            .request(Method::DELETE, "/services/billing")
            .header("if-match", format!("\"other\", {current}"))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 204);
        assert_problem(app.get("/services/billing").await, 404).await;
    }

    async fn delete_removes_the_service_and_its_tags(backend) {
        let app = spawn_app(backend).await;
        let created = create(&app, billing()).await;
        let id = created["id"].as_str().expect("id");
        let response = app.request(Method::DELETE, &format!("/services/{id}")).send().await.expect("send");
        assert_eq!(response.status(), 204);
        assert!(response.text().await.expect("text").is_empty());
        assert_problem(app.get(&format!("/services/{id}")).await, 404).await;
        assert_eq!(names(&app, "/services?tag=service:billing").await, Vec::<String>::new());
        create(&app, billing()).await;
    }

    async fn listing_is_name_ordered_and_paged_with_a_cursor(backend) {
        let app = spawn_app(backend).await;
        let mut expected = Vec::new();
        for i in 0..7 {
            let name = format!("svc-{}", (b'g' - i) as char);
            create(&app, json!({"name": name, "owner": "t"})).await;
            expected.push(name);
        }
        create(&app, json!({"name": "svc0", "owner": "t"})).await;
        expected.push("svc0".into());
        expected.sort();

        let mut seen = Vec::new();
        let mut next = Some("/services?limit=3".to_owned());
        let mut pages = 0;
        while let Some(path) = next {
            let response = app.get(&path).await;
            assert_eq!(response.status(), 200);
            let link = response.headers().get("link").map(|l| l.to_str().expect("text").to_owned());
            let body: Value = response.json().await.expect("json");
            let items = body["items"].as_array().expect("items");
            assert!(items.len() <= 3);
            seen.extend(items.iter().map(|s| s["name"].as_str().expect("name").to_owned()));
            next = body["next"].as_str().map(str::to_owned);
            match &next {
                Some(n) => assert_eq!(link, Some(format!("<{n}>; rel=\"next\""))),
                None => assert_eq!(link, None),
            }
            pages += 1;
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, expected);
        assert_eq!(names(&app, "/services").await, expected);
    }

    async fn the_next_link_keeps_the_filters(backend) {
        let app = spawn_app(backend).await;
        for name in ["a1", "a2", "a3", "b1"] {
            create(&app, json!({"name": name, "owner": "t", "tags": {"k": "v"}})).await;
        }
        create(&app, json!({"name": "a4", "owner": "other", "tags": {"k": "v"}})).await;
        let body: Value = app.get("/services?owner=t&tag=k:v&q=a&limit=2").await.json().await.expect("json");
        let next = body["next"].as_str().expect("a next link");
        assert!(next.contains("owner=t") && next.contains("tag=k%3Av") && next.contains("q=a"), "{next}");
        assert_eq!(names(&app, next).await, vec!["a3"]);
    }

    async fn filters_by_owner_tags_and_name_prefix(backend) {
        let app = spawn_app(backend).await;
        create(&app, json!({"name": "billing", "owner": "payments", "tags": {"service": "billing", "env": "prod"}})).await;
        create(&app, json!({"name": "billing-worker", "owner": "payments", "tags": {"service": "billing", "env": "dev"}})).await;
        create(&app, json!({"name": "ledger", "owner": "finance", "tags": {"service": "ledger", "env": "prod"}})).await;
        create(&app, json!({"name": "billx", "owner": "x"})).await;

        assert_eq!(names(&app, "/services?owner=payments").await, vec!["billing", "billing-worker"]);
        assert_eq!(names(&app, "/services?tag=env:prod").await, vec!["billing", "ledger"]);
        assert_eq!(names(&app, "/services?tag=env:prod&tag=service:billing").await, vec!["billing"]);
        assert_eq!(names(&app, "/services?tag=env:staging").await, Vec::<String>::new());
        assert_eq!(names(&app, "/services?q=bill").await, vec!["billing", "billing-worker", "billx"]);
        assert_eq!(names(&app, "/services?q=billing-").await, vec!["billing-worker"]);
        assert_eq!(names(&app, "/services?q=%25").await, Vec::<String>::new());
        assert_eq!(names(&app, "/services?q=bill_").await, Vec::<String>::new());
        assert_eq!(names(&app, "/services?owner=payments&tag=env:dev").await, vec!["billing-worker"]);
    }

    async fn bad_query_parameters_are_400_naming_them(backend) {
        let app = spawn_app(backend).await;
        for (path, field) in [
            ("/services?limit=0", "limit"),
            ("/services?limit=501", "limit"),
            ("/services?limit=ten", "limit"),
            ("/services?tag=novalue", "tag"),
            ("/services?cursor=garbage!!", "cursor"),
            ("/services?colour=red", "colour"),
        ] {
            let problem = assert_problem(app.get(path).await, 400).await;
            assert_eq!(problem_fields(&problem), vec![field], "{path}");
        }
        assert_eq!(app.get("/services?limit=500").await.status(), 200);
    }

    async fn the_default_page_is_fifty(backend) {
        let app = spawn_app(backend).await;
        for i in 0..51 {
            create(&app, json!({"name": format!("s{i:03}"), "owner": "t"})).await;
        }
        let body: Value = app.get("/services").await.json().await.expect("json");
        assert_eq!(body["items"].as_array().map(Vec::len), Some(50));
        assert!(body["next"].as_str().expect("next").contains("limit=50"));
    }

    async fn concurrent_creates_of_one_name_store_exactly_one(backend) {
        let app = spawn_app(backend).await;
        let tasks: Vec<_> = (0..8)
            .map(|_| tokio::spawn(app.request(Method::POST, "/services").json(&billing()).send()))
            .collect();
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await.expect("join").expect("send").status().as_u16());
        }
        assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
        assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
        assert_eq!(count_services(&app).await, 1);
    }

    // Found by schemathesis: PostgreSQL cannot store NUL in text or JSONB, which was a 500.
    async fn nul_characters_are_422_not_500(backend) {
        let app = spawn_app(backend).await;
        for body in [
            json!({"name": "a", "owner": "t", "display_name": "x\u{0}y"}),
            json!({"name": "a", "owner": "t\u{0}"}),
            json!({"name": "a", "owner": "t", "metadata": {"k": ["v\u{0}"]}}),
            json!({"name": "a", "owner": "t", "metadata": {"k\u{0}": 1}}),
            json!({"name": "a", "owner": "t", "tags": {"k": "v\u{0}"}}),
        ] {
            let problem = assert_problem(app.create_service(&body).await, 422).await;
            assert!(problem["detail"].as_str().expect("detail").contains("NUL"), "{problem}");
        }
        assert_problem(app.get("/services?owner=a%00b").await, 400).await;
        assert_eq!(count_services(&app).await, 0);
    }

    // Found by schemathesis: an invalid body with a stale If-Match answered 412; the body is
    // checked first, so the client learns what is wrong with it.
    async fn an_invalid_body_is_422_even_with_a_stale_if_match(backend) {
        let app = spawn_app(backend).await;
        create(&app, billing()).await;
        for method in [Method::PUT, Method::PATCH] {
            let response = app
                .request(method.clone(), "/services/billing")
                .header("if-match", "\"stale\"")
                .json(&json!({"name": "billing", "owner": "x", "unexpected": 1}))
                .send()
                .await
                .expect("send");
            let problem = assert_problem(response, 422).await;
            assert_eq!(problem_fields(&problem), vec!["unexpected"], "{method}");
        }
    }

    // Found by schemathesis: PostgreSQL JSONB rewrote 1.7976931348623157e308 as 309 digits,
    // which no longer read back as a double: a 500 after the write had succeeded.
    async fn metadata_round_trips_exactly(backend) {
        let app = spawn_app(backend).await;
        let metadata = json!({
            "max": f64::MAX,
            "min": -f64::MAX,
            "tiny": 5e-324,
            "big": 10789989954362790u64,
            "neg": -9223372036854775808i64,
            "nested": [[null, true], {"": "\u{1F600}"}]
        });
        let created = create(&app, json!({"name": "a", "owner": "t", "metadata": metadata})).await;
        assert_eq!(created["metadata"], metadata);
        let fetched: Value = app.get("/services/a").await.json().await.expect("json");
        assert_eq!(fetched["metadata"], metadata);
    }
}
