use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tchat::auth::Password;
use tchat::cli::{Cli, Command, ServeArgs};
use tchat::event_log::{Console, EventLog};
use tchat::server;
use tchat::server::access::{Access, Tls};
use tchat::server::accounts::{self, Accounts, AccountsFile};
use tchat::server::console::Interactive;
use tchat::server::tls::{CertSource, Certs};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Join(args) => tchat::client::run(args).map_err(Into::into),
        Command::Ctl(args) => return tchat::ctl::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tchat: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let certs = open_certs(&args)?;
    if args.fingerprint {
        println!("{}", certs.fingerprint());
        return Ok(());
    }
    let password = args.password_file.as_deref().map(Password::read_file).transpose()?;
    let tls = Arc::new(Tls::new(certs));
    let access =
        Access { plaintext: args.plaintext, tls: Some(tls.clone()), password, ..Access::default() };
    let mut config = server::Config::from(&args);
    config.access = Arc::new(access);
    config.accounts = Arc::new(open_accounts(&args)?);

    let stdout = std::io::stdout();
    let color = args.color.enabled(stdout.is_terminal());
    // On a terminal the console is also the operator's command line; without one (a
    // service, CI), in the background of one (`tchat serve &`: setting its mode would
    // stop the server with SIGTTOU), or on a terminal rustyline does not support, it
    // stays a plain log.
    let state_dir = args.state_dir.as_deref();
    let mut interactive = tchat::terminal::in_foreground()
        .then(|| Interactive::start(color, state_dir).ok())
        .flatten();
    let out: Box<dyn Write + Send> = match interactive.as_mut().and_then(Interactive::log_out) {
        Some(printer) => Box::new(printer),
        None => Box::new(stdout),
    };
    config.console = interactive.as_ref().map(Interactive::link);
    let result = run_server(&args, config, Console { out, color }, &tls);
    if let Some(interactive) = interactive {
        interactive.finish();
    }
    result
}

fn run_server(
    args: &ServeArgs,
    config: server::Config,
    console: Console,
    tls: &Tls,
) -> Result<(), Box<dyn std::error::Error>> {
    let (log, writer) = EventLog::start(console, args.save.as_deref())?;
    if let Some(seconds) = args.flood_kick_after {
        let why = "a client over --rate is slowed, never disconnected for it";
        log.warn(
            "Option ignored",
            serde_json::json!({"option": "--flood-kick-after", "value": seconds, "why": why}),
        );
    }
    let reload = config.reload.clone();
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(async {
        let addr = std::net::SocketAddr::from((args.host, args.port));
        let listener = server::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        server::run(listener, config, log, shutdown_signal(tls, reload)).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    });
    writer.finish();
    result
}

/// The certificate given with --tls-cert/--tls-key, or the generated one in the state
/// directory (created on first use).
fn open_certs(args: &ServeArgs) -> Result<Certs, Box<dyn std::error::Error>> {
    let source = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => CertSource::Files { cert: cert.clone(), key: key.clone() },
        _ => {
            let dir = args.state_dir.clone().or_else(tchat::state_dir::dir).ok_or(
                "no state directory for the TLS certificate: set HOME or XDG_STATE_HOME, \
                 or give --state-dir",
            )?;
            CertSource::Generated(dir)
        }
    };
    Ok(Certs::open(source)?)
}

/// The registered nicks: `--accounts FILE`, else the state directory's file; in
/// memory only (with a warning) when there is no state directory. On a backbone they
/// move to its bucket once it is joined (`Accounts::share`).
fn open_accounts(args: &ServeArgs) -> Result<Accounts, Box<dyn std::error::Error>> {
    let expiry = args.account_expiry.0;
    let state_dir = args.state_dir.clone().or_else(tchat::state_dir::dir);
    match accounts::file_path(args.accounts.as_deref(), state_dir.as_deref()) {
        Some(path) => Ok(Accounts::open(Box::new(AccountsFile { path }), expiry)?),
        None => {
            eprintln!(
                "tchat: no state directory: registered nicks are kept in memory only \
                 (give --accounts FILE or --state-dir)"
            );
            Ok(Accounts::in_memory(expiry))
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM, and on a SIGHUP that comes from a closed terminal; any
/// other SIGHUP reloads what can change without a restart (the daemon convention, as
/// systemd's `ExecReload` and logrotate expect): the TLS certificate, and through
/// `reload` the MOTD and bans files. A hangup would otherwise kill the server on the
/// spot, without telling the clients or writing the log's last events.
async fn shutdown_signal(tls: &Tls, reload: server::ReloadTrigger) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
        let mut hangup = signal(SignalKind::hangup()).expect("installing a SIGHUP handler");
        let had_terminal = controlling_terminal();
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return,
                _ = term.recv() => return,
                _ = hangup.recv() => {
                    if had_terminal && !controlling_terminal() {
                        return;
                    }
                    tls.reload.notify_one();
                    reload.fire();
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (tls, reload);
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Whether the process has a controlling terminal: opening /dev/tty fails once the
/// terminal the server was started from has closed (or when it never had one).
#[cfg(unix)]
fn controlling_terminal() -> bool {
    std::fs::File::open("/dev/tty").is_ok()
}
