//! `floaty generate man|completions SHELL`: the man page and shell
//! completions, rendered from the same clap definition that parses the
//! command line, so they can never drift from what floaty accepts.
//!
//! Hidden on purpose: it is a packaging step (`packaging/generate` runs it
//! and keeps the output in packaging/generated/, where `cargo deb` and
//! `cargo generate-rpm` find it; tests/it/man_and_completions.rs fails
//! when those files differ from what this renders), not something an SRE
//! types. It is recognised only in the two shapes below, which no notify
//! call can take (those have four or five positionals), so a config file
//! named `generate` still works.

use std::io::{self, Write};

use clap::CommandFactory;

use crate::cli::{Artifact, RawArgs};

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("cannot write the output: {0}")]
    Write(#[source] io::Error),
}

/// Write the artifact to stdout.
pub fn run(artifact: Artifact) -> Result<(), GenerateError> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    render(artifact, &mut out).map_err(GenerateError::Write)?;
    out.flush().map_err(GenerateError::Write)
}

fn render(artifact: Artifact, out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = RawArgs::command();
    match artifact {
        Artifact::Man => man(cmd, out),
        Artifact::Completions(shell) => {
            clap_complete::generate(shell, &mut cmd, "floaty", out);
            Ok(())
        }
    }
}

/// clap's sections (name, synopsis, description, options), then the ones
/// an operator looks for in a man page and clap cannot know.
fn man(cmd: clap::Command, out: &mut dyn Write) -> io::Result<()> {
    let man = clap_mangen::Man::new(cmd)
        .section("8")
        .manual("System Manager's Manual");
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    out.write_all(DESCRIPTION.as_bytes())?;
    man.render_options_section(out)?;
    out.write_all(EXTRA_SECTIONS.as_bytes())?;
    man.render_version_section(out)
}

const DESCRIPTION: &str = r#".SH DESCRIPTION
floaty keeps cloud floating IPs (cloudscale.ch Floating IPs, Exoscale
Elastic IPs, Hetzner Cloud Floating IPs, DigitalOcean Reserved IPs, AWS
Elastic IPs or secondary private IPs) pointed at whichever node keepalived
has made VRRP MASTER.
It is a drop-in successor of vshn/floaty: same command line, same YAML keys.
.PP
In notify mode keepalived runs floaty on every state change, appending
TYPE NAME STATE PRIORITY. On MASTER floaty takes the instance's lock file,
stops any previous refresher and forks a refresher that re-points every
address now and then every refresh-interval. On BACKUP, FAULT, STOP and
DELETED it stops the refresher and releases the lock.
.PP
.B floaty \-\-test
checks the provider's API access;
.B floaty \-\-check
validates the config and the keepalived.conf it names and prints, as JSON,
every VRRP instance and the addresses floaty manages for it;
.B floaty \-\-fifo
reads keepalived's notify FIFO in order as a long-lived daemon.
"#;

const EXTRA_SECTIONS: &str = r#".SH KEEPALIVED
.nf
vrrp_instance VI_1 {
    ...
    notify "/usr/bin/floaty /etc/keepalived/floaty.yml"
}
.fi
.SH EXIT STATUS
.TP
.B 0
done
.TP
.B 1
runtime failure (lock, fork, API)
.TP
.B 2
usage or config error; nothing was done: no lock taken, no API call,
no process signalled
.SH ENVIRONMENT
.TP
.B FLOATY_LOG_VERBOSE
non-empty: log debug details, as \-\-verbose does
.TP
.B FLOATY_METADATA_URL
base URL of the cloud metadata service (tests and labs)
.TP
.B FLOATY_SYSLOG_SOCKET
syslog socket for \-\-log\-target syslog (default /dev/log)
.SH FILES
.TP
.I /etc/keepalived/floaty.yml
the usual config path
.TP
.I /run/floaty/floaty.%s.lock
per-instance lock files (lock-file-template; older versions defaulted to
/var/lock/floaty.%s.lock, which a stop still looks at)
.TP
.I /run/floaty/keepalived.fifo
keepalived's notify FIFO when systemd runs floaty (floaty\-fifo.socket
creates it; keepalived.conf: vrrp_notify_fifo)
.TP
.I /lib/systemd/system/floaty\-fifo.socket, floaty\-fifo.service
the FIFO daemon's units: the socket starts the service on keepalived's
first event; the service stops and restarts with keepalived.service
.TP
.I /usr/share/doc/floaty/examples/
annotated example configs
.SH SEE ALSO
.BR keepalived (8),
.BR keepalived.conf (5)
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use clap_complete::Shell;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_the_two_shapes_only() {
        assert_eq!(Artifact::from_args(&args(&["man"])).unwrap(), Artifact::Man);
        assert_eq!(
            Artifact::from_args(&args(&["completions", "zsh"])).unwrap(),
            Artifact::Completions(Shell::Zsh)
        );
        for bad in [&["men"][..], &["completions", "tcsh"], &["man", "x"], &[]] {
            let e = Artifact::from_args(&args(bad)).unwrap_err().to_string();
            assert!(e.contains("generate takes"), "{e}");
        }
        let e = Artifact::from_args(&args(&["\nman"]))
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("got `\\nman`"), "{e}");
    }

    #[test]
    fn man_page_has_usage_options_and_exit_status() {
        let mut out = Vec::new();
        render(Artifact::Man, &mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        assert!(page.contains("\n.TH floaty 8 "), "no title line");
        for needle in [
            "SYNOPSIS",
            "\\-\\-dry\\-run",
            "EXIT STATUS",
            "FLOATY_LOG_VERBOSE",
        ] {
            assert!(page.contains(needle), "man page lacks {needle}");
        }
    }

    #[test]
    fn completions_name_the_flags() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            render(Artifact::Completions(shell), &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(
                text.contains("dry-run") && text.contains("json-log"),
                "{shell}"
            );
        }
    }
}
