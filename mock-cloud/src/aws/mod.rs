//! A mock of the AWS EC2 Query API as floaty uses it (Elastic IPs and the
//! secondary-private-IP variant, SigV4, IAM permissions, throttling) and
//! of the instance metadata service IMDSv2 ([`Imds`]);
//! `docs/cloud-apis-next.md` §3 is the contract.
//!
//! Strict where a lenient mock would hide client bugs:
//! - every request's SigV4 signature is recomputed from the request as
//!   received (`sigv4.rs`), with the region the mock is set to; temporary
//!   credentials need their session token sent and signed, and stop at
//!   their expiration;
//! - the mock keeps its own clock ([`Ec2::set_clock_offset`]), so a client
//!   whose clock is off meets `RequestExpired` as it would for real;
//! - a parameter the action does not take is refused (`UnknownParameter`):
//!   that catches the doc's sample bug, `AllowReassignment` sent to
//!   `AssociateAddress`;
//! - `AssignPrivateIpAddresses` shows in EC2 at once but in the new ENI's
//!   IMDS `local-ipv4s` only after the remap delay, as AWS documents;
//! - answers are indented XML with empty sets written `<x/>`, and an
//!   unassociated address omits its association elements or (see
//!   [`Ec2::set_empty_elements`]) writes them empty, since clients must
//!   accept both;
//! - the metadata service is IMDSv2 only: a GET without a token is 401.

mod ec2;
mod imds;
mod sigv4;
mod xml;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

pub use imds::Imds;

use crate::clock;
use crate::fault::{Fault, FaultRule};
use crate::http::{Served, Watched};
use crate::ids;
use crate::Request;

/// The region the credential scope must name unless told otherwise.
pub const DEFAULT_REGION: &str = "us-east-1";
/// How long a moved secondary private IP takes to show in the new ENI's
/// IMDS `local-ipv4s`, unless told otherwise.
pub const DEFAULT_REMAP_DELAY: Duration = Duration::from_millis(300);
/// How far `X-Amz-Date` may be from the mock's clock. [I] Five minutes is
/// the SigV4 window from memory (the doc's §3.2 marks it so); AWS's
/// common-errors page says 15 minutes for `RequestExpired`, so a client
/// must not lean on either ([`Ec2::set_skew_window`] sets another).
pub const DEFAULT_SKEW_WINDOW: Duration = Duration::from_secs(300);
/// The account the mock's resources belong to: the one of §3.4's example.
pub const OWNER_ID: &str = "053230519467";
/// The only API version the mock speaks, the one floaty sends.
pub const API_VERSION: &str = "2016-11-15";

/// What temporary credentials past their expiration are answered with.
///
/// [I] The contract chose `ExpiredToken` (400, "The security token
/// included in the request is expired"), which STS-issued credentials get
/// from the JSON services. Public reports of EC2 itself with expired
/// role credentials show 400 `RequestExpired` "Request has expired."
/// (jenkinsci/ec2-plugin#2011, aws/aws-sdk-ruby#143), so a client must
/// treat both as "fetch fresh credentials": test it against both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpiredAnswer {
    #[default]
    ExpiredToken,
    RequestExpired,
}

#[derive(Debug, Clone)]
pub(crate) struct Credential {
    secret: String,
    token: Option<String>,
    /// UNIX seconds on the mock's clock from which they no longer work.
    expires: Option<i64>,
    /// IAM: the only actions allowed (None: all).
    actions: Option<BTreeSet<String>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Eni {
    instance: Option<String>,
    mac: String,
    primary: String,
    attachment: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Association {
    id: String,
    eni: String,
    private_ip: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Eip {
    public_ip: String,
    association: Option<Association>,
}

/// A secondary private IP of the VPC. EC2 sees it on `eni` at once; the
/// IMDS of that ENI's instance lists it only from `imds_from` on.
#[derive(Debug, Clone)]
pub(crate) struct Secondary {
    eni: Option<String>,
    /// Assignment order, for `privateIpAddressesSet` and `local-ipv4s`.
    seq: u64,
    imds_from: Instant,
}

/// Everything the mock knows, readable by [`Ec2::wait_for`] predicates.
#[derive(Debug)]
pub struct Ec2State {
    region: String,
    credentials: HashMap<String, Credential>,
    clock_offset: i64,
    skew_window: Duration,
    expired_answer: ExpiredAnswer,
    /// Instance id → its one ENI.
    instances: BTreeMap<String, String>,
    enis: BTreeMap<String, Eni>,
    /// Allocation id → address.
    eips: BTreeMap<String, Eip>,
    secondaries: BTreeMap<String, Secondary>,
    next_seq: u64,
    remap_delay: Duration,
    throttled: usize,
    empty_elements: bool,
    requests: Vec<Request>,
    /// Public IP → AssociateAddress requests naming it.
    associates: HashMap<String, usize>,
    /// Private IP → AssignPrivateIpAddresses requests naming it.
    assigns: HashMap<String, usize>,
    generation: u64,
    fault: Option<FaultRule>,
}

impl Ec2State {
    fn new() -> Ec2State {
        Ec2State {
            region: DEFAULT_REGION.into(),
            credentials: HashMap::new(),
            clock_offset: 0,
            skew_window: DEFAULT_SKEW_WINDOW,
            expired_answer: ExpiredAnswer::default(),
            instances: BTreeMap::new(),
            enis: BTreeMap::new(),
            eips: BTreeMap::new(),
            secondaries: BTreeMap::new(),
            next_seq: 0,
            remap_delay: DEFAULT_REMAP_DELAY,
            throttled: 0,
            empty_elements: false,
            requests: Vec::new(),
            associates: HashMap::new(),
            assigns: HashMap::new(),
            generation: 0,
            fault: None,
        }
    }

    /// The instance whose ENI holds the Elastic IP `public_ip`; None when
    /// it is unassociated, on an ENI attached to nothing, or unknown.
    pub fn eip_instance(&self, public_ip: &str) -> Option<&str> {
        let eni = self.eip_eni(public_ip)?;
        self.enis.get(eni)?.instance.as_deref()
    }

    /// The ENI the Elastic IP `public_ip` is associated with.
    pub fn eip_eni(&self, public_ip: &str) -> Option<&str> {
        let eip = self.eips.values().find(|e| e.public_ip == public_ip)?;
        eip.association.as_ref().map(|a| a.eni.as_str())
    }

    /// The ENI that holds the secondary private IP, as EC2 sees it (at
    /// once after an assignment).
    pub fn secondary_eni(&self, private_ip: &str) -> Option<&str> {
        self.secondaries.get(private_ip)?.eni.as_deref()
    }

    /// What the IMDS `local-ipv4s` of `eni` lists now: its primary first,
    /// then the secondaries whose remap delay has passed.
    pub fn local_ipv4s(&self, eni: &str) -> Vec<String> {
        self.imds_ips(eni, Instant::now())
    }

    /// The request log of the EC2 API (not the IMDS's), oldest first.
    pub fn requests(&self) -> &[Request] {
        &self.requests
    }

    /// `AssociateAddress` requests received for `public_ip` (named by its
    /// allocation id or as `PublicIp`), whatever they were answered with.
    pub fn associate_count(&self, public_ip: &str) -> usize {
        self.associates.get(public_ip).copied().unwrap_or(0)
    }

    /// `AssignPrivateIpAddresses` requests received that name
    /// `private_ip`, whatever they were answered with.
    pub fn assign_count(&self, private_ip: &str) -> usize {
        self.assigns.get(private_ip).copied().unwrap_or(0)
    }

    /// Bumped whenever an Elastic IP or a secondary private IP moves.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The mock's clock, whole UNIX seconds.
    pub(crate) fn now_secs(&self) -> i64 {
        clock::unix_secs_offset(SystemTime::now(), self.clock_offset)
    }

    /// The mock's clock `d` from now, rounded up to a whole second, so a
    /// credential valid "for `d`" is valid at least that long.
    fn secs_after(&self, d: Duration) -> i64 {
        let t = SystemTime::now() + d;
        let secs = clock::unix_secs_offset(t, self.clock_offset);
        let fraction = t
            .duration_since(SystemTime::UNIX_EPOCH)
            .is_ok_and(|d| d.subsec_nanos() > 0);
        secs + i64::from(fraction)
    }

    fn eni_of_instance(&self, instance: &str) -> Option<(&str, &Eni)> {
        let id = self.instances.get(instance)?;
        self.enis.get(id).map(|eni| (id.as_str(), eni))
    }

    /// The secondaries EC2 has on `eni`, in assignment order.
    fn secondaries_of(&self, eni: &str) -> Vec<(&str, &Secondary)> {
        let mut list: Vec<(&str, &Secondary)> = self
            .secondaries
            .iter()
            .filter(|(_, s)| s.eni.as_deref() == Some(eni))
            .map(|(ip, s)| (ip.as_str(), s))
            .collect();
        list.sort_by_key(|(_, s)| s.seq);
        list
    }

    /// Every private IP EC2 has on `eni`, the primary first.
    fn ips_of(&self, eni: &str) -> Vec<String> {
        let mut ips: Vec<String> = self
            .enis
            .get(eni)
            .map(|e| e.primary.clone())
            .into_iter()
            .collect();
        ips.extend(
            self.secondaries_of(eni)
                .into_iter()
                .map(|(ip, _)| ip.to_string()),
        );
        ips
    }

    fn imds_ips(&self, eni: &str, now: Instant) -> Vec<String> {
        let mut ips: Vec<String> = self
            .enis
            .get(eni)
            .map(|e| e.primary.clone())
            .into_iter()
            .collect();
        ips.extend(
            self.secondaries_of(eni)
                .into_iter()
                .filter(|(_, s)| now >= s.imds_from)
                .map(|(ip, _)| ip.to_string()),
        );
        ips
    }

    /// Associates an Elastic IP with `private_ip` on `eni`, taking it from
    /// wherever it was and knocking off any other Elastic IP that address
    /// had (a private IP has one at most); the new association id.
    fn associate(&mut self, allocation: &str, eni: &str, private_ip: &str) -> String {
        for (id, eip) in self.eips.iter_mut() {
            let here = eip
                .association
                .as_ref()
                .is_some_and(|a| a.eni == eni && a.private_ip == private_ip);
            if here && id != allocation {
                eip.association = None;
            }
        }
        let id = ids::aws("eipassoc");
        if let Some(eip) = self.eips.get_mut(allocation) {
            eip.association = Some(Association {
                id: id.clone(),
                eni: eni.to_string(),
                private_ip: private_ip.to_string(),
            });
        }
        self.generation += 1;
        id
    }

    /// Puts the secondary `ip` on `eni` (None: on no ENI). EC2 sees it at
    /// once, the IMDS after the remap delay; an Elastic IP on the address
    /// moves with it (AWS documents that), or is disassociated with it.
    fn assign(&mut self, ip: &str, eni: Option<&str>, now: Instant) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let delay = self.remap_delay;
        let entry = self.secondaries.entry(ip.to_string()).or_insert(Secondary {
            eni: None,
            seq,
            imds_from: now,
        });
        if entry.eni.as_deref() == eni {
            return;
        }
        let old = entry.eni.take();
        entry.eni = eni.map(str::to_string);
        entry.seq = seq;
        entry.imds_from = now + delay;
        for eip in self.eips.values_mut() {
            let moved = eip
                .association
                .as_ref()
                .is_some_and(|a| Some(a.eni.as_str()) == old.as_deref() && a.private_ip == ip);
            if moved {
                match eni {
                    Some(new) => {
                        if let Some(a) = eip.association.as_mut() {
                            a.eni = new.to_string();
                        }
                    }
                    None => eip.association = None,
                }
            }
        }
        self.generation += 1;
    }
}

pub(crate) struct Shared {
    state: Watched<Ec2State>,
}

/// A running EC2 mock; clones share it, and it stops when the last clone
/// is dropped (an [`Imds`] made from it keeps the state, not the API).
#[derive(Clone)]
pub struct Ec2 {
    shared: Arc<Shared>,
    served: Arc<Served>,
}

impl std::fmt::Debug for Ec2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ec2")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl Ec2 {
    /// Starts on `127.0.0.1` and a free port, in region `us-east-1`,
    /// accepting these long-term credentials.
    pub fn start(access_key_id: &str, secret: &str) -> io::Result<Ec2> {
        Ec2::start_on(TcpListener::bind("127.0.0.1:0")?, access_key_id, secret)
    }

    pub fn start_on(listener: TcpListener, access_key_id: &str, secret: &str) -> io::Result<Ec2> {
        Ec2::serve(listener, access_key_id, secret, false)
    }

    /// Like [`Ec2::start`], over HTTPS with a certificate from a CA made
    /// for this mock alone ([`Ec2::ca_pem`]).
    pub fn start_tls(access_key_id: &str, secret: &str) -> io::Result<Ec2> {
        Ec2::start_tls_on(TcpListener::bind("127.0.0.1:0")?, access_key_id, secret)
    }

    /// [`Ec2::start_tls`] on a listener the caller bound.
    pub fn start_tls_on(
        listener: TcpListener,
        access_key_id: &str,
        secret: &str,
    ) -> io::Result<Ec2> {
        Ec2::serve(listener, access_key_id, secret, true)
    }

    fn serve(
        listener: TcpListener,
        access_key_id: &str,
        secret: &str,
        tls: bool,
    ) -> io::Result<Ec2> {
        let shared = Arc::new(Shared {
            state: Watched::new(Ec2State::new()),
        });
        let api = Arc::new(ec2::Api(Arc::clone(&shared)));
        let served = if tls {
            Served::start_tls(listener, api)?
        } else {
            Served::start(listener, api)?
        };
        let ec2 = Ec2 {
            shared,
            served: Arc::new(served),
        };
        ec2.add_credentials(access_key_id, secret, None);
        Ok(ec2)
    }

    /// Also serves `listener` (say, inside a network namespace) from the
    /// same state.
    ///
    /// # Panics
    /// If no thread can be spawned.
    pub fn also_listen(&self, listener: TcpListener) {
        self.served.also_listen(listener);
    }

    /// `http://127.0.0.1:PORT/`, with the trailing slash, as floaty's
    /// `aws.endpoint` default `https://ec2.{region}.amazonaws.com/` has.
    pub fn url(&self) -> String {
        self.served.url()
    }

    pub fn addr(&self) -> SocketAddr {
        self.served.addr()
    }

    /// The PEM of the CA behind the HTTPS certificate; None in the clear.
    pub fn ca_pem(&self) -> Option<String> {
        self.served.ca_pem()
    }

    /// The region the credential scope must name (and the one the
    /// availability zones and DNS names are in); `us-east-1` by default.
    pub fn set_region(&self, region: &str) {
        self.shared.state.change(|s| s.region = region.to_string());
    }

    /// Accepts another key (or replaces what the mock holds for it: the
    /// expiration and IAM limits are reset). With a session token, the
    /// token must be sent as `X-Amz-Security-Token` and signed.
    pub fn add_credentials(&self, access_key_id: &str, secret: &str, session_token: Option<&str>) {
        self.shared.state.change(|s| {
            s.credentials.insert(
                access_key_id.to_string(),
                Credential {
                    secret: secret.to_string(),
                    token: session_token.map(str::to_string),
                    expires: None,
                    actions: None,
                },
            );
        });
    }

    /// From now on the key gets 401 `AuthFailure`, as a deleted one does.
    pub fn revoke(&self, access_key_id: &str) {
        self.shared.state.change(|s| {
            s.credentials.remove(access_key_id);
        });
    }

    /// The key stops working at `at` on the mock's clock (real time plus
    /// [`Ec2::set_clock_offset`]), answered as [`Ec2::set_expired_answer`]
    /// says (`ExpiredToken` by default).
    pub fn expire_at(&self, access_key_id: &str, at: SystemTime) {
        self.shared.state.change(|s| {
            if let Some(c) = s.credentials.get_mut(access_key_id) {
                c.expires = Some(clock::unix_secs_offset(at, 0));
            }
        });
    }

    /// What expired credentials get: see [`ExpiredAnswer`].
    pub fn set_expired_answer(&self, answer: ExpiredAnswer) {
        self.shared.state.change(|s| s.expired_answer = answer);
    }

    /// IAM: the key may call only `actions`; the others get 403
    /// `UnauthorizedOperation`.
    pub fn allow_only(&self, access_key_id: &str, actions: &[&str]) {
        self.shared.state.change(|s| {
            if let Some(c) = s.credentials.get_mut(access_key_id) {
                c.actions = Some(actions.iter().map(|a| a.to_string()).collect());
            }
        });
    }

    /// The mock's clock is the real one plus `secs`: a client whose clock
    /// is that far behind (positive) or ahead (negative) is tested.
    pub fn set_clock_offset(&self, secs: i64) {
        self.shared.state.change(|s| s.clock_offset = secs);
    }

    /// How far `X-Amz-Date` may be from the mock's clock before 400
    /// `RequestExpired` ([`DEFAULT_SKEW_WINDOW`]).
    pub fn set_skew_window(&self, window: Duration) {
        self.shared.state.change(|s| s.skew_window = window);
    }

    /// An instance with one ENI (`eni_id`, `mac`, `primary_private_ip`);
    /// adding an instance again replaces it.
    pub fn add_instance(
        &self,
        instance_id: &str,
        eni_id: &str,
        mac: &str,
        primary_private_ip: &str,
    ) {
        self.shared.state.change(|s| {
            s.instances
                .insert(instance_id.to_string(), eni_id.to_string());
            s.enis.insert(
                eni_id.to_string(),
                Eni {
                    instance: Some(instance_id.to_string()),
                    mac: mac.to_ascii_lowercase(),
                    primary: primary_private_ip.to_string(),
                    attachment: ids::aws("eni-attach"),
                },
            );
        });
    }

    /// An Elastic IP, associated with the primary private IP of
    /// `instance`'s ENI, or with nothing.
    ///
    /// # Panics
    /// If `instance` was not added first (a test bug).
    pub fn add_elastic_ip(&self, public_ip: &str, allocation_id: &str, instance: Option<&str>) {
        self.shared.state.change(|s| {
            s.eips.insert(
                allocation_id.to_string(),
                Eip {
                    public_ip: public_ip.to_string(),
                    association: None,
                },
            );
            if let Some(instance) = instance {
                let Some((eni, e)) = s.eni_of_instance(instance) else {
                    panic!("add_elastic_ip: unknown instance {instance}: add_instance first");
                };
                let (eni, primary) = (eni.to_string(), e.primary.clone());
                s.associate(allocation_id, &eni, &primary);
            }
            s.generation += 1;
        });
    }

    /// Moves an Elastic IP behind the client's back (another node, the
    /// console) to `instance`'s primary private IP, or disassociates it.
    ///
    /// # Panics
    /// If `instance` is unknown (a test bug).
    pub fn set_eip_instance(&self, public_ip: &str, instance: Option<&str>) {
        self.shared.state.change(|s| {
            let Some(allocation) = s
                .eips
                .iter()
                .find(|(_, e)| e.public_ip == public_ip)
                .map(|(id, _)| id.clone())
            else {
                return;
            };
            match instance {
                Some(instance) => {
                    let Some((eni, e)) = s.eni_of_instance(instance) else {
                        panic!("set_eip_instance: unknown instance {instance}");
                    };
                    let (eni, primary) = (eni.to_string(), e.primary.clone());
                    s.associate(&allocation, &eni, &primary);
                }
                None => {
                    if let Some(e) = s.eips.get_mut(&allocation) {
                        e.association = None;
                    }
                    s.generation += 1;
                }
            }
        });
    }

    /// Which instance holds the Elastic IP `public_ip`.
    pub fn eip_instance(&self, public_ip: &str) -> Option<String> {
        self.with_state(|s| s.eip_instance(public_ip).map(str::to_string))
    }

    /// A secondary private IP in the VPC, on `eni` or on none; it shows in
    /// EC2 and in the IMDS at once (it was there before the test began).
    ///
    /// # Panics
    /// If `eni` was not added (with its instance) first.
    pub fn add_secondary_ip(&self, private_ip: &str, eni: Option<&str>) {
        self.shared.state.change(|s| {
            if let Some(e) = eni {
                assert!(s.enis.contains_key(e), "add_secondary_ip: unknown ENI {e}");
            }
            let seq = s.next_seq;
            s.next_seq += 1;
            s.secondaries.insert(
                private_ip.to_string(),
                Secondary {
                    eni: eni.map(str::to_string),
                    seq,
                    imds_from: Instant::now(),
                },
            );
            s.generation += 1;
        });
    }

    /// Moves a secondary private IP behind the client's back, as another
    /// node's `AssignPrivateIpAddresses` would: EC2 at once, the IMDS of the
    /// new ENI after the remap delay.
    pub fn set_secondary_eni(&self, private_ip: &str, eni: Option<&str>) {
        self.shared
            .state
            .change(|s| s.assign(private_ip, eni, Instant::now()));
    }

    /// Which ENI holds the secondary private IP, as EC2 sees it.
    pub fn secondary_eni(&self, private_ip: &str) -> Option<String> {
        self.with_state(|s| s.secondary_eni(private_ip).map(str::to_string))
    }

    /// How long a moved secondary private IP takes to show in the new
    /// ENI's IMDS `local-ipv4s` ([`DEFAULT_REMAP_DELAY`]).
    pub fn set_remap_delay(&self, d: Duration) {
        self.shared.state.change(|s| s.remap_delay = d);
    }

    /// The next `n` authenticated requests get 503 `RequestLimitExceeded`
    /// (no `Retry-After`, as EC2 sends none).
    pub fn throttle(&self, n: usize) {
        self.shared.state.change(|s| s.throttled = n);
    }

    /// Whether an unassociated address writes `<instanceId/>`,
    /// `<associationId/>`, `<networkInterfaceId/>`,
    /// `<networkInterfaceOwnerId/>` and `<privateIpAddress/>` (as moto
    /// does) instead of leaving them out (the default).
    pub fn set_empty_elements(&self, empty: bool) {
        self.shared.state.change(|s| s.empty_elements = empty);
    }

    pub fn associate_count(&self, public_ip: &str) -> usize {
        self.with_state(|s| s.associate_count(public_ip))
    }

    pub fn assign_count(&self, private_ip: &str) -> usize {
        self.with_state(|s| s.assign_count(private_ip))
    }

    pub fn requests(&self) -> Vec<Request> {
        self.shared.state.lock().requests.clone()
    }

    /// Runs `f` on the state under the lock (for reads the helpers miss).
    pub fn with_state<T>(&self, f: impl FnOnce(&Ec2State) -> T) -> T {
        f(&self.shared.state.lock())
    }

    /// Waits until `pred` holds, re-checking after every request and state
    /// change (and every few milliseconds, since the IMDS view changes by
    /// the clock); false on timeout.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&Ec2State) -> bool) -> bool {
        let poll = Some(Duration::from_millis(20));
        self.shared.state.wait_until(timeout, poll, |s| pred(s))
    }

    /// An IMDSv2 mock for `instance_id` on `127.0.0.1` and a free port,
    /// sharing this state: its `local-ipv4s`, and the role credentials it
    /// hands out are valid here.
    pub fn imds(&self, instance_id: &str) -> io::Result<Imds> {
        self.imds_on(TcpListener::bind("127.0.0.1:0")?, instance_id)
    }

    pub fn imds_on(&self, listener: TcpListener, instance_id: &str) -> io::Result<Imds> {
        Imds::start(listener, Arc::clone(&self.shared), instance_id)
    }

    /// Every request from now on suffers `fault` (until replaced;
    /// `Fault::None` clears). Faults come before authentication, throttling
    /// and routing, like a load balancer's.
    pub fn set_fault(&self, fault: Fault) {
        self.set_fault_rule(fault, None, None);
    }

    /// Only the next `times` requests suffer `fault`.
    pub fn set_fault_times(&self, fault: Fault, times: usize) {
        self.set_fault_rule(fault, Some(times), None);
    }

    /// Only requests with `method` suffer `fault`, for the next `times` of
    /// them or (None) until replaced.
    pub fn set_fault_on(&self, method: &str, fault: Fault, times: Option<usize>) {
        self.set_fault_rule(fault, times, Some(method));
    }

    pub fn clear_fault(&self) {
        self.set_fault(Fault::None);
    }

    fn set_fault_rule(&self, fault: Fault, times: Option<usize>, method: Option<&str>) {
        self.shared
            .state
            .change(|s| s.fault = FaultRule::new(fault, times, method));
    }
}
