//! `gatehouse`: the server (`gatehouse serve`) and the command-line client that
//! talks to a server over HTTP (every other subcommand).

/// A request allocates many small, short-lived values (rows, JSON, headers)
/// on two runtime threads at once: mimalloc serves those faster than the
/// system allocator (see BENCHMARKS.md, MLflow Model Registry API).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;
mod serve;

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "Model governance: sign-off, deployment gate, audit trail"
)]
struct Cli {
    #[command(flatten)]
    client: cli::ClientOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Gatehouse server.
    Serve(Box<serve::ServeArgs>),
    #[command(flatten)]
    Client(cli::ClientCommand),
}

/// The client's options, global to every client command; `serve` neither
/// shows nor takes them.
const CLIENT_OPTIONS: [&str; 3] = ["server", "token", "json"];

/// The command line, with the client's options hidden from `serve`.
fn command() -> clap::Command {
    let mut command = Cli::command();
    // Building copies the global options into every subcommand; only then
    // can `serve`'s copies be hidden.
    command.build();
    command.mut_subcommands(|sub| {
        if sub.get_name() != "serve" {
            return sub;
        }
        sub.mut_args(|arg| {
            if CLIENT_OPTIONS.contains(&arg.get_id().as_str()) {
                arg.hide(true)
            } else {
                arg
            }
        })
    })
}

fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Cli, clap::Error> {
    let mut command = command();
    let matches = command.try_get_matches_from_mut(args)?;
    if let Some(serve) = matches.subcommand_matches("serve") {
        // From the command line only: GATEHOUSE_SERVER and GATEHOUSE_TOKEN
        // belong to the client and are ignored by the server.
        if let Some(id) = CLIENT_OPTIONS
            .into_iter()
            .find(|id| serve.value_source(id) == Some(ValueSource::CommandLine))
        {
            let serve = command
                .find_subcommand_mut("serve")
                .expect("serve is a subcommand");
            return Err(serve.error(
                clap::error::ErrorKind::UnknownArgument,
                format!("--{id} is an option of the client commands; `serve` does not take it"),
            ));
        }
    }
    Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command))
}

fn main() -> ExitCode {
    let cli = match parse(std::env::args_os()) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 1,
                _ => 1,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // The runtime's threads have the stack of a check thread, so that a
    // request evaluates its qualification checks where it runs (see
    // gatehouse_checks::stack) instead of waiting for a check thread.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(gatehouse_checks::STACK_SIZE)
        .on_thread_start(gatehouse_checks::stack::this_thread_has_the_stack)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Client(cmd) => cli::run(cli.client, cmd).await,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn try_parse(args: &[&str]) -> Result<Cli, clap::Error> {
        parse(
            std::iter::once("gatehouse")
                .chain(args.iter().copied())
                .map(Into::into),
        )
    }

    fn help_of(name: &str) -> String {
        command()
            .find_subcommand_mut(name)
            .expect("a subcommand")
            .render_long_help()
            .to_string()
    }

    #[test]
    fn serve_neither_shows_nor_takes_the_client_options() {
        let serve = help_of("serve");
        let whoami = help_of("whoami");
        let shows = |help: &str, option: &str| help.split_whitespace().any(|w| w == option);
        for option in ["--server", "--token", "--json"] {
            assert!(!shows(&serve, option), "serve --help shows {option}");
            assert!(shows(&whoami, option), "whoami --help lacks {option}");
        }
        assert!(serve.contains("--request-timeout-secs"));
        for args in [
            &["serve", "--json"][..],
            &["serve", "--server", "http://x:1"],
            &["--token", "t", "serve"],
        ] {
            let e = try_parse(args).err().expect("refused");
            assert!(
                e.to_string()
                    .contains("is an option of the client commands"),
                "{args:?}: {e}"
            );
        }
        assert!(matches!(
            try_parse(&["serve", "--demo"]).unwrap().command,
            Command::Serve(_)
        ));
    }

    #[test]
    fn client_options_go_before_or_after_the_command() {
        for args in [
            &["--server", "http://x:1", "--json", "whoami"][..],
            &["whoami", "--server", "http://x:1", "--json"],
        ] {
            let cli = try_parse(args).unwrap();
            assert_eq!(cli.client.server.as_deref(), Some("http://x:1"), "{args:?}");
            assert!(cli.client.json, "{args:?}");
        }
    }
}
