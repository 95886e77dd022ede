//! Spawning a `nox-sync` server for a scenario and measuring it from the outside: CPU time and RSS
//! of the server process (from `/proc`), and the memory of its embedded PostgreSQL cluster.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// How to reach (or start) the server under test.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Use an already running server instead of spawning one (no process measurements then,
    /// unless `pid` is given).
    pub url: Option<String>,
    pub pid: Option<u32>,
    pub bin: PathBuf,
    /// Extra environment for the spawned server (`NOX_*` overrides).
    pub env: Vec<(String, String)>,
}

/// A server under test: spawned by us (and stopped on drop) or external.
pub struct Server {
    pub base_url: String,
    pub addr: String,
    pub pid: Option<u32>,
    child: Option<Child>,
    data_dir: Option<PathBuf>,
    options: ServerOptions,
    port: u16,
}

const JWT_SECRET: &str = "nox-bench-secret-0123456789abcdef0123456789abcdef";

impl Server {
    pub async fn start(options: &ServerOptions) -> Result<Self> {
        if let Some(url) = &options.url {
            let base_url = url.trim_end_matches('/').to_string();
            let addr = base_url
                .trim_start_matches("http://")
                .trim_start_matches("https://")
                .to_string();
            let server = Server {
                base_url,
                addr,
                pid: options.pid,
                child: None,
                data_dir: None,
                options: options.clone(),
                port: 0,
            };
            server.wait_ready(Duration::from_secs(30)).await?;
            return Ok(server);
        }
        let data_dir = fresh_data_dir()?;
        let port = free_port()?;
        let mut server = Server {
            base_url: format!("http://127.0.0.1:{port}"),
            addr: format!("127.0.0.1:{port}"),
            pid: None,
            child: None,
            data_dir: Some(data_dir),
            options: options.clone(),
            port,
        };
        server.spawn().await?;
        Ok(server)
    }

    async fn spawn(&mut self) -> Result<()> {
        let data_dir = self.data_dir.clone().context("no data dir")?;
        let bin = &self.options.bin;
        if !bin.exists() {
            bail!(
                "server binary {} not found: build it with `cargo build --release --bin nox-sync` \
                 or pass --server-bin",
                bin.display()
            );
        }
        let log = std::fs::File::create(data_dir.with_extension("log"))?;
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .env_remove("DATABASE_URL")
            .env("NOX_ADDR", &self.addr)
            .env("NOX_DATA_DIR", &data_dir)
            .env("NOX_JWT_SECRET", JWT_SECRET)
            .env("NOX_ACCESS_TOKEN_TTL_SECS", "86400")
            .env("NOX_LOG", "warn")
            .env("NOX_RATE_LIMIT_REGISTER", "1000000")
            .env("NOX_RATE_LIMIT_LOGIN", "1000000")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        for (key, value) in &self.options.env {
            cmd.env(key, value);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))?;
        self.pid = child.id();
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(120)).await
    }

    async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(reply) = http.get(format!("{}/readyz", self.base_url)).send().await {
                if reply.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "server at {} not ready after {:?}{}",
                    self.base_url,
                    timeout,
                    self.log_hint()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_hint(&self) -> String {
        match &self.data_dir {
            Some(dir) => format!(" (log: {})", dir.with_extension("log").display()),
            None => String::new(),
        }
    }

    /// Graceful stop (SIGTERM), then a fresh process on the same data dir and port.
    pub async fn restart(&mut self) -> Result<Duration> {
        if self.data_dir.is_none() {
            bail!("cannot restart an external server");
        }
        self.stop().await?;
        // Keep the address stable so clients' URLs stay valid.
        let _ = self.port;
        let started = Instant::now();
        self.spawn().await?;
        Ok(started.elapsed())
    }

    /// SIGTERM and wait (bounded) for the process to exit; SIGKILL after 60 s.
    pub async fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Some(pid) = child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
        match tokio::time::timeout(Duration::from_secs(60), child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                eprintln!("server did not stop within 60 s after SIGTERM; killing it");
                let _ = child.kill().await;
            }
        }
        self.pid = None;
        Ok(())
    }

    pub fn ws_url(&self, workspace: &str, token: &str, acks: bool) -> String {
        format!(
            "ws://{}/ws/workspaces/{workspace}?token={token}{}",
            self.addr,
            if acks { "&acks=1" } else { "" }
        )
    }

    /// One point-in-time measurement of the server and its PostgreSQL.
    pub fn probe(&self) -> Probe {
        let Some(pid) = self.pid else {
            return Probe::default();
        };
        let pg = self
            .data_dir
            .as_deref()
            .map(postgres_usage)
            .unwrap_or_default();
        Probe {
            cpu_secs: cpu_seconds(pid).unwrap_or(0.0),
            rss_kib: status_kib(pid, "VmRSS:").unwrap_or(0),
            pg_rss_kib: pg.rss_kib,
            pg_pss_kib: pg.pss_kib,
            pg_cpu_secs: pg.cpu_secs,
        }
    }

    /// Starts sampling the server's RSS every 100 ms; the monitor keeps the peak.
    pub fn monitor(&self) -> Monitor {
        let peak = Arc::new(AtomicU64::new(0));
        let pg_peak = Arc::new(AtomicU64::new(0));
        let (pid, data_dir) = (self.pid, self.data_dir.clone());
        let task = {
            let (peak, pg_peak) = (peak.clone(), pg_peak.clone());
            tokio::spawn(async move {
                let Some(pid) = pid else { return };
                let mut tick = 0u64;
                loop {
                    if let Some(rss) = status_kib(pid, "VmRSS:") {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                    // PostgreSQL is sampled once a second: walking /proc is not free.
                    if tick % 10 == 0 {
                        if let Some(dir) = &data_dir {
                            pg_peak.fetch_max(postgres_usage(dir).pss_kib, Ordering::Relaxed);
                        }
                    }
                    tick += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        Monitor {
            peak,
            pg_peak,
            task,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Some(pid) = child.id() {
                // Best effort: let it stop its PostgreSQL; kill_on_drop is the fallback.
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
                for _ in 0..300 {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        if let Some(dir) = &self.data_dir {
            let _ = std::fs::remove_dir_all(dir);
            let _ = std::fs::remove_file(dir.with_extension("log"));
        }
    }
}

/// Server CPU/RSS at one instant (zero when the server is not ours to see).
#[derive(Debug, Default, Clone, Copy)]
pub struct Probe {
    pub cpu_secs: f64,
    pub rss_kib: u64,
    pub pg_rss_kib: u64,
    pub pg_pss_kib: u64,
    /// CPU seconds of the PostgreSQL processes alive now (backends that exited are not counted).
    pub pg_cpu_secs: f64,
}

/// Peak RSS sampler; stops when dropped.
pub struct Monitor {
    peak: Arc<AtomicU64>,
    pg_peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Monitor {
    pub fn peak_rss_kib(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
    pub fn peak_pg_pss_kib(&self) -> u64 {
        self.pg_peak.load(Ordering::Relaxed)
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// utime + stime of a process, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// CPU seconds of this (bench) process, to show what the load generator itself costs.
pub fn self_cpu_seconds() -> f64 {
    cpu_seconds(std::process::id()).unwrap_or(0.0)
}

fn clock_ticks() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map(|t| t as f64)
        .unwrap_or(100.0)
}

/// A `kB` line of `/proc/<pid>/status` (e.g. `VmRSS:`).
pub fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    kib_line(&status, key)
}

fn kib_line(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Memory and CPU of an embedded PostgreSQL cluster.
#[derive(Debug, Default, Clone, Copy)]
pub struct PgUsage {
    pub rss_kib: u64,
    pub pss_kib: u64,
    pub cpu_secs: f64,
}

/// Sum of VmRSS, Pss and CPU of the PostgreSQL processes serving `data_dir`: the postmaster (its
/// command line names the data dir) and its children. RSS counts shared buffers once per
/// process; PSS divides shared pages among the processes that map them, so it is the fair total.
pub fn postgres_usage(data_dir: &Path) -> PgUsage {
    let needle = data_dir.to_string_lossy().to_string();
    let mut usage = PgUsage::default();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return usage;
    };
    let mut procs: Vec<(u32, u32, bool)> = Vec::new(); // (pid, ppid, is_postmaster)
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        if !status.starts_with("Name:\tpostgres") {
            continue;
        }
        let ppid = status
            .lines()
            .find(|l| l.starts_with("PPid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let is_postmaster = String::from_utf8_lossy(&cmdline).contains(&needle);
        procs.push((pid, ppid, is_postmaster));
    }
    let masters: Vec<u32> = procs.iter().filter(|p| p.2).map(|p| p.0).collect();
    for (pid, ppid, is_master) in &procs {
        if *is_master || masters.contains(ppid) {
            usage.rss_kib += status_kib(*pid, "VmRSS:").unwrap_or(0);
            usage.pss_kib += std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
                .ok()
                .and_then(|s| kib_line(&s, "Pss:"))
                .unwrap_or(0);
            usage.cpu_secs += cpu_seconds(*pid).unwrap_or(0.0);
        }
    }
    usage
}

/// `nox-sync database`: one embedded PostgreSQL that several spawned nodes share.
pub struct SharedDatabase {
    pub url: String,
    child: Child,
    data_dir: PathBuf,
}

impl SharedDatabase {
    pub async fn start(bin: &Path) -> Result<Self> {
        use tokio::io::AsyncBufReadExt;
        let data_dir = fresh_data_dir()?;
        let mut child = Command::new(bin)
            .arg("database")
            .env_remove("DATABASE_URL")
            .env("NOX_DATA_DIR", &data_dir)
            .env("NOX_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawn {} database", bin.display()))?;
        let stdout = child.stdout.take().context("database stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let url = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix("DATABASE_URL=") {
                    return Ok(url.trim().to_string());
                }
            }
            bail!("nox-sync database exited before printing its URL")
        })
        .await
        .context("nox-sync database not ready within 120 s")??;
        Ok(Self {
            url,
            child,
            data_dir,
        })
    }

    /// SIGTERM (PostgreSQL stops cleanly), then the data directory goes.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
        let _ = tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await;
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn fresh_data_dir() -> Result<PathBuf> {
    // Short: the embedded cluster's Unix socket lives in it (sun_path is 108 bytes).
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = PathBuf::from(format!("/tmp/nxb{}-{n}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Raises the soft open-files limit to the hard limit (inherited by the spawned server).
pub fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Err(_) => 0,
    }
}
