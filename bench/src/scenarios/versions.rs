//! `versions` (issue 14): what a version costs on the 10,000 blocks + 10,000 relations canvas —
//! taking one (`POST …/versions`: the room encodes its state, the row is written), the bytes it
//! stores, and restoring one (`POST …/versions/{id}/restore`: decode the version, compute and apply
//! the forward change in the room, make it durable, store the "before restore" version), plus when
//! a connected editor has seen the restore. Times are HTTP round trips, so they include everything.
//!
//! The server keeps the last decoded versions for a moment, so every case restores a version not
//! read since it was taken, except "diff viewed first", which measures the editor's flow: look at
//! what changed since the version (`GET …/diff`), then restore it. Every case runs `rounds` times,
//! each round on a workspace of its own (the machine's other work — compaction, the editor applying
//! the last restore — makes single runs noisy); rows give the median and the maximum.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::cold_load::{write_content, ColdLoadConfig};
use super::Env;
use crate::client::{self, Client};
use crate::report::Row;
use crate::server::ServerOptions;

#[derive(Debug, Clone)]
pub struct VersionsConfig {
    pub blocks: usize,
    pub relations: usize,
    /// Versions taken of the full canvas (the cost is reported over all of them).
    pub takes: usize,
    /// Blocks renamed, removed and added between the version and its restore ("small change").
    pub churn: usize,
    /// Times every restore case is run (each with versions taken in its round); the rows report
    /// the median and the maximum.
    pub rounds: usize,
}

pub async fn run(options: &ServerOptions, config: &VersionsConfig) -> Result<Vec<Row>> {
    let env = Env::start(options).await?;
    let mut take_ms: Vec<f64> = Vec::new();
    let mut full = Value::Null;
    let (mut stored_kib, mut doc_bytes) = (0.0, 0);
    let mut cases = Cases::default();
    for round in 0..config.rounds.max(1) {
        // A workspace of its own per round, so every round restores on the same canvas (a
        // round's restores leave the deleted entities' history in the document).
        let ws = env.tenant.create_workspace().await?;
        let base = format!("/workspaces/{ws}/versions");
        let empty_id = id_of(&take(&env, &base, "empty").await?.1)?;
        let mut writer = env.connect(&ws, 0, true).await?;
        let ids = write_content(
            &mut writer,
            &ColdLoadConfig {
                blocks: config.blocks,
                relations: config.relations,
                batch: 500,
                loads: 0,
            },
        )
        .await?;
        let full_canvas = writer.canvas_json();
        doc_bytes = writer.state_len();
        // Versions not read since they were taken (the server keeps recently read ones for a
        // moment).
        let mut unread = Vec::new();
        for i in 0..config.takes.max(3) {
            let (elapsed, version) = take(&env, &base, &format!("full #{round}.{i}")).await?;
            take_ms.push(elapsed.as_secs_f64() * 1e3);
            unread.push(id_of(&version)?);
            full = version;
        }
        if round == 0 {
            // The answer to the insert cannot know the compressed size (TOAST compresses on
            // the way in): read it back.
            let id = unread.last().context("a version")?;
            let stored = env.tenant.get_api(&format!("{base}/{id}")).await?;
            stored_kib = kib(&stored["stored_bytes"]);
        }

        // A small change, then back: the everyday "undo the bad edit".
        let renamed = ids.first().cloned().unwrap_or_default();
        let original_name = writer.block_name(&renamed);
        churn(&mut writer, &ids, config.churn).await?;
        let is_back = {
            let (renamed, original_name) = (renamed.clone(), original_name.clone());
            move |c: &Client| c.block_name(&renamed) == original_name
        };
        let version = unread.pop().context("a version")?;
        let run = restore(&env, &base, &version, &mut writer, is_back).await?;
        cases.add(SMALL, run, writer.canvas_json() != full_canvas);

        // The same with the editor's flow: look at what changed since the version, then
        // restore it.
        churn(&mut writer, &ids, config.churn).await?;
        let version = unread.pop().context("a version")?;
        let started = Instant::now();
        env.tenant
            .get_api(&format!("{base}/{version}/diff?against=current"))
            .await?;
        cases.diff_ms.push(started.elapsed().as_secs_f64() * 1e3);
        let is_back = move |c: &Client| c.block_name(&renamed) == original_name;
        let run = restore(&env, &base, &version, &mut writer, is_back).await?;
        cases.add(DIFF_FIRST, run, writer.canvas_json() != full_canvas);

        // Everything removed, then everything back: the worst case for one restore.
        let (blocks, relations) = (config.blocks, config.relations);
        let is_empty = |c: &Client| c.counts() == (0, 0);
        let run = restore(&env, &base, &empty_id, &mut writer, is_empty).await?;
        cases.add(EMPTY, run, false);
        let is_full = move |c: &Client| c.counts() == (blocks, relations);
        let version = unread.pop().context("a version")?;
        let run = restore(&env, &base, &version, &mut writer, is_full).await?;
        cases.add(ONTO_EMPTY, run, writer.canvas_json() != full_canvas);
        writer.close().await;
    }
    let mut env = env;
    env.server.stop().await?;

    let mut row = Row::new("versions", "take a version (10k+10k)");
    row.set("blocks", full["block_count"].clone())
        .set("relations", full["relation_count"].clone())
        .set("takes", take_ms.len() as u64)
        .num("median_ms", median(&mut take_ms))
        .num("max_ms", take_ms.iter().copied().fold(0.0, f64::max))
        .num("state_kib", kib(&full["size_bytes"]))
        .num("stored_kib", stored_kib)
        .num("doc_kib", doc_bytes as f64 / 1024.0);
    let mut rows = vec![row];
    rows.extend(cases.rows());
    Ok(rows)
}

const SMALL: &str = "restore after a small change";
const DIFF_FIRST: &str = "restore after a small change, diff viewed first";
const EMPTY: &str = "restore the empty version";
const ONTO_EMPTY: &str = "restore 10k+10k onto empty";

/// One restore as measured.
struct Run {
    answered_ms: f64,
    seen_ms: f64,
    /// The restore's answer.
    answer: Value,
}

/// Every round's runs of each case.
#[derive(Default)]
struct Cases {
    runs: Vec<(&'static str, Run, bool)>,
    diff_ms: Vec<f64>,
}

impl Cases {
    fn add(&mut self, case: &'static str, run: Run, differs: bool) {
        self.runs.push((case, run, differs));
    }

    /// A row per case: median and max over the rounds.
    fn rows(&self) -> Vec<Row> {
        [SMALL, DIFF_FIRST, EMPTY, ONTO_EMPTY]
            .into_iter()
            .filter_map(|case| {
                let runs: Vec<&(&str, Run, bool)> =
                    self.runs.iter().filter(|(c, ..)| *c == case).collect();
                let (_, last, _) = runs.last()?;
                let mut answered: Vec<f64> = runs.iter().map(|(_, r, _)| r.answered_ms).collect();
                let mut seen: Vec<f64> = runs.iter().map(|(_, r, _)| r.seen_ms).collect();
                let changes = &last.answer["changes"];
                let mut row = Row::new("versions", case);
                row.set("rounds", runs.len() as u64)
                    .num("restore_ms", median(&mut answered))
                    .num(
                        "restore_max_ms",
                        answered.iter().copied().fold(0.0, f64::max),
                    )
                    .num("seen_live_ms", median(&mut seen))
                    .set("blocks_added", changes["blocks_added"].clone())
                    .set("blocks_removed", changes["blocks_removed"].clone())
                    .set("blocks_changed", changes["blocks_changed"].clone())
                    .set("relations_added", changes["relations_added"].clone())
                    .set("relations_removed", changes["relations_removed"].clone())
                    .num(
                        "before_version_kib",
                        kib(&last.answer["before_restore"]["size_bytes"]),
                    )
                    .set(
                        "before_stored_as_changes",
                        !last.answer["before_restore"]["base_version_id"].is_null(),
                    );
                if case == DIFF_FIRST {
                    row.num("diff_ms", median(&mut self.diff_ms.clone()));
                }
                if runs.iter().any(|(_, _, differs)| *differs) {
                    row.note("the editor's canvas differs from the version");
                }
                Some(row)
            })
            .collect()
    }
}

async fn take(env: &Env, base: &str, name: &str) -> Result<(Duration, Value)> {
    let started = Instant::now();
    let version = env.tenant.post_api(base, json!({ "name": name })).await?;
    Ok((started.elapsed(), version))
}

fn kib(bytes: &Value) -> f64 {
    bytes.as_f64().unwrap_or(0.0) / 1024.0
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn id_of(version: &Value) -> Result<String> {
    Ok(version["id"]
        .as_str()
        .context("version without id")?
        .to_string())
}

/// Renames, removes and adds `n` blocks each, in one update, durably.
async fn churn(writer: &mut Client, ids: &[String], n: usize) -> Result<()> {
    let n = n.min(ids.len() / 2);
    let added = client::block_ids(n);
    writer
        .edit(|txn| {
            for id in &ids[..n] {
                let fields = json!({ "name": "renamed" });
                let fields = fields.as_object().context("fields")?;
                nox_sync_protocol::canvas::put_block(txn, id, fields)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            for id in &ids[n..2 * n] {
                nox_sync_protocol::canvas::remove_block(txn, id);
            }
            for (i, id) in added.iter().enumerate() {
                let fields = client::block_fields(i);
                let fields = fields.as_object().context("fields")?;
                nox_sync_protocol::canvas::put_block(txn, id, fields)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            Ok(())
        })
        .await?;
    writer.wait_acked(Duration::from_secs(60)).await
}

/// Restores `version_id` and measures the request and when the connected editor has seen it.
async fn restore(
    env: &Env,
    base: &str,
    version_id: &str,
    writer: &mut Client,
    seen: impl Fn(&Client) -> bool,
) -> Result<Run> {
    let started = Instant::now();
    let answer = env
        .tenant
        .post_api(&format!("{base}/{version_id}/restore"), json!({}))
        .await?;
    let answered = started.elapsed();
    writer.pump_until(Duration::from_secs(60), seen).await?;
    let seen = started.elapsed();
    if answer["changes"].is_null() {
        bail!("restore answered without changes: {answer}");
    }
    Ok(Run {
        answered_ms: answered.as_secs_f64() * 1e3,
        seen_ms: seen.as_secs_f64() * 1e3,
        answer,
    })
}
