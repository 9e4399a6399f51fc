//! The split-brain guard: before a refresher tries, and again right before
//! every write request, it checks that this node really holds the
//! instance's virtual IPs.
//!
//! Why: keepalived runs notify programs without waiting for them, so a
//! MASTER call can arrive late or out of order, after this node has become
//! BACKUP again. Believing it would point the address at a node that is not
//! MASTER, and the real MASTER's refresher would point it back: the address
//! flaps between the nodes. keepalived adds an instance's
//! `virtual_ipaddress` entries to a local interface before it reports
//! MASTER and removes them before it reports BACKUP or FAULT, so "are the
//! VIPs here?" is the ground truth a late call can be checked against.
//!
//! How: a `RTM_GETADDR` dump over a `NETLINK_ROUTE` socket (what `ip addr`
//! does, without running it), parsed here so the parser can be tested
//! without a kernel.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use floaty_providers::WriteGate;

use crate::address::{comma_list, host_addresses};
use crate::config::{Config, ConfigError, VerifyMaster};
use crate::keepalived::KeepalivedConfig;

/// How often a refresher whose node lacks the VIPs looks again: failover
/// after keepalived adds them (without a further event reaching us) takes
/// at most this long plus one write.
pub const POLL: Duration = Duration::from_secs(1);

/// Whether refreshers of `instance` must check for the VIPs first, and
/// which ones; `Ok(None)` when they need not. Called before any lock, so
/// `verify-master: always` on an instance without VIPs is a config error
/// (exit 2) and not a refresher that can never write.
pub fn guard_for(
    cfg: &Config,
    kconf: Option<&KeepalivedConfig>,
    instance: &str,
) -> Result<Option<Guard>, ConfigError> {
    let vips: Vec<IpAddr> = kconf
        .and_then(|k| k.instance(instance))
        .map(|i| host_addresses(&i.vips))
        .unwrap_or_default();
    match (cfg.verify_master, vips.is_empty()) {
        (VerifyMaster::Off, _) | (VerifyMaster::Auto, true) => Ok(None),
        (VerifyMaster::Always, true) => Err(ConfigError::Invalid {
            path: cfg.path.clone(),
            line: None,
            column: None,
            key: Some("verify-master".into()),
            message: format!(
                "`always`, but vrrp_instance `{instance}` has no virtual_ipaddress in {} to check for; use `auto` or `off`",
                cfg.keepalived_config.display()
            ),
        }),
        (VerifyMaster::Auto | VerifyMaster::Always, false) => Ok(Some(Guard::new(instance, vips))),
    }
}

/// How long a running refresher may find its VIPs missing before that is
/// an ERROR. Why a grace period: every normal demotion removes the VIPs a
/// moment before the BACKUP call stops the refresher (milliseconds in
/// notify mode, one FIFO line in the daemon), so a first "not here" is
/// routine and logged at info. A refresher still running without its VIPs
/// this long after is one no BACKUP call came for, a late or out-of-order
/// MASTER call, and that needs a human. 10 s is far more than any stop
/// takes (keepalived kills a STOP call after 1 s; the lock handoff waits at
/// most `lock-timeout`, 10 s by default, and is logged itself) and short
/// enough that the operator learns of a stale refresher within one look at
/// the log.
pub const GRACE: Duration = Duration::from_secs(10);

/// Where a guard stands, to log each change once per instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Unknown,
    Holding,
    /// Missing since then; `escalated` once the ERROR was logged.
    Missing {
        since: Instant,
        escalated: bool,
    },
    /// The addresses could not be listed (logged once).
    Unlistable,
}

/// What a check should log, decided from the state before it and what it
/// found; separate from the logging so it can be tested without a clock.
#[derive(Debug, PartialEq, Eq)]
enum Note {
    Nothing,
    /// The first "not here": routine while a refresher is being stopped.
    Missing,
    /// Still missing after [`GRACE`].
    StillMissing,
    Back,
}

fn step(before: Seen, held: bool, now: Instant) -> (Seen, Note) {
    match (before, held) {
        (Seen::Missing { .. } | Seen::Unlistable, true) => (Seen::Holding, Note::Back),
        (_, true) => (Seen::Holding, Note::Nothing),
        (Seen::Unknown | Seen::Holding | Seen::Unlistable, false) => (
            Seen::Missing {
                since: now,
                escalated: false,
            },
            Note::Missing,
        ),
        (
            Seen::Missing {
                since,
                escalated: false,
            },
            false,
        ) if now.saturating_duration_since(since) >= GRACE => (
            Seen::Missing {
                since,
                escalated: true,
            },
            Note::StillMissing,
        ),
        (missing @ Seen::Missing { .. }, false) => (missing, Note::Nothing),
    }
}

/// One instance's guard, shared by its address tasks so that a missing VIP
/// is logged once per instance and transition, not per address and tick.
#[derive(Debug)]
pub struct Guard {
    instance: String,
    vips: Vec<IpAddr>,
    seen: Mutex<Seen>,
    /// Under `--dry-run`: look and say what was found, but never hold
    /// anything back (nothing is written anyway, and a dry run that waits
    /// for VIPs the machine trying it out does not have shows nothing).
    advisory: bool,
}

impl Guard {
    pub fn new(instance: &str, vips: Vec<IpAddr>) -> Guard {
        Guard {
            instance: instance.to_string(),
            vips,
            seen: Mutex::new(Seen::Unknown),
            advisory: false,
        }
    }

    /// The same check for a dry run: reports, never blocks.
    pub fn advisory(&self) -> Guard {
        Guard {
            advisory: true,
            ..Guard::new(&self.instance, self.vips.clone())
        }
    }

    /// Whether every VIP of the instance is on a local interface now (an
    /// advisory guard: always yes, after saying what it found).
    /// When the addresses cannot be listed: no (never write blind).
    pub fn holds(&self) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let held = match local_addresses() {
            Ok(local) => self.vips.iter().all(|v| local.contains(v)),
            Err(e) => {
                if *seen != Seen::Unlistable {
                    *seen = Seen::Unlistable;
                    if self.advisory {
                        tracing::info!(instance = %self.instance,
                            "dry-run: cannot list this host's addresses ({e}); a real run would not write");
                    } else {
                        tracing::error!(instance = %self.instance,
                            "not writing: cannot list this host's addresses to check that it holds the virtual IPs ({e}); set verify-master: off if this host cannot");
                    }
                }
                return self.advisory;
            }
        };
        if self.advisory {
            if *seen == Seen::Unknown && !held {
                tracing::info!(instance = %self.instance, vips = %comma_list(&self.vips),
                    "dry-run: this node does not hold the VIPs {}; a real run would wait for them", comma_list(&self.vips));
            }
            *seen = if held {
                Seen::Holding
            } else {
                Seen::Missing {
                    since: Instant::now(),
                    escalated: true,
                }
            };
            return true;
        }
        let (next, note) = step(*seen, held, Instant::now());
        *seen = next;
        drop(seen);
        match note {
            Note::Nothing => {}
            Note::Back => tracing::info!(instance = %self.instance,
                "now holds its virtual IPs: writing again"),
            Note::Missing => {
                tracing::info!(instance = %self.instance, vips = %comma_list(&self.vips),
                "this node does not hold the virtual IPs (demoted?); not writing, checking every {}s", POLL.as_secs())
            }
            Note::StillMissing => {
                tracing::error!(instance = %self.instance, vips = %comma_list(&self.vips),
                "not writing: this node still does not hold the instance's virtual IPs after {}s, so it is not MASTER, yet its refresher was not stopped (a late or out-of-order MASTER call?); checking every {}s",
                GRACE.as_secs(), POLL.as_secs())
            }
        }
        held
    }

    /// Returns at once when the VIPs are here (false), else once they
    /// appear (true: the caller waited, the address is likely elsewhere).
    pub async fn wait_until_held(&self) -> bool {
        if self.holds() {
            return false;
        }
        loop {
            tokio::time::sleep(POLL).await;
            if self.holds() {
                return true;
            }
        }
    }
}

/// The guard asked again inside the provider, right before each write.
impl WriteGate for Guard {
    fn may_write(&self) -> bool {
        self.holds()
    }
}

// ---------------------------------------------------------------------------
// netlink

const NLMSG_HDRLEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;
const RTATTR_HDRLEN: usize = 4;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;

/// Every address on this host's interfaces (in this network namespace).
pub fn local_addresses() -> io::Result<Vec<IpAddr>> {
    // SAFETY: plain socket(2); the descriptor is owned right away.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    let seq: u32 = 1;
    let request = dump_request(seq);
    // SAFETY: sockaddr_nl is plain data; all-zero is a valid value (kernel
    // as the peer) and we set the family.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: the buffer and the address outlive the call; lengths match.
    let sent = unsafe {
        libc::sendto(
            raw,
            request.as_ptr().cast(),
            request.len(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // SAFETY: recv writes at most buf.len() bytes into buf.
        let n = unsafe { libc::recv(raw, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let n = usize::try_from(n).unwrap_or(0);
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "netlink closed",
            ));
        }
        match parse_dump(&buf[..n], seq, &mut out) {
            Ok(true) => return Ok(out),
            Ok(false) => {}
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }
}

/// `nlmsghdr` + `ifaddrmsg` asking for every address of every family.
fn dump_request(seq: u32) -> Vec<u8> {
    let len = (NLMSG_HDRLEN + IFADDRMSG_LEN) as u32;
    let mut m = Vec::with_capacity(len as usize);
    m.extend_from_slice(&len.to_ne_bytes());
    m.extend_from_slice(&RTM_GETADDR.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[0u8; IFADDRMSG_LEN]); // AF_UNSPEC: all families
    m
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parses one datagram of a dump answer into `out`. Ok(true) once the
/// dump is complete (`NLMSG_DONE`). Messages of other sequence numbers are
/// skipped; anything malformed is an error, never a panic.
fn parse_dump(buf: &[u8], seq: u32, out: &mut Vec<IpAddr>) -> Result<bool, String> {
    let mut at = 0;
    while at + NLMSG_HDRLEN <= buf.len() {
        let len = u32_at(buf, at).ok_or("short header")? as usize;
        let kind = u16_at(buf, at + 4).ok_or("short header")?;
        let msg_seq = u32_at(buf, at + 8).ok_or("short header")?;
        if len < NLMSG_HDRLEN || at + len > buf.len() {
            return Err(format!("netlink message length {len} out of bounds"));
        }
        let body = &buf[at + NLMSG_HDRLEN..at + len];
        if msg_seq == seq {
            match kind {
                NLMSG_DONE => return Ok(true),
                NLMSG_ERROR => {
                    let code = body
                        .get(..4)
                        .map_or(0, |b| i32::from_ne_bytes(b.try_into().unwrap_or([0; 4])));
                    return Err(format!(
                        "netlink error: {}",
                        io::Error::from_raw_os_error(code.saturating_neg())
                    ));
                }
                RTM_NEWADDR => {
                    if let Some(a) = parse_ifaddr(body)? {
                        out.push(a);
                    }
                }
                _ => {}
            }
        }
        at += align4(len);
    }
    Ok(false)
}

/// One `RTM_NEWADDR` body: `ifaddrmsg` then attributes. `IFA_LOCAL` is the
/// address itself; `IFA_ADDRESS` is the peer on point-to-point links, so
/// it counts only when there is no `IFA_LOCAL` (always so for IPv6).
fn parse_ifaddr(body: &[u8]) -> Result<Option<IpAddr>, String> {
    let family = i32::from(*body.first().ok_or("short ifaddrmsg")?);
    if body.len() < IFADDRMSG_LEN {
        return Err("short ifaddrmsg".into());
    }
    let mut at = IFADDRMSG_LEN;
    let (mut local, mut address) = (None, None);
    while at + RTATTR_HDRLEN <= body.len() {
        let len = usize::from(u16_at(body, at).ok_or("short attribute")?);
        let kind = u16_at(body, at + 2).ok_or("short attribute")?;
        if len < RTATTR_HDRLEN || at + len > body.len() {
            return Err(format!("address attribute length {len} out of bounds"));
        }
        let data = &body[at + RTATTR_HDRLEN..at + len];
        let ip = match (family, data.len()) {
            (libc::AF_INET, 4) => Some(IpAddr::from(Ipv4Addr::new(
                data[0], data[1], data[2], data[3],
            ))),
            (libc::AF_INET6, 16) => {
                let mut b = [0u8; 16];
                b.copy_from_slice(data);
                Some(IpAddr::from(Ipv6Addr::from(b)))
            }
            _ => None,
        };
        match kind {
            IFA_LOCAL => local = local.or(ip),
            IFA_ADDRESS => address = address.or(ip),
            _ => {}
        }
        at += align4(len);
    }
    Ok(local.or(address))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, data: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((RTATTR_HDRLEN + data.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(data);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    fn msg(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&2u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(body);
        m
    }

    fn newaddr(family: u8, attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut body = vec![family, 24, 0, 0, 2, 0, 0, 0];
        for a in attrs {
            body.extend_from_slice(a);
        }
        msg(RTM_NEWADDR, 1, &body)
    }

    #[test]
    fn parses_v4_local_over_peer_and_v6_address() {
        let v4 = newaddr(
            libc::AF_INET as u8,
            &[
                attr(IFA_ADDRESS, &[10, 0, 0, 2]), // the peer on a ptp link
                attr(IFA_LOCAL, &[10, 0, 0, 1]),
                attr(3, b"eth0\0"), // IFA_LABEL, unaligned length
            ],
        );
        let v6_addr: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let v6 = newaddr(
            libc::AF_INET6 as u8,
            &[attr(IFA_ADDRESS, &v6_addr.octets())],
        );
        let other = msg(RTM_NEWADDR, 99, &[0; 8]); // another request's answer
        let mut buf = [v4, other, v6].concat();
        let mut out = Vec::new();
        assert_eq!(parse_dump(&buf, 1, &mut out), Ok(false));
        assert_eq!(
            out,
            vec![
                IpAddr::from(Ipv4Addr::new(10, 0, 0, 1)),
                IpAddr::from(v6_addr)
            ]
        );
        buf = msg(NLMSG_DONE, 1, &[0; 4]);
        assert_eq!(parse_dump(&buf, 1, &mut out), Ok(true));
    }

    #[test]
    fn errors_and_garbage_never_panic() {
        let mut out = Vec::new();
        let err = msg(NLMSG_ERROR, 1, &(-libc::EPERM).to_ne_bytes());
        let e = parse_dump(&err, 1, &mut out).unwrap_err();
        assert!(e.contains("netlink error"), "{e}");
        // Lengths that point past the end, at every cut of a valid message.
        let good = newaddr(libc::AF_INET as u8, &[attr(IFA_LOCAL, &[192, 0, 2, 1])]);
        for cut in 0..good.len() {
            let _ = parse_dump(&good[..cut], 1, &mut out);
        }
        let mut bad = good.clone();
        bad[0] = 0xff;
        assert!(parse_dump(&bad, 1, &mut out).is_err());
        let mut bad_attr = good.clone();
        bad_attr[NLMSG_HDRLEN + IFADDRMSG_LEN] = 0xff;
        assert!(parse_dump(&bad_attr, 1, &mut out).is_err());
        // A wrong-sized address is ignored, not misread.
        let odd = newaddr(libc::AF_INET as u8, &[attr(IFA_LOCAL, &[1, 2, 3])]);
        let mut out = Vec::new();
        assert_eq!(parse_dump(&odd, 1, &mut out), Ok(false));
        assert!(out.is_empty());
        let mut state = 0x1234_5678u32;
        for _ in 0..2000 {
            let len = (state % 64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (state >> 16) as u8
                })
                .collect();
            let _ = parse_dump(&bytes, 1, &mut Vec::new());
        }
    }

    #[test]
    fn the_kernel_lists_loopback() {
        let local = local_addresses().expect("netlink dump");
        assert!(
            local.contains(&IpAddr::from(Ipv4Addr::LOCALHOST)),
            "{local:?}"
        );
    }

    #[test]
    fn the_first_miss_is_routine_and_only_a_lasting_one_an_error() {
        let t0 = Instant::now();
        let (s, n) = step(Seen::Unknown, true, t0);
        assert_eq!((s, n), (Seen::Holding, Note::Nothing));
        // Demoted: info, once.
        let (s, n) = step(s, false, t0);
        assert_eq!(n, Note::Missing);
        let (s, n) = step(s, false, t0 + GRACE / 2);
        assert_eq!(n, Note::Nothing);
        // Still missing after the grace period: the one error.
        let (s, n) = step(s, false, t0 + GRACE);
        assert_eq!(n, Note::StillMissing);
        let (s, n) = step(s, false, t0 + GRACE * 3);
        assert_eq!(n, Note::Nothing);
        // Back, then gone again: the grace period starts afresh.
        let (s, n) = step(s, true, t0 + GRACE * 3);
        assert_eq!(n, Note::Back);
        let t1 = t0 + GRACE * 4;
        let (s, n) = step(s, false, t1);
        assert_eq!(n, Note::Missing);
        assert_eq!(step(s, false, t1 + GRACE / 2).1, Note::Nothing);
        // A stale MASTER call (never held): info first as well.
        assert_eq!(step(Seen::Unknown, false, t0).1, Note::Missing);
    }

    #[test]
    fn an_advisory_guard_never_blocks() {
        let absent: IpAddr = "192.0.2.254".parse().unwrap();
        let g = Guard::new("VI_1", vec![absent]);
        assert!(!g.holds());
        assert!(!g.may_write());
        let dry = g.advisory();
        assert!(dry.holds());
        assert!(dry.may_write());
    }

    #[test]
    fn a_guard_holds_only_when_every_vip_is_local() {
        let lo = IpAddr::from(Ipv4Addr::LOCALHOST);
        let absent: IpAddr = "192.0.2.254".parse().unwrap();
        assert!(Guard::new("VI_1", vec![lo]).holds());
        assert!(!Guard::new("VI_1", vec![lo, absent]).holds());
        assert!(!Guard::new("VI_1", vec![absent]).holds());
    }
}
