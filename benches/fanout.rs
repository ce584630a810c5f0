//! Fan-out benchmark: a release `tchat serve` on 127.0.0.1 and a load generator that
//! connects C clients, has each send M public messages, and waits until every client
//! has received every message (docs/benchmarks.md).
//!
//! The load generator is one thread running one epoll loop (mio) over all clients, so it
//! costs far less than the server; its own CPU time is reported next to the server's.
//! Clients use text mode and register with a first line `/nick bN`: the cheapest mode to
//! parse, as for an `nc` user. Text mode does not echo a sender's own public line, so
//! each client expects `M × (C − 1)` messages and a scenario `C × M × (C − 1)` deliveries.
//!
//! Each message is `SEQ SEND_NS` (nanoseconds since the benchmark started); a client
//! receives it as `<bN> SEQ SEND_NS` and the latency is the receive time minus SEND_NS.
//! Receive times are taken once per `read`, the same for every line that read returned.
//!
//! The same scenarios can run against a bare tokio relay (`fanout/relay.rs`: no nicks,
//! no parsing, no logging), the reference issue 5 compares tchat with, so that its
//! figures come from this machine and this load generator. It runs in its own process,
//! this benchmark re-executed with `--relay-server`. It drops each client's first line
//! (the `/nick`), relays the others as `<cN> SEQ SEND_NS` and skips the sender too, so
//! deliveries (lines starting with `<`) are expected and counted alike for both.
//!
//! Environment:
//! - `TCHAT_BENCH_TARGET=tchat|relay|both`: the server(s) to measure (default tchat).
//!   With `both`, each scenario's runs alternate, tchat first; the table has a row per
//!   server and ends with the ratios tchat/relay;
//! - `TCHAT_BENCH_QUICK=1`: smaller paced and idle scenarios, one run each (< 30 s);
//! - `TCHAT_BENCH_RUNS=N`: runs per scenario (default 3, 1 in quick mode); the table
//!   and the JSON line give the median of each figure;
//! - `TCHAT_BENCH_ONLY=name,name`: only the scenarios whose name contains one of these;
//! - `TCHAT_BENCH_WRAP="perf record -g -o /tmp/p.data --"`: run the server (either
//!   one) under a profiler (RSS and CPU figures are then the wrapper's, not the server's);
//! - `TCHAT_BENCH_BURST=50x2000,json:200x250,…`: extra burst scenarios (clients x
//!   messages; `json:` for structured clients);
//! - `TCHAT_BENCH_PACED=300x10,json:300x10,…`: extra paced scenarios (clients x
//!   seconds; `json:` likewise);
//! - `TCHAT_BENCH_BIN=path`: another `tchat` binary (one built with symbols, say);
//! - `TCHAT_BENCH_TEXT=N`: N more characters of text in each message (`xxx… SEQ
//!   SEND_NS`), for chat lines of a realistic length instead of the bare 12 or so.
//! - `TCHAT_BENCH_CONSOLE=dir`: keep each server's console in `dir/PID.log` (it is
//!   read and thrown away otherwise), to see afterwards what a node went through.
//!
//! The scenario `burst 1000x5 in 10 rooms` spreads the clients over rooms (`/join #rK`
//! after the `/nick`, client i in room i mod 10) and starts the burst once every client
//! is in its room; each line reaches the other 99 in its room, `C × M × (C/R − 1)`
//! deliveries. The relay has no rooms, so it runs only against tchat.
//!
//! Two scenarios measure what `tchat join` costs the server and what history costs
//! (issue 12), on tchat only: `json burst 200x50` registers with `/hello json bN`, the
//! structured mode the client speaks; a structured client gets its own line back too, so
//! it expects `M × C` messages (`{"id":…,"type":"public",…}` lines). `burst 200x50
//! history 0` is the text scenario with `--history 0`, to set against `burst 200x50`
//! (history on, the default 1000). The table ends with the server CPU per delivery of
//! each `json NAME` scenario divided by that of `NAME` (the issue asks for ≤ 1.5).
//!
//! Scenarios whose name ends in `tls` connect over TLS (`fanout/tls.rs`: rustls's
//! `ClientConnection` in the same epoll loop), trusting the server's generated
//! certificate by the fingerprint on its `Listening` line; the rest of the scenario is
//! the same as the plain one of the same name, so the two compare directly (the table
//! ends with the ratios tls/plain). The relay speaks no TLS: they run only against tchat.
//! The server keeps its generated certificate in a temporary `--state-dir`.
//!
//! With `TCHAT_BENCH_BACKBONE=1`, scenarios named `backbone …` run the same load on two
//! tchat nodes sharing one nats-server (`--backbone`, started as the tests start it:
//! loopback, its own store directory), the clients split between them (client i on node
//! i mod 2), beside the single-process scenario of the same name: `backbone burst 200x50`
//! and `backbone paced 300x10s` (`x3s` in quick mode). Server CPU and RSS are the nodes'
//! sums; the nats-server's CPU is reported apart, and the table ends with the ratios
//! backbone / single process. nats-server must be on PATH (see `.ci/pip-packages`).
//!
//! With `TCHAT_BENCH_SCALE=NODESxCLIENTS` (`3x15000`), the backbone's scale scenario
//! runs after the table (`fanout/scale.rs`): idle clients on every node, one public
//! line that must reach them all, RSS per idle connection per node and the time to the
//! last client. `TCHAT_BENCH_ONLY=none` skips the table's scenarios.

#[path = "fanout/relay.rs"]
mod relay;
#[path = "fanout/scale.rs"]
mod scale;
#[path = "fanout/tls.rs"]
mod tls;

/// The tests' nats-server launcher, for the backbone scenarios. It names its crate's
/// `WAIT` and `state_dir`, which the tests' harness has beside it.
#[path = "../tests/common/nats.rs"]
#[allow(dead_code)] // the launcher's cluster and signal helpers are the tests'
mod nats;
#[path = "../tests/common/state_dir.rs"]
#[allow(dead_code)] // what the tests alone use
mod state_dir;
/// How long the launcher waits for nats-server to listen and answer.
const WAIT: Duration = Duration::from_secs(15);

use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{Duration, Instant};

use memchr::memmem::Finder;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls::{ClientConfig, ClientConnection};
use serde_json::json;
use tchat::fingerprint::Fingerprint;

/// Clients connected but not yet welcomed; keeps the server's accept backlog from
/// overflowing (a dropped SYN costs a one-second retransmission).
const MAX_CONNECTING: usize = 256;

/// The server's per-client queue limit: large, so that a load generator that falls
/// behind for a moment is not dropped as a slow client (the default, 256 KiB, is about
/// what one client receives in the 50×200 and 200×50 bursts).
const SEND_QUEUE: &str = "16777216";

/// How long a scenario may go without any client receiving anything before the rest
/// counts as lost.
const STALL: Duration = Duration::from_secs(10);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// The server a run measures.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    Tchat,
    /// The bare relay of `fanout/relay.rs`, the reference tchat is compared with.
    Relay,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Tchat => "tchat",
            Target::Relay => "relay",
        }
    }

    /// The servers `TCHAT_BENCH_TARGET` selects, in the order each run measures them.
    fn from_env() -> Vec<Target> {
        match std::env::var("TCHAT_BENCH_TARGET").as_deref() {
            Err(_) | Ok("" | "tchat") => vec![Target::Tchat],
            Ok("relay") => vec![Target::Relay],
            Ok("both") => vec![Target::Tchat, Target::Relay],
            Ok(other) => panic!("TCHAT_BENCH_TARGET={other}: expected tchat, relay or both"),
        }
    }

    /// A table row's name: the scenario's, plus which server when it is not tchat.
    fn row(self, scenario: &str) -> String {
        match self {
            Target::Tchat => scenario.to_owned(),
            Target::Relay => format!("{scenario} relay"),
        }
    }
}

#[derive(Clone, Copy)]
enum Load {
    /// Every client sends its M messages as fast as the server takes them.
    Burst { messages: u32 },
    /// Every client sends one message per second, spread evenly over the second.
    Paced { seconds: u32 },
    /// Clients register and hold still.
    Idle,
}

struct Scenario {
    name: String,
    clients: usize,
    load: Load,
    /// Rooms the clients are spread over; 1: everyone in the default room.
    rooms: usize,
    /// Clients speak the structured protocol (`/hello json`).
    json: bool,
    /// Extra `tchat serve` options.
    server_args: Vec<&'static str>,
    /// The clients connect over TLS.
    tls: bool,
    /// tchat nodes sharing one nats-server, the clients split between them; 1: a single
    /// process, no backbone.
    nodes: usize,
}

impl Scenario {
    /// The same scenario over TLS, named after it with ` tls`.
    fn over_tls(&self) -> Scenario {
        let name = format!("{} tls", self.name);
        Scenario { name, tls: true, server_args: self.server_args.clone(), ..*self }
    }

    /// Whether `target` can run it: the relay has no rooms, and speaks neither TLS nor
    /// JSON nor tchat's options.
    fn runs_on(&self, target: Target) -> bool {
        target == Target::Tchat
            || (self.rooms == 1
                && !self.tls
                && !self.json
                && self.server_args.is_empty()
                && self.nodes == 1)
    }
}

/// One run's figures.
#[derive(Clone, Default)]
struct Figures {
    connect_s: f64,
    /// Lines the clients sent (each one event on the backbone, in backbone scenarios).
    lines: u64,
    deliveries: u64,
    expected: u64,
    lost: u64,
    /// Lines the server refused with "not delivered" (a backbone that did not take them
    /// in time): their deliveries are among the lost.
    not_delivered: u64,
    run_s: f64,
    per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    server_cpu_s: f64,
    /// Of which the event-log thread (console and `--save`).
    server_log_cpu_s: f64,
    /// The nats-server's, in backbone scenarios.
    nats_cpu_s: f64,
    loadgen_cpu_s: f64,
    server_rss_kib: u64,
    server_peak_kib: u64,
    rss_per_conn_kib: f64,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("fanout: benchmark");
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--idle-clients") {
        if let Err(e) = scale::helper(&args[at + 1..]) {
            eprintln!("idle clients: {e}");
            std::process::exit(1);
        }
        return;
    }
    if std::env::args().any(|a| a == "--relay-server") {
        if let Err(e) = relay::run() {
            eprintln!("relay server: {e}");
            std::process::exit(1);
        }
        return;
    }
    epoch();
    raise_fd_limit();
    let quick = env_flag("TCHAT_BENCH_QUICK");
    let runs: usize = std::env::var("TCHAT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 1 } else { 3 })
        .max(1);
    let targets = Target::from_env();
    let only: Vec<String> = std::env::var("TCHAT_BENCH_ONLY")
        .map(|v| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default();

    let burst = |c: usize, m: u32| Scenario {
        name: format!("burst {c}x{m}"),
        clients: c,
        load: Load::Burst { messages: m },
        rooms: 1,
        json: false,
        server_args: Vec::new(),
        tls: false,
        nodes: 1,
    };
    let paced = |c: usize, secs: u32| Scenario {
        name: format!("paced {c}x{secs}s"),
        clients: c,
        load: Load::Paced { seconds: secs },
        rooms: 1,
        json: false,
        server_args: Vec::new(),
        tls: false,
        nodes: 1,
    };
    let idle = |c: usize| Scenario {
        name: format!("idle {c}"),
        clients: c,
        load: Load::Idle,
        rooms: 1,
        json: false,
        server_args: Vec::new(),
        tls: false,
        nodes: 1,
    };
    let mut scenarios = vec![
        burst(50, 200),
        burst(200, 50),
        burst(200, 50).over_tls(),
        burst(1000, 5),
        burst(1000, 5).over_tls(),
        Scenario { name: "burst 1000x5 in 10 rooms".into(), rooms: 10, ..burst(1000, 5) },
        if quick { paced(200, 3) } else { paced(500, 10) },
        idle(1000),
        idle(1000).over_tls(),
        Scenario { name: "json burst 200x50".into(), json: true, ..burst(200, 50) },
        Scenario {
            name: "burst 200x50 history 0".into(),
            server_args: vec!["--history", "0"],
            ..burst(200, 50)
        },
    ];
    if !quick {
        scenarios.push(idle(10_000));
        scenarios.push(idle(10_000).over_tls());
    }
    if env_flag("TCHAT_BENCH_BACKBONE") {
        let paced = paced(300, if quick { 3 } else { 10 });
        for single in [burst(200, 50), paced] {
            let name = format!("backbone {}", single.name);
            scenarios.push(Scenario {
                name,
                nodes: 2,
                server_args: single.server_args.clone(),
                ..single
            });
            if !scenarios.iter().any(|s| s.name == single.name) {
                scenarios.push(single);
            }
        }
    }
    let custom = |var: &str, make: &dyn Fn(usize, u32) -> Scenario| -> Vec<Scenario> {
        let Ok(specs) = std::env::var(var) else { return Vec::new() };
        specs
            .split(',')
            .map(|spec| {
                let (json, spec) = match spec.strip_prefix("json:") {
                    Some(spec) => (true, spec),
                    None => (false, spec),
                };
                let (c, n) = spec.split_once('x').unwrap_or_else(|| panic!("{var}=[json:]CxN[,…]"));
                let plain = make(c.parse().expect("clients"), n.parse().expect("a count"));
                if json {
                    Scenario { name: format!("json {}", plain.name), json: true, ..plain }
                } else {
                    plain
                }
            })
            .collect()
    };
    scenarios.extend(custom("TCHAT_BENCH_BURST", &|c, m| burst(c, m)));
    scenarios.extend(custom("TCHAT_BENCH_PACED", &|c, secs| paced(c, secs)));
    scenarios.retain(|s| only.is_empty() || only.iter().any(|o| s.name.contains(o.as_str())));

    println!(
        "tchat fan-out benchmark: {} cores, {}; {runs} run(s) per scenario, medians shown",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model()
    );
    let mut table = Vec::new();
    for sc in &scenarios {
        // Alternate the servers run by run, so that a slow spell of the machine (the
        // other core busy, say) does not fall on one server's runs only.
        let mut all = vec![Vec::new(); targets.len()];
        for run in 1..=runs {
            for (&target, figures) in targets.iter().zip(&mut all) {
                if !sc.runs_on(target) {
                    continue;
                }
                let row = target.row(&sc.name);
                match run_scenario(sc, target) {
                    Ok(f) => {
                        eprintln!("  {row} run {run}: {}", summary(&f));
                        figures.push(f);
                    }
                    Err(e) => eprintln!("  {row} run {run} failed: {e}"),
                }
            }
        }
        for (&target, figures) in targets.iter().zip(&all) {
            if figures.is_empty() {
                continue;
            }
            let med = median_figures(figures);
            println!("{}", json_line(sc, target, &med, figures.len()));
            table.push(Row { scenario: sc.name.clone(), target, figures: med });
        }
    }
    print_table(&table);
    print_ratios(&table);
    print_tls_ratios(&table);
    print_json_ratios(&table);
    print_backbone_ratios(&table);
    let scaled = std::env::var("TCHAT_BENCH_SCALE").ok().map(|spec| scale::run(&spec));
    // The generated certificate is this run's alone.
    let _ = std::fs::remove_dir_all(state_dir());
    if let Some(Err(e)) = scaled {
        eprintln!("the scale scenario failed: {e}");
        std::process::exit(1);
    }
    if table.iter().any(|r| r.figures.lost > 0) {
        eprintln!("some messages were lost");
        std::process::exit(1);
    }
}

/// One line of the table: a scenario's medians on one server.
struct Row {
    scenario: String,
    target: Target,
    figures: Figures,
}

fn print_table(table: &[Row]) {
    println!();
    println!(
        "{:<20} {:>9} {:>12} {:>8} {:>8} {:>8} {:>6} {:>8} {:>8} {:>9} {:>10}",
        "scenario",
        "connect",
        "deliveries/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "lost",
        "srv cpu",
        "gen cpu",
        "srv RSS",
        "KiB/conn"
    );
    for Row { scenario, target, figures: f } in table {
        println!(
            "{:<20} {:>8.3}s {:>12} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>7.2}s {:>7.2}s {:>6} KiB {:>10}",
            target.row(scenario),
            f.connect_s,
            if f.expected > 0 { format!("{:.2} M", f.per_s / 1e6) } else { "-".into() },
            f.p50_ms,
            f.p99_ms,
            f.max_ms,
            f.lost,
            f.server_cpu_s,
            f.loadgen_cpu_s,
            f.server_rss_kib,
            if f.rss_per_conn_kib > 0.0 {
                format!("{:.2}", f.rss_per_conn_kib)
            } else {
                "-".into()
            },
        );
    }
}

/// For each scenario run on both servers, tchat's figures divided by the relay's: above
/// 1 means tchat delivers more per second, waits longer, or spends more CPU or memory.
fn print_ratios(table: &[Row]) {
    let mut header = false;
    for tchat in table.iter().filter(|r| r.target == Target::Tchat) {
        let Some(relay) =
            table.iter().find(|r| r.target == Target::Relay && r.scenario == tchat.scenario)
        else {
            continue;
        };
        if !header {
            println!();
            println!("tchat / relay:");
            header = true;
        }
        let (t, r) = (&tchat.figures, &relay.figures);
        let figures = if t.expected > 0 {
            format!(
                "deliveries/s {}, p99 {}, srv cpu {}",
                ratio(t.per_s, r.per_s),
                ratio(t.p99_ms, r.p99_ms),
                ratio(t.server_cpu_s, r.server_cpu_s)
            )
        } else {
            // Idle: nothing is delivered; memory is the figure that matters.
            format!(
                "KiB/conn {}, srv cpu {}",
                ratio(t.rss_per_conn_kib, r.rss_per_conn_kib),
                ratio(t.server_cpu_s, r.server_cpu_s)
            )
        };
        println!("{:<20} {figures}", tchat.scenario);
    }
}

/// `a / b` with two decimals, or `-` when `b` is not positive.
fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 { format!("{:.2}", a / b) } else { "-".into() }
}

/// The tchat rows that are a variant of another tchat row, each with that row:
/// `base_of` gives the name of the row a variant is compared with (`burst 200x50` for
/// `burst 200x50 tls`), or `None` for a row that is no variant.
fn variant_pairs(table: &[Row], base_of: impl Fn(&str) -> Option<&str>) -> Vec<(&Row, &Row)> {
    let tchat = || table.iter().filter(|r| r.target == Target::Tchat);
    tchat()
        .filter_map(|variant| {
            let base = base_of(&variant.scenario)?;
            Some((variant, tchat().find(|r| r.scenario == base)?))
        })
        .collect()
}

/// For each scenario run over TLS and in plain text on tchat, the TLS figures divided by
/// the plain ones: the issue asks for at least half the plain rate (≥ 0.5).
fn print_tls_ratios(table: &[Row]) {
    let pairs = variant_pairs(table, |name| name.strip_suffix(" tls"));
    if !pairs.is_empty() {
        println!();
        println!("tls / plain (tchat):");
    }
    for (tls, plain) in pairs {
        let (t, p) = (&tls.figures, &plain.figures);
        let figures = if t.expected > 0 {
            format!(
                "deliveries/s {}, p99 {}, srv cpu {}, gen cpu {}",
                ratio(t.per_s, p.per_s),
                ratio(t.p99_ms, p.p99_ms),
                ratio(t.server_cpu_s, p.server_cpu_s),
                ratio(t.loadgen_cpu_s, p.loadgen_cpu_s)
            )
        } else {
            format!(
                "KiB/conn {} ({:.2} KiB more per connection), connect {}",
                ratio(t.rss_per_conn_kib, p.rss_per_conn_kib),
                t.rss_per_conn_kib - p.rss_per_conn_kib,
                ratio(t.connect_s, p.connect_s)
            )
        };
        println!("{:<20} {figures}", tls.scenario);
    }
}

/// For each `json NAME` scenario, its server CPU per delivery divided by that of `NAME`
/// (text mode) from the same run: what a structured client costs the server per line
/// it gets. The issue asks for at most 1.5.
fn print_json_ratios(table: &[Row]) {
    let per_delivery = |f: &Figures| f.server_cpu_s / f.deliveries.max(1) as f64;
    let mut pairs = variant_pairs(table, |name| name.strip_prefix("json "));
    pairs.retain(|(_, text)| per_delivery(&text.figures) > 0.0);
    if !pairs.is_empty() {
        println!();
        println!("json / text (tchat), server CPU per delivery:");
    }
    for (json, text) in pairs {
        let (j, t) = (per_delivery(&json.figures), per_delivery(&text.figures));
        println!(
            "{:<24} {:.2} ({:.0} ns against {:.0} ns)",
            json.scenario,
            j / t,
            j * 1e9,
            t * 1e9
        );
    }
}

/// For each `backbone NAME` scenario, its figures against those of `NAME` run in one
/// process: deliveries per second (the goal: at least 0.4 of one process's) and
/// p99 latency (at most 2×) as ratios, then the server CPU per delivery of each node, the
/// nats-server's CPU, and the lines per second the backbone carried.
fn print_backbone_ratios(table: &[Row]) {
    let pairs = variant_pairs(table, |name| name.strip_prefix("backbone "));
    if !pairs.is_empty() {
        println!();
        println!("backbone (2 nodes, 1 nats-server) / one process:");
    }
    for (backbone, single) in pairs {
        let (b, s) = (&backbone.figures, &single.figures);
        let ns_per =
            |f: &Figures, nodes: f64| f.server_cpu_s / nodes / f.deliveries.max(1) as f64 * 1e9;
        println!(
            "{:<24} deliveries/s {}, p99 {}, srv cpu per delivery per node {:.0} ns (one \
             process {:.0} ns), nats cpu {:.2}s, backbone {:.0} lines/s",
            backbone.scenario,
            ratio(b.per_s, s.per_s),
            ratio(b.p99_ms, s.p99_ms),
            ns_per(b, 2.0),
            ns_per(s, 1.0),
            b.nats_cpu_s,
            b.lines as f64 / b.run_s.max(1e-9)
        );
    }
}

fn summary(f: &Figures) -> String {
    format!(
        "connect {:.3}s, {:.2} M deliveries/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, lost {} \
         (lines not delivered {}), \
         server cpu {:.2}s (log thread {:.2}s), nats cpu {:.2}s, loadgen cpu {:.2}s, rss {} KiB \
         ({:.2} KiB/conn)",
        f.connect_s,
        f.per_s / 1e6,
        f.p50_ms,
        f.p99_ms,
        f.max_ms,
        f.lost,
        f.not_delivered,
        f.server_cpu_s,
        f.server_log_cpu_s,
        f.nats_cpu_s,
        f.loadgen_cpu_s,
        f.server_rss_kib,
        f.rss_per_conn_kib
    )
}

fn json_line(sc: &Scenario, target: Target, f: &Figures, runs: usize) -> String {
    let (kind, messages, seconds) = match sc.load {
        Load::Burst { messages } => ("burst", messages, 0),
        Load::Paced { seconds } => ("paced", 0, seconds),
        Load::Idle => ("idle", 0, 0),
    };
    json!({
        "scenario": sc.name, "server": target.name(), "kind": kind, "clients": sc.clients, "messages": messages,
        "seconds": seconds, "runs": runs,
        "connect_s": f.connect_s, "deliveries": f.deliveries, "expected": f.expected,
        "lost": f.lost, "not_delivered": f.not_delivered, "run_s": f.run_s, "deliveries_per_s": f.per_s.round(),
        "p50_ms": f.p50_ms, "p99_ms": f.p99_ms, "max_ms": f.max_ms,
        "server_cpu_s": f.server_cpu_s, "server_log_cpu_s": f.server_log_cpu_s, "loadgen_cpu_s": f.loadgen_cpu_s,
        "nodes": sc.nodes, "nats_cpu_s": f.nats_cpu_s, "lines": f.lines,
        "server_rss_kib": f.server_rss_kib, "server_peak_rss_kib": f.server_peak_kib,
        "rss_per_conn_kib": f.rss_per_conn_kib,
    })
    .to_string()
}

/// Median of each figure on its own (lost: the worst run, so a loss is never hidden).
fn median_figures(all: &[Figures]) -> Figures {
    fn med(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }
    let m = |get: fn(&Figures) -> f64| med(all.iter().map(get).collect());
    Figures {
        connect_s: m(|f| f.connect_s),
        lines: all[0].lines,
        deliveries: m(|f| f.deliveries as f64) as u64,
        expected: all[0].expected,
        lost: all.iter().map(|f| f.lost).max().unwrap_or(0),
        not_delivered: all.iter().map(|f| f.not_delivered).max().unwrap_or(0),
        run_s: m(|f| f.run_s),
        per_s: m(|f| f.per_s),
        p50_ms: m(|f| f.p50_ms),
        p99_ms: m(|f| f.p99_ms),
        max_ms: m(|f| f.max_ms),
        server_cpu_s: m(|f| f.server_cpu_s),
        server_log_cpu_s: m(|f| f.server_log_cpu_s),
        nats_cpu_s: m(|f| f.nats_cpu_s),
        loadgen_cpu_s: m(|f| f.loadgen_cpu_s),
        server_rss_kib: m(|f| f.server_rss_kib as f64) as u64,
        server_peak_kib: m(|f| f.server_peak_kib as f64) as u64,
        rss_per_conn_kib: m(|f| f.rss_per_conn_kib),
    }
}

fn run_scenario(sc: &Scenario, target: Target) -> io::Result<Figures> {
    let server = Nodes::start(sc, target)?;
    let rss_before = server.rss_kib().0;
    let mut lg = LoadGen::new(server.addrs(), sc.json)?;
    if sc.tls {
        let fingerprint = server.nodes[0].fingerprint.ok_or_else(|| {
            io::Error::other("the server printed no certificate fingerprint: is TLS off?")
        })?;
        lg.tls = Some(tls::client_config(fingerprint));
    }
    let mut f = Figures::default();

    let t = Instant::now();
    lg.connect(sc.clients, sc.rooms)?;
    f.connect_s = t.elapsed().as_secs_f64();
    if sc.rooms > 1 {
        // The moves' part and join notices are not part of the burst.
        lg.drain_for(Duration::from_millis(500))?;
    }

    let cpu0 = server.cpu_secs();
    let log0 = server.log_thread_cpu_secs();
    let nats0 = server.nats_cpu_secs();
    let own0 = own_cpu_secs();
    let t = Instant::now();
    match sc.load {
        Load::Burst { messages } => lg.burst(messages)?,
        Load::Paced { seconds } => lg.paced(seconds)?,
        Load::Idle => {
            // Let the join announcements drain and the server settle.
            lg.drain_for(Duration::from_secs(1))?;
        }
    }
    f.run_s = lg.last_receive.map_or(t.elapsed(), |l| l.saturating_duration_since(t)).as_secs_f64();
    f.server_cpu_s = server.cpu_secs() - cpu0;
    f.server_log_cpu_s = server.log_thread_cpu_secs() - log0;
    f.nats_cpu_s = server.nats_cpu_secs() - nats0;
    f.lines = lg.clients.iter().map(|c| u64::from(c.next_seq)).sum();
    f.loadgen_cpu_s = own_cpu_secs() - own0;
    (f.server_rss_kib, f.server_peak_kib) = server.rss_kib();
    if let Load::Idle = sc.load {
        f.run_s = 0.0;
        f.rss_per_conn_kib = f.server_rss_kib.saturating_sub(rss_before) as f64 / sc.clients as f64;
    } else {
        f.expected = lg.expected;
        f.deliveries = lg.received;
        f.lost = lg.expected.saturating_sub(lg.received);
        f.not_delivered = lg.not_delivered;
        f.per_s = f.deliveries as f64 / f.run_s.max(1e-9);
        let lat = &mut lg.latencies_us;
        lat.sort_unstable();
        let pct = |p: f64| {
            lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
                .map_or(0.0, |&us| us as f64 / 1000.0)
        };
        (f.p50_ms, f.p99_ms, f.max_ms) = (pct(0.50), pct(0.99), pct(1.0));
    }
    if lg.dropped > 0 {
        return Err(io::Error::other(format!("the server closed {} clients", lg.dropped)));
    }
    drop(lg);
    server.stop();
    Ok(f)
}

/// The server(s) a scenario runs on: one process, or `nodes` tchat nodes on one
/// nats-server, stopped (and the nats-server's store removed) when dropped.
struct Nodes {
    nodes: Vec<Server>,
    nats: Option<nats::NatsServer>,
}

impl Nodes {
    fn start(sc: &Scenario, target: Target) -> io::Result<Nodes> {
        let max_clients = sc.clients + 16;
        if sc.nodes <= 1 {
            let server = Server::start(target, max_clients, &sc.server_args)?;
            return Ok(Nodes { nodes: vec![server], nats: None });
        }
        let nats = nats::nats_server()
            .ok_or_else(|| io::Error::other("the backbone scenarios need nats-server on PATH"))?;
        let mut nodes = Vec::new();
        for k in 0..sc.nodes {
            let node = format!("bench{k}");
            let backbone = ["--backbone", nats.url.as_str(), "--node", node.as_str()];
            let args: Vec<&str> = sc.server_args.iter().copied().chain(backbone).collect();
            nodes.push(Server::start(target, max_clients, &args)?);
        }
        Ok(Nodes { nodes, nats: Some(nats) })
    }

    /// The nodes' addresses; client i connects to the (i mod n)th.
    fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|s| s.addr).collect()
    }

    fn cpu_secs(&self) -> f64 {
        self.nodes.iter().map(Server::cpu_secs).sum()
    }

    fn log_thread_cpu_secs(&self) -> f64 {
        self.nodes.iter().map(Server::log_thread_cpu_secs).sum()
    }

    /// The nats-server's CPU seconds (0 without a backbone).
    fn nats_cpu_secs(&self) -> f64 {
        let pid = self.nats.as_ref().and_then(|n| n.pid());
        pid.map_or(0.0, |pid| stat_cpu_secs(&format!("/proc/{pid}/stat")))
    }

    /// The nodes' resident and peak resident KiB, summed.
    fn rss_kib(&self) -> (u64, u64) {
        self.nodes.iter().map(Server::rss_kib).fold((0, 0), |(r, p), (r2, p2)| (r + r2, p + p2))
    }

    fn stop(self) {
        self.nodes.into_iter().for_each(Server::stop);
    }
}

/// A command running `bin`, under `TCHAT_BENCH_WRAP` if it is set.
fn wrapped(bin: impl AsRef<OsStr>) -> Command {
    let wrap = std::env::var("TCHAT_BENCH_WRAP").unwrap_or_default();
    let mut words = wrap.split_whitespace();
    match words.next() {
        Some(prog) => {
            let mut c = Command::new(prog);
            c.args(words).arg(bin);
            c
        }
        None => Command::new(bin),
    }
}

/// The server under test, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    /// Its TLS certificate's, from the `Listening` line (the relay has none).
    fingerprint: Option<Fingerprint>,
}

/// The state directory every tchat server of this run keeps its generated certificate
/// in: a temporary one, so the benchmark never writes the user's, and the certificate
/// is generated once per run.
fn state_dir() -> &'static std::path::Path {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| std::env::temp_dir().join(format!("tchat-bench-{}", std::process::id())))
}

impl Server {
    /// Starts `target` and waits for its `Listening addr=` line; both servers print one.
    fn start(target: Target, max_clients: usize, extra: &[&str]) -> io::Result<Server> {
        let mut cmd = match target {
            Target::Tchat => {
                let bin = std::env::var("TCHAT_BENCH_BIN")
                    .unwrap_or_else(|_| env!("CARGO_BIN_EXE_tchat").to_owned());
                let mut cmd = wrapped(bin);
                cmd.args(["serve", "--host", "127.0.0.1", "--port", "0", "--rate", "0"])
                    .args(["--max-per-ip", "0", "--max-clients", &max_clients.to_string()])
                    .args(["--send-queue", SEND_QUEUE])
                    .arg("--state-dir")
                    .arg(state_dir())
                    .args(extra);
                cmd
            }
            Target::Relay => {
                let mut cmd = wrapped(std::env::current_exe()?);
                cmd.arg("--relay-server");
                cmd
            }
        };
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn()?;
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        let field = |line: &str, name: &str| {
            let rest = line.split(&format!(" {name}=")).nth(1)?;
            Some(rest.split_whitespace().next().unwrap_or_default().to_owned())
        };
        let (addr, fingerprint) = loop {
            line.clear();
            if out.read_line(&mut line)? == 0 {
                return Err(io::Error::other("the server exited before listening"));
            }
            if line.contains("Listening") {
                let addr = field(&line, "addr").unwrap_or_default();
                let fingerprint = field(&line, "fingerprint").and_then(|f| f.parse().ok());
                break (addr.parse().map_err(io::Error::other)?, fingerprint);
            }
        };
        // The console log is part of the server's cost; drain it like a terminal would,
        // into `TCHAT_BENCH_CONSOLE/PID.log` if that directory is given.
        let mut keep = std::env::var_os("TCHAT_BENCH_CONSOLE").and_then(|dir| {
            let path = std::path::Path::new(&dir).join(format!("{}.log", child.id()));
            std::fs::File::create(path).ok()
        });
        std::thread::spawn(move || {
            let mut sink = [0u8; 64 * 1024];
            while let Ok(n @ 1..) = out.get_mut().read(&mut sink) {
                if let Some(file) = keep.as_mut() {
                    let _ = file.write_all(&sink[..n]);
                }
            }
        });
        Ok(Server { child, addr, fingerprint })
    }

    /// User plus system CPU seconds, from /proc/PID/stat.
    fn cpu_secs(&self) -> f64 {
        stat_cpu_secs(&format!("/proc/{}/stat", self.child.id()))
    }

    /// CPU seconds of the server's `tchat-log` thread (the relay has none: 0).
    fn log_thread_cpu_secs(&self) -> f64 {
        let dir = format!("/proc/{}/task", self.child.id());
        let Ok(tasks) = std::fs::read_dir(&dir) else { return 0.0 };
        tasks
            .flatten()
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .is_ok_and(|c| c.trim() == "tchat-log")
            })
            .map(|t| stat_cpu_secs(&t.path().join("stat").to_string_lossy()))
            .sum()
    }

    /// Resident and peak resident KiB, from /proc/PID/status.
    fn rss_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// SIGTERM (so a profiler wrapper writes its data), then SIGKILL if it lingers.
    fn stop(mut self) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Client {
    stream: TcpStream,
    /// The TLS session over `stream`, in TLS scenarios.
    tls: Option<Box<ClientConnection>>,
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    /// Bytes written by the generator but not yet taken by the socket.
    unsent: Vec<u8>,
    welcomed: bool,
    next_seq: u32,
}

/// Connects to `addr`, from the loopback address `source` if given.
///
/// Linux gives `connect()` the even ports of the ephemeral range first (32768-60999:
/// 14,116 of them) and walks all of them before it tries an odd one: past about 14,100
/// clients of one server from one address, every connect walked the even ports and
/// connecting fell from about 1,000 to about 60 a second. Spread over several source
/// addresses, each (source, server) pair stays well inside the even ports. The port is
/// still picked at `connect()` (`IP_BIND_ADDRESS_NO_PORT`), for the whole 4-tuple,
/// rather than at `bind()`, where it would have to be free for every destination.
fn dial(addr: SocketAddr, source: Option<std::net::Ipv4Addr>) -> io::Result<std::net::TcpStream> {
    let Some(source) = source else { return std::net::TcpStream::connect(addr) };
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    let on: libc::c_int = 1;
    // SAFETY: a valid descriptor, and an int option of the size given.
    let set = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&socket),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if set != 0 {
        return Err(io::Error::last_os_error());
    }
    socket.bind(&SocketAddr::from((source, 0)).into())?;
    socket.connect(&addr.into())?;
    Ok(socket.into())
}

/// The load generator: every client on one epoll loop in this thread.
struct LoadGen {
    /// The server's address, or the nodes' (client i connects to the (i mod n)th).
    addrs: Vec<SocketAddr>,
    /// Clients speak the structured protocol.
    json: bool,
    poll: Poll,
    events: Events,
    clients: Vec<Client>,
    buf: Vec<u8>,
    connecting: usize,
    expected: u64,
    received: u64,
    latencies_us: Vec<u32>,
    last_receive: Option<Instant>,
    /// Clients the server closed (it should close none).
    dropped: usize,
    /// Lines the server answered with "not delivered" (see [`Figures::not_delivered`]).
    not_delivered: u64,
    /// Rooms the clients are spread over (see [`Scenario::rooms`]).
    rooms: usize,
    /// Connect over TLS with this configuration.
    tls: Option<Arc<ClientConfig>>,
    /// Put in front of every message (`TCHAT_BENCH_TEXT`): filler and a space, or
    /// nothing.
    pad: Vec<u8>,
    /// Client i registers as PREFIXi (`b` unless a scale helper says otherwise).
    nick_prefix: String,
    /// Loopback addresses client i connects from (the (i mod n)th); empty: the
    /// system's choice (127.0.0.1). See [`dial`].
    sources: Vec<std::net::Ipv4Addr>,
}

impl LoadGen {
    fn new(addrs: Vec<SocketAddr>, json: bool) -> io::Result<LoadGen> {
        Ok(LoadGen {
            addrs,
            json,
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            clients: Vec::new(),
            buf: vec![0; 256 * 1024],
            connecting: 0,
            expected: 0,
            received: 0,
            latencies_us: Vec::new(),
            last_receive: None,
            dropped: 0,
            not_delivered: 0,
            rooms: 1,
            tls: None,
            pad: text_pad(),
            nick_prefix: "b".into(),
            sources: Vec::new(),
        })
    }

    /// Connects and registers `n` clients, in `rooms` rooms if more than one; returns
    /// once every one has been welcomed (and is in its room).
    fn connect(&mut self, n: usize, rooms: usize) -> io::Result<()> {
        self.rooms = rooms;
        while self.clients.len() < n || self.connecting > 0 {
            while self.clients.len() < n && self.connecting < MAX_CONNECTING {
                let i = self.clients.len();
                let hello = if self.json { "/hello json" } else { "/nick" };
                let mut hello = format!("{hello} {}{i}\n", self.nick_prefix);
                if rooms > 1 {
                    hello.push_str(&format!("/join #r{}\n", i % rooms));
                }
                let source =
                    (!self.sources.is_empty()).then(|| self.sources[i % self.sources.len()]);
                let mut std = dial(self.addrs[i % self.addrs.len()], source)?;
                std.set_nodelay(true)?;
                let tls = match &self.tls {
                    None => {
                        std.write_all(hello.as_bytes())?;
                        None
                    }
                    Some(config) => {
                        // Sent once the handshake is done; the ClientHello goes now.
                        let mut tls = tls::connect(config)?;
                        tls.writer().write_all(hello.as_bytes())?;
                        while tls.wants_write() {
                            tls.write_tls(&mut std)?;
                        }
                        Some(Box::new(tls))
                    }
                };
                std.set_nonblocking(true)?;
                let mut stream = TcpStream::from_std(std);
                self.poll.registry().register(&mut stream, Token(i), Interest::READABLE)?;
                self.clients.push(Client {
                    stream,
                    tls,
                    partial: Vec::new(),
                    unsent: Vec::new(),
                    welcomed: false,
                    next_seq: 0,
                });
                self.connecting += 1;
            }
            let before = self.connecting;
            self.pump(Some(Duration::from_millis(if self.clients.len() < n { 0 } else { 100 })))?;
            if self.connecting == before && self.clients.len() >= n {
                // No progress within 100 ms is fine; within STALL it is not.
                let t = Instant::now();
                while self.connecting == before && t.elapsed() < STALL {
                    self.pump(Some(Duration::from_millis(100)))?;
                }
                if self.connecting == before {
                    return Err(io::Error::other(format!(
                        "{} clients were never welcomed",
                        self.connecting
                    )));
                }
            }
        }
        Ok(())
    }

    fn burst(&mut self, messages: u32) -> io::Result<()> {
        // Room k holds the clients i with i mod rooms = k; each line reaches the others
        // (and, in structured mode, its sender).
        let (c, r) = (self.clients.len() as u64, self.rooms.max(1) as u64);
        let size = |k: u64| c / r + u64::from(k < c % r);
        self.expected =
            (0..r).map(|k| size(k) * self.recipients(size(k))).sum::<u64>() * messages as u64;
        self.latencies_us.reserve(self.expected as usize);
        let mut sending: Vec<usize> = (0..self.clients.len()).collect();
        let mut line = Vec::with_capacity(64);
        while !sending.is_empty() {
            sending.retain(|&i| {
                let cl = &mut self.clients[i];
                if cl.unsent.is_empty() && cl.next_seq < messages {
                    line.clear();
                    line.extend_from_slice(&self.pad);
                    let _ = writeln!(line, "{} {}", cl.next_seq, now_ns());
                    cl.next_seq += 1;
                    cl.unsent.extend_from_slice(&line);
                }
                flush(cl);
                !(cl.is_flushed() && cl.next_seq >= messages)
            });
            self.pump(Some(Duration::ZERO))?;
        }
        self.wait_all()
    }

    fn paced(&mut self, seconds: u32) -> io::Result<()> {
        let c = self.clients.len() as u64;
        self.expected = c * self.recipients(c) * seconds as u64;
        self.latencies_us.reserve(self.expected as usize);
        let start = Instant::now();
        let slot = Duration::from_secs(1) / c as u32;
        let total = c * seconds as u64;
        let mut line = Vec::with_capacity(64);
        for k in 0..total {
            let due = start + slot * k as u32;
            loop {
                let now = Instant::now();
                if now >= due {
                    break;
                }
                self.pump(Some(due - now))?;
            }
            let cl = &mut self.clients[(k % c) as usize];
            line.clear();
            line.extend_from_slice(&self.pad);
            let _ = writeln!(line, "{} {}", cl.next_seq, now_ns());
            cl.next_seq = cl.next_seq.saturating_add(1);
            cl.unsent.extend_from_slice(&line);
            flush(cl);
        }
        for cl in &mut self.clients {
            flush(cl);
        }
        self.wait_all()
    }

    /// Who gets each message out of `c` clients: the others, and in structured mode the
    /// sender too (its confirmation).
    fn recipients(&self, c: u64) -> u64 {
        if self.json { c } else { c - 1 }
    }

    /// Waits until every expected message arrived or nothing arrives for [`STALL`].
    fn wait_all(&mut self) -> io::Result<()> {
        let mut last = (self.received, Instant::now());
        while self.received < self.expected && last.1.elapsed() < STALL {
            for cl in &mut self.clients {
                flush(cl);
            }
            self.pump(Some(Duration::from_millis(50)))?;
            if self.received != last.0 {
                last = (self.received, Instant::now());
            }
        }
        Ok(())
    }

    fn drain_for(&mut self, d: Duration) -> io::Result<()> {
        let until = Instant::now() + d;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            self.pump(Some(left))?;
        }
        Ok(())
    }

    /// One epoll wait, then reads every ready client until its socket is empty and counts
    /// what arrived.
    fn pump(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        let ready: Vec<usize> = self.events.iter().map(|e| e.token().0).collect();
        for i in ready {
            self.read_client(i);
        }
        Ok(())
    }

    fn read_client(&mut self, i: usize) {
        let cl = &mut self.clients[i];
        loop {
            let keep = cl.partial.len();
            self.buf[..keep].copy_from_slice(&cl.partial);
            let read = match cl.tls.as_mut() {
                None => cl.stream.read(&mut self.buf[keep..]),
                Some(tls) => tls::read(tls, &mut cl.stream, &mut self.buf[keep..]),
            };
            let n = match read {
                Ok(0) => {
                    self.dropped += 1;
                    let _ = self.poll.registry().deregister(&mut cl.stream);
                    return;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.dropped += 1;
                    let _ = self.poll.registry().deregister(&mut cl.stream);
                    return;
                }
            };
            let now = now_ns();
            self.last_receive = Some(Instant::now());
            let data = &self.buf[..keep + n];
            let mut start = 0;
            for end in memchr::memchr_iter(b'\n', data) {
                let line = &data[start..end];
                start = end + 1;
                if is_delivery(line, self.json) {
                    self.received += 1;
                    if let Some(sent) = sent_ns(line) {
                        let us = now.saturating_sub(sent) / 1000;
                        self.latencies_us.push(us.min(u32::MAX as u64) as u32);
                    }
                } else if !cl.welcomed
                    && if self.rooms > 1 {
                        line.starts_with(b"*** You are in")
                    } else {
                        is_welcome(line, self.json)
                    }
                {
                    cl.welcomed = true;
                    self.connecting -= 1;
                } else if is_not_delivered(line) {
                    self.not_delivered += 1;
                }
            }
            cl.partial.clear();
            cl.partial.extend_from_slice(&data[start..]);
            // A read that did not fill the buffer emptied the socket, and epoll reports
            // the next arrival as a new edge: skip the read that would only say
            // WouldBlock (a third of the generator's system calls in the paced run).
            // Not so for TLS: a short read of plaintext says nothing about the socket.
            if keep + n < self.buf.len() && cl.tls.is_none() {
                return;
            }
        }
    }
}

/// The server's answer to a line it could not deliver (a backbone node's, when the
/// backbone did not take the line in time), in either mode.
fn is_not_delivered(line: &[u8]) -> bool {
    static NOT_DELIVERED: LazyLock<Finder<'static>> =
        LazyLock::new(|| Finder::new(b"not delivered"));
    NOT_DELIVERED.find(line).is_some()
}

/// A public message: `<bN> …` in text mode; in structured mode, a live (not replayed)
/// event of type `public`.
fn is_delivery(line: &[u8], json: bool) -> bool {
    if !json {
        return line.first() == Some(&b'<');
    }
    static PUBLIC: LazyLock<Finder<'static>> =
        LazyLock::new(|| Finder::new(b"\"type\":\"public\""));
    line.starts_with(b"{\"id\":") && PUBLIC.find(line).is_some()
}

fn is_welcome(line: &[u8], json: bool) -> bool {
    if json {
        static WELCOME: LazyLock<Finder<'static>> =
            LazyLock::new(|| Finder::new(b"\"type\":\"welcome\""));
        WELCOME.find(line).is_some()
    } else {
        line.starts_with(b"*** Welcome")
    }
}

/// The filler `TCHAT_BENCH_TEXT=N` asks for: N letters and a space (SEND_NS stays the
/// last word, where [`sent_ns`] finds it).
fn text_pad() -> Vec<u8> {
    let n: usize = std::env::var("TCHAT_BENCH_TEXT").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    if n == 0 {
        return Vec::new();
    }
    let mut pad: Vec<u8> = b"lorem ipsum dolor sit amet ".iter().copied().cycle().take(n).collect();
    pad.push(b' ');
    pad
}

/// SEND_NS from `<bN> SEQ SEND_NS`, or from a JSON line's `"text":"SEQ SEND_NS"`
/// (wherever the field stands: `room` follows it since rooms): the digits after the
/// text's last space.
fn sent_ns(line: &[u8]) -> Option<u64> {
    // Searchers built once: `memmem::find` builds one per call, which cost the load
    // generator more CPU than reading the lines (perf, `json burst 200x250`).
    static TEXT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"text\":\""));
    let text = match TEXT.find(line) {
        Some(at) => {
            let rest = &line[at + 8..];
            &rest[..memchr::memchr(b'"', rest)?]
        }
        None => line,
    };
    let digits = &text[text.iter().rposition(|&b| b == b' ')? + 1..];
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// Writes what the socket takes. A client whose connection failed stops sending (the
/// reader counts it as dropped and its messages as lost).
fn flush(cl: &mut Client) {
    let result = match cl.tls.as_mut() {
        None => flush_plain(&mut cl.stream, &mut cl.unsent),
        Some(tls) => flush_tls(tls, &mut cl.stream, &mut cl.unsent),
    };
    if result.is_err() {
        cl.unsent.clear();
        cl.next_seq = FAILED;
    }
}

/// `next_seq` of a client whose connection failed: it sends nothing more.
const FAILED: u32 = u32::MAX;

fn flush_plain(stream: &mut TcpStream, unsent: &mut Vec<u8>) -> io::Result<()> {
    while !unsent.is_empty() {
        match stream.write(unsent) {
            Ok(n) => {
                unsent.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Hands the session what it takes and sends its records until the socket is full.
fn flush_tls(
    tls: &mut ClientConnection,
    stream: &mut TcpStream,
    unsent: &mut Vec<u8>,
) -> io::Result<()> {
    loop {
        if !unsent.is_empty() {
            let n = tls::write(tls, stream, unsent)?;
            unsent.drain(..n);
        } else {
            tls::flush(tls, stream)?;
        }
        if unsent.is_empty() || tls.wants_write() {
            // Done, or the socket is full: the next round sends the rest.
            return Ok(());
        }
    }
}

impl Client {
    /// Nothing left to send: no line waiting, and no TLS record either (or nothing can
    /// be sent any more).
    fn is_flushed(&self) -> bool {
        self.next_seq == FAILED
            || (self.unsent.is_empty() && !self.tls.as_ref().is_some_and(|tls| tls.wants_write()))
    }
}

/// utime + stime of a /proc `stat` file, in seconds.
fn stat_cpu_secs(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let after = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(14) + ticks(15)) / clock_ticks()
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn raise_fd_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// This process's user plus system CPU seconds.
fn own_cpu_secs() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
