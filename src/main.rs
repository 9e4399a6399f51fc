//! floaty: keep cloud floating IPs pointed at the keepalived VRRP MASTER.
//!
//! The command itself lives in the library (`src/lib.rs`); this only parses
//! the arguments, sets up logging and turns the outcome into an exit status.

use std::process::ExitCode;

use clap::Parser;

use floaty::cli::{self, RawArgs};
use floaty::logging;

fn main() -> ExitCode {
    let argv = cli::normalize_go_flags(std::env::args_os());
    let raw = match RawArgs::try_parse_from(argv) {
        Ok(raw) => raw,
        // clap prints help/version (exit 0) and usage errors (exit 2) itself.
        Err(e) => e.exit(),
    };
    let options = raw.options();
    logging::init(&options);
    match floaty::run(raw, &options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            logging::report_error(&format!("{e:#}"));
            ExitCode::from(e.exit_code())
        }
    }
}
