//! The goiardi Chef server started by `scripts/peers/goiardi.sh`, and signed clients for it.

use std::path::PathBuf;
use std::time::Duration;

use pincher::plugins::chef::{ChefClient, ClientKey, SignVersion};

/// Where the test Chef server is and who may sign requests to it.
#[derive(Debug, Clone)]
pub struct ChefPeer {
    /// Server URL.
    pub url: String,
    /// Admin client name.
    pub client: String,
    /// Admin client key (PEM file).
    pub key: PathBuf,
}

fn required(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: the chef tests need the goiardi Chef server that \
             scripts/peers/goiardi.sh starts; run them through ./scripts/test"
        )
    })
}

impl ChefPeer {
    /// The peer announced by the test script. Panics, naming what is missing, when it is not.
    pub fn from_env() -> Self {
        let peer = Self {
            url: required("PINCHER_TEST_CHEF_URL"),
            client: required("PINCHER_TEST_CHEF_CLIENT"),
            key: PathBuf::from(required("PINCHER_TEST_CHEF_KEY")),
        };
        assert!(
            peer.key.is_file(),
            "PINCHER_TEST_CHEF_KEY={} is not a file",
            peer.key.display()
        );
        peer
    }

    /// A client signing with `version` as the admin.
    pub fn client(&self, version: SignVersion) -> ChefClient {
        let key = ClientKey::read(&self.key).expect("read the goiardi admin key");
        self.client_with(version, &self.client, key)
    }

    /// A client with another name or key.
    pub fn client_with(&self, version: SignVersion, name: &str, key: ClientKey) -> ChefClient {
        ChefClient::new(
            self.url.parse().expect("a URL"),
            name.to_owned(),
            key,
            version,
            Duration::from_secs(30),
        )
        .expect("build a Chef client")
    }

    /// `PINCHER_CHEF__*` settings pointing the binary at this server.
    pub fn settings_env(&self) -> Vec<(String, String)> {
        vec![
            ("PINCHER_CHEF__SERVER_URL".into(), self.url.clone()),
            ("PINCHER_CHEF__CLIENT_NAME".into(), self.client.clone()),
            (
                "PINCHER_CHEF__CLIENT_KEY".into(),
                self.key.display().to_string(),
            ),
        ]
    }
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Polls `attempt` until it gives a value: Chef search indexes asynchronously, so a new node
/// may take a moment to be found. Panics naming `what` after 30 seconds.
pub async fn eventually<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gave up after 30 s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
