//! `ca-file`: CA certificates trusted on top of the built-in roots (a
//! TLS-inspecting proxy, an internal API gateway), read and checked while
//! the config loads, so a wrong file is a usage error before any lock is
//! taken, not a refresher failing TLS for ever in the log.

use std::path::{Path, PathBuf};

use floaty_providers::{CaBundle, CaBundleError};

use super::ConfigError;

/// A CA bundle is a few KiB of PEM (the whole Mozilla set is about
/// 200 KiB); beyond this it is the wrong file.
pub const MAX_CA_FILE: u64 = 1 << 20;

const KEY: &str = "ca-file";
const FIX: &str = "point ca-file at a PEM file of CA certificates";

/// The bundle `ca-file` names, and where it was read from (for the dump).
#[derive(Debug, Clone, PartialEq)]
pub struct CaFile {
    /// Already resolved against the YAML file's directory.
    pub path: PathBuf,
    pub bundle: CaBundle,
}

/// Reads and checks `value` (relative to the YAML file at `config`, like
/// `keepalived-config`). Every error names the file and the fix.
pub(super) fn read_ca_file(config: &Path, value: &str) -> Result<CaFile, ConfigError> {
    use crate::readfile::{read_regular, ReadError};
    let path = config.parent().unwrap_or(Path::new("")).join(value);
    let shown = crate::text::shown(&path.display().to_string());
    let invalid = |message: String| ConfigError::invalid(config, Some(KEY), message);
    let (bytes, _) = read_regular(&path, MAX_CA_FILE).map_err(|e| {
        invalid(match e {
            ReadError::Io(e) => format!("cannot read {shown}: {e}; {FIX}"),
            other => format!("{shown} {other}; {FIX}"),
        })
    })?;
    let bundle = CaBundle::from_pem(&bytes).map_err(|e| {
        invalid(match e {
            CaBundleError::NoCertificate => format!(
                "{shown} {e}; {FIX} (a DER file converts with `openssl x509 -inform der -in FILE -out FILE.pem`)"
            ),
            _ => format!("{shown}: {e}; fix or remove that certificate"),
        })
    })?;
    Ok(CaFile { path, bundle })
}
