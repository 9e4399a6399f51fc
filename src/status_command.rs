//! `floaty --status CONFIG [INSTANCE...]`: one line per instance and
//! address from the state files (`status/`), and a monitoring plugin's
//! exit status. `--json` for machines, `--nagios` for the plugin's line.
//! Reads only: no lock, no API call, no signal.

use std::io::Write;
use std::path::Path;

use crate::error::Error;
use crate::process::ProcessId;
use crate::status::record::now;
use crate::status::report::{assess, nagios, text, Assessment, Level};

pub use crate::cli::StatusFormat as Format;

fn alive(pid: i32, start: u64) -> bool {
    ProcessId {
        pid,
        start_time: start,
    }
    .is_running()
}

pub fn run(config_path: &Path, names: &[String], format: Format) -> Result<u8, Error> {
    let setup = crate::setup::load_quietly(config_path, true)?;
    let dir = setup.cfg.state_dir.path().to_path_buf();
    let names: Vec<String> = if names.is_empty() {
        setup.instances().into_iter().map(|(n, _)| n).collect()
    } else {
        let mut out = Vec::new();
        for n in names {
            out.push(setup.instance_work(n, false)?.instance);
        }
        out
    };
    let t = now();
    let found: Vec<Assessment> = names
        .iter()
        .map(|n| {
            assess(
                n,
                crate::status::record::read(&crate::status::state_path_in(&dir, n)),
                t,
                alive,
            )
        })
        .collect();
    let worst = found
        .iter()
        .map(|a| a.level)
        .max_by_key(|l| l.rank())
        .unwrap_or(Level::Unknown);
    let text = match format {
        Format::Json => {
            let mut s = serde_json::to_string(&serde_json::json!({
                "status": worst.word(),
                "code": worst.code(),
                "instances": found,
            }))
            .unwrap_or_default();
            s.push('\n');
            s
        }
        Format::Text => text(&found, t),
        Format::Nagios => nagios(&found, worst, t),
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(Error::Output)?;
    Ok(worst.code())
}
