//! Who is acting: every layer needs to know it (the guard decides with it, services audit it),
//! so it is a plain value here rather than a type of the `auth` area.

use crate::error::{Error, Result};
use crate::types::TenantId;

/// Who is calling the API.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: String,
    pub principal: Principal,
}

#[derive(Debug, Clone)]
pub enum Principal {
    /// A platform operator: manages tenants and may act inside any of them.
    Platform { token_name: String },
    /// A staff user of one tenant, limited by that tenant's role policies.
    Staff {
        tenant_id: TenantId,
        user_id: String,
        email: String,
    },
}

impl Caller {
    pub fn is_platform(&self) -> bool {
        matches!(self.principal, Principal::Platform { .. })
    }

    /// How the audit log and the event history name this caller.
    pub fn actor(&self) -> String {
        match &self.principal {
            Principal::Platform { token_name } => {
                format!("platform token {token_name:?} ({})", self.token_id)
            }
            Principal::Staff { email, user_id, .. } => format!("user {email} ({user_id})"),
        }
    }

    pub fn require_platform(&self) -> Result<()> {
        if self.is_platform() {
            Ok(())
        } else {
            Err(Error::Forbidden("only platform administrators may do this"))
        }
    }
}
