//! This host's addresses, straight from the kernel: a `RTM_GETADDR` dump
//! over a `NETLINK_ROUTE` socket (what `ip addr` does, without running
//! it). The socket calls go through rustix; the dump is parsed here, so
//! the parser can be tested without a kernel (and is: every truncation,
//! random buffers).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{
    recv, sendto, socket_with, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType,
};

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
    let fd = socket_with(
        AddressFamily::NETLINK,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        // Protocol 0 is NETLINK_ROUTE (rustix's `Protocol` cannot hold 0).
        None,
    )?;
    let seq: u32 = 1;
    let request = dump_request(seq);
    // Port id 0: the kernel.
    sendto(
        &fd,
        &request,
        SendFlags::empty(),
        &SocketAddrNetlink::new(0, 0),
    )?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match recv(&fd, &mut buf[..], RecvFlags::empty()) {
            Ok((n, _)) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
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
}
