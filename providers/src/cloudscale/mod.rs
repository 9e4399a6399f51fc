//! cloudscale.ch Floating IPs.
//!
//! Moving an address is one synchronous `PATCH`; there is nothing to poll.
//! In steady state we read first and write only when the address points
//! elsewhere, so a healthy cluster costs one GET per interval and never
//! rewrites routing for nothing (vshn/floaty PATCHed blindly every time).

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde::de::DeserializeOwned;

use crate::http::{self, read_body, with_slash, MAX_BODY};
use crate::Secret;
use crate::{ask, BoxFuture, Check, Mode, Outcome, Provider, ProviderError, WriteGate};

mod api;
mod metadata;
#[cfg(test)]
mod tests;

pub const DEFAULT_ENDPOINT: &str = "https://api.cloudscale.ch/";
pub use crate::metadata::DEFAULT_METADATA_URL;

/// `PartialEq` so a reload can tell a changed setting (a rotated token
/// included) without comparing text.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// API base URL; a missing trailing `/` is added.
    pub endpoint: String,
    /// A read-write API token (read-only ones cannot move addresses).
    pub token: Secret,
    pub server: ServerSource,
    /// CA certificates trusted on top of the built-in roots, for the API
    /// and the metadata service (`ca-file`).
    pub ca: Option<crate::CaBundle>,
}

impl Settings {
    /// Settings for the public API.
    pub fn new(token: Secret, server: ServerSource) -> Settings {
        Settings {
            endpoint: DEFAULT_ENDPOINT.to_string(),
            token,
            server,
            ca: None,
        }
    }
}

/// Where "this server" comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerSource {
    Uuid(uuid::Uuid),
    /// Ask the metadata service once, at start-up.
    Metadata {
        base_url: String,
    },
}

impl ServerSource {
    /// The metadata service at its usual link-local address.
    pub fn metadata() -> ServerSource {
        ServerSource::Metadata {
            base_url: DEFAULT_METADATA_URL.to_string(),
        }
    }
}

pub struct Cloudscale {
    client: reqwest::Client,
    /// Always ends with `/`, so paths are appended without `Url::join`'s
    /// surprises (joining drops the last segment of a base without `/`).
    endpoint: String,
    /// Marked sensitive, so reqwest's own Debug output hides it too.
    auth: HeaderValue,
    token: Secret,
    server: uuid::Uuid,
    server_text: String,
}

impl fmt::Debug for Cloudscale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cloudscale")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Cloudscale {
    /// Builds the client and, for [`ServerSource::Metadata`], learns the
    /// server UUID (retrying for about 10 s, then failing with `Setup`).
    pub async fn new(settings: Settings) -> Result<Cloudscale, ProviderError> {
        Cloudscale::with_metadata_budget(settings, metadata::BUDGET).await
    }

    pub(crate) async fn with_metadata_budget(
        settings: Settings,
        budget: Duration,
    ) -> Result<Cloudscale, ProviderError> {
        let endpoint = with_slash(&settings.endpoint);
        http::check_url("cloudscale", "endpoint", &endpoint)?;
        let token = Secret::new(settings.token.expose().trim());
        let auth = http::bearer("cloudscale", &token)?;
        let ca = settings.ca.as_ref();
        let client = http::client(ca)?;
        let server = match &settings.server {
            ServerSource::Uuid(u) => *u,
            ServerSource::Metadata { base_url } => {
                let direct = http::metadata_client(ca)?;
                let u = metadata::server_uuid(&direct, base_url, budget).await?;
                tracing::info!(server = %u, "cloudscale: server UUID from metadata");
                u
            }
        };
        Ok(Cloudscale {
            client,
            endpoint,
            auth,
            token,
            server,
            server_text: server.to_string(),
        })
    }

    /// The server this provider points addresses at.
    pub fn server(&self) -> uuid::Uuid {
        self.server
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint)
    }

    async fn send(
        &self,
        operation: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ProviderError> {
        http::send(operation, request.header(AUTHORIZATION, self.auth.clone())).await
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ProviderError> {
        let operation = format!("GET {path}");
        let result = async {
            let mut response = self
                .send(&operation, self.client.get(self.url(path)))
                .await?;
            let body = read_body(&operation, &mut response, MAX_BODY).await?;
            http::decode(&operation, &body)
        }
        .await;
        result.map_err(|e| self.token.redact_error(e))
    }

    async fn patch(&self, ip: IpAddr, gate: &dyn WriteGate) -> Result<(), ProviderError> {
        let path = format!("v1/floating-ips/{ip}");
        let operation = format!("PATCH {path}");
        // Last moment before the write leaves: nothing awaits between this
        // check and the send but the connection itself.
        ask(gate, || operation.clone())?;
        let body = serde_json::to_vec(&api::Patch {
            server: &self.server_text,
        })
        .map_err(|e| ProviderError::Setup(format!("{operation}: cannot encode the body: {e}")))?;
        let request = self
            .client
            .patch(self.url(&path))
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        let mut response = self
            .send(&operation, request)
            .await
            .map_err(|e| self.token.redact_error(e))?;
        // Any 2xx moved it; reading the (usually empty) body only lets the
        // connection be reused, so its failures do not matter.
        let _ = read_body(&operation, &mut response, http::MAX_ERROR_BODY).await;
        Ok(())
    }

    fn is_us(&self, uuid: &str) -> bool {
        uuid::Uuid::parse_str(uuid.trim()).is_ok_and(|u| u == self.server)
    }

    async fn do_refresh(
        &self,
        ip: IpAddr,
        mode: Mode,
        gate: &dyn WriteGate,
    ) -> Result<Outcome, ProviderError> {
        let previous = match mode {
            Mode::Write => None,
            Mode::Verify => {
                let current: api::FloatingIp =
                    self.get_json(&format!("v1/floating-ips/{ip}")).await?;
                let server = current.server.as_ref();
                if server
                    .and_then(|s| s.uuid.as_deref())
                    .is_some_and(|u| self.is_us(u))
                {
                    return Ok(Outcome::AlreadyHere);
                }
                Some(
                    server
                        .and_then(|s| s.uuid.clone().or_else(|| s.name.clone()))
                        .unwrap_or_else(|| "nowhere".to_string()),
                )
            }
        };
        self.patch(ip, gate).await?;
        Ok(Outcome::Moved { previous })
    }

    async fn do_self_test(&self) -> Vec<Check> {
        let server_path = format!("v1/servers/{}", self.server);
        let server = Check {
            what: format!("cloudscale GET {server_path}"),
            result: match self.get_json::<api::Server>(&server_path).await {
                Ok(s) => Ok(format!(
                    "server {:?}, status {}",
                    s.name.unwrap_or_default(),
                    s.status.as_deref().unwrap_or("unknown")
                )),
                Err(e) => Err(e.to_string()),
            },
        };
        let ips = Check {
            what: "cloudscale GET v1/floating-ips".to_string(),
            result: match self
                .get_json::<Vec<api::FloatingIp>>("v1/floating-ips")
                .await
            {
                Ok(list) => {
                    let here: Vec<&str> = list
                        .iter()
                        .filter(|f| {
                            f.server
                                .as_ref()
                                .and_then(|s| s.uuid.as_deref())
                                .is_some_and(|u| self.is_us(u))
                        })
                        .map(api::FloatingIp::address)
                        .collect();
                    Ok(if here.is_empty() {
                        format!("{} floating IPs visible, none pointing here", list.len())
                    } else {
                        format!(
                            "{} floating IPs visible, {} pointing here: {}",
                            list.len(),
                            here.len(),
                            here.join(", ")
                        )
                    })
                }
                Err(e) => Err(e.to_string()),
            },
        };
        vec![server, ips]
    }
}

impl Provider for Cloudscale {
    fn name(&self) -> &'static str {
        "cloudscale"
    }

    fn target(&self) -> String {
        self.server_text.clone()
    }

    fn refresh<'a>(
        &'a self,
        ip: IpAddr,
        mode: Mode,
        gate: &'a dyn WriteGate,
    ) -> BoxFuture<'a, Result<Outcome, ProviderError>> {
        Box::pin(self.do_refresh(ip, mode, gate))
    }

    fn self_test(&self) -> BoxFuture<'_, Vec<Check>> {
        Box::pin(self.do_self_test())
    }
}
