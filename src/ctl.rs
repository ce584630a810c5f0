//! `tchat ctl`: sends one operator command to a running server's control socket,
//! prints the answer and exits 0, 1 if the server refused the command, 2 if it could
//! not be reached, as `birdc` and `unbound-control` do.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::CtlArgs;

/// Where a service's socket is when `tchat ctl` runs in an administrator's shell,
/// whose runtime directory is not the service's: the systemd unit's
/// `RuntimeDirectory=tchat`.
pub const SERVICE_SOCKET: &str = "/run/tchat/control.sock";

/// The socket to use: `--control-socket`, else the server's default if it exists,
/// else the service's.
fn socket_path(args: &CtlArgs) -> PathBuf {
    if let Some(path) = &args.control_socket {
        return path.clone();
    }
    #[cfg(unix)]
    if let Some(path) = crate::server::control::default_path().filter(|p| p.exists()) {
        return path;
    }
    PathBuf::from(SERVICE_SOCKET)
}

/// Runs `tchat ctl`; the exit code says whether the command succeeded.
#[cfg(unix)]
pub fn run(args: CtlArgs) -> ExitCode {
    let path = socket_path(&args);
    let line = args.command.join(" ");
    if line.contains(['\n', '\r']) {
        eprintln!("tchat ctl: a command cannot contain a line break");
        return ExitCode::from(1);
    }
    let answer = (|| {
        let mut stream = std::os::unix::net::UnixStream::connect(&path)?;
        stream.write_all(format!("{line}\n").as_bytes())?;
        stream.shutdown(std::net::Shutdown::Write)?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        std::io::Result::Ok(answer)
    })();
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => {
            eprintln!("tchat ctl: cannot reach the server at {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    match answer.split_once('\n') {
        Some(("ok", text)) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Some(("error", text)) => {
            eprint!("tchat ctl: {text}");
            ExitCode::from(1)
        }
        _ => {
            eprintln!("tchat ctl: the server sent no answer");
            ExitCode::from(2)
        }
    }
}

#[cfg(not(unix))]
pub fn run(_args: CtlArgs) -> ExitCode {
    eprintln!("tchat ctl: control sockets need a Unix system");
    ExitCode::from(2)
}
