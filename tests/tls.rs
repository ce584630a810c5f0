//! TLS on the chat port, through the real binary: detection of a ClientHello next to
//! typed lines, the generated certificate, and bad input on the TLS path.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Instant;

use common::state_dir::StateDir;
use common::{Client, Server, WAIT, have_tool};

/// A TLS command-line client used as a chat client (`openssl s_client -quiet`, `ncat
/// --ssl`): lines in on stdin, lines out on stdout.
struct ToolClient {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl ToolClient {
    /// `openssl s_client -quiet -connect ADDR`.
    fn openssl(server: &Server) -> ToolClient {
        let mut cmd = Command::new("openssl");
        cmd.args(["s_client", "-quiet", "-connect", &server.addr.to_string()]);
        ToolClient::spawn(cmd)
    }

    /// `ncat --ssl HOST PORT` (it does not check the certificate unless told to).
    fn ncat(server: &Server) -> ToolClient {
        let mut cmd = Command::new("ncat");
        cmd.args(["--ssl", &server.addr.ip().to_string(), &server.addr.port().to_string()]);
        ToolClient::spawn(cmd)
    }

    fn spawn(mut cmd: Command) -> ToolClient {
        let program = cmd.get_program().to_string_lossy().into_owned();
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {program}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stdin = child.stdin.take();
        ToolClient { child, stdin, lines, seen: Vec::new() }
    }

    /// [`ToolClient::openssl`] when openssl is installed (see [`have_tool`]).
    fn openssl_if_available(server: &Server) -> Option<ToolClient> {
        have_tool("openssl", "openssl").then(|| ToolClient::openssl(server))
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("the TLS client never showed {needle:?}; it showed {:?}", self.seen);
    }
}

impl Drop for ToolClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn openssl_s_client_and_a_plain_client_chat_on_one_port() {
    if !have_tool("openssl", "openssl") {
        return;
    }
    let mut server = Server::start(&[]);
    let mut plain = server.text_client("plainie");
    let mut tls = ToolClient::openssl(&server);
    tls.send("/nick secure");
    tls.expect("You are secure;");
    let nick_set = server.wait_console("new=secure");
    assert!(nick_set.contains("transport=TLSv1.3"), "{nick_set}");
    tls.send("hello over TLS");
    plain.expect("<secure> hello over TLS");
    plain.send("hello in plain text");
    tls.expect("<plainie> hello in plain text");
    let plain_set = server.console_text();
    assert!(
        plain_set.contains("new=plainie") && plain_set.contains("transport=plain"),
        "{plain_set}"
    );
}

#[test]
fn ncat_ssl_and_a_plain_client_chat_on_one_port() {
    if !have_tool("ncat", "ncat") {
        return;
    }
    let mut server = Server::start(&[]);
    let mut plain = server.text_client("plainie");
    let mut tls = ToolClient::ncat(&server);
    tls.send("/nick ncatter");
    tls.expect("You are ncatter;");
    let nick_set = server.wait_console("new=ncatter");
    assert!(nick_set.contains("transport=TLSv1."), "{nick_set}");
    tls.send("hello from ncat");
    plain.expect("<ncatter> hello from ncat");
    plain.send("hello back");
    tls.expect("<plainie> hello back");
}

#[test]
fn the_generated_certificate_is_kept_and_fingerprint_prints_it() {
    let server = Server::start(&[]);
    assert!(server.fingerprint.starts_with("SHA256:"), "{}", server.fingerprint);
    let out = Command::new(env!("CARGO_BIN_EXE_tchat"))
        .args(["serve", "--fingerprint"])
        .env("XDG_STATE_HOME", &*server.state)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{}\n", server.fingerprint));
    // --state-dir names the directory itself, for services.
    let dir = server.state.join("tchat");
    let out = Command::new(env!("CARGO_BIN_EXE_tchat"))
        .args(["serve", "--fingerprint", "--state-dir"])
        .arg(&dir)
        .env("XDG_STATE_HOME", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{}\n", server.fingerprint));
}

/// The generated certificate's subject is `CN = tchat` (not rcgen's `rcgen self signed
/// cert`) and its names are the host's name and localhost, as `openssl x509` shows them.
#[test]
fn the_generated_certificate_is_named_for_tchat_and_the_host() {
    let state = StateDir::new("cert-names");
    let dir = state.join("identity");
    let out = Command::new(env!("CARGO_BIN_EXE_tchat"))
        .args(["serve", "--fingerprint", "--state-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    if !have_tool("openssl", "openssl") {
        return;
    }
    let shown = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-ext", "subjectAltName", "-in"])
        .arg(dir.join("tls-cert.pem"))
        .output()
        .unwrap();
    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
    // OpenSSL 3.0 writes `CN = tchat`, later versions `CN=tchat`.
    let shown = String::from_utf8(shown.stdout).unwrap().replace(' ', "");
    assert!(shown.contains("subject=CN=tchat\n"), "{shown}");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host = host.trim();
    let names = shown.lines().last().unwrap();
    if host.is_ascii() && host != "localhost" {
        assert_eq!(names, format!("DNS:{host},DNS:localhost"), "{shown}");
    } else {
        assert_eq!(names, "DNS:localhost", "{shown}");
    }
}

#[test]
fn a_garbage_client_hello_leaves_the_server_serving() {
    let mut server = Server::start(&[]);
    let mut bad = Client::connect(server.addr);
    // A handshake record header, then a body that is no ClientHello.
    bad.send_raw(&[0x16, 0x03, 0x01, 0x00, 0x08, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]);
    server.wait_console("TLS handshake failed");
    let _ = bad.read_to_close();
    let mut a = server.text_client("alice");
    a.send("/list");
    a.expect("alice");
}

#[test]
fn a_plain_line_starting_with_0x16_is_a_plain_line() {
    let server = Server::start(&[]);
    let mut a = server.text_client("alice");
    let mut odd = Client::connect(server.addr);
    odd.send_raw(b"\x16hi there\n");
    odd.expect("Welcome to tchat");
    // The control byte is stripped on the way in, as for any typed line.
    a.expect("hi there");
}

/// A TLS client whose first packet came after the hello window was welcomed as a plain
/// user: its ClientHello is no chat line, the connection is closed, nobody sees it.
#[test]
fn a_handshake_after_the_hello_window_is_closed_not_broadcast() {
    let mut server = Server::start(&[]);
    let mut a = server.text_client("alice");
    let mut late = Client::connect(server.addr);
    // The plain welcome says the window has passed.
    late.expect("Welcome to tchat");
    late.send_raw(&[0x16, 0x03, 0x01, 0x00, 0x0a, b'h', b'e', b'l', b'l', b'o', b'\n', 1, 2, 3, 4]);
    late.read_to_close();
    let line = server.wait_console("Connection error");
    assert!(line.contains("TLS handshake came after the hello window"), "{line}");
    a.send("after");
    let seen = a.sync();
    assert!(!seen.iter().any(|l| l.contains("hello")), "{seen:?}");
}

/// Runs `tchat join ADDR ARGS…` with `input` piped in and its known hosts under
/// `data` (XDG_DATA_HOME); returns its exit status, stdout and stderr.
fn join(server: &Server, data: &Path, args: &[&str], input: &str) -> (bool, String, String) {
    let mut child =
        common::join_command(server.addr, data).args(args).spawn().expect("starting tchat join");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    // Bounded: a client that hangs is killed when the test fails on its output.
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    let deadline = Instant::now() + WAIT;
    while !waiter.is_finished() {
        assert!(Instant::now() < deadline, "tchat join did not exit in time");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = waiter.join().unwrap();
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

#[test]
fn tchat_join_pins_a_given_fingerprint_then_refuses_a_changed_one() {
    let server = Server::start(&[]);
    let data = StateDir::new("tofu");
    let mut nc = server.text_client("plainie");
    // Piped and unknown: no prompt, a clear failure with the fingerprint to check.
    let (ok, _, err) = join(&server, &data, &["--nick", "sec"], "never sent\n");
    assert!(!ok);
    assert!(err.contains("is not known") && err.contains(&server.fingerprint), "{err}");
    // For the server that is trust on first use at work, not a failure.
    let aborted = server.wait_console_nth("TLS handshake aborted by the client", 1);
    assert!(aborted.contains("INFO") && aborted.contains("not trusted yet"), "{aborted}");
    // Given out of band: trusted, pinned, and the TLS client chats with the plain one.
    let fp = server.fingerprint.clone();
    let (ok, out, err) = join(&server, &data, &["--nick", "sec", "--fingerprint", &fp], "hi all\n");
    assert!(ok, "{out}\n{err}");
    nc.expect("<sec> hi all");
    let known = std::fs::read_to_string(data.join("tchat/known_hosts")).unwrap();
    assert_eq!(known, format!("{} {fp}\n", server.addr));
    // Pinned: silent.
    let (ok, out, err) = join(&server, &data, &["--nick", "sec2"], "again\n");
    assert!(ok, "{out}\n{err}");
    nc.expect("<sec2> again");
    // Another certificate on the same host and port: a loud refusal with both.
    let other = Server::start(&[]);
    let pinned = format!("{} {fp}\n", other.addr);
    std::fs::write(data.join("tchat/known_hosts"), pinned).unwrap();
    let (ok, _, err) = join(&other, &data, &[], "not sent\n");
    assert!(!ok);
    assert!(err.contains("HAS CHANGED") && err.contains(&fp), "{err}");
    assert!(err.contains(&other.fingerprint) && err.contains("line 1 of"), "{err}");
    other.wait_console_nth("TLS handshake aborted by the client", 1);
    for s in [&server, &other] {
        let console = s.console_text();
        assert!(!console.contains("TLS handshake failed"), "{console}");
    }
}

#[test]
fn a_mistyped_fingerprint_is_said_to_differ_from_the_one_given_not_an_attack() {
    let server = Server::start(&[]);
    let data = StateDir::new("typo");
    let typo = tchat::fingerprint::Fingerprint::of(b"not the server's").to_string();
    let (ok, _, err) = join(&server, &data, &["--fingerprint", &typo], "never sent\n");
    assert!(!ok);
    let expected = format!(
        "tchat: the server's fingerprint does not match the one given with --fingerprint; not \
         connecting to {addr}\n  \
         given with --fingerprint: {typo}\n  \
         the server offered:       {offered}\n\
         Check the fingerprint with the server's operator (tchat serve --fingerprint).\n",
        addr = server.addr,
        offered = server.fingerprint,
    );
    assert_eq!(err, expected);
    // Nothing was pinned: a typo must not stick.
    assert!(!data.join("tchat/known_hosts").exists());
}

#[test]
fn a_piped_join_refused_for_its_password_says_what_to_do() {
    let dir = StateDir::new("password-hint");
    let (file, wrong) = (dir.join("pw"), dir.join("wrong"));
    std::fs::write(&file, "s3cret\n").unwrap();
    std::fs::write(&wrong, "guess\n").unwrap();
    let server = Server::start(&["--password-file", file.to_str().unwrap()]);
    let data = StateDir::new("password-hint-join");
    let fp = server.fingerprint.clone();
    // Piped without a password: nobody to ask, so the client says how to give one.
    let (ok, out, err) = join(&server, &data, &["--fingerprint", &fp], "not sent\n");
    assert!(!ok);
    assert!(out.contains("!!! this server needs a password (send /pass PASSWORD first)"), "{out}");
    assert_eq!(
        err,
        "tchat: the server refused the connection; use --password-file FILE (or run on a \
         terminal to be asked)\n"
    );
    // A wrong one from the file: the file is what to check.
    let args = ["--fingerprint", &fp, "--password-file", wrong.to_str().unwrap()];
    let (ok, out, err) = join(&server, &data, &args, "not sent\n");
    assert!(!ok);
    assert!(out.contains("!!! wrong password"), "{out}");
    assert_eq!(
        err,
        "tchat: the server refused the connection; the password was refused (check \
         --password-file)\n"
    );
}

#[test]
fn the_password_is_required_and_never_logged() {
    let secret = "c0rrect-h0rse";
    let dir = StateDir::new("password");
    let (file, log) = (dir.join("pw"), dir.join("log.jsonl"));
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    let args = ["--password-file", file.to_str().unwrap(), "--save", log.to_str().unwrap()];
    let mut server = Server::start(&args);
    // tchat join sends it from a file.
    let data = StateDir::new("password-join");
    let fp = server.fingerprint.clone();
    let pw = file.to_str().unwrap();
    let (ok, _, err) =
        join(&server, &data, &["--fingerprint", &fp, "--password-file", pw, "--nick", "j"], "x\n");
    assert!(ok, "{err}");
    // A plain client is told at once, and a wrong password is one line and a close.
    let mut wrong = Client::connect(server.addr);
    wrong.expect("this server needs a password: type /pass PASSWORD");
    wrong.send("/pass guess");
    assert!(wrong.read_to_close().iter().any(|l| l == "!!! wrong password"), "{:?}", wrong.seen);
    server.wait_console("Wrong password");
    // Any other first line is refused too.
    let mut rude = Client::connect(server.addr);
    rude.send("hello?");
    let seen = rude.read_to_close();
    assert!(seen.iter().any(|l| l.starts_with("!!! this server needs a password")), "{seen:?}");
    // A plain client with the password, once the address may try again.
    let mut right = Client::connect(server.addr);
    right.expect("needs a password");
    let deadline = Instant::now() + WAIT;
    loop {
        right.send(&format!("/pass {secret}"));
        let line = right.next_line().expect("an answer to /pass");
        if line.contains("Welcome") {
            break;
        }
        assert!(line.contains("wait and try again") && Instant::now() < deadline, "{line}");
        right = Client::connect(server.addr);
        right.expect("needs a password");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    right.send(&format!("/pass {secret}"));
    right.expect("already given the password");
    assert!(server.terminate().success());
    let saved = std::fs::read_to_string(&log).unwrap();
    assert!(saved.contains("Wrong password") && !saved.contains(secret), "{saved}");
    assert!(!server.console_text().contains(secret));
}

#[test]
fn plaintext_deny_refuses_nc_with_its_line_and_tls_still_works() {
    let server = Server::start(&["--plaintext", "deny"]);
    let mut nc = Client::connect(server.addr);
    let seen = nc.read_to_close();
    assert!(seen.iter().any(|l| l.starts_with("!!! this server only accepts TLS")), "{seen:?}");
    let data = StateDir::new("deny");
    let fp = server.fingerprint.clone();
    let (ok, out, err) = join(&server, &data, &["--fingerprint", &fp], "/list\n");
    assert!(ok && out.contains("Welcome"), "{out}\n{err}");
}

#[test]
fn a_replaced_certificate_is_served_after_sighup_while_a_client_stays() {
    // Two identities made by `serve --fingerprint`, as PEM files.
    let (a, b) = (StateDir::new("cert-a"), StateDir::new("cert-b"));
    let fp = |dir: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_tchat"))
            .args(["serve", "--fingerprint", "--state-dir"])
            .arg(dir)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let (fp_a, fp_b) = (fp(&a), fp(&b));
    let (cert, key) = (a.join("tls-cert.pem"), a.join("tls-key.pem"));
    let mut server =
        Server::start(&["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    assert_eq!(server.fingerprint, fp_a);
    let mut stays = ToolClient::openssl_if_available(&server);
    if let Some(c) = stays.as_mut() {
        c.send("/nick stays");
        c.expect("You are stays;");
    }
    std::fs::copy(b.join("tls-key.pem"), &key).unwrap();
    std::fs::copy(b.join("tls-cert.pem"), &cert).unwrap();
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    server.wait_console(&format!("fingerprint={fp_b}"));
    let data = StateDir::new("reload");
    let (ok, out, err) = join(&server, &data, &["--fingerprint", &fp_b], "after reload\n");
    assert!(ok, "{out}\n{err}");
    if let Some(c) = stays.as_mut() {
        c.expect("after reload");
    }
}

#[test]
fn a_connection_that_never_gives_the_password_is_closed_after_the_bound() {
    let dir = StateDir::new("password-timeout");
    let file = dir.join("pw");
    std::fs::write(&file, "s3cret\n").unwrap();
    let args = ["--password-file", file.to_str().unwrap(), "--password-timeout", "1"];
    let mut server = Server::start(&args);
    // Given in time: the client stays past the bound.
    let mut given = Client::connect(server.addr);
    given.send("/pass s3cret");
    given.expect("Welcome to tchat");
    // Silent after the prompt: one line and a close, logged.
    let mut silent = Client::connect(server.addr);
    silent.expect("this server needs a password: type /pass PASSWORD");
    let seen = silent.read_to_close();
    assert!(seen.iter().any(|l| l == "!!! no password given within 1 s; closing"), "{seen:?}");
    let warn = server.wait_console("Password not given");
    assert!(warn.contains("after_s=1"), "{warn}");
    // A TLS client that completes the handshake and says nothing: the same.
    if let Some(mut tls) = ToolClient::openssl_if_available(&server) {
        tls.expect("needs a password");
        tls.expect("no password given within 1 s");
        server.wait_console_nth("Password not given", 2);
    }
    // Connected before the silent one, which is gone: still served.
    given.send("/list");
    given.expect("1 online");
}
