//! Tenants: the service companies whose portals the platform hosts.

pub mod model;
pub mod routes;
pub mod service;
pub mod store;

pub use model::{NewTenant, Tenant, TenantChanges, TenantStatus};
