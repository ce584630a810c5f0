use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tchat::cli::{Cli, Command, ServeArgs};
use tchat::event_log::{Console, EventLog};
use tchat::server;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Join(args) => tchat::client::run(args).map_err(Into::into),
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
    let stdout = std::io::stdout();
    let color = args.color.enabled(stdout.is_terminal());
    let console = Console { out: Box::new(stdout), color };
    let (log, writer) = EventLog::start(console, args.save.as_deref())?;
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(async {
        let addr = std::net::SocketAddr::from((args.host, args.port));
        let listener = server::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        server::run(listener, server::Config::from(&args), log, shutdown_signal()).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    });
    writer.finish();
    result
}

/// Resolves on Ctrl-C, SIGTERM or SIGHUP. A hangup (the terminal the server was started
/// from closed) would otherwise kill the server on the spot, without telling the
/// clients or writing the log's last events.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
        let mut hangup = signal(SignalKind::hangup()).expect("installing a SIGHUP handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
            _ = hangup.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
