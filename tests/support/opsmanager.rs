//! A protocol-faithful fake MongoDB Ops Manager public API, in process on 127.0.0.1:0.
//!
//! - HTTP Digest (RFC 7616): MD5, qop=auth, realm "MMS Public API"; nonce counts are checked
//!   (a replayed count is refused); expired nonces get a `stale=true` challenge. Expiry is
//!   driven by tests ([`FakeOpsManager::expire_nonces`], [`FakeOpsManager::set_nonce_max_uses`]).
//! - `GET /api/public/v1.0/groups` paged with `pageNum`/`itemsPerPage`, answering `results`,
//!   `totalCount` and `links` (self, next, previous).
//! - `GET|PUT /api/public/v1.0/groups/{id}/automationConfig`: a realistic document; PUT
//!   replaces it whole and bumps `version`.
//! - Ops Manager-shaped error bodies for 401, 403, 404, 429 and 500, switches to fail a group,
//!   throttle, slow down or refuse the caller's address, and counters of what was requested
//!   (and the trace headers it came with).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use md5::{Digest, Md5};
use serde_json::{Value, json};

/// The realm Ops Manager uses.
pub const REALM: &str = "MMS Public API";
/// Public API key the fake accepts.
pub const PUBLIC_KEY: &str = "pincher-test-public";
/// Private API key the fake accepts.
pub const PRIVATE_KEY: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
/// The API path prefix.
pub const API: &str = "/api/public/v1.0";

struct Nonce {
    expired: bool,
    uses: u32,
    seen_counts: HashSet<u32>,
}

struct FakeGroup {
    name: String,
    config: Vec<u8>,
}

#[derive(Default)]
struct FakeState {
    groups: BTreeMap<String, FakeGroup>,
    nonces: HashMap<String, Nonce>,
    nonce_serial: u64,
    nonce_max_uses: Option<u32>,
    max_items_per_page: usize,
    failing: HashSet<String>,
    forbidden: bool,
    change_after_next_get: HashSet<String>,
    counters: BTreeMap<String, usize>,
    puts: Vec<(String, Vec<u8>)>,
    traceparents: Vec<Option<String>>,
    latency: Duration,
    throttle: usize,
    hostile: Hostile,
}

/// What a compromised or broken Ops Manager may send.
#[derive(Default, Clone)]
pub struct Hostile {
    /// Ids listed among the groups that are not group ids (`../../etc`).
    pub bad_group_ids: Vec<String>,
    /// Every page of groups says there is a next one.
    pub endless_next_links: bool,
    /// Groups whose configuration is answered with this version.
    pub versions: HashMap<String, i64>,
    /// Groups whose configuration is answered with a body of this many bytes.
    pub huge_bodies: HashMap<String, usize>,
}

impl FakeState {
    fn count(&mut self, name: &str) {
        *self.counters.entry(name.to_owned()).or_default() += 1;
    }
}

/// A running fake Ops Manager.
#[derive(Clone)]
pub struct FakeOpsManager {
    /// `http://127.0.0.1:PORT` (the API lives under [`API`]).
    pub base_url: String,
    state: Arc<Mutex<FakeState>>,
}

fn md5_hex(text: &str) -> String {
    format!("{:x}", Md5::digest(text.as_bytes()))
}

/// A 24-hex-character group id, like Ops Manager's ObjectIds.
pub fn group_id(index: usize) -> String {
    format!("5f{index:022x}")
}

/// A realistic automation configuration of a three-member replica set.
pub fn sample_config(index: usize, version: i64) -> Vec<u8> {
    let rs = format!("rs{index}");
    let hosts: Vec<String> = (0..3)
        .map(|m| format!("db{m}.group{index}.example.internal"))
        .collect();
    let processes: Vec<String> = hosts
        .iter()
        .enumerate()
        .map(|(m, host)| {
            format!(
                r#"{{"args2_6":{{"net":{{"bindIpAll":true,"port":27017,"tls":{{"mode":"requireTLS","certificateKeyFile":"/etc/ssl/mongod.pem"}}}},"replication":{{"replSetName":"{rs}"}},"storage":{{"dbPath":"/data/{rs}","wiredTiger":{{"engineConfig":{{"cacheSizeGB":1.0}}}}}},"systemLog":{{"destination":"file","path":"/var/log/mongodb/mongod.log"}}}},"authSchemaVersion":5,"disabled":false,"featureCompatibilityVersion":"7.0","hostname":"{host}","logRotate":{{"sizeThresholdMB":1000.0,"timeThresholdHrs":24}},"manualMode":false,"name":"{rs}_{m}","processType":"mongod","version":"7.0.12-ent"}}"#
            )
        })
        .collect();
    let members: Vec<String> = (0..3)
        .map(|m| {
            format!(
                r#"{{"_id":{m},"arbiterOnly":false,"buildIndexes":true,"hidden":false,"host":"{rs}_{m}","priority":{}.0,"secondaryDelaySecs":0,"tags":{{}},"votes":1}}"#,
                if m == 0 { 2 } else { 1 }
            )
        })
        .collect();
    let agents = |name: &str| -> String {
        hosts
            .iter()
            .map(|h| format!(r#"{{"hostname":"{h}","name":"{name}"}}"#))
            .collect::<Vec<_>>()
            .join(",")
    };
    let keyfile = format!(
        "{}{}",
        "c2VjcmV0LWtleWZpbGUtY29udGVudHMtZm9yLXJlcGxpY2Etc2V0LW1lbWJlcnM".repeat(12),
        index
    );
    format!(
        r#"{{"auth":{{"autoAuthMechanism":"SCRAM-SHA-256","autoAuthMechanisms":["SCRAM-SHA-256"],"autoAuthRestrictions":[],"autoPwd":"autoPwd-{index}-Xk29fLq","autoUser":"mms-automation","deploymentAuthMechanisms":["SCRAM-SHA-256"],"disabled":false,"key":"{keyfile}","keyfile":"/var/lib/mongodb-mms-automation/keyfile","keyfileWindows":"%SystemDrive%\\MMSAutomation\\versions\\keyfile","usersDeleted":[],"usersWanted":[{{"authenticationRestrictions":[],"db":"admin","initPwd":"app-password-{index}","mechanisms":["SCRAM-SHA-256"],"roles":[{{"db":"admin","role":"readWriteAnyDatabase"}}],"user":"app"}},{{"db":"admin","roles":[{{"db":"admin","role":"clusterMonitor"}}],"scramSha256Creds":{{"iterationCount":15000,"salt":"c2FsdHNhbHQ=","serverKey":"c2VydmVyS2V5","storedKey":"c3RvcmVkS2V5"}},"user":"monitor"}}]}},"backupVersions":[{agents_backup}],"balancer":{{}},"cpsModules":[],"indexConfigs":[],"kerberos":{{"serviceName":"mongodb"}},"ldap":{{}},"mongoDbVersions":[{{"builds":[{{"architecture":"amd64","bits":64,"flavor":"ubuntu","gitVersion":"b2b9b5b5b1c3f8e0a1d5c7e9f0a2b4c6d8e0f1a3","maxOsVersion":"23.04","minOsVersion":"22.04","modules":["enterprise"],"platform":"linux","url":"https://downloads.mongodb.com/linux/mongodb-linux-x86_64-enterprise-ubuntu2204-7.0.12.tgz"}}],"name":"7.0.12-ent"}}],"mongosqlds":[],"mongots":[],"monitoringVersions":[{agents_monitoring}],"onlineArchiveModules":[],"options":{{"downloadBase":"/var/lib/mongodb-mms-automation","downloadBaseWindows":"%SystemDrive%\\MMSAutomation\\versions"}},"processes":[{processes}],"replicaSets":[{{"_id":"{rs}","members":[{members}],"protocolVersion":"1","settings":{{"electionTimeoutMillis":10000}},"writeConcernMajorityJournalDefault":"true"}}],"roles":[],"sharding":[],"ssl":{{"CAFilePath":"/etc/ssl/ca.pem","clientCertificateMode":"OPTIONAL"}},"tls":{{"CAFilePath":"/etc/ssl/ca.pem","clientCertificateMode":"OPTIONAL"}},"uiBaseUrl":null,"version":{version}}}"#,
        agents_backup = agents("7.0.12.1111-1"),
        agents_monitoring = agents("7.0.12.1111-1"),
        processes = processes.join(","),
        members = members.join(","),
    )
    .into_bytes()
}

fn om_error(status: StatusCode, code: &str, detail: &str, parameters: Value) -> Response {
    let body = json!({
        "detail": detail,
        "error": status.as_u16(),
        "errorCode": code,
        "parameters": parameters,
        "reason": status.canonical_reason().unwrap_or_default(),
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn parse_params(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        out.insert(key, value);
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

enum AuthResult {
    Ok,
    Challenge { stale: bool },
}

impl FakeOpsManager {
    /// Starts a fake with `groups` groups, each with its own configuration at version 1.
    pub async fn start(groups: usize) -> Self {
        let mut state = FakeState {
            max_items_per_page: 500,
            ..FakeState::default()
        };
        for index in 0..groups {
            state.groups.insert(
                group_id(index),
                FakeGroup {
                    name: format!("project-{index}"),
                    config: sample_config(index, 1),
                },
            );
        }
        let state = Arc::new(Mutex::new(state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Ops Manager");
        let base_url = format!("http://{}", listener.local_addr().expect("address"));
        let app = Router::new().fallback(handle).with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base_url, state }
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake state lock")
    }

    /// Makes the fake answer as `hostile` says.
    pub fn turn_hostile(&self, hostile: Hostile) {
        self.lock().hostile = hostile;
    }

    /// Ids of every group, in id order.
    pub fn group_ids(&self) -> Vec<String> {
        self.lock().groups.keys().cloned().collect()
    }

    /// The stored configuration of `group`, as GET returns it.
    pub fn config(&self, group: &str) -> Vec<u8> {
        self.lock().groups[group].config.clone()
    }

    /// The `version` of `group`'s configuration.
    pub fn version(&self, group: &str) -> i64 {
        let value: Value = serde_json::from_slice(&self.config(group)).expect("JSON");
        value["version"].as_i64().expect("version")
    }

    /// Changes one value (by JSON Pointer) of `group`'s configuration, as an operator would
    /// in the UI, bumping the version.
    pub fn change_config(&self, group: &str, pointer: &str, value: Value) {
        let mut state = self.lock();
        change(&mut state, group, pointer, value);
    }

    /// Makes every request about `group` fail with 500.
    pub fn fail_group(&self, group: &str) {
        self.lock().failing.insert(group.to_owned());
    }

    /// Refuses every authenticated request with 403, as an API access list would.
    pub fn deny_address(&self) {
        self.lock().forbidden = true;
    }

    /// Expires every nonce issued so far: their next use gets a `stale=true` challenge.
    pub fn expire_nonces(&self) {
        for nonce in self.lock().nonces.values_mut() {
            nonce.expired = true;
        }
    }

    /// Expires each nonce after it has been used `uses` times.
    pub fn set_nonce_max_uses(&self, uses: u32) {
        self.lock().nonce_max_uses = Some(uses);
    }

    /// Caps `itemsPerPage` of `GET /groups`.
    pub fn set_max_items_per_page(&self, items: usize) {
        self.lock().max_items_per_page = items.max(1);
    }

    /// After serving the next GET of `group`'s configuration, changes it (another operator).
    pub fn change_after_next_get(&self, group: &str) {
        self.lock().change_after_next_get.insert(group.to_owned());
    }

    /// How often `name` happened: `GET /groups`, `GET automationConfig`,
    /// `PUT automationConfig`, `challenge`, `stale`, `unauthorized`, `replayed nc`.
    pub fn counter(&self, name: &str) -> usize {
        self.lock().counters.get(name).copied().unwrap_or(0)
    }

    /// Delays every answer by `latency`, like a distant Ops Manager.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Answers the next `requests` authenticated requests with 429 and `Retry-After: 0`.
    pub fn throttle_next(&self, requests: usize) {
        self.lock().throttle = requests;
    }

    /// The W3C `traceparent` header of every request received, in order (`None` when one
    /// had none).
    pub fn traceparents(&self) -> Vec<Option<String>> {
        self.lock().traceparents.clone()
    }

    /// Every PUT body received, with its group, in order.
    pub fn puts(&self) -> Vec<(String, Vec<u8>)> {
        self.lock().puts.clone()
    }
}

fn change(state: &mut FakeState, group: &str, pointer: &str, value: Value) {
    let entry = state.groups.get_mut(group).expect("known group");
    let mut doc: Value = serde_json::from_slice(&entry.config).expect("JSON");
    let version = doc["version"].as_i64().unwrap_or(0);
    *doc.pointer_mut(pointer).expect("existing pointer") = value;
    doc["version"] = json!(version + 1);
    entry.config = serde_json::to_vec(&doc).expect("serialize");
}

fn challenge_response(state: &mut FakeState, stale: bool) -> Response {
    state.nonce_serial += 1;
    let nonce = format!(
        "{:x}{:08x}",
        uuid::Uuid::new_v4().simple(),
        state.nonce_serial
    );
    state.nonces.insert(
        nonce.clone(),
        Nonce {
            expired: false,
            uses: 0,
            seen_counts: HashSet::new(),
        },
    );
    state.count("challenge");
    if stale {
        state.count("stale");
    } else {
        state.count("unauthorized");
    }
    let mut response = om_error(
        StatusCode::UNAUTHORIZED,
        "USER_UNAUTHORIZED",
        "Current user is not authorized to perform this action.",
        json!([]),
    );
    let value = format!(
        "Digest realm=\"{REALM}\", domain=\"\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\", stale={stale}"
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(&value).expect("header"),
    );
    response
}

fn check_digest(
    state: &mut FakeState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> AuthResult {
    let Some(text) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return AuthResult::Challenge { stale: false };
    };
    let Some(params) = text.strip_prefix("Digest ").map(parse_params) else {
        return AuthResult::Challenge { stale: false };
    };
    let get = |k: &str| params.get(k).cloned().unwrap_or_default();
    let request_uri = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    if get("realm") != REALM
        || get("qop") != "auth"
        || !get("algorithm").eq_ignore_ascii_case("MD5")
        || get("uri") != request_uri
    {
        return AuthResult::Challenge { stale: false };
    }
    let nc_text = get("nc");
    let Ok(nc) = u32::from_str_radix(&nc_text, 16) else {
        return AuthResult::Challenge { stale: false };
    };
    let max_uses = state.nonce_max_uses;
    let Some(nonce) = state.nonces.get_mut(&get("nonce")) else {
        return AuthResult::Challenge { stale: false };
    };
    let ha1 = if get("username") == PUBLIC_KEY {
        md5_hex(&format!("{PUBLIC_KEY}:{REALM}:{PRIVATE_KEY}"))
    } else {
        String::new()
    };
    let ha2 = md5_hex(&format!("{method}:{request_uri}"));
    let expected = md5_hex(&format!(
        "{ha1}:{}:{nc_text}:{}:auth:{ha2}",
        get("nonce"),
        get("cnonce")
    ));
    if ha1.is_empty() || get("response") != expected {
        return AuthResult::Challenge { stale: false };
    }
    if nonce.expired {
        return AuthResult::Challenge { stale: true };
    }
    if nc == 0 || !nonce.seen_counts.insert(nc) {
        state.count("replayed nc");
        return AuthResult::Challenge { stale: false };
    }
    nonce.uses += 1;
    if max_uses.is_some_and(|max| nonce.uses >= max) {
        nonce.expired = true;
    }
    AuthResult::Ok
}

async fn handle(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let latency = state.lock().expect("fake state lock").latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut state = state.lock().expect("fake state lock");
    let state = &mut *state;
    state.traceparents.push(
        headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    );
    if let AuthResult::Challenge { stale } = check_digest(state, &method, &uri, &headers) {
        return challenge_response(state, stale);
    }
    if state.throttle > 0 {
        state.throttle -= 1;
        state.count("429");
        let mut response = om_error(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            "Too many requests.",
            json!([]),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("0"));
        return response;
    }
    if state.forbidden {
        return om_error(
            StatusCode::FORBIDDEN,
            "IP_ADDRESS_NOT_ON_ACCESS_LIST",
            "IP address 127.0.0.1 is not allowed to access this resource.",
            json!(["127.0.0.1"]),
        );
    }
    let path = uri.path().strip_prefix(API).unwrap_or("");
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match (method.clone(), segments.as_slice()) {
        (Method::GET, ["groups"]) => {
            state.count("GET /groups");
            list_groups(state, &query)
        }
        (m, ["groups", group, "automationConfig"]) if m == Method::GET || m == Method::PUT => {
            let group = (*group).to_owned();
            if !state.groups.contains_key(&group) {
                return om_error(
                    StatusCode::NOT_FOUND,
                    "GROUP_NOT_FOUND",
                    &format!("No group with ID {group} exists."),
                    json!([group]),
                );
            }
            if state.failing.contains(&group) {
                state.count("500");
                return om_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "UNEXPECTED_ERROR",
                    "Unexpected error.",
                    json!([]),
                );
            }
            if m == Method::GET {
                state.count("GET automationConfig");
                if let Some(&size) = state.hostile.huge_bodies.get(&group) {
                    let mut body = b"{\"version\": 1, \"padding\": \"".to_vec();
                    body.resize(size.saturating_sub(2), b'x');
                    body.extend_from_slice(b"\"}");
                    return ([(header::CONTENT_TYPE, "application/json")], body).into_response();
                }
                let mut bytes = state.groups[&group].config.clone();
                if let Some(&version) = state.hostile.versions.get(&group) {
                    let mut doc: Value = serde_json::from_slice(&bytes).expect("JSON");
                    doc["version"] = json!(version);
                    bytes = serde_json::to_vec(&doc).expect("serialize");
                }
                if state.change_after_next_get.remove(&group) {
                    change(
                        state,
                        &group,
                        "/options/downloadBase",
                        json!("/srv/moved-by-someone-else"),
                    );
                }
                ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
            } else {
                state.count("PUT automationConfig");
                state.puts.push((group.clone(), body.to_vec()));
                let Ok(mut doc) = serde_json::from_slice::<Value>(&body) else {
                    return om_error(
                        StatusCode::BAD_REQUEST,
                        "INVALID_JSON",
                        "Received JSON is malformed.",
                        json!([]),
                    );
                };
                let entry = state.groups.get_mut(&group).expect("known group");
                let current: Value = serde_json::from_slice(&entry.config).expect("JSON");
                let version = current["version"].as_i64().unwrap_or(0) + 1;
                doc["version"] = json!(version);
                entry.config = serde_json::to_vec(&doc).expect("serialize");
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    entry.config.clone(),
                )
                    .into_response()
            }
        }
        _ => om_error(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
            &format!("Cannot find resource {}.", uri.path()),
            json!([uri.path()]),
        ),
    }
}

fn list_groups(state: &mut FakeState, query: &HashMap<String, String>) -> Response {
    let page_num: usize = query
        .get("pageNum")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let per_page: usize = query
        .get("itemsPerPage")
        .and_then(|p| p.parse().ok())
        .unwrap_or(100)
        .clamp(1, state.max_items_per_page);
    let hostile = state.hostile.clone();
    let names: Vec<(String, String)> = state
        .groups
        .iter()
        .map(|(id, g)| (id.clone(), g.name.clone()))
        .chain(
            hostile
                .bad_group_ids
                .iter()
                .map(|id| (id.clone(), "evil".to_owned())),
        )
        .collect();
    let total = names.len();
    let results: Vec<Value> = names
        .iter()
        .skip(if hostile.endless_next_links {
            0
        } else {
            (page_num - 1) * per_page
        })
        .take(per_page)
        .map(|(id, name)| {
            json!({
                "id": id, "name": name, "orgId": "5e0000000000000000000001",
                "activeAgentCount": 3, "hostCounts": {"mongod": 3}, "replicaSetCount": 1,
                "links": [{"href": format!("{API}/groups/{id}"), "rel": "self"}]
            })
        })
        .collect();
    let link = |rel: &str, page: usize| json!({"href": format!("{API}/groups?pageNum={page}&itemsPerPage={per_page}"), "rel": rel});
    let mut links = vec![link("self", page_num)];
    if page_num > 1 {
        links.push(link("previous", page_num - 1));
    }
    if page_num * per_page < total || hostile.endless_next_links {
        links.push(link("next", page_num + 1));
    }
    let body = json!({"links": links, "results": results, "totalCount": total});
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
