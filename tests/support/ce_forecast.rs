//! A stand-in for the one Cost Explorer call moto does not answer, GetCostForecast. It sits in
//! front of the moto server: forecast requests are recorded and answered in the shape the real
//! API uses (JSON 1.1, `Total` and `ForecastResultsByTime`); every other request is passed to
//! moto unchanged, so the rest of a report still comes from moto.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

const FORECAST_TARGET: &str = "AWSInsightsIndexService.GetCostForecast";

/// Headers that belong to one hop and are not passed on.
const HOP_HEADERS: [HeaderName; 4] = [
    header::HOST,
    header::CONTENT_LENGTH,
    header::CONNECTION,
    header::TRANSFER_ENCODING,
];

struct Shared {
    moto_url: String,
    client: reqwest::Client,
    amount: String,
    unit: String,
    forecasts: Mutex<Vec<Value>>,
}

/// The proxy, running on a thread of its own until dropped.
pub struct ForecastProxy {
    /// `http://127.0.0.1:PORT`, to use as the AWS endpoint.
    pub url: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl ForecastProxy {
    /// Starts a proxy to `moto_url` whose forecasts total `amount` in `unit`.
    pub fn start(moto_url: &str, amount: &str, unit: &str) -> Self {
        let shared = Arc::new(Shared {
            moto_url: moto_url.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            amount: amount.to_owned(),
            unit: unit.to_owned(),
            forecasts: Mutex::new(Vec::new()),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the CE proxy");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new().fallback(handle).with_state(shared.clone());
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
            shared,
            stop: Some(stop),
        }
    }

    /// The bodies of the GetCostForecast requests received so far.
    pub fn forecast_requests(&self) -> Vec<Value> {
        self.shared
            .forecasts
            .lock()
            .expect("forecast requests")
            .clone()
    }
}

impl Drop for ForecastProxy {
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
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    if target == Some(FORECAST_TARGET) {
        return forecast(&shared, &body);
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

/// Answers GetCostForecast for the requested period with one monthly result.
fn forecast(shared: &Shared, body: &[u8]) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return (StatusCode::BAD_REQUEST, "forecast request is not JSON").into_response();
    };
    let period = request["TimePeriod"].clone();
    shared
        .forecasts
        .lock()
        .expect("forecast requests")
        .push(request);
    let answer = json!({
        "Total": {"Amount": shared.amount, "Unit": shared.unit},
        "ForecastResultsByTime": [{
            "TimePeriod": period,
            "MeanValue": shared.amount,
        }],
    });
    (
        [(header::CONTENT_TYPE, "application/x-amz-json-1.1")],
        answer.to_string(),
    )
        .into_response()
}
