//! Domains: every tenant answers at `<slug>.<base domain>` and at custom domains it has proven
//! to control with a DNS TXT record at `_portico-challenge.<domain>`.

pub mod routes;

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::{ResolveErrorKind, TokioResolver};
use moka::future::Cache;
use sqlx::FromRow;

use crate::db::Pool;
use crate::events::{BoxFuture, Event, Recorded, Subscriber};
use crate::tenants::{Tenant, store as tenants};
use crate::types::DomainName;

/// The TXT record name that proves control of `domain`.
pub fn challenge_name(domain: &DomainName) -> String {
    format!("_portico-challenge.{domain}")
}

/// Looks up domain-verification TXT records.
#[derive(Clone)]
pub struct DnsVerifier {
    resolver: TokioResolver,
}

/// Why a TXT lookup found no proof.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("no TXT record exists at {0}")]
    NoRecord(String),
    #[error("the DNS lookup of {0} failed; try again later")]
    Failed(String),
}

impl DnsVerifier {
    /// Uses `nameserver` when given (tests start one on loopback), else the system's resolvers.
    pub fn new(nameserver: Option<SocketAddr>) -> anyhow::Result<Self> {
        let mut builder = match nameserver {
            Some(addr) => {
                let group = NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true);
                TokioResolver::builder_with_config(
                    ResolverConfig::from_parts(None, vec![], group),
                    TokioConnectionProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio()?,
        };
        // Verification must see a record as soon as the admin has published it.
        builder.options_mut().cache_size = 0;
        builder.options_mut().timeout = Duration::from_secs(3);
        builder.options_mut().attempts = 2;
        Ok(Self {
            resolver: builder.build(),
        })
    }

    /// All TXT strings published at `name`.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, LookupError> {
        let fqdn = format!("{name}.");
        match self.resolver.txt_lookup(fqdn).await {
            Ok(lookup) => Ok(lookup
                .iter()
                .map(|txt| {
                    txt.iter()
                        .map(|part| String::from_utf8_lossy(part))
                        .collect::<String>()
                })
                .collect()),
            Err(e) if matches!(e.kind(), ResolveErrorKind::Proto(p) if p.is_no_records_found()) => {
                Err(LookupError::NoRecord(name.to_string()))
            }
            Err(e) => {
                tracing::warn!(error = %e, name, "TXT lookup failed");
                Err(LookupError::Failed(name.to_string()))
            }
        }
    }
}

/// Maps a request's Host header to the tenant it serves, through a cache.
#[derive(Clone)]
pub struct HostResolver {
    base_domain: String,
    cache: Cache<String, Option<Tenant>>,
    pool: Pool,
}

#[derive(FromRow)]
struct TenantIdRow {
    tenant_id: String,
}

impl HostResolver {
    pub fn new(pool: Pool, base_domain: String) -> Self {
        let cache = Cache::builder()
            .max_capacity(100_000)
            .time_to_live(Duration::from_secs(300))
            .build();
        Self {
            base_domain,
            cache,
            pool,
        }
    }

    /// The tenant serving `host` (a Host header value, port allowed), if any.
    pub async fn resolve(&self, host: &str) -> anyhow::Result<Option<Tenant>> {
        let Some(host) = normalise_host(host) else {
            return Ok(None);
        };
        let pool = self.pool.clone();
        let base = self.base_domain.clone();
        self.cache
            .try_get_with(
                host.clone(),
                async move { lookup(&pool, &base, &host).await },
            )
            .await
            .map_err(|e| anyhow::anyhow!("resolving host: {e}"))
    }

    /// Drops every cached lookup (also when notifications from other replicas may have been
    /// missed).
    pub fn invalidate(&self) {
        self.cache.invalidate_all();
    }
}

/// Any change to tenants or domains may change what a host name resolves to.
impl Subscriber for HostResolver {
    fn notify<'a>(&'a self, event: &'a Recorded) -> BoxFuture<'a, ()> {
        if matches!(
            event.event,
            Event::TenantCreated { .. }
                | Event::TenantChanged
                | Event::TenantDeleted
                | Event::DomainChanged
        ) {
            self.invalidate();
        }
        Box::pin(async {})
    }
}

/// Lower-cases, strips the port and a trailing dot; `None` for anything that is not a host name.
fn normalise_host(raw: &str) -> Option<String> {
    let host = raw.trim();
    let host = match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    valid.then_some(host)
}

async fn lookup(pool: &Pool, base_domain: &str, host: &str) -> anyhow::Result<Option<Tenant>> {
    if let Some(slug) = host
        .strip_suffix(base_domain)
        .and_then(|s| s.strip_suffix('.'))
        && !slug.contains('.')
    {
        return match tenants::find(pool, slug).await {
            Ok(t) if t.slug == slug => Ok(Some(t)),
            Ok(_) | Err(crate::error::Error::NotFound(_)) => Ok(None),
            Err(e) => Err(anyhow::anyhow!("{e:?}")),
        };
    }
    let row: Option<TenantIdRow> =
        sqlx::query_as("SELECT tenant_id FROM domains WHERE name = $1 AND verified_at IS NOT NULL")
            .bind(host)
            .fetch_optional(pool)
            .await?;
    match row {
        Some(row) => Ok(tenants::find(pool, &row.tenant_id).await.ok()),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::normalise_host;

    #[test]
    fn hosts_are_normalised() {
        assert_eq!(
            normalise_host("Acme.Portico.Test:8080").as_deref(),
            Some("acme.portico.test")
        );
        assert_eq!(
            normalise_host("acme.portico.test.").as_deref(),
            Some("acme.portico.test")
        );
        assert_eq!(normalise_host("[::1]:80"), None);
        assert_eq!(normalise_host("a b"), None);
        assert_eq!(normalise_host(""), None);
    }
}
