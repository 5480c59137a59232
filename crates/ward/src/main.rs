//! `ward`: one binary for Ward's backend, agent, command-line client, certificate authority
//! and PostgreSQL tooling. This crate only parses arguments and dispatches to the libraries.

#![forbid(unsafe_code)]

mod cli;

/// mimalloc rather than glibc's malloc: with thousands of agent sessions on a few threads,
/// glibc's allocator (arena locking, consolidation) was the backend's largest CPU cost
/// under load (see BENCHMARKS.md, "Agents").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::cfssl_compat::translate(std::env::args_os().collect());
    cli::run(args)
}
