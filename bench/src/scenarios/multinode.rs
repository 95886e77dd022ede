//! `multinode`: two nodes on one PostgreSQL (issue 17, docs/design.md §7). The writer's node
//! owns the workspace; readers sit on the same node, or on the other node, which relays them to
//! the owner. Reported: receive − send latency per delivered move, as in `fanout`, so the two
//! rows differ by the cost of the relay hop.

use anyhow::Result;

use super::fanout::{self, FanoutConfig};
use super::Env;
use crate::report::Row;
use crate::server::{Server, ServerOptions, SharedDatabase};

pub async fn run(options: &ServerOptions, config: &FanoutConfig) -> Result<Vec<Row>> {
    let database = SharedDatabase::start(&options.bin).await?;
    let mut node_options = options.clone();
    node_options.url = None;
    node_options
        .env
        .push(("DATABASE_URL".into(), database.url.clone()));
    let owner = Env::start(&node_options).await?;
    let other = Env {
        server: Server::start(&node_options).await?,
        tenant: owner.tenant.clone(),
    };
    let mut rows = Vec::new();
    for &n in &config.sizes {
        let case = format!("same node, N={n}");
        rows.push(fanout::measure_across(&owner, &owner, "multinode", &case, n, config).await?);
        let case = format!("readers on the other node, N={n}");
        rows.push(fanout::measure_across(&owner, &other, "multinode", &case, n, config).await?);
    }
    drop(other);
    drop(owner);
    database.stop().await;
    Ok(rows)
}
