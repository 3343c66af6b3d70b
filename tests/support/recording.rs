//! A server that records the headers of every request it gets and answers `{}`: the "other
//! server" of redirect tests, which must never be called.

use std::sync::{Arc, Mutex};

/// A running recording server.
pub struct RecordingServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl RecordingServer {
    /// Starts one on a free port.
    pub async fn start() -> Self {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let recorded = seen.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let recorded = recorded.clone();
            async move {
                recorded.lock().expect("lock").push(format!(
                    "{} {:?}",
                    request.uri(),
                    request.headers()
                ));
                "{}"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, seen }
    }

    /// Every request so far, as its URI and headers.
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }
}
