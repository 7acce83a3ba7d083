//! Deliveries: the outbox of notifications. Automated actions queue them in the transaction
//! that consumed their event; the worker sends them through channel plugins, retrying passing
//! failures and keeping the dead ones for an administrator.

pub mod model;
pub mod routes;
pub mod service;
pub mod store;
pub mod worker;

pub use model::{Delivery, NewDelivery, Recipient};
