//! Search against goiardi: more rows than one page, full and partial.

use std::sync::Arc;

use pincher::plugins::chef::search::{PAGE_ROWS, SearchQuery, search};
use pincher::plugins::chef::{ChefClient, SignVersion};
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::support::chef::{ChefPeer, eventually, unique};

/// Creates `count` nodes tagged with `batch` (normal attribute `pincher_batch`), 16 at once.
pub async fn create_batch(client: &ChefClient, prefix: &str, batch: &str, count: usize) {
    run_batch(client, count, |client, i| {
        let node = json!({
            "name": format!("{prefix}-{i:05}"),
            "chef_type": "node", "json_class": "Chef::Node", "chef_environment": "_default",
            "run_list": [], "default": {}, "override": {},
            "normal": {"pincher_batch": batch, "seq": i},
            "automatic": {"ec2": {"instance_id": format!("i-{i:017}")}}
        });
        async move {
            pincher::plugins::chef::nodes::create_node(&client, &node)
                .await
                .unwrap_or_else(|e| panic!("create node {i}: {e}"));
        }
    })
    .await;
}

/// Deletes the nodes [`create_batch`] made.
pub async fn delete_batch(client: &ChefClient, prefix: &str, count: usize) {
    let prefix = prefix.to_owned();
    run_batch(client, count, move |client, i| {
        let name = format!("{prefix}-{i:05}");
        async move {
            pincher::plugins::chef::nodes::delete_node(&client, &name)
                .await
                .unwrap_or_else(|e| panic!("delete node {name}: {e}"));
        }
    })
    .await;
}

/// Waits until a search for `query` finds at least `count` rows.
pub async fn wait_until_indexed(client: &ChefClient, query: &str, count: usize) {
    eventually(&format!("{count} nodes to be indexed"), || async {
        let found = search(client, &SearchQuery::new("node", query))
            .await
            .expect("search");
        (found.rows.len() >= count).then_some(())
    })
    .await;
}

async fn run_batch<F, Fut>(client: &ChefClient, count: usize, task: F)
where
    F: Fn(ChefClient, usize) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let limit = Arc::new(Semaphore::new(16));
    let mut tasks = JoinSet::new();
    for i in 0..count {
        let permit = Arc::clone(&limit).acquire_owned().await.expect("semaphore");
        let work = task(client.clone(), i);
        tasks.spawn(async move {
            work.await;
            drop(permit);
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a batch task panicked");
    }
}

#[tokio::test]
async fn a_search_returns_every_row_past_the_first_page() {
    let peer = ChefPeer::from_env();
    let client = peer.client(SignVersion::V1_3);
    let batch = unique("batch").replace('-', "_");
    let prefix = unique("page");
    let count = PAGE_ROWS + 150;
    create_batch(&client, &prefix, &batch, count).await;

    let query = format!("pincher_batch:{batch}");
    wait_until_indexed(&client, &query, count).await;
    let full = search(&client, &SearchQuery::new("node", query.clone()))
        .await
        .expect("full search");
    assert_eq!(full.rows.len(), count);
    assert_eq!(full.total, count as u64);
    assert_eq!(full.pages, 2, "{} rows per page", PAGE_ROWS);
    let mut names: Vec<&str> = full.rows.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), count, "every node exactly once");

    let partial = search(
        &client,
        &SearchQuery::new("node", query.clone()).with_attributes(vec![
            ("seq".into(), vec!["seq".into()]),
            ("instance".into(), vec!["ec2".into(), "instance_id".into()]),
        ]),
    )
    .await
    .expect("partial search");
    assert_eq!(partial.rows.len(), count);
    let mut seqs: Vec<u64> = partial
        .rows
        .iter()
        .map(|r| r.data["seq"].as_u64().expect("seq is returned"))
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..count as u64).collect::<Vec<_>>());
    let first = partial
        .rows
        .iter()
        .find(|r| r.data["seq"] == 0)
        .expect("row 0");
    assert_eq!(first.data["instance"], "i-00000000000000000");
    assert_eq!(first.name, format!("{prefix}-00000"));

    let small_pages = search(
        &client,
        &SearchQuery {
            page_rows: 400,
            ..SearchQuery::new("node", query)
        },
    )
    .await
    .expect("search in small pages");
    assert_eq!(small_pages.rows.len(), count);
    assert_eq!(small_pages.pages, count.div_ceil(400));

    delete_batch(&client, &prefix, count).await;
}

#[tokio::test]
async fn a_search_with_no_hits_is_empty() {
    let peer = ChefPeer::from_env();
    let client = peer.client(SignVersion::V1_3);
    let result = search(
        &client,
        &SearchQuery::new(
            "node",
            format!("pincher_batch:{}", unique("none").replace('-', "_")),
        ),
    )
    .await
    .expect("search");
    assert_eq!(result.total, 0);
    assert!(result.rows.is_empty());
}

#[tokio::test]
async fn data_bags_are_searched_by_item_id() {
    let peer = ChefPeer::from_env();
    let client = peer.client(SignVersion::V1_3);
    let bag = unique("bag");
    client
        .post("create_data_bag", &["data"], &[], &json!({"name": bag}))
        .await
        .expect("create the data bag");
    for (id, team) in [("alice", "sre"), ("bob", "dev")] {
        client
            .post(
                "create_data_bag_item",
                &["data", &bag],
                &[],
                &json!({"id": id, "team": team, "shell": "/bin/bash"}),
            )
            .await
            .expect("create an item");
    }
    let found = eventually("both items to be indexed", || async {
        let found = search(&client, &SearchQuery::new(&bag, "*:*"))
            .await
            .expect("search the bag");
        (found.rows.len() >= 2).then_some(found)
    })
    .await;
    let mut ids: Vec<&str> = found.rows.iter().map(|r| r.name.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["alice", "bob"]);

    let sre = search(
        &client,
        &SearchQuery::new(&bag, "team:sre")
            .with_attributes(vec![("login_shell".into(), vec!["shell".into()])]),
    )
    .await
    .expect("partial search of the bag");
    assert_eq!(sre.rows.len(), 1);
    assert_eq!(sre.rows[0].name, "alice");
    assert_eq!(sre.rows[0].data, json!({"login_shell": "/bin/bash"}));

    client
        .delete("delete_data_bag", &["data", &bag])
        .await
        .expect("delete the data bag");
}
