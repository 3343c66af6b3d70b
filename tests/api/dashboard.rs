//! The dashboard's sections that need no AWS, on both databases: backup freshness against
//! the alert threshold, and the pages' headers.

use pincher::db::backups::{BackupRun, record};
use time::{Duration, OffsetDateTime};

use crate::both_backends;
use crate::helpers::spawn_app_with;

fn backup_run(group: &str, outcome: &str, hours_ago: i64) -> BackupRun {
    BackupRun {
        group_id: group.into(),
        version: Some(7),
        md5: Some("0123456789abcdef0123456789abcdef".into()),
        path: Some(format!("backups/{group}/7.json")),
        bytes: Some(100),
        outcome: outcome.into(),
        error: (outcome == "failed").then(|| "unreachable".into()),
        duration_ms: 10,
        started_at: OffsetDateTime::now_utc() - Duration::hours(hours_ago),
    }
}

/// The freshness badge of `group`'s row.
fn badge<'h>(html: &'h str, group: &str) -> &'h str {
    let row = html
        .split("<tr>")
        .find(|row| row.contains(&format!(">{group}</td>")))
        .unwrap_or_else(|| panic!("no row of {group} in {html}"));
    row.split("class=\"badge ")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
}

both_backends! {
    async fn backup_freshness_is_green_amber_or_red_against_the_alert(backend) {
        let app = spawn_app_with(backend, |s| {
            s.dashboard.backup_alert_hours = 24;
            // Cost Explorer is not reachable here: the page says so and shows the rest.
            s.aws.endpoint_url = Some("http://127.0.0.1:9".parse().expect("url"));
        })
        .await;
        let db = &app.state.db;
        for backup in [
            backup_run("fresh", "stored", 1),
            backup_run("aging", "unchanged", 19),
            backup_run("stale", "stored", 30),
            backup_run("stale", "failed", 1),
            backup_run("never", "failed", 2),
        ] {
            record(db, &backup).await.expect("record a backup run");
        }
        let response = app
            .request(reqwest::Method::GET, "/")
            .header("accept", "text/html")
            .header("cookie", format!("pincher_token={}", app.token))
            .send()
            .await
            .expect("GET /");
        assert_eq!(response.status(), 200);
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        assert_eq!(headers["cache-control"], "no-store");
        let csp = headers["content-security-policy"].to_str().expect("csp");
        assert!(csp.contains("form-action 'self'") && !csp.contains("script-src"), "{csp}");
        let html = response.text().await.expect("page");
        assert_eq!(badge(&html, "fresh"), "green");
        assert_eq!(badge(&html, "aging"), "amber", "19 h is past three quarters of 24 h");
        assert_eq!(badge(&html, "stale"), "red", "its last good backup is 30 h old");
        assert_eq!(badge(&html, "never"), "red");
        assert!(html.contains("amber up to 24 h"), "the threshold is shown");
        assert!(html.contains("Cost Explorer could not be read"), "{html}");
    }
}
