//! The control socket: a Unix socket through which `tchat ctl` gives a running server
//! the operator's commands, as `birdc` and `unbound-control` do. Never a network port.
//!
//! Protocol, one command per connection: the client sends one line (`kick bob spam`,
//! the leading `/` optional); the server answers `ok` or `error` on the first line,
//! then the answer's text, and closes.
//!
//! Only the server's own user (or root) may use it: the socket is mode 0600 in a
//! directory of its own (0700 when the server creates it), and each peer's credentials
//! are checked against the socket file's owner as well, which also covers the moment
//! between `bind` and `chmod`.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::hub::Hub;
use super::operator::{Actor, Command, execute};

/// Longest command line accepted, in bytes.
const MAX_COMMAND: u64 = 4096;

/// How long a control client may take to send its command.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The default socket path: `$RUNTIME_DIRECTORY/control.sock` under systemd (its
/// `RuntimeDirectory=`), else `$XDG_RUNTIME_DIR/tchat/control.sock` (the XDG Base
/// Directory spec's place for sockets). `None` when neither is set.
pub fn default_path() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("RUNTIME_DIRECTORY")
        .map(|d| d.join("control.sock"))
        .or_else(|| crate::state_dir::runtime_dir().map(|d| d.join("tchat").join("control.sock")))
}

/// Binds the control socket at `path`: creates its directory (0700) if missing,
/// replaces a stale socket left by a server that died, and refuses to take over the
/// socket of a server that is still running.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    let context =
        |e: io::Error| io::Error::new(e.kind(), format!("control socket {}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        crate::private_file::create_dir(dir).map_err(context)?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(context(io::Error::new(io::ErrorKind::AlreadyExists, "not a socket")));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            let e = io::Error::new(io::ErrorKind::AddrInUse, "another server is using it");
            return Err(context(e));
        }
        std::fs::remove_file(path).map_err(context)?;
    }
    let listener = UnixListener::bind(path).map_err(context)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(context)?;
    Ok(listener)
}

/// Answers one control client.
pub async fn serve(hub: Arc<Hub>, stream: UnixStream, owner: u32) {
    let uid = stream.peer_cred().map(|c| c.uid());
    if !matches!(uid, Ok(u) if u == owner || u == 0) {
        hub.log.warn("Control connection refused (other user)", json!({"uid": uid.ok()}));
        return;
    }
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_COMMAND));
    let read = tokio::time::timeout(READ_TIMEOUT, reader.read_line(&mut line)).await;
    let answer = match read {
        Ok(Ok(_)) if line.ends_with('\n') => match Command::parse(line.trim_end()) {
            Ok(command) => execute(&hub, Actor::Ctl, command).await,
            Err(usage) => Err(usage),
        },
        Ok(Ok(_)) => Err(format!("a command is one line of at most {MAX_COMMAND} bytes")),
        Ok(Err(e)) => Err(format!("cannot read the command: {e}")),
        Err(_) => Err("no command within 5 s".into()),
    };
    let reply = match answer {
        Ok(text) => format!("ok\n{text}\n"),
        Err(text) => format!("error\n{text}\n"),
    };
    let _ = write.write_all(reply.as_bytes()).await;
    let _ = write.shutdown().await;
}

/// The uid owning the socket file: the server's own user.
pub fn owner(path: &Path) -> io::Result<u32> {
    std::fs::metadata(path).map(|m| m.uid())
}
