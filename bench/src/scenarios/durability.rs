//! `durability-cost`: the same fanout against the normal server (every batch appended to the
//! PostgreSQL update log before delivery) and against a build whose append is a no-op
//! (`--features bench-noop-store`), to show what durability costs.

use std::path::Path;

use anyhow::{bail, Result};

use super::fanout::{self, FanoutConfig};
use super::Env;
use crate::report::Row;
use crate::server::ServerOptions;

pub async fn run(
    options: &ServerOptions,
    noop_bin: &Path,
    config: &FanoutConfig,
) -> Result<Vec<Row>> {
    if options.url.is_some() {
        bail!("durability-cost spawns its own two servers; it cannot use --server-url");
    }
    if !noop_bin.exists() {
        bail!(
            "no-op-store server {} not found; build it with\n  CARGO_TARGET_DIR=target/noop-store \
             cargo build --release -p nox-server --features bench-noop-store --bin nox-sync\n\
             (or pass --noop-server-bin)",
            noop_bin.display()
        );
    }
    let noop = ServerOptions {
        bin: noop_bin.to_path_buf(),
        ..options.clone()
    };
    let mut rows = Vec::new();
    // Alternate the two servers per size so machine noise hits both alike.
    for &n in &config.sizes {
        for (label, opts) in [("durable", options), ("no-op store", &noop)] {
            let env = Env::start(opts).await?;
            let mut row = fanout::measure(
                &env,
                "durability-cost",
                &format!("{label} N={n}"),
                n,
                config,
            )
            .await?;
            row.set("store", label);
            rows.push(row);
        }
    }
    Ok(rows)
}
