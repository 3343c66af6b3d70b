//! One S3 test's world: the usual fake Ops Manager and database, a fresh bucket on the moto
//! server, and a recording proxy in front of moto through which `pincher` talks to S3, so
//! tests can check what was sent (conditional writes, Content-MD5, list pages) and stage a
//! concurrent writer.

use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_s3::primitives::ByteStream;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use futures::StreamExt;

use crate::harness::{Env, RunPincher, md5_hex, stderr, stdout};
use crate::support::database::Backend;
use crate::support::moto::moto_url;

/// Access key the tests use on moto (which does not check credentials).
pub const ACCESS_KEY: &str = "AKIAPINCHERS3TEST";
/// Secret key the tests use; it must never show in any output.
pub const SECRET_KEY: &str = "s3-test-secret-never-printed";
/// The configured prefix, deliberately without its trailing `/`.
pub const PREFIX_SETTING: &str = "ops/opsmanager";
/// The prefix as keys carry it.
pub const PREFIX: &str = "ops/opsmanager/";

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `GET`, `PUT`, …
    pub method: Method,
    /// Path and query, e.g. `/bucket?list-type=2&continuation-token=…`.
    pub uri: String,
    /// The request headers.
    pub headers: HeaderMap,
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    log: Arc<Mutex<Vec<Recorded>>>,
    race_puts: Arc<AtomicBool>,
}

/// Headers the proxy does not copy: the connection's own, and those the client recomputes.
fn hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "host" | "content-length" | "transfer-encoding" | "connection" | "expect" | "keep-alive"
    )
}

async fn forward(State(state): State<ProxyState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("request body");
    let uri = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    state.log.lock().expect("log").push(Recorded {
        method: parts.method.clone(),
        uri: uri.clone(),
        headers: parts.headers.clone(),
    });
    let send = |unconditional: bool| {
        let mut upstream = state
            .client
            .request(parts.method.clone(), format!("{}{uri}", state.upstream));
        for (name, value) in &parts.headers {
            if hop_by_hop(name.as_str()) || (unconditional && name == "if-none-match") {
                continue;
            }
            upstream = upstream.header(name, value);
        }
        upstream.body(body.clone()).send()
    };
    if parts.method == Method::PUT && state.race_puts.load(Ordering::SeqCst) {
        let winner = send(true).await.expect("the staged concurrent PUT");
        assert!(winner.status().is_success(), "{}", winner.status());
    }
    let answer = send(false).await.expect("forward to moto");
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if !hop_by_hop(name.as_str()) {
            response = response.header(name, value);
        }
    }
    let bytes = answer.bytes().await.expect("moto's answer");
    response.body(Body::from(bytes)).expect("response")
}

/// A recording HTTP proxy in front of the moto server, on 127.0.0.1:0.
pub struct S3Proxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    log: Arc<Mutex<Vec<Recorded>>>,
    race_puts: Arc<AtomicBool>,
}

impl S3Proxy {
    async fn start(upstream: String) -> Self {
        let state = ProxyState {
            upstream,
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
            log: Arc::default(),
            race_puts: Arc::default(),
        };
        let (log, race_puts) = (state.log.clone(), state.race_puts.clone());
        let app = axum::Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            log,
            race_puts,
        }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().expect("log").clone()
    }

    /// Forgets the requests so far.
    pub fn clear(&self) {
        self.log.lock().expect("log").clear();
    }

    /// When on, every PUT is first sent once more without its `If-None-Match`, as if another
    /// run wrote the same object between pincher's HeadObject and its PutObject.
    pub fn race_puts(&self, on: bool) {
        self.race_puts.store(on, Ordering::SeqCst);
    }
}

/// The fake Ops Manager, a database, a bucket of its own and the proxy.
pub struct S3World {
    /// Fake, database and (unused) backup folder.
    pub env: Env,
    /// The bucket, unique to this test.
    pub bucket: String,
    /// A client straight to moto, for seeding and inspection.
    pub s3: Client,
    /// The proxy pincher talks to.
    pub proxy: S3Proxy,
}

impl S3World {
    /// A world whose bucket exists.
    pub async fn new(groups: usize) -> Self {
        let world = Self::without_bucket(groups).await;
        world
            .s3
            .create_bucket()
            .bucket(&world.bucket)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateBucket {}: {e:?}", world.bucket));
        world
    }

    /// A world whose bucket was never created.
    pub async fn without_bucket(groups: usize) -> Self {
        let url = moto_url();
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&url)
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                ACCESS_KEY, SECRET_KEY, None, None, "test",
            )))
            .build();
        let s3 = Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        );
        Self {
            env: Env::new(Backend::Sqlite, groups).await,
            bucket: format!("pincher-test-{}", uuid::Uuid::new_v4().simple()),
            s3,
            proxy: S3Proxy::start(url).await,
        }
    }

    /// The settings and AWS environment of a `pincher` run against this world's bucket.
    pub fn vars(&self) -> Vec<(String, String)> {
        [
            ("PINCHER_BACKUPS__S3_BUCKET", self.bucket.as_str()),
            ("PINCHER_BACKUPS__S3_PREFIX", PREFIX_SETTING),
            ("PINCHER_AWS__ENDPOINT_URL", self.proxy.url.as_str()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
            ("AWS_REGION", "us-east-1"),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// The key the fake's current configuration of `group` belongs under.
    pub fn key(&self, group: &str) -> String {
        let bytes = self.env.fake.config(group);
        format!(
            "{PREFIX}{group}/{}-{}.json",
            self.env.fake.version(group),
            md5_hex(&bytes)
        )
    }

    /// `s3://bucket/key`.
    pub fn uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// An object's bytes.
    pub async fn get(&self, key: &str) -> Vec<u8> {
        let object = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetObject {key}: {e:?}"));
        object
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .to_vec()
    }

    /// Writes an object directly (not through pincher).
    pub async fn put(&self, key: &str, bytes: Vec<u8>) {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutObject {key}: {e:?}"));
    }

    /// Writes many objects directly, 16 at a time.
    pub async fn put_many(&self, objects: Vec<(String, Vec<u8>)>) {
        futures::stream::iter(objects)
            .for_each_concurrent(
                16,
                |(key, bytes)| async move { self.put(&key, bytes).await },
            )
            .await;
    }

    /// Every object in the bucket (key, last-modified), paged to the end, by key.
    pub async fn objects(&self) -> Vec<(String, aws_sdk_s3::primitives::DateTime)> {
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            for object in page.expect("ListObjectsV2").contents.unwrap_or_default() {
                found.push((
                    object.key.expect("key"),
                    object.last_modified.expect("last modified"),
                ));
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    /// The keys of `group`'s objects.
    pub async fn keys_of(&self, group: &str) -> Vec<String> {
        self.objects()
            .await
            .into_iter()
            .map(|(key, _)| key)
            .filter(|key| key.starts_with(&format!("{PREFIX}{group}/")))
            .collect()
    }

    /// The PutObject requests pincher sent to the bucket so far.
    pub fn puts(&self) -> Vec<Recorded> {
        let path = format!("/{}/", self.bucket);
        self.proxy
            .requests()
            .into_iter()
            .filter(|r| r.method == Method::PUT && r.uri.starts_with(&path))
            .collect()
    }
}

impl RunPincher for S3World {
    /// `pincher ARGS…` against this world.
    async fn run(&self, args: &[&str]) -> Output {
        let mut command = self.env.command(env!("CARGO_BIN_EXE_pincher"));
        for (key, _) in std::env::vars() {
            if key.starts_with("AWS_") {
                command.env_remove(key);
            }
        }
        let output = command
            .envs(self.vars())
            .args(args)
            .output()
            .await
            .expect("run pincher");
        for text in [stdout(&output), stderr(&output)] {
            assert!(!text.contains(SECRET_KEY), "the secret key leaked: {text}");
        }
        output
    }
}
