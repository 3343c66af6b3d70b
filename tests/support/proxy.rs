//! A proxy in front of the moto server for tests that need AWS to behave as moto does not:
//! each request is shown to an interceptor, which may answer it; the rest are passed to moto
//! unchanged. Runs on a thread of its own until dropped.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Headers that belong to one hop and are not passed on.
const HOP_HEADERS: [HeaderName; 4] = [
    header::HOST,
    header::CONTENT_LENGTH,
    header::CONNECTION,
    header::TRANSFER_ENCODING,
];

/// Looks at a request (head and body) and answers it, or returns `None` to pass it to moto.
pub type Intercept = dyn Fn(&Parts, &Bytes) -> Option<Response> + Send + Sync;

/// How long a request waits before it is answered or passed on.
pub type Delay = dyn Fn(&Parts, &Bytes) -> std::time::Duration + Send + Sync;

struct Shared {
    moto_url: String,
    client: reqwest::Client,
    intercept: Box<Intercept>,
    delay: Box<Delay>,
}

/// A running proxy.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`, to use as the AWS endpoint.
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Proxy {
    /// Starts a proxy to `moto_url` that shows every request to `intercept` first.
    pub fn start(moto_url: &str, intercept: Box<Intercept>) -> Self {
        Self::delayed(
            moto_url,
            intercept,
            Box::new(|_, _| std::time::Duration::ZERO),
        )
    }

    /// [`Proxy::start`], each request held for what `delay` says first (others go on).
    pub fn delayed(moto_url: &str, intercept: Box<Intercept>, delay: Box<Delay>) -> Self {
        let shared = Arc::new(Shared {
            moto_url: moto_url.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            intercept,
            delay,
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new().fallback(handle).with_state(shared);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Self {
            url,
            stop: Some(stop),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 64 << 20).await else {
        return (StatusCode::BAD_REQUEST, "unreadable body").into_response();
    };
    let wait = (shared.delay)(&parts, &body);
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    if let Some(answer) = (shared.intercept)(&parts, &body) {
        return answer;
    }
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut headers = parts.headers.clone();
    for name in &HOP_HEADERS {
        headers.remove(name);
    }
    let upstream = shared
        .client
        .request(parts.method, format!("{}{path}", shared.moto_url))
        .headers(headers)
        .body(body)
        .send()
        .await;
    match upstream {
        Ok(upstream) => {
            let status = upstream.status();
            let mut headers = upstream.headers().clone();
            for name in &HOP_HEADERS {
                headers.remove(name);
            }
            let bytes = upstream.bytes().await.unwrap_or_default();
            relay(status, headers, bytes)
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("moto: {e}")).into_response(),
    }
}

fn relay(status: StatusCode, headers: HeaderMap, body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// The attempt number of an AWS SDK request (its `amz-sdk-request: attempt=N` header).
pub fn attempt(parts: &Parts) -> u32 {
    parts
        .headers
        .get("amz-sdk-request")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').find_map(|p| p.trim().strip_prefix("attempt=")))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(1)
}

/// Whether a request is the AWS query-protocol call `action` (e.g. `DescribeInstances`).
pub fn is_action(body: &Bytes, action: &str) -> bool {
    let needle = format!("Action={action}&");
    body.windows(needle.len()).any(|w| w == needle.as_bytes())
        || body.ends_with(format!("Action={action}").as_bytes())
}

/// The region a request is signed for (from its SigV4 credential scope).
pub fn region(parts: &Parts) -> Option<String> {
    let auth = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let scope = auth.split("Credential=").nth(1)?.split(',').next()?;
    scope.split('/').nth(2).map(str::to_owned)
}

/// EC2's answer to a throttled call (query protocol): 503 `RequestLimitExceeded`.
pub fn ec2_throttled() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "text/xml;charset=UTF-8")],
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>\
         <Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message>\
         </Error></Errors><RequestID>throttled</RequestID></Response>",
    )
        .into_response()
}
