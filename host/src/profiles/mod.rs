//! Portal profiles: how a project's portal looks and what it offers end users. Every tenant has
//! a default profile; a project may be assigned another.

pub mod logo;
pub mod model;
pub mod routes;
pub mod service;
pub mod store;

pub use model::{Mode, Profile};
pub use service::{DefaultForNewTenant, for_project};
pub use store::find;
