//! floaty: keep cloud floating IPs pointed at the keepalived VRRP MASTER.
//!
//! A library only so that the fuzz targets (`fuzz/`) can call the parsers;
//! the binary (`src/main.rs`) is its one real user and this is no stable
//! API. Modules are public where the binary or a fuzz target needs them
//! and private otherwise, so that dead code in them is still reported.

mod address;
mod backoff;
mod check;
pub mod cli;
pub mod config;
mod daemon;
mod duration;
pub mod error;
pub mod event;
pub mod fifo;
mod generate;
pub mod keepalived;
mod lock;
pub mod logging;
mod notify;
mod process;
#[cfg(test)]
mod proptests;
mod provider;
mod readfile;
mod refresh;
mod rules;
mod selftest;
mod setup;
mod stop;
mod systemd;
pub mod text;
mod vip;

use crate::cli::{Command, Options, RawArgs};
use crate::error::Error;

/// Carries out what the command line asks for. Logging is set up by the
/// caller first, because errors from parsing the arguments are logged too.
pub fn run(raw: RawArgs, options: &Options) -> Result<(), Error> {
    let command = raw.into_command()?;
    match command {
        Command::Notify { config, event } => notify::run(&config, &event, options),
        Command::Test { config } => selftest::run(&config::load(&config)?, options),
        Command::Check { config } => check::run(&config),
        Command::Fifo { config, fifo } => daemon::run(&config, &fifo, options),
        Command::Generate(artifact) => generate::run(artifact).map_err(Error::Generate),
    }
}
