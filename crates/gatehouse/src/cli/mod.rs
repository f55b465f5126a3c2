//! The command-line client (work in progress).

use std::process::ExitCode;

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct ClientOpts {
    /// Server URL [env: GATEHOUSE_SERVER]
    #[arg(long, global = true, env = "GATEHOUSE_SERVER")]
    pub server: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Show who the token belongs to.
    Whoami,
}

pub async fn run(_opts: ClientOpts, _cmd: ClientCommand) -> ExitCode {
    ExitCode::SUCCESS
}
