//! `floaty-mock-cloud`: the mocks as a process, for behaviour tests, tests
//! inside network namespaces and the demo lab.
//!
//! It prints its base URL as the first line of stdout, then serves until it
//! is killed (SIGTERM's default action is fine: the state file is always
//! complete) or, when stdin is a pipe or socket, until stdin closes, so a
//! test that dies without cleaning up does not leave it running. A terminal
//! or `/dev/null` on stdin (background jobs in scripts) is not watched.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use mock_cloud::{Cloudscale, Exoscale, Metadata};

const USAGE: &str = "\
usage:
  floaty-mock-cloud cloudscale [--listen ADDR:PORT] --token TOKEN [--read-only-token TOKEN]...
                               [--server UUID[=NAME]]... [--floating-ip IP[=UUID]]...
                               [--state-file PATH] [--tls-ca-out PATH]
  floaty-mock-cloud metadata [--listen ADDR:PORT] --uuid UUID
  floaty-mock-cloud exoscale [--listen ADDR:PORT] --key KEY --secret SECRET
                             [--server ID[=NAME]]... [--floating-ip IP[=ID]]... [--tls-ca-out PATH]
  floaty-mock-cloud exoscale-metadata [--listen ADDR:PORT] --uuid INSTANCE-ID [--zone ZONE]

--listen defaults to 127.0.0.1:0 (a free port). The first line of stdout is the base URL.
--tls-ca-out serves HTTPS with a certificate from a test CA made at start-up and writes that
CA's PEM to PATH (floaty's ca-file), before the URL is printed.
--state-file is rewritten atomically after each change: {\"IP\": \"SERVER-UUID\" or null, ...}.
Test controls: GET /_mock/state, PUT /_mock/fault, PUT /_mock/floating-ips/IP (see the crate docs);
exoscale answers GET /_mock/state only. For exoscale, --server is an instance and
--floating-ip an Elastic IP (=ID: attached to that instance).";

#[derive(Debug, Default)]
struct Args {
    listen: Option<String>,
    tokens: Vec<(String, bool)>,
    servers: Vec<(String, String)>,
    floating_ips: Vec<(String, Option<String>)>,
    state_file: Option<PathBuf>,
    uuid: Option<String>,
    key: Option<String>,
    secret: Option<String>,
    zone: Option<String>,
    tls_ca_out: Option<PathBuf>,
}

const COMMANDS: [&str; 4] = ["cloudscale", "metadata", "exoscale", "exoscale-metadata"];

/// The command and its arguments, or `None` for `-h`/`--help` (anywhere a
/// flag may be). A usage error is one line.
fn parse(mut argv: impl Iterator<Item = String>) -> Result<Option<(String, Args)>, String> {
    let command = argv.next().ok_or("missing command")?;
    if command == "-h" || command == "--help" {
        return Ok(None);
    }
    if !COMMANDS.contains(&command.as_str()) {
        return Err(format!(
            "unknown command: {command} (commands: {})",
            COMMANDS.join(", ")
        ));
    }
    let mut args = Args::default();
    while let Some(flag) = argv.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match flag.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (flag, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| argv.next())
                .ok_or(format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--listen" => args.listen = Some(value()?),
            "--token" => args.tokens.push((value()?, true)),
            "--read-only-token" => args.tokens.push((value()?, false)),
            "--server" => {
                let v = value()?;
                let (uuid, name) = v.split_once('=').unwrap_or((&v, "server"));
                args.servers.push((uuid.to_string(), name.to_string()));
            }
            "--floating-ip" => {
                let v = value()?;
                let (ip, server) = match v.split_once('=') {
                    Some((ip, s)) => (ip, Some(s.to_string())),
                    None => (v.as_str(), None),
                };
                ip.parse::<std::net::IpAddr>()
                    .map_err(|_| format!("--floating-ip: not an address: {ip}"))?;
                args.floating_ips.push((ip.to_string(), server));
            }
            "--state-file" => args.state_file = Some(PathBuf::from(value()?)),
            "--uuid" => args.uuid = Some(value()?),
            "--key" => args.key = Some(value()?),
            "--secret" => args.secret = Some(value()?),
            "--zone" => args.zone = Some(value()?),
            "--tls-ca-out" => args.tls_ca_out = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(Some((command, args)))
}

fn main() -> ExitCode {
    let (command, args) = match parse(std::env::args().skip(1)) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("floaty-mock-cloud: {e} (see --help)");
            return ExitCode::from(2);
        }
    };
    match run(&command, args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floaty-mock-cloud: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: &str, args: Args) -> Result<(), String> {
    let listen = args.listen.as_deref().unwrap_or("127.0.0.1:0");
    let listener =
        TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    // Keep the mock alive (it stops when dropped) until we return.
    let _keep: Box<dyn std::any::Any> = match command {
        "cloudscale" => {
            let mut tokens = args.tokens.into_iter();
            let (token, _) = tokens.next().ok_or("cloudscale needs --token")?;
            let mock = match &args.tls_ca_out {
                Some(_) => Cloudscale::try_start_tls_on(listener, &token),
                None => Cloudscale::try_start_on(listener, &token),
            }
            .map_err(|e| e.to_string())?;
            write_ca(mock.ca_pem(), args.tls_ca_out.as_deref())?;
            for (t, write) in tokens {
                mock.add_token(&t, write);
            }
            for (uuid, name) in &args.servers {
                mock.add_server(uuid, name);
            }
            for (ip, server) in &args.floating_ips {
                mock.add_floating_ip(ip, server.as_deref());
            }
            announce(&mock.url())?;
            if let Some(path) = args.state_file {
                write_state(&mock, &path)?;
                let watched = mock.clone();
                std::thread::spawn(move || watch_state(watched, path));
            }
            Box::new(mock)
        }
        "metadata" => {
            let uuid = args.uuid.ok_or("metadata needs --uuid")?;
            let mock = Metadata::start_on(listener, &uuid).map_err(|e| e.to_string())?;
            announce(&mock.url())?;
            Box::new(mock)
        }
        "exoscale" => {
            let key = args.key.ok_or("exoscale needs --key")?;
            let secret = args.secret.ok_or("exoscale needs --secret")?;
            let mock = match &args.tls_ca_out {
                Some(_) => Exoscale::start_tls_on(listener, &key, &secret),
                None => Exoscale::start_on(listener, &key, &secret),
            }
            .map_err(|e| e.to_string())?;
            write_ca(mock.ca_pem(), args.tls_ca_out.as_deref())?;
            for (id, name) in &args.servers {
                mock.add_instance(id, name);
            }
            for (ip, holder) in &args.floating_ips {
                let holders: Vec<&str> = holder.as_deref().into_iter().collect();
                mock.add_elastic_ip(ip, &holders);
            }
            // The API lives under /v2: that is the endpoint to configure.
            announce(&mock.url())?;
            Box::new(mock)
        }
        "exoscale-metadata" => {
            let uuid = args.uuid.ok_or("exoscale-metadata needs --uuid")?;
            let mock = Metadata::exoscale_on(listener, Some(&uuid), args.zone.as_deref())
                .map_err(|e| e.to_string())?;
            announce(&mock.url())?;
            Box::new(mock)
        }
        other => return Err(format!("unknown command: {other}")),
    };
    wait_for_the_end();
    Ok(())
}

/// The HTTPS mock's CA to `path`, for the client's `ca-file`.
fn write_ca(pem: Option<String>, path: Option<&Path>) -> Result<(), String> {
    match (pem, path) {
        (Some(pem), Some(path)) => {
            std::fs::write(path, pem).map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        _ => Ok(()),
    }
}

fn announce(url: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{url}")
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))
}

fn wait_for_the_end() {
    use std::os::unix::fs::FileTypeExt;
    let watch_stdin = std::fs::metadata("/dev/stdin")
        .map(|m| m.file_type().is_fifo() || m.file_type().is_socket())
        .unwrap_or(false);
    if watch_stdin {
        let mut sink = [0u8; 4096];
        let mut stdin = std::io::stdin().lock();
        loop {
            match stdin.read(&mut sink) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
    loop {
        std::thread::park();
    }
}

fn watch_state(mock: Cloudscale, path: PathBuf) {
    let mut seen = mock.with_state(|s| s.generation());
    loop {
        if mock.wait_for(Duration::from_secs(3600), |s| s.generation() != seen) {
            seen = mock.with_state(|s| s.generation());
            if let Err(e) = write_state(&mock, &path) {
                eprintln!("floaty-mock-cloud: {e}");
            }
        }
    }
}

/// Write-then-rename, so a reader never sees a half-written file.
fn write_state(mock: &Cloudscale, path: &Path) -> Result<(), String> {
    let map: serde_json::Map<String, serde_json::Value> = mock.with_state(|s| {
        s.floating_ips()
            .map(|(ip, server)| (ip.to_string(), serde_json::json!(server)))
            .collect()
    });
    let text = serde_json::Value::Object(map).to_string() + "\n";
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> impl Iterator<Item = String> + '_ {
        s.split_whitespace().map(str::to_string)
    }

    #[test]
    fn parses_arguments() {
        let (cmd, a) = parse(argv(
            "cloudscale --listen 0.0.0.0:8080 --token t --server u1=db1 --server=u2 \
             --floating-ip 192.0.2.1=u1 --floating-ip 2001:db8::1 --state-file /tmp/s",
        ))
        .expect("parses")
        .expect("not --help");
        assert_eq!(cmd, "cloudscale");
        assert_eq!(a.listen.as_deref(), Some("0.0.0.0:8080"));
        assert_eq!(
            a.servers,
            vec![("u1".into(), "db1".into()), ("u2".into(), "server".into())]
        );
        assert_eq!(
            a.floating_ips,
            vec![
                ("192.0.2.1".into(), Some("u1".into())),
                ("2001:db8::1".into(), None)
            ]
        );
        let (cmd, a) = parse(argv(
            "exoscale --key EXOk --secret=s --server u1=lb-a --floating-ip 192.0.2.1=u1",
        ))
        .expect("parses")
        .expect("not --help");
        assert_eq!(cmd, "exoscale");
        assert_eq!(
            (a.key.as_deref(), a.secret.as_deref()),
            (Some("EXOk"), Some("s"))
        );
        assert_eq!(
            a.floating_ips,
            vec![("192.0.2.1".into(), Some("u1".into()))]
        );
        assert!(parse(argv("cloudscale --token")).is_err());
        assert!(parse(argv("cloudscale --bogus 1")).is_err());
        assert!(parse(argv("cloudscale --floating-ip nope")).is_err());
        assert!(parse(argv("frobnicate --token t")).is_err());
        assert!(parse(argv("")).is_err());
        for help in ["--help", "-h", "cloudscale --help", "exoscale --key k -h"] {
            assert!(parse(argv(help)).expect(help).is_none(), "{help}");
        }
    }
}
