//! Domains: every tenant answers at `<slug>.<base domain>` and at custom domains it has proven
//! to control with a DNS TXT record at `_portico-challenge.<domain>`.

pub mod dns;
pub mod model;
pub mod resolver;
pub mod routes;
pub mod service;
pub mod store;

pub use dns::DnsVerifier;
pub use resolver::HostResolver;
