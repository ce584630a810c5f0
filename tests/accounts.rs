//! Registered nicks through the real binary: `tchat join`'s identity (piped and on a
//! terminal), other TLS clients with their own keys (openssl, Python), passwords from
//! loopback with their backoff, look-alike variants, a restart, a second device, the
//! operator's `tchat ctl`, and no secret in the log.

mod common;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::state_dir::StateDir;
use common::{Server, WAIT, ctl, expect_exit, have_tool, temp_path};

/// Runs `tchat join ADDR --nick NICK EXTRA…` with `state` as its state and data
/// directory (identity, known hosts) and `input` piped in; returns whether it exited 0
/// and all it printed (stdout, then stderr).
fn join(
    server: &Server,
    state: &Path,
    nick: &str,
    extra: &[&OsStr],
    input: &str,
) -> (bool, String) {
    let mut child = common::join_command(server.addr, state)
        .arg("--no-reconnect")
        .args(["--fingerprint", &server.fingerprint, "--nick", nick])
        .args(extra)
        .spawn()
        .expect("starting tchat join");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    finish(child)
}

/// Waits (bounded) for `child`, whose input is closed, to exit; returns whether it
/// exited 0 and all it printed (stdout, then stderr: a few lines, which the pipes hold).
fn finish(mut child: std::process::Child) -> (bool, String) {
    drop(child.stdin.take());
    let status = expect_exit(&mut child, WAIT, "the client");
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut out).unwrap();
    (status.success(), out)
}

/// The server's console and stderr so far hold neither `secret` nor a private key.
fn assert_no_secret(server: &Server, secret: &str) {
    let console = server.console_text();
    assert!(!console.contains(secret), "the secret reached the console:\n{console}");
    assert!(!console.contains("PRIVATE KEY"), "key material on the console:\n{console}");
    assert!(!console.contains("$argon2"), "a password hash on the console:\n{console}");
}

#[test]
fn a_nick_registered_with_tchat_join_comes_back_with_its_identity_only() {
    let server = Server::start(&[]);
    let mut watcher = server.text_client("watcher");
    let home = StateDir::new("acct-home");
    let (ok, out) = join(&server, &home, "alice", &[], "/register\n");
    assert!(ok, "{out}");
    // Made quietly for a script (a terminal is told where: see the pty test).
    assert!(!out.contains("made your identity"), "{out}");
    assert!(out.contains("alice is registered to your key SHA256:"), "{out}");
    let identity = home.join("tchat/identity.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&identity).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // The same state directory: the nick comes back, without a word about it.
    let (ok, out) = join(&server, &home, "alice", &[], "back again\n");
    assert!(ok, "{out}");
    watcher.expect("<alice> back again");
    // Another state directory, another key: a guest name and the reason.
    let other = StateDir::new("acct-other");
    let (_, out) = join(&server, &other, "alice", &[], "who am i\n");
    assert!(out.contains("the nick alice is registered"), "{out}");
    let line = watcher.expect("who am i");
    assert!(line.contains("<guest"), "{line}");
    // The identity file, given elsewhere with --identity, proves it from anywhere.
    let moved = other.join("moved.pem");
    std::fs::copy(&identity, &moved).unwrap();
    let (_, out) = join(&server, &other, "alice", &identity_arg(&moved), "from the copy\n");
    watcher.expect("<alice> from the copy");
    let key = std::fs::read_to_string(&identity).unwrap();
    assert!(key.contains("PRIVATE KEY") && !out.contains("PRIVATE KEY"));
    assert_no_secret(&server, "PRIVATE KEY");
}

#[cfg(unix)]
#[test]
fn registering_in_a_terminal_keeps_the_nick_for_that_identity() {
    use common::pty::Term;
    let server = Server::start(&[]);
    let state = StateDir::new("acct-pty");
    let args = ["--fingerprint", server.fingerprint.as_str(), "--nick", "tess"];
    let mut term = Term::start(server.addr, &state, &args);
    term.wait_text("made your identity");
    term.wait_input("[tess #lobby] ");
    term.keys("/register\r");
    term.wait_text("tess is registered to your key SHA256:");
    term.keys("/quit\r");
    term.wait_exit();
    // Someone else cannot take it while tess is away…
    let mut other = server.connect();
    other.send("/nick TESS");
    other.expect("the nick TESS is registered");
    // …but tess, from the same state directory, gets it back.
    let mut term = Term::start(server.addr, &state, &args);
    term.wait_input("[tess #lobby] ");
    term.keys("/whois tess\r");
    term.wait_text("tess is registered and proved it by key");
}

/// A key and a self-signed certificate made by openssl, in `dir`; returns their paths.
fn openssl_identity(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
        .args(["-nodes", "-days", "30", "-subj", &format!("/CN={name}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl req failed");
    (cert, key)
}

/// A child process driven by lines (openssl s_client, a piped `tchat join`): its
/// stdin written a line at a time, its stdout read as lines; killed when dropped.
struct Live {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Live {
    /// Starts `command` with stdin and stdout piped (stderr as the command says).
    fn spawn(command: &mut Command) -> Live {
        let mut child =
            command.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("starting");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Live { child, lines }
    }

    /// `openssl s_client -quiet` with a client certificate, as a chat client.
    fn s_client(server: &Server, cert: &Path, key: &Path) -> Live {
        Live::spawn(
            Command::new("openssl")
                .args(["s_client", "-quiet", "-connect", &server.addr.to_string()])
                .arg("-cert")
                .arg(cert)
                .arg("-key")
                .arg(key)
                .stderr(Stdio::null()),
        )
    }

    /// Closes its input and waits (bounded) for it to exit 0.
    fn finish(mut self) {
        drop(self.child.stdin.take());
        assert!(expect_exit(&mut self.child, WAIT, "the child").success());
    }

    fn send(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        panic!("the child never printed {needle:?}; saw {seen:#?}");
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fingerprint tchat gives the certificate in the PEM file `cert`.
fn fingerprint_of(cert: &Path) -> String {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_file(cert).unwrap();
    tchat::fingerprint::Fingerprint::of(&der).to_string()
}

/// An openssl client with a key of its own (made in `dir`) that took `nick` and
/// registered it to that key; returns it with the certificate, the key and its
/// fingerprint.
fn registered_by_key(server: &Server, dir: &Path, nick: &str) -> (Live, PathBuf, PathBuf, String) {
    let (cert, key) = openssl_identity(dir, nick);
    let fp = fingerprint_of(&cert);
    let mut client = Live::s_client(server, &cert, &key);
    client.send(&format!("/nick {nick}"));
    client.expect(&format!("You are {nick}"));
    client.send("/register");
    client.expect(&format!("{nick} is registered to your key {fp}"));
    (client, cert, key, fp)
}

#[test]
fn openssl_s_client_with_its_own_key_registers_and_proves_a_nick() {
    if !have_tool("openssl", "openssl") {
        return;
    }
    let server = Server::start(&[]);
    let dir = StateDir::new("acct-openssl");
    let (mut carol, cert, key, fp) = registered_by_key(&server, &dir, "carol");
    // The server has the key from the handshake, named as server fingerprints are.
    let console = server.console_text();
    let key_field = format!("key={fp}");
    assert!(console.lines().any(|l| l.contains("Nick set") && l.contains(&key_field)), "{console}");
    carol.send("/keys");
    carol.expect(&format!("{fp} (this connection)"));
    drop(carol);
    server.wait_console_nth("Disconnected", 1);
    // Plain text, no key: refused. The same key again: the nick.
    let mut plain = server.connect();
    plain.send("/nick carol");
    plain.expect("the nick carol is registered");
    let mut again = Live::s_client(&server, &cert, &key);
    again.send("/nick carol");
    again.expect("You are carol");
    // Another openssl key: refused, and told why.
    let (cert2, key2) = openssl_identity(&dir, "mallory");
    let mut mallory = Live::s_client(&server, &cert2, &key2);
    mallory.send("/nick Carol");
    mallory.expect("the nick Carol is registered");
}

#[test]
fn a_python_ssl_client_with_its_own_key_gets_its_nick_back() {
    if !have_tool("python3", "python3") || !have_tool("openssl", "openssl") {
        return;
    }
    let server = Server::start(&[]);
    let dir = StateDir::new("acct-python");
    let (cert, key) = openssl_identity(&dir, "dave");
    // Connects with its key, sends the lines given, prints what comes until `until`.
    let script = r#"
import socket, ssl, sys
host, port, cert, key, until = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.load_cert_chain(cert, key)
with socket.create_connection((host, port), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname=host) as s:
        s.sendall("".join(line + "\n" for line in sys.argv[6:]).encode())
        got = b""
        while until.encode() not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        print(got.decode(errors="replace"))
"#;
    let python = |until: &str, lines: &[&str]| {
        let child = Command::new("python3")
            .args(["-c", script, "127.0.0.1", &server.addr.port().to_string()])
            .arg(&cert)
            .arg(&key)
            .arg(until)
            .args(lines)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        finish(child).1
    };
    let out = python("registered to your key", &["/nick dave", "/register"]);
    assert!(out.contains("dave is registered to your key"), "{out}");
    let out = python("\"type\":\"welcome\"", &["/hello json dave"]);
    assert!(out.contains("\"nick\":\"dave\""), "{out}");
    let (mut other, welcome) = server.json_client("dave");
    assert_ne!(welcome["nick"], "dave");
    let error = other.expect_event("error");
    assert_eq!(error["code"], "nick_registered", "{error}");
}

#[test]
fn a_password_from_loopback_proves_a_nick_and_a_wrong_one_is_refused() {
    let save = temp_path("accounts-save.jsonl");
    let server = Server::start(&["--save", save.to_str().unwrap()]);
    let mut erin = server.text_client("erin");
    erin.send("/register hunter2");
    erin.expect("erin is registered to your password");
    erin.send("/quit");
    erin.read_to_close();
    // Owner offline: neither the nick nor its case, width or look-alike variants
    // (Cyrillic е, capital I for l in another name) go to a connection without proof.
    let mut other = server.connect();
    for variant in ["erin", "ERIN", "Ｅｒｉｎ", "\u{435}rin"] {
        other.send(&format!("/nick {variant}"));
        let line = other.expect("registered");
        assert!(line.starts_with("!!! the nick ") && line.contains("erin"), "{line}");
    }
    // A first line /nick: a guest name, and why.
    let mut first = server.connect();
    first.send("/nick Erin");
    first.expect("You are guest");
    first.expect("the nick Erin is registered");
    // A wrong password, then the right one. That wrong ones make the address wait is
    // tested on a paused clock in tests/in_process.rs.
    other.send("/identify erin hunter3");
    other.expect("wrong password for erin");
    other.send("/identify erin hunter2");
    other.expect("you are identified as erin");
    other.expect("is now known as erin");
    let wrong = server.wait_console_nth("Identify refused", 1);
    assert!(wrong.contains("wrong password"), "{wrong}");
    assert_no_secret(&server, "hunter2");
    assert_no_secret(&server, "hunter3");
    drop(server);
    let log = std::fs::read_to_string(&save).unwrap();
    assert!(log.contains("Identify refused") && log.contains("Nick registered"), "{log}");
    assert!(!log.contains("hunter") && !log.contains("$argon2"), "{log}");
    let _ = std::fs::remove_file(&save);
}

/// `--identity FILE`, as [`join`]'s extra arguments.
fn identity_arg(file: &Path) -> [&OsStr; 2] {
    [OsStr::new("--identity"), file.as_os_str()]
}

/// [`join`] with `--identity FILE`; returns what it printed.
fn join_with_identity(
    server: &Server,
    state: &Path,
    file: &Path,
    nick: &str,
    input: &str,
) -> String {
    join(server, state, nick, &identity_arg(file), input).1
}

#[test]
fn a_second_device_is_added_with_identify_and_then_proves_the_nick_by_its_key() {
    let server = Server::start(&[]);
    let mut watcher = server.text_client("watcher");
    let state = StateDir::new("acct-devices");
    let (laptop, phone) = (state.join("laptop.pem"), state.join("phone.pem"));
    let out = join_with_identity(&server, &state, &laptop, "frank", "/register s3cret pass\n");
    assert!(
        out.contains("frank is registered to your key") && out.contains("and to your password"),
        "{out}"
    );
    // The phone: refused at first, then /identify adds its key (and takes the nick).
    let out = join_with_identity(
        &server,
        &state,
        &phone,
        "frank",
        "/identify frank s3cret pass\n/keys\n",
    );
    assert!(out.contains("the nick frank is registered"), "{out}");
    assert!(out.contains("now proves it too"), "{out}");
    assert!(out.contains("frank has 2 keys and a password"), "{out}");
    // From now on the phone's key alone gives it.
    join_with_identity(&server, &state, &phone, "frank", "from the phone\n");
    watcher.expect("<frank> from the phone");
    // The laptop removes the phone's key: the phone is refused again.
    let phone_fp = {
        let out = join_with_identity(&server, &state, &laptop, "frank", "/keys\n");
        let line = out
            .lines()
            .find(|l| l.contains("SHA256:") && !l.contains("this connection"))
            .map(str::to_owned);
        line.unwrap_or_else(|| panic!("no other key in {out}"))
    };
    let fp = phone_fp.split_whitespace().find(|w| w.starts_with("SHA256:")).unwrap().to_owned();
    let out =
        join_with_identity(&server, &state, &laptop, "frank", &format!("/keys remove {fp}\n"));
    assert!(out.contains(&format!("{fp} no longer proves frank")), "{out}");
    let out = join_with_identity(&server, &state, &phone, "frank", "hi\n");
    assert!(out.contains("the nick frank is registered"), "{out}");
    assert_no_secret(&server, "s3cret");
}

/// A server with a control socket and its accounts in `accounts`; returns it with the
/// socket.
fn server_with_accounts(accounts: &Path) -> (Server, PathBuf) {
    let socket = temp_path("control.sock");
    let args =
        ["--control-socket", socket.to_str().unwrap(), "--accounts", accounts.to_str().unwrap()];
    (Server::start(&args), socket)
}

fn ctl_ok(socket: &Path, args: &[&str]) -> String {
    let out = ctl(socket, args);
    assert_eq!(out.code, 0, "tchat ctl {args:?} failed: {}{}", out.stdout, out.stderr);
    out.stdout
}

#[test]
fn registrations_and_operator_rights_survive_a_restart_and_ctl_unregisters() {
    let dir = StateDir::new("acct-restart");
    let accounts = dir.join("accounts.jsonl");
    let (mut server, socket) = server_with_accounts(&accounts);
    let mut gina = server.text_client("gina");
    gina.send("/register open sesame");
    gina.expect("gina is registered to your password");
    let mut hank = server.text_client("hank");
    hank.send("/register hanks pw");
    hank.expect("hank is registered");
    // Operator rights on a registered nick go with the account.
    let answer = ctl_ok(&socket, &["op", "gina"]);
    assert!(answer.contains("gina is now an operator, on every connection"), "{answer}");
    let listed = ctl_ok(&socket, &["accounts"]);
    assert!(listed.contains("gina (0 keys, password, operator)"), "{listed}");
    assert!(listed.contains("hank (0 keys, password)"), "{listed}");
    let file = std::fs::read_to_string(&accounts).unwrap();
    assert!(!file.contains("open sesame") && file.contains("$argon2id$"), "{file}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&accounts).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    drop((gina, hank));
    server.terminate();
    assert_no_secret(&server, "open sesame");
    drop(server);

    let (server, socket) = server_with_accounts(&accounts);
    let mut other = server.connect();
    other.send("/nick GINA");
    other.expect("the nick GINA is registered");
    other.send("/identify gina open sesame");
    other.expect("you are identified as gina");
    other.expect("is now known as gina");
    // An operator again without /oper.
    other.send("/kick nobody");
    other.expect("no such user: nobody");
    // The operator releases hank's nick: anyone may take it.
    let answer = ctl_ok(&socket, &["unregister", "HANK"]);
    assert_eq!(answer.trim(), "hank is no longer registered");
    let mut taker = server.text_client("hank");
    taker.send("/whois hank");
    let line = taker.expect("hank: ");
    assert!(!taker.sync().iter().any(|l| l.contains("registered")), "{line}");
    let out = ctl(&socket, &["unregister", "hank"]);
    assert_ne!(out.code, 0);
    assert!(
        out.stdout.contains("hank is not registered")
            || out.stderr.contains("hank is not registered"),
        "{}{}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn op_on_an_offline_registered_nick_applies_when_it_comes_back_until_deop() {
    let dir = StateDir::new("acct-op");
    let (server, socket) = server_with_accounts(&dir.join("accounts.jsonl"));
    let mut ivy = server.text_client("ivy");
    ivy.send("/register pw4ivy");
    ivy.expect("ivy is registered");
    ivy.send("/quit");
    ivy.read_to_close();
    let answer = ctl_ok(&socket, &["op", "IVY"]);
    assert!(
        answer.contains("ivy (registered, offline) is now an operator when they come back"),
        "{answer}"
    );
    let comes_back = || {
        let mut ivy = server.connect();
        ivy.send("/identify ivy pw4ivy");
        ivy.expect("is now known as ivy");
        ivy.send("/kick nobody");
        ivy
    };
    let mut ivy = comes_back();
    ivy.expect("no such user: nobody");
    let answer = ctl_ok(&socket, &["deop", "ivy"]);
    assert!(answer.contains("ivy is no longer an operator"), "{answer}");
    ivy.expect("you are no longer an operator");
    ivy.send("/quit");
    ivy.read_to_close();
    let mut ivy = comes_back();
    ivy.expect("/kick is for operators");
    // Not registered, not online: nobody to make an operator.
    let out = ctl(&socket, &["op", "nobody"]);
    assert_ne!(out.code, 0);
}

#[test]
fn a_login_renews_a_registration_and_one_unused_past_the_expiry_is_released() {
    use tchat::server::accounts::{Account, hash_password};
    let dir = StateDir::new("acct-expiry");
    let file = dir.join("accounts.jsonl");
    let day = Duration::from_secs(86_400);
    let aged = |nick: &str, days: u32| {
        let mut account = Account::new(nick, None, Some(hash_password("pw").unwrap()));
        account.seen = jiff::Timestamp::now() - day * days;
        account.registered = account.seen;
        serde_json::to_string(&account).unwrap() + "\n"
    };
    std::fs::write(&file, aged("jo", 2) + &aged("kim", 4)).unwrap();
    let args = ["--accounts", file.to_str().unwrap(), "--account-expiry", "3d"];
    let server = Server::start(&args);
    // kim was not seen for 4 days: anyone may take the nick.
    server.text_client("kim");
    // jo, 2 days: still registered, and proving it now renews it.
    let mut other = server.connect();
    other.send("/nick jo");
    other.expect("the nick jo is registered");
    other.send("/identify jo pw");
    other.expect("is now known as jo");
    let renewed = || {
        let text = std::fs::read_to_string(&file).unwrap();
        let jo = text.lines().find(|l| l.contains("\"nick\":\"jo\"")).unwrap().to_owned();
        let account: Account = serde_json::from_str(&jo).unwrap();
        jiff::Timestamp::now().duration_since(account.seen).unsigned_abs() < day
    };
    let deadline = Instant::now() + WAIT;
    while !renewed() {
        assert!(Instant::now() < deadline, "jo's registration was not renewed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// With its owner away, a registered nick and its variants (case, width, look-alikes)
/// are refused wherever a nick is asked for: a first line `/nick`, a structured hello,
/// a resume hello carrying another session's token (or none) and `/nick` mid-session.
/// Each asker gets a guest name (or keeps its own) and the reason; the password still
/// gets the nick.
#[test]
fn a_registered_nick_and_its_look_alikes_are_refused_at_every_door() {
    let server = Server::start(&[]);
    let mut lena = server.text_client("lena");
    lena.send("/register pw for lena");
    lena.expect("lena is registered to your password");
    lena.send("/quit");
    lena.read_to_close();
    // Itself, its capitals, a capital I for the l, a Cyrillic е, full width.
    let variants = ["lena", "LENA", "Iena", "l\u{435}na", "\u{ff2c}\u{ff45}\u{ff4e}\u{ff41}"];
    let is_guest = |welcome: &serde_json::Value| {
        welcome["nick"].as_str().is_some_and(|n| n.starts_with("guest"))
    };
    for variant in variants {
        let mut first = server.connect();
        first.send(&format!("/nick {variant}"));
        first.expect("You are guest");
        let why = first.expect("registered");
        assert!(why.starts_with("!!! the nick ") && why.contains("lena"), "{variant}: {why}");
        let (mut hello, welcome) = server.json_client(variant);
        assert!(is_guest(&welcome), "{variant}: {welcome}");
        assert_eq!(hello.expect_event("error")["code"], "nick_registered", "{variant}");
    }
    // A resume hello is a nick asked for too, unless its token is that of the session
    // holding the nick: mallory's own token, or none, gives no lena.
    let (mut mallory, welcome) = server.json_client("mallory");
    let token = welcome["resume"].as_str().expect("a resume token").to_owned();
    for (variant, token) in [("lena", token.as_str()), ("l\u{435}na", "-")] {
        let mut resumer = server.connect();
        resumer.send(&format!("/hello json {variant} resume {token} 0"));
        let welcome = resumer.expect_event("welcome");
        assert!(is_guest(&welcome), "{variant} resumed: {welcome}");
        assert_eq!(resumer.expect_event("error")["code"], "nick_registered");
    }
    for variant in variants {
        mallory.send(&format!("/nick {variant}"));
        let error = mallory.expect_event("error");
        assert_eq!(error["code"], "nick_registered", "{variant}: {error}");
    }
    mallory.send("/identify lena pw for lena");
    let renamed = mallory.expect_event("nick");
    assert_eq!((renamed["old"].as_str(), renamed["new"].as_str()), (Some("mallory"), Some("lena")));
    // Its owner online, a variant is refused as registered too (not merely as taken).
    let (mut late, welcome) = server.json_client("Iena");
    assert!(is_guest(&welcome), "{welcome}");
    assert_eq!(late.expect_event("error")["code"], "nick_registered");
}

/// The owner's commands, in text mode and in structured mode: what a guest name or a
/// connection without a key cannot register, `/register` twice, `/keys` of a password
/// account, `/password` replacing the old one, `/whois` of a registered nick whose
/// owner is away, `/unregister` freeing the nick; each refusal with its code.
#[test]
fn the_owners_commands_answer_in_text_and_json_and_a_new_password_replaces_the_old() {
    // Each password command costs five lines of flood control: at the default burst the
    // JSON client's run of them is slowed, and the notice saying so comes between answers.
    let server = Server::start(&["--rate", "100", "--burst", "100"]);
    let mut mona = server.connect();
    mona.send("/list");
    mona.expect("Welcome");
    mona.send("/register a pw");
    mona.expect("!!! choose a nick first (/nick NAME), then /register it");
    mona.send("/nick mona");
    mona.send("/register");
    mona.expect("!!! this connection has no key to register");
    mona.send("/register first pw");
    mona.expect("mona is registered to your password");
    mona.send("/register first pw");
    mona.expect("!!! mona is registered already, to you: /keys lists its keys, /password");
    mona.send("/keys");
    mona.expect("*** mona has 0 keys and a password");
    mona.send("/password second pw");
    mona.expect("*** mona's password is set");
    // /help lists them, in text and in JSON.
    mona.send("/help");
    let usages = [
        "/register [password]",
        "/identify <nick> <password>",
        "/unregister",
        "/keys [remove <fingerprint>]",
        "/password <new password>",
    ];
    for usage in usages {
        mona.expect(usage);
    }
    mona.send("/quit");
    mona.read_to_close();

    let (mut json, _) = server.json_client("nemo");
    json.send("/help");
    let help = json.expect_event("help");
    let listed: Vec<&str> =
        help["commands"].as_array().unwrap().iter().filter_map(|c| c["usage"].as_str()).collect();
    assert!(usages.iter().all(|u| listed.contains(u)), "{listed:?}");
    let refused = |json: &mut common::Client, line: &str, code: &str| {
        json.send(line);
        let error = json.expect_event("error");
        assert_eq!(error["code"], code, "{line}: {error}");
        error["message"].as_str().unwrap().to_owned()
    };
    let away = refused(&mut json, "/whois mona", "no_such_user");
    assert_eq!(away, "mona is not online; the nick is registered");
    refused(&mut json, "/keys", "not_registered");
    refused(&mut json, "/register", "no_key");
    refused(&mut json, "/identify nobody pw", "not_registered");
    refused(&mut json, "/identify mona first pw", "bad_password");
    json.send("/identify mona second pw");
    assert_eq!(json.expect_event("info")["message"], "you are identified as mona");
    assert_eq!(json.expect_event("nick")["new"], "mona");
    json.send("/whois mona");
    let whois = json.expect_event("whois");
    assert_eq!((&whois["registered"], &whois["proven_by"]), (&true.into(), &"password".into()));
    refused(&mut json, "/register again", "registered");
    json.send("/unregister");
    let info = json.expect_event("info");
    assert!(info["message"].as_str().unwrap().starts_with("mona is no longer registered"));
    json.send("/quit");
    json.read_to_close();
    // Free for anyone now, and no longer said to be registered.
    let mut anyone = server.text_client("mona");
    anyone.send("/whois mona");
    anyone.expect("*** mona: in #lobby");
    assert!(!anyone.sync().iter().any(|l| l.contains("registered")));
    assert_no_secret(&server, "first pw");
    assert_no_secret(&server, "second pw");
}

/// `/keys remove` of the key the connection presents: refused while it is the only way
/// to prove the nick; with a password set, done, the connection keeps the nick it holds
/// and is told so, that key no longer proves it afterwards, and `/identify` adds it back.
#[test]
fn removing_the_key_you_are_connected_with_keeps_the_nick_only_until_you_leave() {
    if !have_tool("openssl", "openssl") {
        return;
    }
    let server = Server::start(&[]);
    let dir = StateDir::new("acct-own-key");
    let (mut nora, cert, key, fp) = registered_by_key(&server, &dir, "nora");
    nora.send(&format!("/keys remove {fp}"));
    nora.expect(&format!("!!! {fp} is nora's only key and it has no password"));
    nora.send("/password nora's pw");
    nora.expect("nora's password is set");
    nora.send(&format!("/keys remove {fp}"));
    let answer = nora.expect(&format!("{fp} no longer proves nora"));
    assert!(answer.contains("it was this connection's key: you keep nora until you leave"));
    nora.send("/whois nora");
    let line = nora.expect("nora is registered");
    assert!(!line.contains("proved"), "{line}");
    nora.send("/keys");
    nora.expect("!!! you have not proved nora (/identify)");
    drop(nora);
    server.wait_console_nth("Disconnected", 1);
    let mut again = Live::s_client(&server, &cert, &key);
    again.send("/nick nora");
    again.expect("the nick nora is registered");
    again.send("/identify nora nora's pw");
    again.expect(&format!("this connection's key {fp} now proves it too"));
    again.expect("is now known as nora");
    assert_no_secret(&server, "nora's pw");
}

/// `tchat join --nick NAME` refused NAME because it is registered does not ask for it
/// again when its owner comes and goes (it would only be refused again, in a line the
/// user never typed); a nick merely taken it does ask for (see client_pty).
#[test]
fn tchat_join_refused_a_registered_nick_leaves_it_alone_when_its_owner_leaves() {
    let server = Server::start(&[]);
    let mut watcher = server.text_client("watcher");
    let mut olive = server.text_client("olive");
    olive.send("/register olive's pw");
    olive.expect("olive is registered");
    olive.send("/quit");
    olive.read_to_close();
    let home = StateDir::new("acct-reclaim");
    let mut join = Live::spawn(common::join_command(server.addr, &home).args([
        "--no-reconnect",
        "--fingerprint",
        &server.fingerprint,
        "--nick",
        "olive",
    ]));
    join.expect("the nick olive is registered");
    let refused = server.console_count("Nick refused");
    // The owner comes back by password, and leaves.
    let mut owner = server.connect();
    owner.send("/identify olive olive's pw");
    owner.expect("is now known as olive");
    owner.send("/quit");
    owner.read_to_close();
    join.expect("olive left");
    // Anything the client sent on seeing the leave reaches the server before this.
    join.send("still a guest");
    watcher.expect("still a guest");
    assert_eq!(server.console_count("Nick refused"), refused, "{}", server.console_text());
    join.finish();
}

/// `tchat join` presents its key on every TLS connection, a reconnection too: the
/// server restarts (its accounts in the default file of its state directory, which
/// the next run reads), the client's resume hello finds no session and asks for the
/// nick afresh, and gets it by its key, operator rights with it; meanwhile nobody
/// else could take it.
#[test]
fn tchat_join_gets_its_registered_nick_and_rights_back_by_key_after_a_server_restart() {
    let dir = StateDir::new("acct-reconnect");
    let socket = dir.join("control.sock");
    let args = ["--control-socket", socket.to_str().unwrap()];
    let mut first = Server::start_in(StateDir::new("acct-reconnect-srv"), &args, WAIT);
    let proxy = common::proxy::Proxy::start(first.addr);
    let home = StateDir::new("acct-reconnect-home");
    let mut join = Live::spawn(common::join_command(proxy.addr, &home).args([
        "--reconnect",
        "--fingerprint",
        &first.fingerprint,
        "--nick",
        "pia",
    ]));
    join.expect("You are pia");
    join.send("/register");
    join.expect("pia is registered to your key");
    let answer = ctl_ok(&socket, &["op", "pia"]);
    assert!(answer.contains("pia is now an operator, on every connection"), "{answer}");
    proxy.set_down(true);
    assert!(first.terminate().success());
    join.expect("Connection lost");
    let state = StateDir::copy_of(&first.state, "acct-reconnect-srv2");
    drop(first);
    let second = Server::start_in(state, &args, WAIT);
    let mut squatter = second.connect();
    squatter.send("/nick pia");
    squatter.expect("the nick pia is registered");
    proxy.point_to(second.addr);
    proxy.set_down(false);
    let back = join.expect("Reconnected");
    assert!(back.contains("as pia"), "{back}");
    join.send("/kick nobody");
    join.expect("no such user: nobody");
    join.finish();
}

/// An accounts file with a line that is no account stops the server before it serves,
/// naming the file and the line, and is left as it was: starting without it would
/// give its nicks to anyone.
#[test]
fn a_broken_accounts_file_stops_the_server_and_is_kept() {
    let dir = StateDir::new("acct-broken");
    let file = dir.join("accounts.jsonl");
    let good = serde_json::to_string(&tchat::server::accounts::Account::new("una", None, None));
    let text = format!("{}\nnot an account\n", good.unwrap());
    std::fs::write(&file, &text).unwrap();
    let mut child = common::serve_command(&dir, &["--accounts", file.to_str().unwrap()])
        .spawn()
        .expect("starting tchat serve");
    let status = expect_exit(&mut child, WAIT, "tchat serve");
    assert!(!status.success());
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(stderr.contains(&format!("accounts file {}", file.display())), "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
}

/// A command with a password costs flood control more than a line, since the server
/// hashes it (Argon2id): a burst of 11 takes the `/nick` and two of them, and of five
/// sent at once (26 lines' worth, more than the burst and what the rate adds while the
/// server hashes) some are held (fakelag) and the sender told; none is lost. `/keys`,
/// which hashes nothing, costs a line.
#[test]
fn commands_with_a_password_cost_flood_control_more_than_a_line() {
    let server = Server::start(&["--rate", "1", "--burst", "11"]);
    let mut vera = server.text_client("vera");
    let mut lines = String::from("/register vera's pw\n");
    for i in 0..4 {
        lines.push_str(&format!("/password vera's pw {i}\n"));
    }
    vera.send_raw(lines.as_bytes());
    vera.expect("vera is registered");
    for _ in 0..4 {
        vera.expect("vera's password is set");
    }
    assert!(vera.seen.iter().any(|l| l.contains("you are sending faster")), "{:?}", vera.seen);
    let mut will = server.text_client("will");
    for _ in 0..8 {
        will.send("/keys");
        will.expect("will is not registered");
    }
    assert!(!will.seen.iter().any(|l| l.contains("sending faster")), "{:?}", will.seen);
}
