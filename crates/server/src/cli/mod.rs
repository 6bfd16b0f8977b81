//! The client side of the `stompbox` binary: `publish`, `subscribe` and the load generator
//! `bench`. Each is a host of the sans-IO [`stompbox::ClientConnection`]: `publish` and
//! `subscribe` on blocking `std::net` sockets, `bench` on `mio` with a few threads that each
//! drive many non-blocking sockets.

use std::process::ExitCode;

mod args;
mod bench;
mod blocking;
mod publish;
mod subscribe;
mod target;

pub(crate) use args::CliError;

/// Runs a client subcommand when `args` (without the program name) starts with one; `None`
/// means "not a client command, run the server".
pub(crate) fn dispatch(args: &[String]) -> Option<ExitCode> {
    let (cmd, rest) = args.split_first()?;
    let result = match cmd.as_str() {
        "publish" => publish::run(rest),
        "subscribe" => subscribe::run(rest),
        "bench" => bench::run(rest),
        _ => return None,
    };
    Some(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Help(text)) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("stompbox {cmd}: {e}");
            ExitCode::from(e.exit_code())
        }
    })
}
