//! Tickets: tenant → projects → tickets, each with its progress through the service steps, the
//! technician's last position and ETA, typed custom fields, and a secure tracking link.

pub mod feedback;
pub mod fields;
pub mod links;
pub mod model;
pub mod projects;
pub mod routes;
pub mod service;
pub mod store;

pub use model::{Status, Ticket};
