//! `floaty-mock-cloud`: the mocks as a process, for behaviour tests, tests
//! inside network namespaces and the demo lab.
//!
//! It prints its base URL as the first line of stdout (`aws` with an
//! `--instance` also the URL of that instance's IMDS as the second), then
//! serves until it
//! is killed (SIGTERM's default action is fine: the state file is always
//! complete) or, when stdin is a pipe or socket, until stdin closes, so a
//! test that dies without cleaning up does not leave it running. A terminal
//! or `/dev/null` on stdin (background jobs in scripts) is not watched.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use mock_cloud::{Cloudscale, DigitalOcean, Ec2, Exoscale, Hetzner, Imds, Metadata};

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
  floaty-mock-cloud aws [--listen ADDR:PORT] --access-key-id KEY --secret SECRET [--region REGION]
                        [--instance ID=ENI=MAC=PRIVATE-IP]... [--elastic-ip PUBLIC=ALLOCATION[=INSTANCE]]...
                        [--secondary-ip IP[=ENI]]... [--imds-listen ADDR:PORT]
                        [--role NAME=KEY=SECRET=TOKEN] [--tls-ca-out PATH]

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
PUT /_mock/reserved_ips/IP {\"droplet\": ID|null}. Their URL is the API base (.../v1, .../v2).
aws serves the EC2 Query API (region us-east-1 unless --region); its URL ends with /. With an
--instance, the second line of stdout is the URL of an IMDSv2 for the first instance (on
--imds-listen, default 127.0.0.1:0), serving --role's credentials (valid six hours) if given.
aws answers GET /_mock/state ({\"elastic_ips\": {IP: INSTANCE|null}, \"secondary_ips\": {IP: ENI|null}}),
PUT /_mock/fault, PUT /_mock/throttle {\"n\": N}, PUT /_mock/elastic-ips/IP {\"instance\": ID|null}
and PUT /_mock/secondary-ips/IP {\"eni\": ID|null}.";

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
    access_key_id: Option<String>,
    region: Option<String>,
    /// (instance, ENI, MAC, primary private IP)
    instances: Vec<[String; 4]>,
    /// (public IP, allocation id, instance)
    elastic_ips: Vec<(String, String, Option<String>)>,
    secondary_ips: Vec<(String, Option<String>)>,
    imds_listen: Option<String>,
    /// (role name, key, secret, session token)
    role: Option<[String; 4]>,
}

const COMMANDS: [&str; 9] = [
    "cloudscale",
    "metadata",
    "exoscale",
    "exoscale-metadata",
    "hetzner",
    "hetzner-metadata",
    "digitalocean",
    "digitalocean-metadata",
    "aws",
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

/// `--instance ID=ENI=MAC=PRIVATE-IP`.
fn instance(v: &str) -> Result<[String; 4], String> {
    let parts: Vec<&str> = v.split('=').collect();
    let [id, eni, mac, ip] = parts.as_slice() else {
        return Err(format!("--instance: not ID=ENI=MAC=PRIVATE-IP: {v}"));
    };
    if ip.parse::<std::net::Ipv4Addr>().is_err() {
        return Err(format!("--instance: not an address: {ip}"));
    }
    Ok([id, eni, mac, ip].map(|s| s.to_string()))
}

/// `--elastic-ip PUBLIC=ALLOCATION[=INSTANCE]`.
fn elastic_ip(v: &str) -> Result<(String, String, Option<String>), String> {
    let parts: Vec<&str> = v.split('=').collect();
    let (ip, allocation, instance) = match parts.as_slice() {
        [ip, allocation] => (ip, allocation, None),
        [ip, allocation, instance] => (ip, allocation, Some(instance.to_string())),
        _ => {
            return Err(format!(
                "--elastic-ip: not PUBLIC=ALLOCATION[=INSTANCE]: {v}"
            ))
        }
    };
    if ip.parse::<std::net::Ipv4Addr>().is_err() {
        return Err(format!("--elastic-ip: not an address: {ip}"));
    }
    Ok((ip.to_string(), allocation.to_string(), instance))
}

/// `--role NAME=KEY=SECRET=TOKEN`; the token may hold `=` (base64).
fn role(v: &str) -> Result<[String; 4], String> {
    let parts: Vec<&str> = v.splitn(4, '=').collect();
    match parts.as_slice() {
        [name, key, secret, token] if [name, key, secret, token].iter().all(|p| !p.is_empty()) => {
            Ok([name, key, secret, token].map(|s| s.to_string()))
        }
        _ => Err(format!("--role: not NAME=KEY=SECRET=TOKEN: {v}")),
    }
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
            "--access-key-id" => args.access_key_id = Some(value()?),
            "--region" => args.region = Some(value()?),
            "--instance" => args.instances.push(instance(&value()?)?),
            "--elastic-ip" => args.elastic_ips.push(elastic_ip(&value()?)?),
            "--secondary-ip" => {
                let v = value()?;
                let (ip, eni) = match v.split_once('=') {
                    Some((ip, eni)) => (ip.to_string(), Some(eni.to_string())),
                    None => (v.clone(), None),
                };
                if ip.parse::<std::net::Ipv4Addr>().is_err() {
                    return Err(format!("--secondary-ip: not an address: {ip}"));
                }
                args.secondary_ips.push((ip, eni));
            }
            "--imds-listen" => args.imds_listen = Some(value()?),
            "--role" => args.role = Some(role(&value()?)?),
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
        "aws" => Box::new(run_aws(listener, args)?),
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

/// The EC2 mock, and the IMDS of the first instance when there is one:
/// their URLs are the first two lines of stdout.
fn run_aws(listener: TcpListener, args: Args) -> Result<(Ec2, Option<Imds>), String> {
    let key = args.access_key_id.ok_or("aws needs --access-key-id")?;
    let secret = args.secret.ok_or("aws needs --secret")?;
    let mock = match &args.tls_ca_out {
        Some(_) => Ec2::start_tls_on(listener, &key, &secret),
        None => Ec2::start_on(listener, &key, &secret),
    }
    .map_err(|e| e.to_string())?;
    write_ca(mock.ca_pem(), args.tls_ca_out.as_deref())?;
    if let Some(region) = &args.region {
        mock.set_region(region);
    }
    for [id, eni, mac, ip] in &args.instances {
        mock.add_instance(id, eni, mac, ip);
    }
    let known = |instance: &str| args.instances.iter().any(|[id, ..]| id == instance);
    for (ip, allocation, instance) in &args.elastic_ips {
        if let Some(i) = instance.as_deref().filter(|i| !known(i)) {
            return Err(format!("--elastic-ip {ip}: no --instance {i}"));
        }
        mock.add_elastic_ip(ip, allocation, instance.as_deref());
    }
    for (ip, eni) in &args.secondary_ips {
        if let Some(e) = eni.as_deref() {
            if !args.instances.iter().any(|[_, id, ..]| id == e) {
                return Err(format!("--secondary-ip {ip}: no --instance with ENI {e}"));
            }
        }
        mock.add_secondary_ip(ip, eni.as_deref());
    }
    let imds = match args.instances.first() {
        Some([id, ..]) => {
            let listen = args.imds_listen.as_deref().unwrap_or("127.0.0.1:0");
            let listener =
                TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            let imds = mock.imds_on(listener, id).map_err(|e| e.to_string())?;
            if let Some([name, key, secret, token]) = &args.role {
                imds.set_role(name, key, secret, token, Duration::from_secs(6 * 3600));
            }
            Some(imds)
        }
        None => None,
    };
    announce(&mock.url())?;
    if let Some(imds) = &imds {
        announce(&imds.url())?;
    }
    Ok((mock, imds))
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
        let (cmd, a) = parse(argv(
            "aws --access-key-id AKID --secret s --region eu-central-1 \
             --instance i-1=eni-1=02:00:00:00:00:01=10.0.0.11 --elastic-ip 203.0.113.5=eipalloc-1=i-1 \
             --elastic-ip 203.0.113.6=eipalloc-2 --secondary-ip 10.0.0.100=eni-1 --secondary-ip 10.0.0.101 \
             --role floaty=ASIA1=sec=tok==",
        ))
        .expect("parses")
        .expect("not --help");
        assert_eq!(cmd, "aws");
        assert_eq!(a.access_key_id.as_deref(), Some("AKID"));
        assert_eq!(a.region.as_deref(), Some("eu-central-1"));
        assert_eq!(
            a.instances,
            vec![["i-1", "eni-1", "02:00:00:00:00:01", "10.0.0.11"].map(String::from)]
        );
        assert_eq!(
            a.elastic_ips,
            vec![
                (
                    "203.0.113.5".into(),
                    "eipalloc-1".into(),
                    Some("i-1".into())
                ),
                ("203.0.113.6".into(), "eipalloc-2".into(), None)
            ]
        );
        assert_eq!(
            a.secondary_ips,
            vec![
                ("10.0.0.100".into(), Some("eni-1".into())),
                ("10.0.0.101".into(), None)
            ]
        );
        assert_eq!(
            a.role,
            Some(["floaty", "ASIA1", "sec", "tok=="].map(String::from))
        );
        for bad in [
            "aws --instance i-1=eni-1=10.0.0.1",
            "aws --instance i-1=eni-1=02:00:00:00:00:01=nope",
            "aws --elastic-ip 203.0.113.5",
            "aws --elastic-ip nope=eipalloc-1",
            "aws --secondary-ip 10.0.0.300",
            "aws --role floaty=ASIA1=sec",
        ] {
            assert!(parse(argv(bad)).is_err(), "{bad}");
        }
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
