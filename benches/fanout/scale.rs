//! The backbone's scale scenario (`TCHAT_BENCH_SCALE=NODESxCLIENTS`, e.g. `3x15000`):
//! NODES tchat nodes on one nats-server, CLIENTS idle text clients on each, all in one
//! room, then one public line that must reach every one of them. It reports each node's
//! resident memory per idle connection, the time from the line's sending to its
//! arrival at the last client, and the CPU the nodes and the nats-server spent while
//! the clients connected (with the nats-server's resident memory then).
//!
//! One process may hold about 20,000 descriptors here (`ulimit -n`), fewer than all the
//! clients, so each node's clients are held by a helper process of their own: this
//! benchmark re-executed with `--idle-clients ADDR N PREFIX`. A helper connects its N
//! clients (nicks PREFIX0…), prints `ready`, waits for one public line per client and
//! prints `done LAST_NS RECEIVED`: the `CLOCK_MONOTONIC` time (shared by every process
//! of the machine) at which its last client got the line. It starts waiting when told
//! (`go` on its standard input, once the line is sent), so that helpers done connecting
//! early do not give up on the line while the last ones still connect.
//!
//! Joins are announced only up to `--announce-limit` (500) users, so connecting costs
//! the nick claims (two key-value creates each) and no join storm. A helper's clients
//! connect from several loopback addresses in turn ([`SOURCES`]), never from any
//! other address.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use super::{LoadGen, Server, Target, nats, raise_fd_limit, stat_cpu_secs};

/// The loopback addresses a helper's clients connect from, in turn (127.0.0.2 on):
/// 15,000 clients of one node from one address would outrun the even ephemeral ports
/// Linux gives `connect()` first (see `dial` in the benchmark), and connecting past
/// them slows about 15-fold.
const SOURCES: u8 = 4;

/// Runs the scenario `spec` (`NODESxCLIENTS`) and prints its figures.
pub fn run(spec: &str) -> io::Result<()> {
    let (nodes, clients) = spec
        .split_once('x')
        .and_then(|(n, c)| Some((n.parse::<usize>().ok()?, c.parse::<usize>().ok()?)))
        .ok_or_else(|| io::Error::other("TCHAT_BENCH_SCALE=NODESxCLIENTS, e.g. 3x15000"))?;
    let nats = nats::nats_server()
        .ok_or_else(|| io::Error::other("the scale scenario needs nats-server on PATH"))?;
    let servers = (0..nodes)
        .map(|k| {
            let node = format!("scale{k}");
            let args = ["--backbone", nats.url.as_str(), "--node", &node];
            Server::start(Target::Tchat, clients + 16, &args)
        })
        .collect::<io::Result<Vec<_>>>()?;
    let rss_before: Vec<u64> = servers.iter().map(|s| s.rss_kib().0).collect();
    let nats_stat = format!("/proc/{}/stat", nats.pid().unwrap_or(0));
    let cpu_before = (stat_cpu_secs(&nats_stat), servers.iter().map(Server::cpu_secs).sum::<f64>());

    let t = Instant::now();
    let mut helpers = servers
        .iter()
        .enumerate()
        .map(|(k, s)| Helper::start(s.addr, clients, &format!("n{k}c")))
        .collect::<io::Result<Vec<_>>>()?;
    for helper in &mut helpers {
        helper.expect("ready")?;
    }
    let connect_s = t.elapsed().as_secs_f64();
    let nats_cpu_s = stat_cpu_secs(&nats_stat) - cpu_before.0;
    let nodes_cpu_s = servers.iter().map(Server::cpu_secs).sum::<f64>() - cpu_before.1;
    // Let the last claims reach every node's replica and the allocator settle.
    std::thread::sleep(Duration::from_secs(2));
    let rss_after: Vec<u64> = servers.iter().map(|s| s.rss_kib().0).collect();
    let nats_rss_kib = proc_rss_kib(nats.pid().unwrap_or(0));

    let mut sender = TcpStream::connect(servers[0].addr)?;
    sender.write_all(b"/nick scalesender\n")?;
    let mut welcome = BufReader::new(sender.try_clone()?);
    let mut line = String::new();
    while !line.starts_with("*** Welcome") {
        line.clear();
        if welcome.read_line(&mut line)? == 0 {
            return Err(io::Error::other("the sender was closed before its welcome"));
        }
    }
    let sent = monotonic_ns();
    sender.write_all(b"one line for everyone\n")?;
    for helper in &mut helpers {
        helper.go()?;
    }
    let mut last = 0;
    let mut received = 0;
    for helper in &mut helpers {
        let done = helper.expect("done")?;
        let mut words = done.split_whitespace().skip(1);
        last = last.max(words.next().and_then(|w| w.parse::<u64>().ok()).unwrap_or(0));
        received += words.next().and_then(|w| w.parse::<usize>().ok()).unwrap_or(0);
    }
    let to_last_ms = last.saturating_sub(sent) as f64 / 1e6;
    let per_conn: Vec<String> = rss_before
        .iter()
        .zip(&rss_after)
        .map(|(b, a)| format!("{:.2}", a.saturating_sub(*b) as f64 / clients as f64))
        .collect();
    println!(
        "backbone scale {nodes}x{clients}: {received} of {} clients got the line, the last \
         {to_last_ms:.1} ms after it was sent; connect {connect_s:.1}s; RSS per idle \
         connection per node {} KiB (nodes' RSS {} KiB); while connecting, CPU {nodes_cpu_s:.1} s \
         for the nodes together and {nats_cpu_s:.1} s for the nats-server, whose RSS was then \
         {nats_rss_kib} KiB",
        nodes * clients,
        per_conn.join(", "),
        rss_after.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
    );
    drop(sender);
    drop(helpers);
    servers.into_iter().for_each(Server::stop);
    if received < nodes * clients {
        return Err(io::Error::other("some clients never got the line"));
    }
    Ok(())
}

/// One helper process and its output.
struct Helper {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Helper {
    fn start(addr: SocketAddr, clients: usize, prefix: &str) -> io::Result<Helper> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--idle-clients", &addr.to_string(), &clients.to_string(), prefix])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let out = BufReader::new(child.stdout.take().expect("piped stdout"));
        Ok(Helper { child, out })
    }

    /// Tells the helper the line was sent: it waits for it from now on.
    fn go(&mut self) -> io::Result<()> {
        let stdin = self.child.stdin.as_mut().expect("piped stdin");
        stdin.write_all(b"go\n")?;
        stdin.flush()
    }

    /// The helper's next line, which must start with `word`.
    fn expect(&mut self, word: &str) -> io::Result<String> {
        let mut line = String::new();
        if self.out.read_line(&mut line)? == 0 || !line.starts_with(word) {
            return Err(io::Error::other(format!("a helper said {line:?} instead of {word}")));
        }
        Ok(line)
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The helper's side (`--idle-clients ADDR N PREFIX`): see the module's documentation.
pub fn helper(args: &[String]) -> io::Result<()> {
    let [addr, n, prefix] = args else {
        return Err(io::Error::other("--idle-clients ADDR N PREFIX"));
    };
    let addr: SocketAddr = addr.parse().map_err(io::Error::other)?;
    let n: usize = n.parse().map_err(io::Error::other)?;
    raise_fd_limit();
    let mut lg = LoadGen::new(vec![addr], false)?;
    lg.nick_prefix = prefix.clone();
    lg.sources = (0..SOURCES).map(|k| std::net::Ipv4Addr::new(127, 0, 0, 2 + k)).collect();
    lg.connect(n, 1)?;
    println!("ready");
    io::stdout().flush()?;
    // The wait for the line (which gives up after a stall without progress) starts once
    // it is sent: helpers ready early would otherwise give up while the last ones are
    // still connecting. What arrives meanwhile waits in the sockets, and is timed when
    // read, a little late.
    io::stdin().read_line(&mut String::new())?;
    lg.expected = n as u64;
    lg.wait_all()?;
    let last_ns = match lg.last_receive {
        Some(at) => monotonic_ns().saturating_sub(at.elapsed().as_nanos() as u64),
        None => 0,
    };
    println!("done {last_ns} {}", lg.received);
    io::stdout().flush()?;
    // Hold the clients until the parent is done with the nodes (it closes our stdin).
    let _ = io::stdin().read_line(&mut String::new());
    Ok(())
}

/// The resident KiB of process `pid` (0 if it cannot be read).
fn proc_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status.lines().find_map(|l| l.strip_prefix("VmRSS:"));
    rss.and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0)
}

/// `CLOCK_MONOTONIC` in nanoseconds: one clock for every process of the machine.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime fills the struct we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
