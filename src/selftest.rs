//! `floaty --test`: can this node reach its provider with these credentials?
//! Prints one line per probe on stdout, for humans and the Nagios plugin.

use std::io::Write;

use crate::cli::Options;
use crate::config::Config;
use crate::error::Error;
use crate::provider::Spec;

pub fn run(cfg: &Config, opts: &Options) -> Result<(), Error> {
    let spec = Spec::from_config(cfg, opts.dry_run)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let checks = runtime.block_on(async {
        match spec.build().await {
            Ok(provider) => Ok(provider.self_test().await),
            Err(e) => Err(e),
        }
    });
    let checks = checks.map_err(|e| Error::SelfTest(e.to_string()))?;
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for check in &checks {
        writeln!(out, "{check}").map_err(Error::Output)?;
        failed += usize::from(check.result.is_err());
    }
    if failed > 0 || checks.is_empty() {
        return Err(Error::SelfTest(format!(
            "{failed} of {} checks failed",
            checks.len()
        )));
    }
    Ok(())
}
