//! Tickets: tenant → projects → tickets, each with its progress through the service steps, the
//! technician's last position and ETA, typed custom fields, and a secure tracking link.

pub mod feedback;
pub mod fields;
pub mod links;
pub mod routes;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The steps of a service visit, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Ticket Received
    Received,
    /// Ticket Scheduling
    Scheduling,
    /// Ticket Dispatched
    Dispatched,
    /// On Route to You
    OnRoute,
    /// Arrived Onsite
    Arrived,
    /// Visit Completed
    Completed,
    /// Closed
    Closed,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Self::Received,
        Self::Scheduling,
        Self::Dispatched,
        Self::OnRoute,
        Self::Arrived,
        Self::Completed,
        Self::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Scheduling => "scheduling",
            Self::Dispatched => "dispatched",
            Self::OnRoute => "on_route",
            Self::Arrived => "arrived",
            Self::Completed => "completed",
            Self::Closed => "closed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Steps move forward, skipping any; one step back corrects a mistake (the technician
    /// turned around); a closed ticket stays closed.
    pub fn can_move_to(self, next: Status) -> bool {
        self != Self::Closed && next != self && (next > self || next as u8 + 1 == self as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::Status::*;

    #[test]
    fn transitions() {
        assert!(Received.can_move_to(Scheduling));
        assert!(Received.can_move_to(OnRoute), "steps may be skipped");
        assert!(OnRoute.can_move_to(Dispatched), "one step back");
        assert!(!OnRoute.can_move_to(Received), "but no further");
        assert!(!Closed.can_move_to(Completed));
        assert!(!Arrived.can_move_to(Arrived));
        assert!(Completed.can_move_to(Closed));
    }
}
