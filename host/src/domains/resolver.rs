//! Which tenant a request's Host header names: `<slug>.<base domain>`, or a verified custom
//! domain. Lookups are cached and the cache follows tenant and domain events.

use std::time::Duration;

use moka::future::Cache;

use super::store;
use crate::db::Pool;
use crate::events::{BoxFuture, Event, Recorded, Subscriber};
use crate::tenants::{Tenant, store as tenants};

/// Maps a request's Host header to the tenant it serves, through a cache.
#[derive(Clone)]
pub struct HostResolver {
    base_domain: String,
    cache: Cache<String, Option<Tenant>>,
    pool: Pool,
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
                // Cached for every tenant, so looked up for none in particular.
                crate::db::across_tenants(async move { lookup(&pool, &base, &host).await }),
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
    match store::verified_owner(pool, host).await? {
        Some(tenant) => Ok(tenants::find(pool, tenant.as_str()).await.ok()),
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
