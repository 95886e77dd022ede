//! Results: one row per measured case, printed as a table per scenario and written as JSON.

use std::path::Path;

use anyhow::Result as AnyResult;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::stats::Summary;

/// One measured case of a scenario (`fanout` / `N=50`), with its figures in insertion order.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: String,
    pub case: String,
    pub metrics: Metrics,
    /// Failed checks and anything surprising, in words.
    pub notes: Vec<String>,
}

impl Row {
    pub fn new(scenario: &str, case: impl Into<String>) -> Self {
        Row {
            scenario: scenario.to_string(),
            case: case.into(),
            metrics: Metrics::default(),
            notes: Vec::new(),
        }
    }

    pub fn set(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        let value = value.into();
        match self.metrics.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.metrics.0.push((key.to_string(), value)),
        }
        self
    }

    /// A float rounded for display (3 significant decimals are plenty for these figures).
    pub fn num(&mut self, key: &str, value: f64) -> &mut Self {
        let rounded = if value.abs() >= 100.0 {
            (value * 10.0).round() / 10.0
        } else {
            (value * 1000.0).round() / 1000.0
        };
        self.set(key, rounded)
    }

    pub fn latency(&mut self, summary: &Summary) -> &mut Self {
        self.num("p50_ms", summary.p50_ms)
            .num("p95_ms", summary.p95_ms)
            .num("p99_ms", summary.p99_ms)
            .num("max_ms", summary.max_ms)
    }

    pub fn mib(&mut self, key: &str, kib: u64) -> &mut Self {
        self.num(key, kib as f64 / 1024.0)
    }

    pub fn note(&mut self, note: impl Into<String>) -> &mut Self {
        self.notes.push(note.into());
        self
    }
}

/// Named figures in the order they were set (serialized as a JSON object in that order).
#[derive(Debug, Clone, Default)]
pub struct Metrics(Vec<(String, Value)>);

impl Metrics {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }
}

impl Serialize for Metrics {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub started_at: String,
    pub machine: Map<String, Value>,
    pub rows: Vec<Row>,
}

impl Report {
    pub fn new() -> Self {
        let mut machine = Map::new();
        machine.insert(
            "nproc".into(),
            std::thread::available_parallelism()
                .map_or(0, |n| n.get())
                .into(),
        );
        machine.insert("cpu".into(), cpu_model().into());
        machine.insert("ram_gib".into(), ram_gib().into());
        machine.insert("loadavg_at_start".into(), loadavg().into());
        Report {
            started_at: utc_now(),
            machine,
            rows: Vec::new(),
        }
    }

    pub fn add(&mut self, rows: Vec<Row>) {
        for row in &rows {
            print_table(std::slice::from_ref(row), false);
        }
        self.rows.extend(rows);
    }

    pub fn print(&self) {
        println!();
        println!(
            "== nox-bench results ({}; {} cores, {}, {} GiB RAM; load at start {}) ==",
            self.started_at,
            self.machine["nproc"],
            self.machine["cpu"].as_str().unwrap_or("?"),
            self.machine["ram_gib"],
            self.machine["loadavg_at_start"].as_str().unwrap_or("?"),
        );
        let mut scenarios: Vec<&str> = Vec::new();
        for row in &self.rows {
            if !scenarios.contains(&row.scenario.as_str()) {
                scenarios.push(&row.scenario);
            }
        }
        for scenario in scenarios {
            let rows: Vec<Row> = self
                .rows
                .iter()
                .filter(|r| r.scenario == scenario)
                .cloned()
                .collect();
            print_table(&rows, true);
        }
    }

    pub fn write_json(&self, path: &Path) -> AnyResult<()> {
        std::fs::write(path, serde_json::to_string_pretty(self)?)?;
        Ok(())
    }
}

/// A table of rows of one scenario: the case, then every metric any row has.
#[allow(clippy::print_stdout)]
fn print_table(rows: &[Row], with_header_line: bool) {
    let Some(first) = rows.first() else { return };
    let mut columns: Vec<String> = vec!["case".into()];
    for row in rows {
        for key in row.metrics.keys() {
            if !columns.contains(key) {
                columns.push(key.clone());
            }
        }
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| {
                    if c == "case" {
                        row.case.clone()
                    } else {
                        row.metrics.get(c).map(display).unwrap_or_default()
                    }
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].len())
                .max()
                .unwrap_or(0)
                .max(c.len())
        })
        .collect();
    let line = |values: &[String]| {
        values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:>w$}"))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    println!();
    println!("[{}]", first.scenario);
    println!("{}", line(&columns));
    if with_header_line {
        println!(
            "{}",
            widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("-+-")
        );
    }
    for (row, cells) in rows.iter().zip(&cells) {
        println!("{}", line(cells));
        for note in &row.notes {
            println!("    ! {}: {note}", row.case);
        }
    }
}

fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn ram_gib() -> f64 {
    let kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    (kib / 1024.0 / 1024.0 * 10.0).round() / 10.0
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}
