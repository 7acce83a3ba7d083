//! Staff sign-in: email and password exchanged for an API token. It sits above `tenants` and
//! `auth` (it needs both), so neither of them imports the other for it.

pub mod routes;
pub mod service;
pub mod throttle;

pub use throttle::SignInThrottle;
