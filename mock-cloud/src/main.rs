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

use mock_cloud::{Cloudscale, DigitalOcean, Exoscale, Hetzner, Metadata};

const USAGE: &str = "\
usage:
  floaty-mock-cloud cloudscale [--listen ADDR:PORT] --token TOKEN [--read-only-token TOKEN]...
                               [--server UUID[=NAME]]... [--floating-ip IP[=UUID]]...
                               [--state-file PATH] [--tls-ca-out PATH]
  floaty-mock-cloud metadata [--listen ADDR:PORT] --uuid UUID
  floaty-mock-cloud exoscale [--listen ADDR:PORT] --key KEY --secret SECRET
                             [--server ID[=NAME]]... [--floating-ip IP[=ID]]... [--tls-ca-out PATH]
  floaty-mock-cloud exoscale-metadata [--listen ADDR:PORT] --uuid INSTANCE-ID [--zone ZONE]
  floaty-mock-cloud hetzner [--listen ADDR:PORT] --token TOKEN [--read-only-token TOKEN]...
                            [--server ID[=NAME]]... [--floating-ip IP[=SERVER-ID]]... [--tls-ca-out PATH]
  floaty-mock-cloud hetzner-metadata [--listen ADDR:PORT] --id SERVER-ID
  floaty-mock-cloud digitalocean [--listen ADDR:PORT] --token TOKEN [--read-only-token TOKEN]...
                                 [--droplet ID[=NAME]]... [--reserved-ip IP[=DROPLET-ID]]...
                                 [--tls-ca-out PATH]
  floaty-mock-cloud digitalocean-metadata [--listen ADDR:PORT] --id DROPLET-ID

--listen defaults to 127.0.0.1:0 (a free port). The first line of stdout is the base URL.
--tls-ca-out serves HTTPS with a certificate from a test CA made at start-up and writes that
CA's PEM to PATH (floaty's ca-file), before the URL is printed.
--state-file is rewritten atomically after each change: {\"IP\": \"SERVER-UUID\" or null, ...}.
Test controls: GET /_mock/state, PUT /_mock/fault, PUT /_mock/floating-ips/IP (see the crate docs);
exoscale answers GET /_mock/state only. For exoscale, --server is an instance and
--floating-ip an Elastic IP (=ID: attached to that instance).
hetzner and digitalocean take numeric ids; a hetzner --floating-ip is an IPv4 address or an
IPv6 network (2001:db8:1::/64). Both answer GET /_mock/state ({\"IP\": ID or null, ...}) and
PUT /_mock/fault; hetzner also PUT /_mock/floating_ips/IP {\"server\": ID|null}, digitalocean
PUT /_mock/reserved_ips/IP {\"droplet\": ID|null}. Their URL is the API base (.../v1, .../v2).";

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
    droplets: Vec<(String, String)>,
    reserved_ips: Vec<(String, Option<String>)>,
    id: Option<u64>,
}

const COMMANDS: [&str; 8] = [
    "cloudscale",
    "metadata",
    "exoscale",
    "exoscale-metadata",
    "hetzner",
    "hetzner-metadata",
    "digitalocean",
    "digitalocean-metadata",
];

/// Hetzner and DigitalOcean name servers and droplets by integer.
fn numeric(command: &str) -> bool {
    matches!(command, "hetzner" | "digitalocean")
}

/// A `--flag ID[=TEXT]` value, with ID checked when `numeric`.
fn id_and(flag: &str, v: &str, numeric: bool, default: &str) -> Result<(String, String), String> {
    let (id, rest) = v.split_once('=').unwrap_or((v, default));
    if numeric && id.parse::<u64>().is_err() {
        return Err(format!("{flag}: not an id: {id}"));
    }
    Ok((id.to_string(), rest.to_string()))
}

/// A `--floating-ip`/`--reserved-ip` value, `IP[=HOLDER]`: the address
/// checked (a Hetzner one may be an IPv6 network), and the holder when
/// ids are numeric.
fn address_and(flag: &str, v: &str, command: &str) -> Result<(String, Option<String>), String> {
    let (ip, holder) = match v.split_once('=') {
        Some((ip, h)) => (ip, Some(h.to_string())),
        None => (v, None),
    };
    let ok = if command == "hetzner" {
        Hetzner::floating_ip_key(ip).is_some()
    } else {
        ip.parse::<std::net::IpAddr>().is_ok()
    };
    if !ok {
        return Err(format!("{flag}: not an address: {ip}"));
    }
    if let Some(h) = holder.as_deref().filter(|_| numeric(command)) {
        if h.parse::<u64>().is_err() {
            return Err(format!("{flag}: not an id: {h}"));
        }
    }
    Ok((ip.to_string(), holder))
}

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
                let server = id_and(&flag, &value()?, numeric(&command), "server")?;
                args.servers.push(server);
            }
            "--droplet" => {
                let droplet = id_and(&flag, &value()?, true, "droplet")?;
                args.droplets.push(droplet);
            }
            "--floating-ip" => {
                let ip = address_and(&flag, &value()?, &command)?;
                args.floating_ips.push(ip);
            }
            "--reserved-ip" => {
                let ip = address_and(&flag, &value()?, &command)?;
                args.reserved_ips.push(ip);
            }
            "--id" => {
                let v = value()?;
                let id = v.parse().map_err(|_| format!("--id: not an id: {v}"))?;
                args.id = Some(id);
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
        "hetzner" => Box::new(run_hetzner(listener, args)?),
        "hetzner-metadata" => {
            let id = args.id.ok_or("hetzner-metadata needs --id")?;
            let mock = Metadata::hetzner_on(listener, id).map_err(|e| e.to_string())?;
            announce(&mock.url())?;
            Box::new(mock)
        }
        "digitalocean" => Box::new(run_digitalocean(listener, args)?),
        "digitalocean-metadata" => {
            let id = args.id.ok_or("digitalocean-metadata needs --id")?;
            let mock = Metadata::digitalocean_on(listener, id).map_err(|e| e.to_string())?;
            announce(&mock.url())?;
            Box::new(mock)
        }
        other => return Err(format!("unknown command: {other}")),
    };
    wait_for_the_end();
    Ok(())
}

/// An id `parse` has already checked.
fn id(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("not an id: {text}"))
}

fn holder(text: Option<&str>) -> Result<Option<u64>, String> {
    text.map(id).transpose()
}

fn run_hetzner(listener: TcpListener, args: Args) -> Result<Hetzner, String> {
    let mut tokens = args.tokens.into_iter();
    let (token, _) = tokens.next().ok_or("hetzner needs --token")?;
    let mock = match &args.tls_ca_out {
        Some(_) => Hetzner::start_tls_on(listener, &token),
        None => Hetzner::start_on(listener, &token),
    }
    .map_err(|e| e.to_string())?;
    write_ca(mock.ca_pem(), args.tls_ca_out.as_deref())?;
    for (t, write) in tokens {
        mock.add_token(&t, write);
    }
    for (server, name) in &args.servers {
        mock.add_server(id(server)?, name);
    }
    for (ip, server) in &args.floating_ips {
        mock.add_floating_ip(ip, holder(server.as_deref())?);
    }
    announce(&mock.url())?;
    Ok(mock)
}

fn run_digitalocean(listener: TcpListener, args: Args) -> Result<DigitalOcean, String> {
    let mut tokens = args.tokens.into_iter();
    let (token, _) = tokens.next().ok_or("digitalocean needs --token")?;
    let mock = match &args.tls_ca_out {
        Some(_) => DigitalOcean::start_tls_on(listener, &token),
        None => DigitalOcean::start_on(listener, &token),
    }
    .map_err(|e| e.to_string())?;
    write_ca(mock.ca_pem(), args.tls_ca_out.as_deref())?;
    for (t, write) in tokens {
        mock.add_token(&t, write);
    }
    for (droplet, name) in &args.droplets {
        mock.add_droplet(id(droplet)?, name);
    }
    for (ip, droplet) in &args.reserved_ips {
        mock.add_reserved_ip(ip, holder(droplet.as_deref())?);
    }
    announce(&mock.url())?;
    Ok(mock)
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
        let (cmd, a) = parse(argv(
            "hetzner --token t --read-only-token ro --server 3000000001=lb-a \
             --floating-ip 203.0.113.1=3000000001 --floating-ip 2001:db8:1::/64",
        ))
        .expect("parses")
        .expect("not --help");
        assert_eq!(cmd, "hetzner");
        assert_eq!(a.tokens, vec![("t".into(), true), ("ro".into(), false)]);
        assert_eq!(a.servers, vec![("3000000001".into(), "lb-a".into())]);
        assert_eq!(
            a.floating_ips,
            vec![
                ("203.0.113.1".into(), Some("3000000001".into())),
                ("2001:db8:1::/64".into(), None)
            ]
        );
        let (cmd, a) = parse(argv(
            "digitalocean --token t --droplet 3000000001 --reserved-ip 203.0.113.2=3000000001 \
             --reserved-ip 2001:db8::2",
        ))
        .expect("parses")
        .expect("not --help");
        assert_eq!(cmd, "digitalocean");
        assert_eq!(a.droplets, vec![("3000000001".into(), "droplet".into())]);
        assert_eq!(
            a.reserved_ips,
            vec![
                ("203.0.113.2".into(), Some("3000000001".into())),
                ("2001:db8::2".into(), None)
            ]
        );
        for (line, id) in [
            ("hetzner-metadata --id 42", 42),
            ("digitalocean-metadata --id=7", 7),
        ] {
            let (_, a) = parse(argv(line)).expect(line).expect(line);
            assert_eq!(a.id, Some(id), "{line}");
        }
        for bad in [
            "hetzner --token t --server lb-a",
            "hetzner --token t --floating-ip 203.0.113.1=lb-a",
            "hetzner --token t --floating-ip 203.0.113.0/24",
            "digitalocean --token t --droplet x",
            "digitalocean --token t --reserved-ip 2001:db8::/64",
            "digitalocean --token t --reserved-ip 203.0.113.2=uuid",
            "hetzner-metadata --id -1",
        ] {
            assert!(parse(argv(bad)).is_err(), "{bad}");
        }
        // cloudscale's servers stay UUIDs, and a network is no floating IP there.
        assert!(parse(argv(
            "cloudscale --token t --server u1 --floating-ip 192.0.2.1=u1"
        ))
        .is_ok());
        assert!(parse(argv("cloudscale --floating-ip 2001:db8::/64")).is_err());
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
