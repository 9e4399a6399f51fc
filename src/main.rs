//! floaty: keep cloud floating IPs pointed at the keepalived VRRP MASTER.
//!
//! The command itself lives in the library (`src/lib.rs`); this only parses
//! the arguments, sets up logging and turns the outcome into an exit status.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use floaty::cli::{self, Options, RawArgs};
use floaty::logging;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let json_log = cli::wants_json_log(&args);
    let argv = cli::normalize_go_flags(args);
    let raw = match RawArgs::try_parse_from(argv) {
        Ok(raw) => raw,
        // --help and --version: clap prints them on stdout, exit 0.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // Logging as it would be set up without flags (the journal when
            // keepalived runs floaty), in the format asked for, so that
            // even a usage error is one line where the operator looks.
            logging::init(&Options {
                verbose: false,
                json_log,
                dry_run: false,
                log_target: None,
            });
            logging::report_error(&cli::clap_error_line(&e).to_string());
            return ExitCode::from(2);
        }
    };
    let options = raw.options();
    logging::init(&options);
    match floaty::run(raw, &options) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            logging::report_error(&format!("{e:#}"));
            ExitCode::from(e.exit_code())
        }
    }
}
