//! What plugins may reach outside the sandbox: HTTP to granted hosts, behind an SSRF guard,
//! and email through the host's SMTP transport.
//!
//! The guard resolves every destination itself and refuses loopback, private, link-local,
//! shared, multicast and metadata addresses (IPv4, IPv6, and IPv4 mapped into IPv6), for the
//! first request and for every redirect hop, unless the operator explicitly allows private
//! destinations. Connections use only the addresses the guard approved.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use lettre::message::dkim::{DkimConfig, DkimSigningAlgorithm, DkimSigningKey};
use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use utoipa::ToSchema;

use crate::bindings::v0_1_0::portico::plugin::{http, smtp};

/// Largest response body handed to a plugin.
const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Redirects followed per request.
const MAX_REDIRECTS: usize = 5;
/// Headers a plugin may set on one request, and the size of all of them together: checked
/// before the host builds the request (a header map past 32,768 entries would panic).
const MAX_REQUEST_HEADERS: usize = 100;
const MAX_REQUEST_HEADER_BYTES: usize = 64 * 1024;
/// The largest URL and request body a plugin may send.
const MAX_URL_BYTES: usize = 8 * 1024;
const MAX_REQUEST_BODY_BYTES: usize = 1 << 20;
/// Headers that carry the sender's credentials: never sent on to another origin.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

/// In a manifest's `http_hosts`: any host the tenant names, such as a webhook's receiver. It is
/// never a grant itself, so such a plugin reaches only the hosts a tenant granted one by one.
pub const ANY_HOST: &str = "*";

/// Capabilities a tenant approved for one install, out of those its manifest requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Host names the plugin may send HTTP requests to, on ports 80 and 443; `host:port` names
    /// another port of a host. In a manifest, `*` asks for any host the tenant grants.
    #[serde(default)]
    pub http_hosts: Vec<String>,
    /// Whether the plugin may send email.
    #[serde(default)]
    pub smtp: bool,
}

impl Grants {
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether `host` is granted, on some port.
    pub fn allows_http(&self, host: &str) -> bool {
        let named_with_port = |h: &String| {
            h.to_ascii_lowercase()
                .strip_prefix(&format!("{}:", host.to_ascii_lowercase()))
                .is_some_and(|port| port.parse::<u16>().is_ok())
        };
        !host.is_empty()
            && host != ANY_HOST
            && self
                .http_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(host) || named_with_port(h))
    }

    /// Whether `port` of a granted `host` may be reached: 80 and 443, or a port the grants name
    /// as `host:port`.
    pub fn allows_port(&self, host: &str, port: u16) -> bool {
        matches!(port, 80 | 443)
            || self
                .http_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&format!("{host}:{port}")))
    }

    /// True when every grant here is also in `other` (what a manifest requests).
    pub fn is_within(&self, other: &Grants) -> bool {
        let any_host = other.http_hosts.iter().any(|h| h == ANY_HOST);
        let requested = |h: &String| other.allows_http(h) || (any_host && h != ANY_HOST);
        (!self.smtp || other.smtp) && self.http_hosts.iter().all(requested)
    }

    /// These grants less [`ANY_HOST`]: what a manifest's request grants without a tenant.
    pub fn without_any_host(mut self) -> Self {
        self.http_hosts.retain(|h| h != ANY_HOST);
        self
    }
}

/// The operator's settings for outbound traffic.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    /// Allow loopback and private destinations (tests, and installs on a private network).
    pub allow_private: bool,
    /// Allow plain `http://` as well as `https://`.
    pub allow_http: bool,
    /// Where plugins' email goes, and the sender address; absent: plugins cannot send email.
    pub smtp: Option<MailSettings>,
}

impl OutboundPolicy {
    /// Whether plugins may connect to `ip`: public addresses, private ones where the operator
    /// allows them, cloud metadata services never.
    pub fn allows(&self, ip: IpAddr) -> bool {
        !is_cloud_metadata(ip) && (self.allow_private || is_public(ip))
    }
}

/// Where plugins' email goes, and from whom.
#[derive(Debug, Clone)]
pub struct MailSettings {
    pub transport: MailTransport,
    pub from: String,
}

#[derive(Debug, Clone)]
pub enum MailTransport {
    /// An SMTP server.
    Smtp { host: String, port: u16 },
    /// One `.eml` file per message in a folder, for a demo without a mail server.
    Directory(std::path::PathBuf),
}

/// Why an outbound call did not happen or did not finish.
#[derive(Debug)]
pub enum OutboundError {
    /// The guard refused the destination: a grant or address violation.
    Refused(String),
    Timeout,
    Failed(String),
}

/// The host's outbound HTTP and SMTP, under the operator's policy.
pub struct Outbound {
    policy: OutboundPolicy,
    /// Messages being built and signed on the blocking pool, one per core at most.
    building: Arc<Semaphore>,
}

impl Outbound {
    pub fn new(policy: OutboundPolicy) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self {
            policy,
            building: Arc::new(Semaphore::new(cores)),
        }
    }

    /// Sends a plugin's request to a granted host, following redirects to granted hosts only.
    pub async fn http(
        &self,
        grants: &Grants,
        request: http::Request,
    ) -> Result<http::Response, OutboundError> {
        if request.url.len() > MAX_URL_BYTES || request.body.len() > MAX_REQUEST_BODY_BYTES {
            return Err(OutboundError::Refused(format!(
                "a URL of at most {MAX_URL_BYTES} bytes and a body of at most {MAX_REQUEST_BODY_BYTES}"
            )));
        }
        let method = reqwest::Method::from_bytes(request.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| {
                OutboundError::Failed(format!("{:?} is not an HTTP method", request.method))
            })?;
        let mut url = reqwest::Url::parse(&request.url)
            .map_err(|e| OutboundError::Failed(format!("bad URL: {e}")))?;
        let header_bytes: usize = request
            .headers
            .iter()
            .map(|(name, value)| name.len() + value.len())
            .sum();
        if request.headers.len() > MAX_REQUEST_HEADERS || header_bytes > MAX_REQUEST_HEADER_BYTES {
            return Err(OutboundError::Refused(format!(
                "at most {MAX_REQUEST_HEADERS} headers of {MAX_REQUEST_HEADER_BYTES} bytes in all"
            )));
        }
        // The host names the destination itself: a plugin's `Host` header is never passed on.
        let mut headers: Vec<&(String, String)> = request
            .headers
            .iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("host"))
            .collect();
        let (mut method, mut body) = (method, request.body.clone());
        let origin = url.origin();
        for _ in 0..=MAX_REDIRECTS {
            let addrs = self.check_destination(grants, &url).await?;
            let host = url.host_str().unwrap_or_default().to_string();
            // Connect only to the addresses just checked, so a second DNS answer cannot differ.
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .connect_timeout(Duration::from_secs(5))
                .user_agent(concat!("portico/", env!("CARGO_PKG_VERSION")))
                .no_proxy()
                .resolve_to_addrs(&host, &addrs)
                .build()
                .map_err(|e| OutboundError::Failed(e.to_string()))?;
            let mut builder = client
                .request(method.clone(), url.clone())
                .body(body.clone());
            for (name, value) in &headers {
                builder = builder.header(name, value);
            }
            let response = builder.send().await.map_err(|e| {
                if e.is_timeout() {
                    OutboundError::Timeout
                } else {
                    OutboundError::Failed(e.without_url().to_string())
                }
            })?;
            if response.status().is_redirection()
                && let Some(location) = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
            {
                url = url
                    .join(location)
                    .map_err(|e| OutboundError::Failed(format!("bad redirect: {e}")))?;
                // To another origin the request goes as a 303 would send it: a GET without body
                // or credentials. Within the origin, 303 (and 301/302 after a POST) do the same
                // without dropping credentials; 307 and 308 repeat the request.
                let status = response.status().as_u16();
                let cross_origin = url.origin() != origin;
                if cross_origin {
                    headers.retain(|(name, _)| {
                        !CREDENTIAL_HEADERS.contains(&name.to_ascii_lowercase().as_str())
                    });
                }
                if cross_origin
                    || status == 303
                    || (matches!(status, 301 | 302) && method == reqwest::Method::POST)
                {
                    if method != reqwest::Method::HEAD {
                        method = reqwest::Method::GET;
                    }
                    body.clear();
                    headers.retain(|(name, _)| {
                        !name.eq_ignore_ascii_case("content-type")
                            && !name.eq_ignore_ascii_case("content-length")
                    });
                }
                continue;
            }
            return read_response(response).await;
        }
        Err(OutboundError::Failed(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }

    /// The addresses `url` may be reached at, or why it may not.
    async fn check_destination(
        &self,
        grants: &Grants,
        url: &reqwest::Url,
    ) -> Result<Vec<SocketAddr>, OutboundError> {
        match url.scheme() {
            "https" => {}
            "http" if self.policy.allow_http => {}
            other => {
                return Err(OutboundError::Refused(format!(
                    "the scheme {other:?} is not allowed: plugins use https, unless the host's \
                     operator allows http (plugins_allow_http; `portico plugin run --allow-http`)"
                )));
            }
        }
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if !grants.allows_http(&host) {
            return Err(OutboundError::Refused(format!(
                "HTTP to {host:?} was not granted: the manifest must ask for it (http_hosts) and \
                 the tenant approve it (`portico plugin run --grant-http {host}`)"
            )));
        }
        let port = url.port_or_known_default().unwrap_or(443);
        // Other ports on a private network are the operator's choice (and local tests').
        if !self.policy.allow_private && !grants.allows_port(&host, port) {
            return Err(OutboundError::Refused(format!(
                "port {port} of {host:?} is not allowed: only 80 and 443, unless the manifest names {host}:{port} and the tenant granted it"
            )));
        }
        self.resolve(&host, port).await
    }

    /// The addresses `host` resolves to, all of them allowed by the policy, or why not.
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, OutboundError> {
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| OutboundError::Failed(format!("cannot resolve {host}: {e}")))?
                .collect(),
        };
        if let Some(bad) = addrs.iter().find(|a| !self.policy.allows(a.ip())) {
            let why = if is_cloud_metadata(bad.ip()) {
                "a cloud metadata address, closed to every plugin"
            } else {
                "a private address: open to plugins only where the host's operator allows it \
                 (plugins_allow_private_network; `portico plugin run --allow-private-network`)"
            };
            return Err(OutboundError::Refused(format!(
                "{host} resolves to {}, which plugins may not reach: {why}",
                bad.ip()
            )));
        }
        if addrs.is_empty() {
            return Err(OutboundError::Failed(format!("{host} has no addresses")));
        }
        Ok(addrs)
    }

    /// Sends a plugin's email through the tenant's relay when its install names one, else
    /// through the host's SMTP server; signs it when the install has a DKIM key. Its Message-ID
    /// is derived from `key`, so the same message sent twice (a retry after a crash) carries the
    /// same id.
    pub async fn email(
        &self,
        email: smtp::Email,
        key: &str,
        route: &MailRoute,
    ) -> Result<(), smtp::SmtpError> {
        let host_settings = self.policy.smtp.as_ref();
        // The host's server sends as the host's sender only; a tenant's own relay, as the tenant.
        let from = match (&route.relay, host_settings) {
            (Some(relay), _) => &relay.from,
            (None, Some(settings)) => &settings.from,
            (None, None) => {
                return Err(smtp::SmtpError::Failed(
                    "no SMTP server is configured on this host".into(),
                ));
            }
        };
        // Parsing, encoding and signing grow with the message, and an RSA signature costs a
        // millisecond or more: done on the blocking pool, a bounded number at a time, so no
        // plugin holds a runtime thread while its deadline runs.
        let permit = self
            .building
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| smtp::SmtpError::Failed("the host is shutting down".into()))?;
        let (from, key, dkim) = (from.clone(), key.to_string(), route.dkim.clone());
        let message = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            build_message(&from, email, &key, dkim.as_deref())
        })
        .await
        .map_err(|e| smtp::SmtpError::Failed(format!("building the message failed: {e}")))??;
        if let Some(relay) = &route.relay {
            return self.through_relay(relay, message).await;
        }
        let Some(MailSettings { transport, .. }) = host_settings else {
            return Err(smtp::SmtpError::Failed(
                "no SMTP server is configured on this host".into(),
            ));
        };
        match transport {
            MailTransport::Smtp { host, port } => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
                    .port(*port)
                    .timeout(Some(Duration::from_secs(10)))
                    .build()
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        if e.is_permanent() {
                            smtp::SmtpError::Rejected(e.to_string())
                        } else {
                            smtp::SmtpError::Failed(e.to_string())
                        }
                    })
            }
            MailTransport::Directory(folder) => AsyncFileTransport::<Tokio1Executor>::new(folder)
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| smtp::SmtpError::Failed(e.to_string())),
        }
    }
}

/// The message a plugin asked for, from `from`, with a Message-ID derived from `key`, signed
/// when the install has a DKIM key.
fn build_message(
    from: &str,
    email: smtp::Email,
    key: &str,
    dkim: Option<&DkimConfig>,
) -> Result<Message, smtp::SmtpError> {
    let mailbox = |addr: &str| {
        addr.parse::<Mailbox>()
            .map_err(|_| smtp::SmtpError::InvalidAddress(addr.to_string()))
    };
    let sender = mailbox(from)?;
    let digest = format!("{:x}", Sha256::digest(key.as_bytes()));
    let mut builder = Message::builder()
        .message_id(Some(format!(
            "<{}@{}>",
            &digest[..32],
            sender.email.domain()
        )))
        .from(sender)
        .subject(email.subject);
    for to in &email.to {
        builder = builder.to(mailbox(to)?);
    }
    if let Some(reply_to) = &email.reply_to {
        builder = builder.reply_to(mailbox(reply_to)?);
    }
    let mut message = match email.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(email.text, html)),
        None => builder.header(ContentType::TEXT_PLAIN).body(email.text),
    }
    .map_err(|e| smtp::SmtpError::InvalidAddress(e.to_string()))?;
    if let Some(dkim) = dkim {
        message.sign(dkim);
    }
    Ok(message)
}

impl Outbound {
    /// Sends through a tenant's relay, after the same destination checks as HTTP: a relay on a
    /// private address only where the operator allows it, and no plaintext relay elsewhere.
    async fn through_relay(&self, relay: &Relay, message: Message) -> Result<(), smtp::SmtpError> {
        let refused = |why: String| smtp::SmtpError::Rejected(why);
        let addrs = self
            .resolve(&relay.host, relay.port)
            .await
            .map_err(|e| match e {
                OutboundError::Refused(why) => refused(why),
                OutboundError::Timeout => {
                    smtp::SmtpError::Failed("resolving the relay timed out".into())
                }
                OutboundError::Failed(why) => smtp::SmtpError::Failed(why),
            })?;
        let tls = TlsParameters::new(relay.host.clone())
            .map_err(|e| refused(format!("TLS for {}: {e}", relay.host)))?;
        let tls = match relay.security {
            RelaySecurity::StartTls => Tls::Required(tls),
            RelaySecurity::Tls => Tls::Wrapper(tls),
            RelaySecurity::None if self.policy.allow_private => Tls::None,
            RelaySecurity::None => {
                return Err(refused(
                    "a relay without TLS is only allowed on a private network".into(),
                ));
            }
        };
        // Connect to the address just checked, so a second DNS answer cannot differ.
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addrs[0].ip().to_string())
                .port(relay.port)
                .tls(tls)
                .timeout(Some(Duration::from_secs(10)));
        if let Some((user, password)) = &relay.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        builder
            .build()
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| {
                if e.is_permanent() {
                    smtp::SmtpError::Rejected(e.to_string())
                } else {
                    smtp::SmtpError::Failed(e.to_string())
                }
            })
    }
}

/// How a relay's connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelaySecurity {
    /// Plain connection upgraded with STARTTLS (usually port 587); refused without it.
    StartTls,
    /// TLS from the first byte (usually port 465).
    Tls,
    /// No encryption: only to a relay on a private network, where the operator allows that.
    None,
}

/// A tenant's own SMTP relay.
#[derive(Debug, Clone)]
pub struct Relay {
    pub host: String,
    pub port: u16,
    pub security: RelaySecurity,
    pub credentials: Option<(String, String)>,
    /// The tenant's sender address.
    pub from: String,
}

/// Where one install's email goes and how it is signed, from the install's configuration
/// (`smtp`, `from`, `dkim`) and secrets (`smtp_password`, `dkim_private_key`). Empty: the
/// host's server, unsigned.
#[derive(Default)]
pub struct MailRoute {
    pub relay: Option<Relay>,
    /// Shared with the blocking task that signs.
    pub dkim: Option<Arc<DkimConfig>>,
}

impl MailRoute {
    /// Reads the route from an install's configuration (JSON) and secrets.
    pub fn from_install(config: &str, secrets: &[(String, String)]) -> Result<Self, String> {
        let config: serde_json::Value =
            serde_json::from_str(config).map_err(|e| format!("configuration: {e}"))?;
        let secret = |name: &str| {
            secrets
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        let text = |value: &serde_json::Value, key: &str| value[key].as_str().map(str::to_string);
        let relay = match config.get("smtp") {
            Some(smtp) if smtp.is_object() => {
                let host = text(smtp, "host").ok_or("smtp.host is missing")?;
                let security = match smtp["security"].as_str().unwrap_or("starttls") {
                    "starttls" => RelaySecurity::StartTls,
                    "tls" => RelaySecurity::Tls,
                    "none" => RelaySecurity::None,
                    other => {
                        return Err(format!(
                            "smtp.security {other:?} is not starttls, tls or none"
                        ));
                    }
                };
                let default_port = if security == RelaySecurity::Tls {
                    465
                } else {
                    587
                };
                let port = smtp["port"]
                    .as_u64()
                    .map(|p| u16::try_from(p).map_err(|_| format!("smtp.port {p} is not a port")))
                    .transpose()?
                    .unwrap_or(default_port);
                let credentials = match (text(smtp, "username"), secret("smtp_password")) {
                    (Some(user), Some(password)) => Some((user, password)),
                    (None, None) => None,
                    _ => {
                        return Err("smtp.username and the smtp_password secret go together".into());
                    }
                };
                let from = text(&config, "from").ok_or("a relay needs config.from, the sender")?;
                Some(Relay {
                    host,
                    port,
                    security,
                    credentials,
                    from,
                })
            }
            _ => None,
        };
        let dkim = match config.get("dkim") {
            Some(dkim) if dkim.is_object() => {
                let algorithm = match dkim["algorithm"].as_str().unwrap_or("rsa") {
                    "rsa" => DkimSigningAlgorithm::Rsa,
                    "ed25519" => DkimSigningAlgorithm::Ed25519,
                    other => return Err(format!("dkim.algorithm {other:?} is not rsa or ed25519")),
                };
                let key =
                    secret("dkim_private_key").ok_or("dkim needs the dkim_private_key secret")?;
                let key = DkimSigningKey::new(&key, algorithm)
                    .map_err(|_| "the dkim_private_key secret is not a key of that algorithm")?;
                Some(Arc::new(DkimConfig::default_config(
                    text(dkim, "selector").ok_or("dkim.selector is missing")?,
                    text(dkim, "domain").ok_or("dkim.domain is missing")?,
                    key,
                )))
            }
            _ => None,
        };
        Ok(Self { relay, dkim })
    }
}

async fn read_response(mut response: reqwest::Response) -> Result<http::Response, OutboundError> {
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.to_string(), v.to_string())))
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| OutboundError::Failed(e.to_string()))?
    {
        let room = MAX_RESPONSE_BYTES.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    Ok(http::Response {
        status,
        headers,
        body,
    })
}

/// The host part of an absolute URL, lower-cased.
pub fn url_host(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    Some(
        url.host_str()?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase(),
    )
}

/// Cloud instance-metadata services, which hand out the machine's credentials: never reachable,
/// even where the operator opened private networks to plugins.
fn is_cloud_metadata(ip: IpAddr) -> bool {
    const METADATA: [IpAddr; 6] = [
        IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)), // AWS, GCP, Azure, OpenStack, …
        IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),   // AWS ECS task credentials
        IpAddr::V4(Ipv4Addr::new(169, 254, 169, 123)), // AWS time sync, same link
        IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)), // Alibaba Cloud
        IpAddr::V4(Ipv4Addr::new(192, 0, 0, 192)),     // Oracle Cloud
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)), // AWS over IPv6
    ];
    let ip = ip.to_canonical();
    // Every link-local IPv4 address is on the metadata service's link.
    matches!(ip, IpAddr::V4(v4) if v4.is_link_local()) || METADATA.contains(&ip)
}

/// True for addresses on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let segments = v6.segments();
            // NAT64 (64:ff9b::/96) embeds an IPv4 address.
            if segments[0..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = segments[6].to_be_bytes();
                let [c, d] = segments[7].to_be_bytes();
                return is_public_v4(Ipv4Addr::new(a, b, c, d));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || segments[0..6] == [0; 6] // IPv4-compatible ::a.b.c.d (deprecated)
                || segments[0] == 0x2002 // 6to4, which relays to any IPv4 address
                || (segments[0] == 0x2001 && segments[1] == 0) // Teredo
                || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (segments[0] & 0xfe00) == 0xfc00 // unique local, incl. cloud metadata fd00:ec2::254
                || (segments[0] & 0xffc0) == 0xfe80 // link-local
                || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
                || v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1))
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // includes the metadata address 169.254.169.254
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "::a9fe:a9fe",
            "2002:7f00:1::1",
            "2002:c0a8:101::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "fec0::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} should not be public");
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip} should be public");
        }
    }

    #[test]
    fn private_networks_never_open_cloud_metadata() {
        let open = OutboundPolicy {
            allow_private: true,
            ..OutboundPolicy::default()
        };
        for ip in [
            "169.254.169.254",
            "169.254.170.2",
            "169.254.1.1",
            "100.100.100.200",
            "192.0.0.192",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
        ] {
            assert!(!open.allows(ip.parse().unwrap()), "{ip} must stay closed");
        }
        assert!(open.allows("10.0.0.5".parse().unwrap()));
        assert!(open.allows("127.0.0.1".parse().unwrap()));
        let closed = OutboundPolicy::default();
        assert!(!closed.allows("10.0.0.5".parse().unwrap()));
        assert!(closed.allows("1.1.1.1".parse().unwrap()));
    }

    #[test]
    fn grants_match_hosts_exactly() {
        let grants = Grants {
            http_hosts: vec!["api.example.com".into()],
            smtp: false,
        };
        assert!(grants.allows_http("API.example.com"));
        assert!(!grants.allows_http("evil.api.example.com"));
        assert!(!grants.allows_http(""));
        assert!(grants.allows_port("api.example.com", 443));
        assert!(
            !grants.allows_port("api.example.com", 8443),
            "another port must be named"
        );
        let with_port = Grants {
            http_hosts: vec!["api.example.com:8443".into()],
            smtp: false,
        };
        assert!(with_port.allows_http("api.example.com"));
        assert!(with_port.allows_port("api.example.com", 8443));
        assert!(!with_port.allows_port("api.example.com", 8444));
        assert!(
            !with_port.is_within(&grants),
            "a tenant grants no port the manifest did not name"
        );
        let requested = Grants {
            http_hosts: vec!["api.example.com".into(), "b.example".into()],
            smtp: true,
        };
        assert!(grants.is_within(&requested));
        assert!(!requested.is_within(&grants));
    }

    #[test]
    fn any_host_is_for_the_tenant_to_name() {
        let requested = Grants {
            http_hosts: vec![ANY_HOST.into()],
            smtp: false,
        };
        assert!(!requested.allows_http("api.example.com"));
        assert!(!requested.allows_http(ANY_HOST));
        let named = Grants {
            http_hosts: vec!["hooks.example.com".into()],
            smtp: false,
        };
        assert!(named.is_within(&requested));
        assert!(
            !requested.is_within(&requested),
            "`*` itself is never granted"
        );
        assert_eq!(requested.without_any_host(), Grants::none());
    }
}
