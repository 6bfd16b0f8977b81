//! The `stompbox` binary: the stompbox server with the demo handlers.
//!
//! Every failure a user can cause ends with one line on stderr and exit status 2 (bad flags or
//! config) or 1 (cannot start, e.g. port in use); SIGINT/SIGTERM stop gracefully with status 0.

use std::process::ExitCode;

use stompbox_server::config::{Command, HELP, parse_args};
use stompbox_server::{ServerBuilder, chat_handler, echo_handler};
use tracing::{info, warn};

mod cli;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(code) = cli::dispatch(&args) {
        return code;
    }
    let config = match parse_args(args) {
        Ok(Command::Run(c)) => c,
        Ok(Command::Help) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("stompbox {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("stompbox: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = init_logging(config.log.as_deref()) {
        eprintln!("stompbox: {e}");
        return ExitCode::from(2);
    }
    let server = match ServerBuilder::from_config(&config)
        .handler("/app/chat", chat_handler)
        .handler("/app/echo", echo_handler)
        .build()
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("stompbox: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(a) = server.http_addr() {
        info!("demo page: http://{a}/  (STOMP over WebSocket: ws://{a}/ws)");
        println!("stompbox: demo page on http://{a}/ , STOMP over WebSocket at ws://{a}/ws");
    }
    if let Some(a) = server.stomp_addr() {
        info!("STOMP over TCP: {a}");
        println!("stompbox: STOMP over TCP on {a}");
    }
    if config.users.is_empty() {
        warn!("no users configured: any login is accepted (use --user NAME:PASSCODE)");
    } else {
        info!(users = config.users.len(), "authentication on");
    }
    if let Some(p) = &config.ws_echo {
        info!("WebSocket echo route at {p} (limits raised for Autobahn)");
    }
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stompbox: event loop failed: {e}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(flag: Option<&str>) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let filter = match flag {
        Some(f) => EnvFilter::try_new(f).map_err(|e| format!("bad --log filter {f:?}: {e}"))?,
        None => match std::env::var("RUST_LOG") {
            Ok(v) if !v.is_empty() => {
                EnvFilter::try_new(&v).map_err(|e| format!("bad RUST_LOG {v:?}: {e}"))?
            }
            _ => EnvFilter::new("info"),
        },
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init()
        .map_err(|e| format!("cannot set up logging: {e}"))
}
