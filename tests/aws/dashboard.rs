//! The dashboard and the HTML reports as people see them: in headless Chromium against
//! `pincher serve` on moto, with authentication on. Screenshots (wide and narrow) go to
//! `$CARGO_TARGET_TMPDIR/screenshots`. And the login cookie, the CSRF token and the public
//! mode at the HTTP level.

use serde_json::{Value, json};
use time::{Date, Month, OffsetDateTime};

use crate::harness::{Pincher, Server};
use crate::support::browser::{Browser, Page, screenshot_dir};
use crate::support::moto::{ce_groups, ce_total};

const REGION: &str = "us-east-1";

fn total(start: Date, end: Date, amount: &str) -> Value {
    ce_total(&start.to_string(), &end.to_string(), amount)
}

/// The first day of the month `back` months before this one.
fn month_start(back: u8) -> Date {
    let today = OffsetDateTime::now_utc().date();
    let (mut year, mut month) = (today.year(), u8::from(today.month()));
    for _ in 0..back {
        (year, month) = if month == 1 {
            (year - 1, 12)
        } else {
            (year, month - 1)
        };
    }
    Date::from_calendar_date(year, Month::try_from(month).expect("month"), 1).expect("date")
}

/// Two services with cost last month, six months of total cost, a rule of the first, and a
/// few instances.
async fn seeded() -> Pincher {
    let pincher = Pincher::new(0).await;
    pincher.register("billing", "team-payments", &["app=billing"]);
    pincher.register("search", "team-discovery", &["app=search"]);
    let file = pincher.database.dir.path().join("rule.yaml");
    std::fs::write(
        &file,
        "name: billing-waste\nservice: billing\nsteps:\n  - action: aws.savings.report\n",
    )
    .expect("write the rule");
    pincher.ok(&["rules", "apply", file.to_str().expect("path")]);
    let months: Vec<Value> = (1..=6)
        .rev()
        .map(|back| {
            let amount = format!("{}.25", 1000 + 100 * u32::from(back));
            total(month_start(back), month_start(back - 1), &amount)
        })
        .collect();
    pincher
        .org
        .queue_cost_results(vec![
            // The six months' totals, then the six before them (the change).
            json!({"ResultsByTime": months}),
            json!({"ResultsByTime": [total(month_start(12), month_start(6), "6000")]}),
            // Last month by registered service (by name), then the month before.
            json!({"ResultsByTime": [total(month_start(1), month_start(0), "12.50")]}),
            json!({"ResultsByTime": [total(month_start(1), month_start(0), "40")]}),
            json!({"ResultsByTime": [total(month_start(2), month_start(1), "10")]}),
            json!({"ResultsByTime": [total(month_start(2), month_start(1), "50")]}),
        ])
        .await;
    let m = &pincher.org.management;
    pincher
        .org
        .run_instances(m, REGION, 3, "t3.micro", &[("app", "billing")])
        .await;
    pincher
        .org
        .run_instances(m, REGION, 2, "m5.large", &[("app", "search")])
        .await;
    pincher
        .org
        .create_volume(
            m,
            REGION,
            200,
            aws_sdk_ec2::types::VolumeType::Gp2,
            &[("app", "billing")],
        )
        .await;
    pincher
}

/// Text whose contrast with what is behind it is below WCAG AA (4.5:1, or 3:1 for large
/// text), as `tag "text" ratio`.
const CONTRAST: &str = r#"(() => {
  const parse = c => {
    const m = (c || "").match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const lum = c => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const behind = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0.5) return c;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  const bad = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || el.closest(".visually-hidden, details:not([open]) > :not(summary), script, style, title, desc")) continue;
    const style = getComputedStyle(el);
    const fg = parse(el instanceof SVGElement ? style.fill : style.color);
    if (!fg) continue;
    const a = lum(fg), b = lum(behind(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < needed) bad.push(`${el.tagName} "${el.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}`);
  }
  return bad;
})()"#;

/// Asserts that the page's text passes WCAG AA contrast in the light and the dark scheme,
/// and that the dark scheme is a different one.
async fn readable_in_light_and_dark(page: &Page<'_>, name: &str) {
    let background = "getComputedStyle(document.body).backgroundColor";
    for scheme in ["light", "dark"] {
        page.color_scheme(scheme).await;
        assert_eq!(
            page.eval(CONTRAST).await,
            json!([]),
            "text below WCAG AA contrast on {name} in the {scheme} scheme"
        );
    }
    let dark = page.eval(background).await;
    page.screenshot(&screenshot_dir().join(format!("{name}-dark.png")))
        .await;
    page.color_scheme("light").await;
    assert_ne!(
        page.eval(background).await,
        dark,
        "{name} follows prefers-color-scheme"
    );
}

/// Whether the page scrolls sideways.
async fn scrolls_sideways(page: &Page<'_>) -> bool {
    page.eval("document.documentElement.scrollWidth > window.innerWidth + 1")
        .await
        == json!(true)
}

/// Screenshots of the page at 1280 and 375 px wide, and whether it fits the narrow one.
async fn shoot(page: &Page<'_>, name: &str) -> bool {
    let dir = screenshot_dir();
    page.viewport(1280, 900).await;
    page.screenshot(&dir.join(format!("{name}-wide.png"))).await;
    page.viewport(375, 812).await;
    let fits = !scrolls_sideways(page).await;
    page.screenshot(&dir.join(format!("{name}-narrow.png")))
        .await;
    page.viewport(1280, 900).await;
    fits
}

async fn text(page: &Page<'_>, selector: &str) -> String {
    page.eval(&format!(
        "Array.from(document.querySelectorAll({selector:?})).map(e => e.textContent).join('\\n')"
    ))
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

async fn count(page: &Page<'_>, selector: &str) -> u64 {
    page.eval(&format!("document.querySelectorAll({selector:?}).length"))
        .await
        .as_u64()
        .unwrap_or_default()
}

#[tokio::test]
async fn the_dashboard_and_a_report_in_a_browser() {
    let pincher = seeded().await;
    let server: Server = pincher.serve_as("write");
    let token = pincher.token("write");
    let browser = Browser::launch().await;
    let page = browser.page().await;

    // Without a token: the login form.
    page.goto(&format!("{}/", server.base)).await;
    assert_eq!(page.path().await, "/login");
    assert_eq!(
        count(&page, "form[action='/login'] input#token[type=password]").await,
        1
    );
    assert_eq!(
        count(&page, "label[for=token]").await,
        1,
        "the field is labelled"
    );
    shoot(&page, "login").await;
    readable_in_light_and_dark(&page, "login").await;

    // Log in: the dashboard.
    page.eval(&format!(
        "document.getElementById('token').value = {token:?}; \
         document.querySelector(\"form[action='/login']\").submit()"
    ))
    .await;
    page.wait_until("location.pathname === '/' && document.getElementById('services-table')")
        .await;
    let services = text(&page, "#services-table tbody tr").await;
    assert!(
        services.contains("billing") && services.contains("team-payments"),
        "{services}"
    );
    assert!(
        services.contains("search") && services.contains("team-discovery"),
        "{services}"
    );
    assert!(
        services.contains("12.50 USD") && services.contains("40.00 USD"),
        "{services}"
    );
    assert!(
        text(&page, "section[aria-labelledby=services] .meta")
            .await
            .contains("as of")
    );
    assert_eq!(
        count(&page, "section[aria-labelledby=cost] svg.chart g.bar").await,
        6,
        "one bar per month"
    );
    let cost = text(&page, "section[aria-labelledby=cost]").await;
    assert!(
        cost.contains("1,600.25") && cost.contains("1,100.25"),
        "{cost}"
    );
    assert!(
        text(&page, "section[aria-labelledby=health]")
            .await
            .contains("database")
    );
    assert!(
        shoot(&page, "dashboard").await,
        "the dashboard scrolls sideways at 375 px"
    );
    readable_in_light_and_dark(&page, "dashboard").await;

    // The service's page, and its rule run from there (a form with a CSRF token).
    page.goto(&format!("{}/dashboard/services/billing", server.base))
        .await;
    let ec2 = text(&page, "section").await;
    assert!(
        ec2.contains("EC2 instances") && ec2.contains("billing-waste"),
        "{ec2}"
    );
    assert_eq!(
        count(&page, "form input[name=csrf]").await,
        2,
        "run and log out"
    );
    page.eval("document.querySelector(\"form[action$='/run'] button\").click()")
        .await;
    page.wait_until("location.search.startsWith('?started=')")
        .await;
    assert!(text(&page, "[role=status]").await.contains("started"));
    shoot(&page, "service").await;
    readable_in_light_and_dark(&page, "service").await;

    // A report: headline figures, a chart with labelled axes, a table that sorts.
    page.goto(&format!("{}/reports/aws/ec2?format=html", server.base))
        .await;
    let figures = text(&page, ".figures .figure").await;
    assert!(
        figures.contains("Instances") && figures.contains('5'),
        "{figures}"
    );
    assert!(text(&page, ".facets").await.contains("t3.micro 3"));
    assert_eq!(text(&page, "svg.chart .axis-x .label").await, "region");
    assert_eq!(text(&page, "svg.chart .axis-y .label").await, "instances");
    assert!(count(&page, "svg.chart .legend text").await >= 1);
    assert_eq!(
        page.eval("(s => s.scrollWidth <= s.clientWidth)(document.querySelector('.scroll'))")
            .await,
        json!(true),
        "the EC2 table fits 1280 px: ids and dates on one line, headers may wrap"
    );
    page.eval("document.querySelectorAll('thead th button')[5].click()")
        .await;
    assert_eq!(
        page.eval("document.querySelectorAll('thead th')[5].getAttribute('aria-sort')")
            .await,
        json!("ascending"),
        "the sorting script ran (its CSP hash matches)"
    );
    assert_eq!(
        page.eval("getComputedStyle(document.querySelector('tbody td.word')).whiteSpace")
            .await,
        json!("nowrap")
    );
    assert!(
        shoot(&page, "report-ec2").await,
        "the EC2 report scrolls sideways at 375 px"
    );
    readable_in_light_and_dark(&page, "report-ec2").await;
    page.media("print").await;
    assert_eq!(
        page.eval(
            "[getComputedStyle(document.querySelector('thead th')).position, \
              getComputedStyle(document.querySelector('.scroll')).overflowX, \
              getComputedStyle(document.querySelector('details')).display]"
        )
        .await,
        json!(["static", "visible", "none"]),
        "printed: the whole table, no sticky header, no folded details"
    );
    page.media("").await;

    // Grouped cost: the change with its sign and percentage, bars stacked by group.
    let group = |start: &str, end: &str, groups: &[(&str, &str)]| {
        ce_groups(start, end, "UnblendedCost", groups, false)
    };
    pincher
        .org
        .queue_cost_results(vec![
            json!({"ResultsByTime": [
                group("2026-09-01", "2026-10-01", &[("Amazon EC2", "100"), ("Amazon S3", "20")]),
                group("2026-10-01", "2026-11-01", &[("Amazon EC2", "150"), ("Amazon S3", "10")]),
            ]}),
            json!({"ResultsByTime": [
                group("2026-07-01", "2026-09-01", &[("Amazon EC2", "180"), ("Amazon S3", "20")]),
            ]}),
        ])
        .await;
    page.goto(&format!(
        "{}/reports/aws/ce?format=html&start=2026-09-01&end=2026-11-01&group_by=service",
        server.base
    ))
    .await;
    let figures = text(&page, ".figures .figure").await;
    assert!(figures.contains("280.00 USD"), "{figures}");
    assert!(
        figures.contains("+80.00 USD") && figures.contains("+40.0 %"),
        "{figures}"
    );
    assert_eq!(
        count(&page, "svg.chart g.bar").await,
        2,
        "one bar per month"
    );
    assert_eq!(
        text(&page, "svg.chart .legend text").await,
        "Amazon EC2\nAmazon S3"
    );
    assert_eq!(
        count(&page, "svg.chart g.bar rect").await,
        4,
        "stacked by group"
    );
    assert_eq!(text(&page, "svg.chart .axis-x .label").await, "month");
    assert!(
        shoot(&page, "report-cost").await,
        "the cost report scrolls sideways at 375 px"
    );

    // An empty period says so in words.
    page.goto(&format!(
        "{}/reports/aws/ce?format=html&start=2020-01-01&end=2020-02-01",
        server.base
    ))
    .await;
    assert!(
        text(&page, ".empty")
            .await
            .contains("Nothing in this period")
    );

    // The rule's run ended: the dashboard shows its waste and the run.
    let mut finished = false;
    for _ in 0..100 {
        let runs: Value = server
            .get("/rules/billing-waste/runs", None)
            .await
            .json()
            .await
            .expect("runs");
        if runs["items"][0]["outcome"]
            .as_str()
            .is_some_and(|o| o != "running")
        {
            assert_eq!(runs["items"][0]["outcome"], "ok", "{runs}");
            finished = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(finished, "the rule's run ended within 10 s");
    page.goto(&format!("{}/", server.base)).await;
    let waste = text(&page, "section[aria-labelledby=waste]").await;
    assert!(
        waste.contains("Estimated monthly waste") && waste.contains("unattached-volume"),
        "{waste}"
    );
    let runs = text(&page, "section[aria-labelledby=runs] tbody").await;
    assert!(
        runs.contains("aws.savings.report") && runs.contains("ok"),
        "{runs}"
    );
    page.screenshot(&screenshot_dir().join("dashboard-full.png"))
        .await;

    // Log out: the cookie is gone, and the dashboard asks again.
    page.eval("document.querySelector(\"form[action='/logout'] button\").click()")
        .await;
    page.wait_until("location.pathname === '/login'").await;
    page.goto(&format!("{}/", server.base)).await;
    assert_eq!(page.path().await, "/login");

    assert_eq!(
        page.errors(),
        Vec::<String>::new(),
        "errors in the browser console"
    );
}

/// The value of `Set-Cookie` of a response.
fn set_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("client")
}

#[tokio::test]
async fn the_login_cookie_and_the_csrf_token_guard_the_forms() {
    let pincher = seeded().await;
    let server = pincher.serve_as("read");
    let (read, write) = (pincher.token("read"), pincher.token("write"));
    let http = plain_client();
    let url = |path: &str| format!("{}{path}", server.base);

    // API clients still get the JSON index; browsers without a session go to the login form.
    let index: Value = server
        .get("/", Some("application/json"))
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(index["name"], "pincher");
    let anonymous = http
        .get(url("/"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("GET /");
    assert_eq!(anonymous.status().as_u16(), 303);
    assert_eq!(anonymous.headers()["location"], "/login?next=%2F");
    let report = http
        .get(url("/reports/aws/ec2?format=html"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("GET report");
    assert_eq!(report.status().as_u16(), 303, "a browser is sent to log in");

    // Malformed forms get problem documents naming what is wrong.
    let missing = http
        .post(url("/login"))
        .form(&[("next", "/")])
        .send()
        .await
        .expect("POST");
    assert_eq!(missing.status().as_u16(), 400);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    assert!(missing.text().await.expect("body").contains("token"));
    let json = http
        .post(url("/login"))
        .json(&json!({"token": write}))
        .send()
        .await
        .expect("POST");
    assert_eq!(json.status().as_u16(), 415);
    assert_eq!(json.headers()["content-type"], "application/problem+json");

    // A wrong token is refused on the form; a good one is kept in a strict cookie.
    let wrong = http
        .post(url("/login"))
        .form(&[("token", "pincher_not-a-token"), ("next", "/")])
        .send()
        .await
        .expect("POST /login");
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(set_cookie(&wrong).is_empty());
    let login = http
        .post(url("/login"))
        .header("x-forwarded-proto", "https")
        .form(&[("token", write.as_str()), ("next", "https://evil.example/")])
        .send()
        .await
        .expect("POST /login");
    assert_eq!(login.status().as_u16(), 303);
    assert_eq!(
        login.headers()["location"],
        "/",
        "never away from this site"
    );
    let cookie = set_cookie(&login);
    for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    let session = cookie.split(';').next().expect("name=value").to_owned();

    // The session reads pages; it does not stand in for a bearer token on API writes.
    let page = http
        .get(url("/dashboard/services/billing"))
        .header("cookie", &session)
        .send()
        .await
        .expect("GET service page");
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.expect("page");
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the run form's CSRF token")
        .to_owned();
    let api_write = http
        .post(url("/rules/billing-waste/runs"))
        .header("cookie", &session)
        .send()
        .await
        .expect("POST run");
    assert_eq!(api_write.status().as_u16(), 401);

    // The run form: refused without the CSRF token or with a wrong one, run with it.
    let run = |form: Vec<(&'static str, String)>, cookie: String| {
        http.post(url("/dashboard/rules/billing-waste/run"))
            .header("cookie", cookie)
            .form(&form)
            .send()
    };
    let missing = run(vec![], session.clone()).await.expect("POST");
    assert_eq!(missing.status().as_u16(), 403);
    let forged = run(vec![("csrf", "0".repeat(64))], session.clone())
        .await
        .expect("POST");
    assert_eq!(forged.status().as_u16(), 403);
    let ran = run(vec![("csrf", csrf.clone())], session.clone())
        .await
        .expect("POST");
    assert_eq!(ran.status().as_u16(), 303);
    let location = ran.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(
        location.starts_with("/dashboard/services/billing?started="),
        "{location}"
    );
    let runs: Value = server
        .get("/rules/billing-waste/runs", None)
        .await
        .json()
        .await
        .expect("runs");
    let actor = runs["items"][0]["actor"].as_str().unwrap_or_default();
    assert!(
        actor.starts_with("aws-tests-write-"),
        "run by the session's token: {runs}"
    );
    assert_eq!(runs["items"].as_array().map(Vec::len), Some(1), "{runs}");

    // A read token's session sees no run button, and cannot post the form.
    let login = http
        .post(url("/login"))
        .form(&[("token", read.as_str()), ("next", "/")])
        .send()
        .await
        .expect("POST /login");
    let reader = set_cookie(&login)
        .split(';')
        .next()
        .expect("cookie")
        .to_owned();
    let html = http
        .get(url("/dashboard/services/billing"))
        .header("cookie", &reader)
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("page");
    assert!(!html.contains("Run now"), "no run button for a read token");
    let refused = run(vec![("csrf", csrf)], reader).await.expect("POST");
    assert_eq!(refused.status().as_u16(), 403);

    // Logging out clears the cookie.
    let logout = http
        .post(url("/logout"))
        .header("cookie", &session)
        .send()
        .await
        .expect("POST");
    assert_eq!(logout.status().as_u16(), 303);
    assert!(set_cookie(&logout).contains("Max-Age=0"));
}

#[tokio::test]
async fn a_public_dashboard_is_read_only_without_a_login() {
    let pincher = seeded().await;
    let server = {
        let mut command = pincher.command();
        command.env("PINCHER_DASHBOARD__PUBLIC", "true");
        crate::harness::Server::start(command, pincher.token("read"))
    };
    let http = plain_client();
    let home = http
        .get(format!("{}/", server.base))
        .header("accept", "text/html")
        .send()
        .await
        .expect("GET /");
    assert_eq!(home.status().as_u16(), 200);
    let html = home.text().await.expect("page");
    assert!(html.contains("Public, read-only view") && html.contains("billing"));
    let service = http
        .get(format!("{}/dashboard/services/billing", server.base))
        .header("accept", "text/html")
        .send()
        .await
        .expect("GET service");
    assert_eq!(service.status().as_u16(), 200);
    let html = service.text().await.expect("page");
    assert!(!html.contains("Run now"), "no forms in the public view");
    let post = http
        .post(format!("{}/dashboard/rules/billing-waste/run", server.base))
        .form(&[("csrf", "x")])
        .send()
        .await
        .expect("POST");
    assert_eq!(post.status().as_u16(), 401, "writes still need a token");
    let report = http
        .get(format!("{}/reports/aws/ec2?format=html", server.base))
        .header("accept", "text/html")
        .send()
        .await
        .expect("GET report");
    assert_eq!(
        report.status().as_u16(),
        303,
        "the reports still need a login"
    );
}
