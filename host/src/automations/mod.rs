//! Automated actions: "when a ticket is created in project Printers, email the affected person a
//! tracking link". A durable consumer of the domain events matches each event against the
//! tenant's active actions and queues their messages, rendered from minijinja templates, in the
//! delivery outbox.

pub mod consumer;
pub mod context;
pub mod model;
pub mod routes;
pub mod service;
pub mod store;
pub mod templates;

pub use model::{Action, NewAction};
