//! Appointment booking: booking rules (SLA profiles and custom intervals) per tenant, the
//! windows their slot-calculator plugin computes and the host checks, and booking, moving and
//! cancelling from the tracking page or the API with capacity enforced in the database.

pub mod calendar;
pub mod ics;
pub mod model;
pub mod routes;
pub mod service;
pub mod store;

pub use model::{Definition, RuleSet};
