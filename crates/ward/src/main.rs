//! `ward`: one binary for Ward's backend, agent, command-line client, certificate authority
//! and PostgreSQL tooling. This crate only parses arguments and dispatches to the libraries.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::cfssl_compat::translate(std::env::args_os().collect());
    cli::run(args)
}
