//! floaty: keep cloud floating IPs pointed at the keepalived VRRP MASTER.

mod address;
mod backoff;
mod check;
mod cli;
mod config;
mod daemon;
mod duration;
mod error;
mod event;
mod fifo;
#[cfg(test)]
mod fuzz;
mod generate;
mod keepalived;
mod lock;
mod logging;
mod notify;
mod process;
mod provider;
mod refresh;
mod rules;
mod selftest;
mod systemd;
mod vip;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Command, RawArgs};
use crate::error::Error;

fn main() -> ExitCode {
    let argv = cli::normalize_go_flags(std::env::args_os());
    let raw = match RawArgs::try_parse_from(argv) {
        Ok(raw) => raw,
        // clap prints help/version (exit 0) and usage errors (exit 2) itself.
        Err(e) => e.exit(),
    };
    let options = raw.options();
    logging::init(&options);
    match run(raw, &options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            logging::report_error(&format!("{e:#}"));
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(raw: RawArgs, options: &cli::Options) -> Result<(), Error> {
    let command = raw.into_command()?;
    match command {
        Command::Notify { config, event } => notify::run(&config::load(&config)?, &event, options),
        Command::Test { config } => selftest::run(&config::load(&config)?, options),
        Command::Check { config } => check::run(&config::load(&config)?),
        Command::Fifo { config, fifo } => daemon::run(&config, &fifo, options),
        Command::Generate(artifact) => generate::run(artifact).map_err(Error::Generate),
    }
}
