//! A stand-in for the one Cost Explorer call moto does not answer, GetCostForecast. It sits in
//! front of the moto server: forecast requests are recorded and answered in the shape the real
//! API uses (JSON 1.1, `Total` and `ForecastResultsByTime`); every other request is passed to
//! moto unchanged, so the rest of a report still comes from moto.

use std::sync::{Arc, Mutex};

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::support::proxy::Proxy;

const FORECAST_TARGET: &str = "AWSInsightsIndexService.GetCostForecast";

/// The proxy, running until dropped.
pub struct ForecastProxy {
    /// `http://127.0.0.1:PORT`, to use as the AWS endpoint.
    pub url: String,
    forecasts: Arc<Mutex<Vec<Value>>>,
    _proxy: Proxy,
}

impl ForecastProxy {
    /// Starts a proxy to `moto_url` whose forecasts total `amount` in `unit`.
    pub fn start(moto_url: &str, amount: &str, unit: &str) -> Self {
        let forecasts: Arc<Mutex<Vec<Value>>> = Arc::default();
        let (seen, amount, unit) = (Arc::clone(&forecasts), amount.to_owned(), unit.to_owned());
        let proxy = Proxy::start(
            moto_url,
            Box::new(move |parts, body| {
                let target = parts
                    .headers
                    .get("x-amz-target")
                    .and_then(|v| v.to_str().ok());
                (target == Some(FORECAST_TARGET)).then(|| forecast(&seen, &amount, &unit, body))
            }),
        );
        Self {
            url: proxy.url.clone(),
            forecasts,
            _proxy: proxy,
        }
    }

    /// The bodies of the GetCostForecast requests received so far.
    pub fn forecast_requests(&self) -> Vec<Value> {
        self.forecasts.lock().expect("forecast requests").clone()
    }
}

/// Answers GetCostForecast for the requested period with one monthly result.
fn forecast(seen: &Mutex<Vec<Value>>, amount: &str, unit: &str, body: &[u8]) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return (StatusCode::BAD_REQUEST, "forecast request is not JSON").into_response();
    };
    let period = request["TimePeriod"].clone();
    seen.lock().expect("forecast requests").push(request);
    let answer = json!({
        "Total": {"Amount": amount, "Unit": unit},
        "ForecastResultsByTime": [{
            "TimePeriod": period,
            "MeanValue": amount,
        }],
    });
    (
        [(header::CONTENT_TYPE, "application/x-amz-json-1.1")],
        answer.to_string(),
    )
        .into_response()
}
