//! Looks up the TXT records that prove control of a custom domain.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

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
                let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                    .into_iter()
                    .map(|mut connection| {
                        connection.port = addr.port();
                        connection
                    })
                    .collect();
                let server = NameServerConfig::new(addr.ip(), true, connections);
                TokioResolver::builder_with_config(
                    ResolverConfig::from_parts(None, vec![], vec![server]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio()?,
        };
        // Verification must see a record as soon as the admin has published it.
        builder.options_mut().cache_size = 0;
        builder.options_mut().timeout = Duration::from_secs(3);
        builder.options_mut().attempts = 2;
        Ok(Self {
            resolver: builder.build()?,
        })
    }

    /// All TXT strings published at `name`.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, LookupError> {
        let fqdn = format!("{name}.");
        match self.resolver.txt_lookup(fqdn).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::TXT(txt) => Some(
                        txt.txt_data
                            .iter()
                            .map(|part| String::from_utf8_lossy(part))
                            .collect::<String>(),
                    ),
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_no_records_found() => Err(LookupError::NoRecord(name.to_string())),
            Err(e) => {
                tracing::warn!(error = %e, name, "TXT lookup failed");
                Err(LookupError::Failed(name.to_string()))
            }
        }
    }
}
