//! The NATS test harness (tests/common/nats.rs) against real nats-server processes: what
//! the backbone tests rely on, checked on its own. Skipped with a notice when nats-server
//! is missing, except under CI.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::WAIT;
use common::nats::{NatsServer, NatsWire, nats_cluster, nats_server};
use serde_json::{Value, json};

/// One JetStream API request, which must be answered without an error.
fn js(wire: &mut NatsWire, subject: &str, body: &Value) -> Value {
    let answer = wire
        .request(subject, body.to_string().as_bytes(), WAIT)
        .unwrap_or_else(|| panic!("no answer to {subject}"));
    assert!(answer.get("error").is_none(), "{subject} failed: {answer}");
    answer
}

fn wire(server: &NatsServer) -> NatsWire {
    NatsWire::connect(&server.url).unwrap()
}

/// Polls `probe` until it gives `Some`, at most [`WAIT`]; `what` names it in the panic.
fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_single_server_greets_with_info_and_answers_jetstream() {
    let Some(server) = nats_server() else { return };
    let addr = server.url.strip_prefix("nats://127.0.0.1:").expect("a loopback nats:// URL");
    assert!(addr.parse::<u16>().is_ok(), "{}", server.url);

    // The bare protocol: the first line a client gets is INFO with JetStream on.
    let stream = TcpStream::connect(server.url.strip_prefix("nats://").unwrap()).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut first = String::new();
    BufReader::new(stream).read_line(&mut first).unwrap();
    let info: Value =
        serde_json::from_str(first.strip_prefix("INFO ").expect(&first).trim()).unwrap();
    assert_eq!(info["jetstream"], true, "{info}");
    assert_eq!(info["server_name"], server.name.as_str(), "{info}");

    let answer = js(&mut wire(&server), "$JS.API.INFO", &json!({}));
    assert_eq!(answer["type"], "io.nats.jetstream.api.v1.account_info_response", "{answer}");
    assert!(
        server.store_dir().join("jetstream").is_dir(),
        "JetStream stores in the server's own directory"
    );
}

#[test]
fn a_restarted_server_keeps_its_port_and_its_store() {
    let Some(mut server) = nats_server() else { return };
    let url = server.url.clone();
    let mut w = wire(&server);
    js(
        &mut w,
        "$JS.API.STREAM.CREATE.KEEP",
        &json!({"name": "KEEP", "subjects": ["keep.>"], "storage": "file"}),
    );
    let ack = w.request("keep.one", b"hello", WAIT).expect("a publish ack");
    assert_eq!((ack["stream"].as_str(), ack["seq"].as_u64()), (Some("KEEP"), Some(1)), "{ack}");

    server.kill();
    assert!(server.pid().is_none());
    assert!(NatsWire::connect(&url).is_err(), "a killed server still accepts connections");

    server.restart();
    assert_eq!(server.url, url, "same port after a restart");
    let info = js(&mut wire(&server), "$JS.API.STREAM.INFO.KEEP", &json!({}));
    assert_eq!(info["state"]["messages"], 1, "the stream survived the restart: {info}");
}

/// The state letter of `pid` in /proc/PID/stat (`T` stopped, `S` sleeping…).
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

#[test]
fn signals_freeze_thaw_and_stop_the_server() {
    let Some(mut server) = nats_server() else { return };
    let pid = server.pid().unwrap();
    let mut w = wire(&server);
    assert!(w.ping(WAIT));

    server.stop_signal(libc::SIGSTOP);
    eventually("the server stopped by SIGSTOP", || (proc_state(pid) == Some('T')).then_some(()));
    server.stop_signal(libc::SIGCONT);
    assert!(w.ping(WAIT), "no PONG after SIGCONT");

    let url = server.url.clone();
    server.stop_signal(libc::SIGTERM);
    eventually("the server gone after SIGTERM", || NatsWire::connect(&url).is_err().then_some(()));
    server.restart();
    assert!(wire(&server).ping(WAIT));
}

/// The leader of stream `name` as the server behind `w` reports it, once it has one.
fn stream_leader(w: &mut NatsWire, name: &str) -> Option<String> {
    let info =
        w.request(&format!("$JS.API.STREAM.INFO.{name}"), b"", Duration::from_millis(500))?;
    Some(info["cluster"]["leader"].as_str()?.to_string()).filter(|l| !l.is_empty())
}

#[test]
fn a_cluster_of_three_elects_a_leader_and_another_when_it_dies() {
    let Some(mut cluster) = nats_cluster(3) else { return };
    assert_eq!(cluster.urls.len(), 3);
    let mut w = wire(&cluster.servers[0]);
    let known: Vec<&str> =
        w.info["connect_urls"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(known.len(), 3, "each server knows the others' client URLs: {}", w.info);

    // A stream replicated on all three: it has a leader, named after one of the servers.
    let created = js(
        &mut w,
        "$JS.API.STREAM.CREATE.R3",
        &json!({"name": "R3", "subjects": ["r3.>"], "num_replicas": 3}),
    );
    assert_eq!(created["config"]["num_replicas"], 3, "{created}");
    let leader = eventually("a stream leader", || stream_leader(&mut w, "R3"));
    let at = cluster
        .servers
        .iter()
        .position(|s| s.name == leader)
        .unwrap_or_else(|| panic!("leader {leader} is no server of the cluster"));
    let ack = w.request("r3.a", b"one", WAIT).expect("a publish ack");
    assert_eq!(ack["seq"], 1, "{ack}");

    // The leader dies: the two others elect a new one and keep the message.
    cluster.servers[at].kill();
    let survivor = cluster.servers.iter().find(|s| s.pid().is_some()).unwrap();
    let mut w = wire(survivor);
    let next =
        eventually("a new stream leader", || stream_leader(&mut w, "R3").filter(|l| *l != leader));
    assert!(cluster.servers.iter().any(|s| s.name == next && s.pid().is_some()), "{next} is alive");
    let ack = eventually("a publish accepted by the new leader", || {
        w.request("r3.b", b"two", Duration::from_millis(500)).filter(|a| a.get("error").is_none())
    });
    assert_eq!(ack["seq"], 2, "{ack}");
}
