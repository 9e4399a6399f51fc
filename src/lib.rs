//! floaty: keep cloud floating IPs pointed at the keepalived VRRP MASTER.
//!
//! A library only so that the fuzz targets (`fuzz/`) can call the parsers;
//! the binary (`src/main.rs`) is its one real user and this is no stable
//! API. Modules are public where the binary or a fuzz target needs them
//! and private otherwise, so that dead code in them is still reported.
//!
//! # Map
//!
//! What comes in:
//! - `cli` the command line (raw flags apart from the [`cli::Command`] they
//!   mean); `event` a keepalived transition; `fifo` FIFO lines into events;
//! - `config/` floaty.yml (one job per file, see its `mod.rs`);
//!   `keepalived/` keepalived.conf as keepalived reads it;
//! - `setup` **the one place that checks everything before a side effect**
//!   and turns an event into per-instance work; `stop` the short road a
//!   stop takes when that check fails (a stop always stops).
//!
//! What acts:
//! - `notify` one notify call; `poke` one `MASTER_RX_LOWER_PRI` call,
//!   which asks the running refresher to re-assert (`reassert`: the burst
//!   of reads that does it, split-brain repair); `daemon/` the `--fifo`
//!   daemon; `check` `--check`; `selftest` `--test`; `generate` the man
//!   page and completions;
//! - `lock/` the per-instance lock: its place (`place`), template, record,
//!   and who may be signalled (`holder`); `process` pidfds and the fork;
//! - `worker` the forked process of one instance (refresher or prober:
//!   its runtime, signals and end); `refresh` the refresher loop,
//!   `backoff` its retries and `beat` the moment an instance's address
//!   tasks wake together (so one listing can answer them all); `guard` the
//!   split-brain guard (`netlink` lists this host's addresses); `provider`
//!   config → a provider of the `floaty-providers` crate (one folder per
//!   cloud); `rules` commands run on events; `systemd` socket activation
//!   and readiness;
//! - `health/` this node's readiness told to keepalived through a
//!   `track_file`: the policy and hysteresis (`mod.rs`), the file
//!   (`track_file`), the prober of a BACKUP instance (`probe`),
//!   `--drain`/`--undrain` (`drain`), and whether keepalived.conf reads
//!   the file (`watched`); `handoff` a prober becoming the refresher on
//!   MASTER, on its open connection;
//! - `status/` what SREs see: the record each instance's owner keeps
//!   (`record`, `recorder`), its Prometheus text (`metrics`) and the
//!   `--status` judgement (`report`); `status_command` `--status`.
//!
//! Plumbing: `logging`, `text` (one-line messages), `address`, `duration`,
//! `readfile`, `replace_file` (a file replaced whole, by rename), `error`
//! (every error and its exit status, in one place).
//!
//! # One notify call, from `main` to the HTTP request
//!
//! `main` → [`run`] → `cli::RawArgs::into_command` → `notify::run` →
//! `setup::load` (config, provider spec, keepalived.conf) →
//! `Setup::work_for` (instances, lock paths, guards) → `lock::acquire_in_order`
//! (stops the previous refresher) → `process::fork_detached` → in the child
//! `worker::run` → `refresh::refresh_all` → one task per address →
//! `guard::Guard` (are the VIPs here?) → `Provider::refresh` (e.g.
//! `floaty_providers::cloudscale`) → `PATCH /v1/floating-ips/{ip}`.

mod address;
mod backoff;
mod beat;
mod check;
pub mod cli;
pub mod config;
mod daemon;
mod duration;
pub mod error;
pub mod event;
pub mod fifo;
mod generate;
mod guard;
mod handoff;
mod health;
pub mod keepalived;
mod lock;
pub mod logging;
mod netlink;
mod notify;
mod poke;
mod process;
#[cfg(test)]
mod proptests;
mod provider;
mod readfile;
mod reassert;
mod refresh;
mod replace_file;
mod rules;
mod selftest;
mod setup;
mod status;
mod status_command;
mod stop;
mod systemd;
pub mod text;
mod worker;

use crate::cli::{Command, Options, RawArgs};
use crate::error::Error;

/// Carries out what the command line asks for; the exit status. Logging is
/// set up by the caller first, because errors from parsing the arguments
/// are logged too.
pub fn run(raw: RawArgs, options: &Options) -> Result<u8, Error> {
    // Every command but --status exits 0 when it succeeds.
    let done = |r: Result<(), Error>| r.map(|()| 0);
    match raw.into_command()? {
        Command::Notify { config, event } => done(notify::run(&config, &event, options)),
        Command::Reassert { config, event } => done(poke::run(&config, &event, options)),
        Command::Test { config } => done(selftest::run(&config::load(&config)?, options)),
        Command::Check { config } => done(check::run(&config)),
        Command::Fifo { config, fifo } => done(daemon::run(&config, &fifo, options)),
        Command::Drain {
            config,
            instances,
            drain,
        } => done(health::drain::run(&config, &instances, drain)),
        Command::Status {
            config,
            instances,
            format,
        } => status_command::run(&config, &instances, format),
        Command::Generate(artifact) => done(generate::run(artifact).map_err(Error::Generate)),
    }
}
