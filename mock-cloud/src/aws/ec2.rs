//! The EC2 Query API: the request's parameters, the checks in the order
//! the mock makes them (fault, path, SigV4, throttling, `Action` and
//! `Version`, unknown parameters, IAM, `DryRun`), and the actions floaty
//! uses with the answers of `docs/cloud-apis-next.md` §3.4–3.6.
//!
//! Statuses and codes the doc marks [I] are chosen here and say so where
//! they are made.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use super::sigv4::{self, Expect, Refusal, Secret};
use super::xml::{self, El};
use super::{Ec2State, Eip, Eni, ExpiredAnswer, Shared, API_VERSION, OWNER_ID};
use crate::fault;
use crate::http::{percent_decode, query_pairs, Handler, RawRequest, Reply, Response};
use crate::ids;
use crate::Request;

const SUBNET_ID: &str = "subnet-0a1b2c3d4e5f60718";
const VPC_ID: &str = "vpc-0f1e2d3c4b5a69788";
const GROUP_ID: &str = "sg-0123456789abcdef0";
const IMAGE_ID: &str = "ami-0abcdef1234567890";
const LAUNCHED: &str = "2026-01-01T00:00:00.000Z";

/// An EC2 error: status, code and message, sent as §3.6's XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ec2Error {
    status: u16,
    code: &'static str,
    message: String,
}

impl Ec2Error {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Ec2Error {
        Ec2Error {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad(code: &'static str, message: impl Into<String>) -> Ec2Error {
        Ec2Error::new(400, code, message)
    }

    fn missing(parameter: &str) -> Ec2Error {
        Ec2Error::bad(
            "MissingParameter",
            format!("The request must contain the parameter {parameter}"),
        )
    }

    fn invalid(message: impl Into<String>) -> Ec2Error {
        Ec2Error::bad("InvalidParameterValue", message)
    }
}

/// The status and code of each SigV4 refusal.
fn refusal(r: Refusal, expired: ExpiredAnswer) -> Ec2Error {
    match r {
        // [I] 403: AWS's common-errors page gives MissingAuthenticationToken
        // 403 (the contract guessed 400; EC2's own status is unverified).
        Refusal::Missing => Ec2Error::new(
            403,
            "MissingAuthenticationToken",
            "The request must contain either a valid (registered) AWS access key ID or X.509 certificate.",
        ),
        // 400, as EC2's common-errors page lists IncompleteSignature; the
        // messages are the mock's.
        Refusal::Incomplete(message) => Ec2Error::bad("IncompleteSignature", message),
        // [I] 401, the contract's (and §3.6's) status for AuthFailure; a
        // wrong or missing session token is the same "cannot validate".
        Refusal::UnknownKey | Refusal::Token => Ec2Error::new(
            401,
            "AuthFailure",
            "AWS was not able to validate the provided access credentials",
        ),
        Refusal::Expired => match expired {
            ExpiredAnswer::ExpiredToken => Ec2Error::bad(
                "ExpiredToken",
                "The security token included in the request is expired",
            ),
            ExpiredAnswer::RequestExpired => Ec2Error::bad("RequestExpired", "Request has expired."),
        },
        // [I] 403, the contract's choice; the message is AWS's.
        Refusal::Mismatch => Ec2Error::new(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ),
        // 400, as AWS's common-errors page lists RequestExpired.
        Refusal::Skewed => Ec2Error::bad("RequestExpired", "Request has expired."),
    }
}

/// The Query API's parameters: the query string's, then (for a form POST)
/// the body's, decoded, in order.
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub fn of(req: &RawRequest, raw_query: Option<&str>) -> Params {
        let mut pairs = query_pairs(raw_query);
        if req.method == "POST" && is_form(req) {
            pairs.extend(query_pairs(Some(&String::from_utf8_lossy(&req.body))));
        }
        Params(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, name: &str) -> Result<&str, Ec2Error> {
        self.get(name).ok_or_else(|| Ec2Error::missing(name))
    }

    /// `prefix.1`, `prefix.2`, ... in index order (EC2's lists start at 1).
    fn list(&self, prefix: &str) -> Vec<String> {
        let mut items: Vec<(u64, &str)> = self
            .0
            .iter()
            .filter_map(|(n, v)| {
                let index = n.strip_prefix(prefix)?.strip_prefix('.')?;
                Some((positive(index)?, v.as_str()))
            })
            .collect();
        items.sort_by_key(|(i, _)| *i);
        items.dedup_by_key(|(i, _)| *i);
        items.into_iter().map(|(_, v)| v.to_string()).collect()
    }

    /// `Filter.N.Name` with its `Filter.N.Value.M`s.
    fn filters(&self) -> Result<Vec<(String, Vec<String>)>, Ec2Error> {
        let mut indexes: Vec<u64> = self
            .0
            .iter()
            .filter_map(|(n, _)| {
                let rest = n.strip_prefix("Filter.")?;
                positive(rest.split('.').next()?)
            })
            .collect();
        indexes.sort_unstable();
        indexes.dedup();
        indexes
            .into_iter()
            .map(|i| {
                let Some(name) = self.get(&format!("Filter.{i}.Name")) else {
                    return Err(Ec2Error::invalid("The filter 'null' is invalid"));
                };
                Ok((name.to_string(), self.list(&format!("Filter.{i}.Value"))))
            })
            .collect()
    }

    /// [I] The message for a value that is not `true` or `false`.
    fn flag(&self, name: &str, default: bool) -> Result<bool, Ec2Error> {
        match self.get(name) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(Ec2Error::invalid(format!(
                "Value ({v}) for parameter {name} is invalid. Expected: 'true' or 'false'."
            ))),
        }
    }

    /// [I] `UnknownParameter` for a name the action does not take (EC2 lists
    /// the code; the message is the mock's).
    fn check_known(&self, allowed: &[&str]) -> Result<(), Ec2Error> {
        const COMMON: [&str; 3] = ["Action", "Version", "DryRun"];
        for (name, _) in &self.0 {
            let known = COMMON
                .iter()
                .chain(allowed)
                .any(|pattern| matches_pattern(pattern, name));
            if !known {
                return Err(Ec2Error::bad(
                    "UnknownParameter",
                    format!("The parameter {name} is not recognized"),
                ));
            }
        }
        Ok(())
    }
}

/// A list index: decimal digits, from 1.
fn positive(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|n| *n >= 1)
}

/// `Filter.N.Value.N` matches `Filter.1.Value.2`.
fn matches_pattern(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<&str>, Vec<&str>) = (pattern.split('.').collect(), name.split('.').collect());
    p.len() == n.len()
        && p.iter()
            .zip(&n)
            .all(|(p, n)| p == n || (*p == "N" && positive(n).is_some()))
}

fn is_form(req: &RawRequest) -> bool {
    let content_type = req.header("content-type").unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    media.eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

/// An action, the parameters it takes besides `Action`, `Version` and
/// `DryRun`, and what it does.
struct Spec {
    name: &'static str,
    params: &'static [&'static str],
    run: fn(&mut Ec2State, &Params) -> Result<Vec<El>, Ec2Error>,
}

const FILTERS: [&str; 2] = ["Filter.N.Name", "Filter.N.Value.N"];

const ACTIONS: &[Spec] = &[
    Spec {
        name: "DescribeAddresses",
        params: &["AllocationId.N", "PublicIp.N", FILTERS[0], FILTERS[1]],
        run: describe_addresses,
    },
    Spec {
        name: "AssociateAddress",
        params: &[
            "AllocationId",
            "PublicIp",
            "InstanceId",
            "NetworkInterfaceId",
            "PrivateIpAddress",
            "AllowReassociation",
        ],
        run: associate_address,
    },
    Spec {
        name: "DisassociateAddress",
        params: &["AssociationId", "PublicIp"],
        run: disassociate_address,
    },
    Spec {
        name: "DescribeNetworkInterfaces",
        params: &[
            "NetworkInterfaceId.N",
            FILTERS[0],
            FILTERS[1],
            "MaxResults",
            "NextToken",
        ],
        run: describe_network_interfaces,
    },
    Spec {
        name: "AssignPrivateIpAddresses",
        params: &[
            "NetworkInterfaceId",
            "PrivateIpAddress.N",
            "AllowReassignment",
            "SecondaryPrivateIpAddressCount",
        ],
        run: assign_private_ip_addresses,
    },
    Spec {
        name: "UnassignPrivateIpAddresses",
        params: &["NetworkInterfaceId", "PrivateIpAddress.N"],
        run: unassign_private_ip_addresses,
    },
    Spec {
        name: "DescribeInstances",
        params: &[
            "InstanceId.N",
            FILTERS[0],
            FILTERS[1],
            "MaxResults",
            "NextToken",
        ],
        run: describe_instances,
    },
];

pub(crate) struct Api(pub Arc<Shared>);

impl Handler for Api {
    fn handle(&self, req: RawRequest) -> Reply {
        let at = Instant::now();
        let (raw_path, raw_query) = match req.target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (req.target.as_str(), None),
        };
        let path = percent_decode(raw_path);
        let mut state = self.0.state.lock();
        if let Some(control) = path.strip_prefix("/_mock/") {
            let response = control_api(&mut state, &req, control);
            drop(state);
            self.0.state.notify();
            return Reply::now(response);
        }
        let params = Params::of(&req, raw_query);
        let action = params.get("Action").map(str::to_string);
        let fault = fault::take(&mut state.fault, &req.method);
        let reply = fault::apply(fault, || {
            // Every EC2 answer carries the API's clock, which is how a
            // client can tell its own clock is off.
            let date = crate::clock::http_date(state.now_secs());
            Reply::now(
                answer(&mut state, &req, raw_path, raw_query, &params).with_header("Date", &date),
            )
        });
        count_writes(&mut state, action.as_deref(), &params);
        let query = raw_query.map(str::to_string);
        let mut logged = Request::new(&req, path, query, at, reply.status());
        logged.action = action;
        logged.log(&mut state.requests);
        drop(state);
        self.0.state.notify();
        reply
    }
}

/// Counts the writes a request names, whatever it was answered with.
fn count_writes(state: &mut Ec2State, action: Option<&str>, params: &Params) {
    match action {
        Some("AssociateAddress") => {
            let by_allocation = params
                .get("AllocationId")
                .and_then(|a| state.eips.get(a))
                .map(|e| e.public_ip.clone());
            if let Some(ip) = by_allocation.or_else(|| params.get("PublicIp").map(str::to_string)) {
                *state.associates.entry(ip).or_insert(0) += 1;
            }
        }
        Some("AssignPrivateIpAddresses") => {
            for ip in params.list("PrivateIpAddress") {
                *state.assigns.entry(ip).or_insert(0) += 1;
            }
        }
        _ => {}
    }
}

fn answer(
    state: &mut Ec2State,
    req: &RawRequest,
    raw_path: &str,
    raw_query: Option<&str>,
    params: &Params,
) -> Response {
    let request_id = ids::uuid();
    match run(state, req, raw_path, raw_query, params, &request_id) {
        Ok(body) => xml::response(200, body),
        Err(e) => xml::response(e.status, xml::error_body(e.code, &e.message, &request_id)),
    }
}

fn run(
    state: &mut Ec2State,
    req: &RawRequest,
    raw_path: &str,
    raw_query: Option<&str>,
    params: &Params,
    request_id: &str,
) -> Result<String, Ec2Error> {
    // [I] The Query API lives at `/` only, over GET and POST; other paths
    // and methods are refused as no action.
    if percent_decode(raw_path) != "/" {
        return Err(Ec2Error::bad(
            "InvalidAction",
            format!("The path {raw_path} is not valid for this web service."),
        ));
    }
    if req.method != "GET" && req.method != "POST" {
        return Err(Ec2Error::bad(
            "InvalidAction",
            format!(
                "The HTTP method {} is not valid for this web service.",
                req.method
            ),
        ));
    }
    let now = state.now_secs();
    let expect = Expect {
        region: &state.region,
        service: "ec2",
        now,
        window_secs: i64::try_from(state.skew_window.as_secs()).unwrap_or(i64::MAX),
    };
    let credentials = &state.credentials;
    let auth = sigv4::verify(req, raw_path, raw_query, &expect, |akid| {
        credentials.get(akid).map(|c| Secret {
            secret: &c.secret,
            token: c.token.as_deref(),
            expired: c.expires.is_some_and(|at| now >= at),
        })
    })
    .map_err(|r| refusal(r, state.expired_answer))?;
    // Throttling is per account, so it needs the request authenticated.
    if state.throttled > 0 {
        state.throttled -= 1;
        return Err(Ec2Error::new(
            503,
            "RequestLimitExceeded",
            "Request limit exceeded.",
        ));
    }
    let Some(action) = params.get("Action") else {
        // [I] MissingAction, as AWS's common-errors page lists it (400).
        return Err(Ec2Error::bad(
            "MissingAction",
            "The request must contain the parameter Action",
        ));
    };
    match params.get("Version") {
        // [I] MissingParameter for no Version, NoSuchVersion (the Query
        // APIs' code) for another one: the mock speaks 2016-11-15 only.
        None => return Err(Ec2Error::missing("Version")),
        Some(v) if v != API_VERSION => {
            return Err(Ec2Error::bad(
                "NoSuchVersion",
                format!("The requested version ({v}) of service AmazonEC2 does not exist"),
            ))
        }
        Some(_) => {}
    }
    let Some(spec) = ACTIONS.iter().find(|s| s.name == action) else {
        return Err(Ec2Error::bad(
            "InvalidAction",
            format!("The action {action} is not valid for this web service."),
        ));
    };
    params.check_known(spec.params)?;
    let allowed = state
        .credentials
        .get(&auth.access_key_id)
        .and_then(|c| c.actions.as_ref())
        .is_none_or(|set| set.contains(action));
    if !allowed {
        // [I] 403 (§3.6); real EC2 appends an encoded authorization message.
        return Err(Ec2Error::new(
            403,
            "UnauthorizedOperation",
            "You are not authorized to perform this operation.",
        ));
    }
    if params.flag("DryRun", false)? {
        // EC2 answers a permitted dry run with 412 DryRunOperation.
        return Err(Ec2Error::new(
            412,
            "DryRunOperation",
            "Request would have succeeded, but DryRun flag is set.",
        ));
    }
    let body = (spec.run)(state, params)?;
    Ok(xml::document(action, request_id, &body))
}

// ---- Elastic IPs (§3.4) ----

/// An address's fields in the order of §3.4's example; None for the
/// association's when it has none.
fn address_fields(
    state: &Ec2State,
    allocation: &str,
    eip: &Eip,
) -> Vec<(&'static str, Option<String>)> {
    let a = eip.association.as_ref();
    let instance = a
        .and_then(|a| state.enis.get(&a.eni))
        .and_then(|e| e.instance.clone());
    vec![
        ("publicIp", Some(eip.public_ip.clone())),
        ("allocationId", Some(allocation.to_string())),
        ("domain", Some("vpc".to_string())),
        ("instanceId", instance),
        ("associationId", a.map(|a| a.id.clone())),
        ("networkInterfaceId", a.map(|a| a.eni.clone())),
        ("networkInterfaceOwnerId", a.map(|_| OWNER_ID.to_string())),
        ("privateIpAddress", a.map(|a| a.private_ip.clone())),
    ]
}

/// The element a `DescribeAddresses` filter name looks at.
fn address_filter_field(filter: &str) -> Option<&'static str> {
    Some(match filter {
        "allocation-id" => "allocationId",
        "association-id" => "associationId",
        "domain" => "domain",
        "instance-id" => "instanceId",
        "network-interface-id" => "networkInterfaceId",
        "network-interface-owner-id" => "networkInterfaceOwnerId",
        "private-ip-address" => "privateIpAddress",
        "public-ip" => "publicIp",
        _ => return None,
    })
}

fn describe_addresses(state: &mut Ec2State, params: &Params) -> Result<Vec<El>, Ec2Error> {
    let allocations = params.list("AllocationId");
    let public_ips = params.list("PublicIp");
    let filters = params.filters()?;
    for (name, _) in &filters {
        if address_filter_field(name).is_none() {
            return Err(Ec2Error::invalid(format!("The filter '{name}' is invalid")));
        }
    }
    // [I] Messages from memory of EC2's, statuses 400 (§3.6).
    for a in &allocations {
        if !state.eips.contains_key(a) {
            return Err(Ec2Error::bad(
                "InvalidAllocationID.NotFound",
                format!("The allocation IDs '{a}' do not exist"),
            ));
        }
    }
    for ip in &public_ips {
        if !state.eips.values().any(|e| &e.public_ip == ip) {
            return Err(Ec2Error::bad(
                "InvalidAddress.NotFound",
                format!("Address '{ip}' not found."),
            ));
        }
    }
    let mut items = Vec::new();
    for (allocation, eip) in &state.eips {
        let fields = address_fields(state, allocation, eip);
        let value = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, v)| v.as_deref())
        };
        let named = (allocations.is_empty() || allocations.contains(allocation))
            && (public_ips.is_empty() || public_ips.contains(&eip.public_ip));
        let filtered = filters.iter().all(|(name, values)| {
            let field = address_filter_field(name).and_then(value);
            field.is_some_and(|f| values.iter().any(|v| v == f))
        });
        if named && filtered {
            items.push(render_fields(fields, state.empty_elements));
        }
    }
    Ok(vec![El::set("addressesSet", items)])
}

/// Present fields as text; absent ones left out, or empty when `empty`.
fn render_fields(fields: Vec<(&'static str, Option<String>)>, empty: bool) -> Vec<El> {
    fields
        .into_iter()
        .filter_map(|(name, value)| match value {
            Some(v) => Some(El::text(name, v)),
            None if empty => Some(El::Empty(name)),
            None => None,
        })
        .collect()
}

fn unknown_instance(id: &str) -> Ec2Error {
    // Code, status and message of §3.6's (boto's) fixture.
    Ec2Error::bad(
        "InvalidInstanceID.NotFound",
        format!("The instance ID '{id}' does not exist"),
    )
}

fn unknown_eni(id: &str) -> Ec2Error {
    // [I] 400, and EC2's message as remembered.
    Ec2Error::bad(
        "InvalidNetworkInterfaceID.NotFound",
        format!("The networkInterface ID '{id}' does not exist"),
    )
}

/// [I] 400 `Resource.AlreadyAssociated`, with EC2's message as remembered.
fn already_associated(allocation: &str, association: &str) -> Ec2Error {
    Ec2Error::bad(
        "Resource.AlreadyAssociated",
        format!("resource {allocation} is already associated with associate-id {association}"),
    )
}

fn associate_address(state: &mut Ec2State, params: &Params) -> Result<Vec<El>, Ec2Error> {
    let allocation = match (params.get("AllocationId"), params.get("PublicIp")) {
        (Some(a), _) => {
            if !state.eips.contains_key(a) {
                return Err(Ec2Error::bad(
                    "InvalidAllocationID.NotFound",
                    format!("The allocation ID '{a}' does not exist"),
                ));
            }
            a.to_string()
        }
        // The EC2-Classic parameter some scripts still send (§3.9).
        (None, Some(ip)) => state
            .eips
            .iter()
            .find(|(_, e)| e.public_ip == ip)
            .map(|(id, _)| id.clone())
            .ok_or_else(|| {
                Ec2Error::bad(
                    "InvalidAddress.NotFound",
                    format!("Address '{ip}' not found."),
                )
            })?,
        (None, None) => return Err(Ec2Error::missing("AllocationId")),
    };
    let allow = params.flag("AllowReassociation", true)?;
    let (eni, private) = match (params.get("InstanceId"), params.get("NetworkInterfaceId")) {
        (Some(_), Some(_)) => {
            // [I] The combination EC2 refuses; the message is the mock's.
            return Err(Ec2Error::bad(
                "InvalidParameterCombination",
                "You may specify an instance or a network interface, not both",
            ));
        }
        (Some(instance), None) => {
            let (eni, e) = state
                .eni_of_instance(instance)
                .ok_or_else(|| unknown_instance(instance))?;
            let private = params.get("PrivateIpAddress").unwrap_or(&e.primary);
            (eni.to_string(), private.to_string())
        }
        (None, Some(eni)) => {
            let e = state.enis.get(eni).ok_or_else(|| unknown_eni(eni))?;
            let private = params.get("PrivateIpAddress").unwrap_or(&e.primary);
            (eni.to_string(), private.to_string())
        }
        (None, None) => return Err(Ec2Error::missing("InstanceId")),
    };
    if !state.ips_of(&eni).contains(&private) {
        // [I] The message is the mock's.
        return Err(Ec2Error::invalid(format!(
            "The private IP address {private} is not assigned to the network interface {eni}"
        )));
    }
    if !allow {
        // Associated elsewhere: refused. The same place is a remap, which
        // EC2 documents as idempotent.
        if let Some(a) = state
            .eips
            .get(&allocation)
            .and_then(|e| e.association.as_ref())
        {
            if a.eni != eni || a.private_ip != private {
                return Err(already_associated(&allocation, &a.id));
            }
        }
        // [I] Another address on that private IP would be knocked off:
        // refused too (nginxinc/aws-ha-elastic-ip#1 is a move failing
        // where the target already had an Elastic IP).
        let taken = state.eips.iter().find_map(|(id, e)| {
            let a = e.association.as_ref()?;
            (*id != allocation && a.eni == eni && a.private_ip == private).then_some((id, a))
        });
        if let Some((id, a)) = taken {
            return Err(already_associated(id, &a.id));
        }
    }
    let association = state.associate(&allocation, &eni, &private);
    Ok(vec![
        El::text("return", "true"),
        El::text("associationId", association),
    ])
}

fn disassociate_address(state: &mut Ec2State, params: &Params) -> Result<Vec<El>, Ec2Error> {
    let found = match (params.get("AssociationId"), params.get("PublicIp")) {
        (Some(id), _) => state
            .eips
            .values_mut()
            .find(|e| e.association.as_ref().is_some_and(|a| a.id == id))
            .ok_or_else(|| {
                // [I] 400, EC2's code; the message as remembered.
                Ec2Error::bad(
                    "InvalidAssociationID.NotFound",
                    format!("The association ID '{id}' does not exist"),
                )
            })?,
        (None, Some(ip)) => state
            .eips
            .values_mut()
            .find(|e| e.public_ip == ip)
            .ok_or_else(|| {
                Ec2Error::bad(
                    "InvalidAddress.NotFound",
                    format!("Address '{ip}' not found."),
                )
            })?,
        (None, None) => return Err(Ec2Error::missing("AssociationId")),
    };
    found.association = None;
    state.generation += 1;
    Ok(vec![El::text("return", "true")])
}

// ---- Network interfaces and secondary private IPs (§3.5) ----

fn dns_name(state: &Ec2State, ip: &str) -> String {
    let host = format!("ip-{}", ip.replace('.', "-"));
    if state.region == "us-east-1" {
        format!("{host}.ec2.internal")
    } else {
        format!("{host}.{}.compute.internal", state.region)
    }
}

fn zone(state: &Ec2State) -> String {
    format!("{}a", state.region)
}

/// The Elastic IP on `private_ip` of `eni`, as an `<association>`.
fn association_el(state: &Ec2State, eni: &str, private_ip: &str) -> Option<El> {
    let (allocation, eip, a) = state.eips.iter().find_map(|(id, e)| {
        let a = e.association.as_ref()?;
        (a.eni == eni && a.private_ip == private_ip).then_some((id, e, a))
    })?;
    Some(El::parent(
        "association",
        vec![
            El::text("publicIp", &eip.public_ip),
            El::text("publicDnsName", ""),
            El::text("ipOwnerId", OWNER_ID),
            El::text("allocationId", allocation),
            El::text("associationId", &a.id),
        ],
    ))
}

fn eni_item(state: &Ec2State, id: &str, eni: &Eni) -> Vec<El> {
    let mut item = vec![
        El::text("networkInterfaceId", id),
        El::text("subnetId", SUBNET_ID),
        El::text("vpcId", VPC_ID),
        El::text("availabilityZone", zone(state)),
        El::Empty("description"),
        El::text("ownerId", OWNER_ID),
        El::text("requesterManaged", "false"),
        El::text(
            "status",
            if eni.instance.is_some() {
                "in-use"
            } else {
                "available"
            },
        ),
        El::text("macAddress", &eni.mac),
        El::text("privateIpAddress", &eni.primary),
        El::text("privateDnsName", dns_name(state, &eni.primary)),
        El::text("sourceDestCheck", "true"),
        El::set(
            "groupSet",
            vec![vec![
                El::text("groupId", GROUP_ID),
                El::text("groupName", "default"),
            ]],
        ),
    ];
    if let Some(instance) = &eni.instance {
        item.push(El::parent(
            "attachment",
            vec![
                El::text("attachmentId", &eni.attachment),
                El::text("instanceId", instance),
                El::text("instanceOwnerId", OWNER_ID),
                El::text("deviceIndex", "0"),
                El::text("status", "attached"),
                El::text("attachTime", LAUNCHED),
                El::text("deleteOnTermination", "true"),
            ],
        ));
    }
    item.extend(association_el(state, id, &eni.primary));
    item.push(El::set("tagSet", Vec::new()));
    let addresses = state
        .ips_of(id)
        .into_iter()
        .map(|ip| {
            let mut a = vec![
                El::text("privateIpAddress", &ip),
                El::text("privateDnsName", dns_name(state, &ip)),
                El::text("primary", if ip == eni.primary { "true" } else { "false" }),
            ];
            a.extend(association_el(state, id, &ip));
            a
        })
        .collect();
    item.push(El::set("privateIpAddressesSet", addresses));
    item.push(El::set("ipv6AddressesSet", Vec::new()));
    item.push(El::text("interfaceType", "interface"));
    item
}

/// Whether `eni` passes a `DescribeNetworkInterfaces` filter; None for a
/// filter name the mock does not know. (`addresses.private-ip-address` is
/// the doc's [I] name for "any of its addresses".)
fn eni_matches(
    state: &Ec2State,
    id: &str,
    eni: &Eni,
    filter: &str,
    values: &[String],
) -> Option<bool> {
    let any = |candidates: Vec<String>| candidates.iter().any(|c| values.contains(c));
    Some(match filter {
        "addresses.private-ip-address" => any(state.ips_of(id)),
        "private-ip-address" => any(vec![eni.primary.clone()]),
        "network-interface-id" => any(vec![id.to_string()]),
        "attachment.instance-id" => any(eni.instance.clone().into_iter().collect()),
        "mac-address" => any(vec![eni.mac.clone()]),
        "vpc-id" => any(vec![VPC_ID.to_string()]),
        "subnet-id" => any(vec![SUBNET_ID.to_string()]),
        _ => return None,
    })
}

fn describe_network_interfaces(state: &mut Ec2State, params: &Params) -> Result<Vec<El>, Ec2Error> {
    let ids = params.list("NetworkInterfaceId");
    let filters = params.filters()?;
    for id in &ids {
        if !state.enis.contains_key(id) {
            return Err(unknown_eni(id));
        }
    }
    let mut items = Vec::new();
    for (id, eni) in &state.enis {
        if !ids.is_empty() && !ids.contains(id) {
            continue;
        }
        let mut keep = true;
        for (name, values) in &filters {
            match eni_matches(state, id, eni, name, values) {
                Some(m) => keep &= m,
                None => return Err(Ec2Error::invalid(format!("The filter '{name}' is invalid"))),
            }
        }
        if keep {
            items.push(eni_item(state, id, eni));
        }
    }
    Ok(vec![El::set("networkInterfaceSet", items)])
}

/// A private IPv4 address, or the 400 for one that is not.
fn private_ip(text: &str) -> Result<String, Ec2Error> {
    text.parse::<Ipv4Addr>()
        .map(|ip| ip.to_string())
        .map_err(|_| {
            Ec2Error::invalid(format!(
                "Value ({text}) for parameter privateIpAddress is invalid. Must be a valid IPv4 address."
            ))
        })
}

fn in_use(ip: &str) -> Ec2Error {
    // [I] 400 InvalidIPAddress.InUse "Address ... is in use.": the code and
    // text EC2 gives for an address already taken (seen from RunInstances,
    // aws/aws-cli#7178); what AssignPrivateIpAddresses itself answers
    // without AllowReassignment is unverified.
    Ec2Error::bad("InvalidIPAddress.InUse", format!("Address {ip} is in use."))
}

fn assign_private_ip_addresses(state: &mut Ec2State, params: &Params) -> Result<Vec<El>, Ec2Error> {
    let eni = params.required("NetworkInterfaceId")?.to_string();
    if !state.enis.contains_key(&eni) {
        return Err(unknown_eni(&eni));
    }
    let requested = params.list("PrivateIpAddress");
    if requested.is_empty() {
        if params.get("SecondaryPrivateIpAddressCount").is_some() {
            return Err(Ec2Error::invalid(
                "SecondaryPrivateIpAddressCount is not supported by this mock: name the addresses",
            ));
        }
        return Err(Ec2Error::missing("PrivateIpAddress"));
    }
    let allow = params.flag("AllowReassignment", false)?;
    let mut ips = Vec::new();
    for text in &requested {
        let ip = private_ip(text)?;
        // Someone's primary address never moves.
        if state.enis.values().any(|e| e.primary == ip) {
            return Err(in_use(&ip));
        }
        let elsewhere = state
            .secondaries
            .get(&ip)
            .and_then(|s| s.eni.as_deref())
            .is_some_and(|holder| holder != eni);
        if elsewhere && !allow {
            return Err(in_use(&ip));
        }
        ips.push(ip);
    }
    let now = Instant::now();
    for ip in &ips {
        state.assign(ip, Some(&eni), now);
    }
    let assigned = ips
        .into_iter()
        .map(|ip| vec![El::text("privateIpAddress", ip)])
        .collect();
    Ok(vec![
        El::text("networkInterfaceId", eni),
        El::set("assignedPrivateIpAddressesSet", assigned),
        El::text("return", "true"),
    ])
}

fn unassign_private_ip_addresses(
    state: &mut Ec2State,
    params: &Params,
) -> Result<Vec<El>, Ec2Error> {
    let eni = params.required("NetworkInterfaceId")?.to_string();
    if !state.enis.contains_key(&eni) {
        return Err(unknown_eni(&eni));
    }
    let requested = params.list("PrivateIpAddress");
    if requested.is_empty() {
        return Err(Ec2Error::missing("PrivateIpAddress"));
    }
    let mut ips = Vec::new();
    for text in &requested {
        let ip = private_ip(text)?;
        if state.secondary_eni(&ip) != Some(eni.as_str()) {
            // [I] The message is the mock's.
            return Err(Ec2Error::invalid(format!(
                "Some of the specified addresses are not assigned to interface {eni}"
            )));
        }
        ips.push(ip);
    }
    let now = Instant::now();
    for ip in &ips {
        state.assign(ip, None, now);
    }
    Ok(vec![El::text("return", "true")])
}

// ---- Instances (floaty's --test) ----

fn instance_item(state: &Ec2State, id: &str) -> Vec<El> {
    let mut item = vec![
        El::text("instanceId", id),
        El::text("imageId", IMAGE_ID),
        El::parent(
            "instanceState",
            vec![El::text("code", "16"), El::text("name", "running")],
        ),
    ];
    let Some((eni_id, eni)) = state.eni_of_instance(id) else {
        return item;
    };
    let public = state.eips.values().find(|e| {
        e.association
            .as_ref()
            .is_some_and(|a| a.eni == eni_id && a.private_ip == eni.primary)
    });
    item.extend([
        El::text("privateDnsName", dns_name(state, &eni.primary)),
        El::Empty("dnsName"),
        El::text("instanceType", "t3.micro"),
        El::text("launchTime", LAUNCHED),
        El::parent(
            "placement",
            vec![
                El::text("availabilityZone", zone(state)),
                El::Empty("groupName"),
                El::text("tenancy", "default"),
            ],
        ),
        El::text("subnetId", SUBNET_ID),
        El::text("vpcId", VPC_ID),
        El::text("privateIpAddress", &eni.primary),
    ]);
    if let Some(eip) = public {
        item.push(El::text("ipAddress", &eip.public_ip));
    }
    item.push(El::set(
        "networkInterfaceSet",
        vec![eni_item(state, eni_id, eni)],
    ));
    item
}

fn describe_instances(state: &mut Ec2State, params: &Params) -> Result<Vec<El>, Ec2Error> {
    let ids = params.list("InstanceId");
    let filters = params.filters()?;
    if let Some((name, _)) = filters.iter().find(|(n, _)| n != "instance-id") {
        return Err(Ec2Error::invalid(format!("The filter '{name}' is invalid")));
    }
    for id in &ids {
        if !state.instances.contains_key(id) {
            return Err(unknown_instance(id));
        }
    }
    let reservations = state
        .instances
        .keys()
        .filter(|id| ids.is_empty() || ids.contains(id))
        .filter(|id| filters.iter().all(|(_, values)| values.contains(id)))
        .map(|id| {
            vec![
                El::text(
                    "reservationId",
                    format!("r-{}", id.trim_start_matches("i-")),
                ),
                El::text("ownerId", OWNER_ID),
                El::set("groupSet", Vec::new()),
                El::set("instancesSet", vec![instance_item(state, id)]),
            ]
        })
        .collect();
    Ok(vec![El::set("reservationSet", reservations)])
}

// ---- Test controls ----

fn control_error(status: u16, message: &str) -> Response {
    Response::json(status, &json!({ "message": message }))
}

/// Test-only controls under `/_mock/`, never faulted, throttled or logged,
/// for tests that drive the binary:
/// - `GET /_mock/state` → `{"elastic_ips": {"PUBLIC": "i-..."|null},
///   "secondary_ips": {"IP": "eni-..."|null}}`
/// - `PUT /_mock/fault` with a fault description (see `fault::rule_from_json`)
/// - `PUT /_mock/throttle` with `{"n": N}`
/// - `PUT /_mock/elastic-ips/{public-ip}` with `{"instance": "i-..."|null}`
/// - `PUT /_mock/secondary-ips/{ip}` with `{"eni": "eni-..."|null}`
fn control_api(state: &mut Ec2State, req: &RawRequest, path: &str) -> Response {
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(_) if req.body.is_empty() => Value::Null,
        Err(e) => return control_error(400, &format!("invalid JSON: {e}")),
    };
    match (req.method.as_str(), path) {
        ("GET", "state") => {
            let eips: serde_json::Map<String, Value> = state
                .eips
                .values()
                .map(|e| (e.public_ip.clone(), json!(state.eip_instance(&e.public_ip))))
                .collect();
            let secondaries: serde_json::Map<String, Value> = state
                .secondaries
                .iter()
                .map(|(ip, s)| (ip.clone(), json!(s.eni)))
                .collect();
            Response::json(
                200,
                &json!({"elastic_ips": eips, "secondary_ips": secondaries}),
            )
        }
        ("PUT", "fault") => match fault::rule_from_json(&body) {
            Ok(rule) => {
                state.fault = rule;
                Response::empty(204)
            }
            Err(e) => control_error(400, &e),
        },
        ("PUT", "throttle") => match body.get("n").and_then(Value::as_u64) {
            Some(n) => {
                state.throttled = usize::try_from(n).unwrap_or(usize::MAX);
                Response::empty(204)
            }
            None => control_error(400, "needs {\"n\": N}"),
        },
        ("PUT", p) if p.starts_with("elastic-ips/") => {
            let ip = p.trim_start_matches("elastic-ips/");
            let Some(allocation) = state
                .eips
                .iter()
                .find(|(_, e)| e.public_ip == ip)
                .map(|(id, _)| id.clone())
            else {
                return control_error(404, "no such Elastic IP");
            };
            match body.get("instance").and_then(Value::as_str) {
                Some(instance) => {
                    let Some((eni, e)) = state.eni_of_instance(instance) else {
                        return control_error(404, "no such instance");
                    };
                    let (eni, primary) = (eni.to_string(), e.primary.clone());
                    state.associate(&allocation, &eni, &primary);
                }
                None => {
                    if let Some(e) = state.eips.get_mut(&allocation) {
                        e.association = None;
                    }
                    state.generation += 1;
                }
            }
            Response::empty(204)
        }
        ("PUT", p) if p.starts_with("secondary-ips/") => {
            let ip = p.trim_start_matches("secondary-ips/").to_string();
            let eni = body.get("eni").and_then(Value::as_str);
            if eni.is_some_and(|e| !state.enis.contains_key(e)) {
                return control_error(404, "no such ENI");
            }
            state.assign(&ip, eni, Instant::now());
            Response::empty(204)
        }
        _ => control_error(404, "no such control route"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_parameters_and_patterns() {
        let p = Params(vec![
            ("AllocationId.2".into(), "b".into()),
            ("AllocationId.1".into(), "a".into()),
            ("AllocationId.0".into(), "zero".into()),
            ("AllocationId.x".into(), "x".into()),
            ("AllocationIdX.3".into(), "no".into()),
            ("Filter.1.Name".into(), "public-ip".into()),
            ("Filter.1.Value.2".into(), "2".into()),
            ("Filter.1.Value.1".into(), "1".into()),
        ]);
        assert_eq!(p.list("AllocationId"), ["a", "b"]);
        assert_eq!(
            p.filters(),
            Ok(vec![(
                "public-ip".to_string(),
                vec!["1".to_string(), "2".into()]
            )])
        );
        assert!(matches_pattern("Filter.N.Value.N", "Filter.10.Value.3"));
        assert!(!matches_pattern("Filter.N.Value.N", "Filter.0.Value.3"));
        assert!(!matches_pattern("PrivateIpAddress.N", "PrivateIpAddress"));
        assert!(!matches_pattern("InstanceId", "InstanceId.1"));
        let orphan = Params(vec![("Filter.2.Value.1".into(), "v".into())]);
        assert!(orphan.filters().is_err());
        let flags = Params(vec![
            ("A".into(), "TRUE".into()),
            ("B".into(), "yes".into()),
        ]);
        assert_eq!(flags.flag("A", false), Ok(true));
        assert_eq!(flags.flag("C", true), Ok(true));
        assert!(flags.flag("B", true).is_err());
    }

    #[test]
    fn unknown_parameters_are_refused() {
        let p = Params(vec![
            ("Action".into(), "AssociateAddress".into()),
            ("AllowReassignment".into(), "true".into()),
        ]);
        let spec = ACTIONS
            .iter()
            .find(|s| s.name == "AssociateAddress")
            .expect("spec");
        let e = p.check_known(spec.params).expect_err("refused");
        assert_eq!(e.code, "UnknownParameter");
        assert!(e.message.contains("AllowReassignment"), "{e:?}");
    }
}
