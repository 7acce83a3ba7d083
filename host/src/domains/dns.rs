//! Looks up the TXT records that prove control of a custom domain.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::{ResolveErrorKind, TokioResolver};

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
