//! Cache invalidation that reaches every replica.
//!
//! A change drops the affected cache entries in this process at once. On PostgreSQL it is also
//! announced with `NOTIFY`, and every replica's listener drops the same entries, so replicas
//! behind one load balancer never serve stale tenants or policies for longer than a notification
//! takes. If the listener's connection drops, notifications may have been missed, so it clears
//! everything once it is back.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::broadcast;

use crate::AppState;
use crate::db::Backend;
use crate::domains::HostResolver;
use crate::plugins::installs::RunnableCache;
use crate::policies::Authz;
use crate::portal::TicketChange;
use crate::types::TenantId;

const CHANNEL: &str = "portico_invalidate";

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// A tenant's role assignments or policies.
    Policies(TenantId),
    /// Tenants or domains, which decide what a Host header resolves to.
    Hosts,
    /// A ticket, shown live on its tracking page.
    Ticket(TenantId, String),
    /// Plugin installs (rare): every prepared install is dropped.
    Installs,
}

impl Invalidation {
    fn encode(&self) -> String {
        match self {
            Self::Policies(tenant) => format!("policies:{tenant}"),
            Self::Hosts => "hosts".into(),
            Self::Ticket(tenant, ticket) => format!("ticket:{tenant}:{ticket}"),
            Self::Installs => "installs".into(),
        }
    }

    fn decode(message: &str) -> Option<Self> {
        match message.split_once(':') {
            Some(("policies", tenant)) => TenantId::parse(tenant).ok().map(Self::Policies),
            Some(("ticket", rest)) => {
                let (tenant, ticket) = rest.split_once(':')?;
                Some(Self::Ticket(
                    TenantId::parse(tenant).ok()?,
                    ticket.to_string(),
                ))
            }
            None if message == "hosts" => Some(Self::Hosts),
            None if message == "installs" => Some(Self::Installs),
            _ => None,
        }
    }
}

/// What a change reaches in this process.
#[derive(Clone)]
struct Listeners {
    authz: Authz,
    hosts: HostResolver,
    tickets: broadcast::Sender<TicketChange>,
    runnables: RunnableCache,
}

async fn apply(to: &Listeners, what: &Invalidation) {
    match what {
        Invalidation::Policies(tenant) => to.authz.invalidate(tenant).await,
        Invalidation::Hosts => to.hosts.invalidate(),
        // Nobody watching is fine.
        Invalidation::Ticket(tenant, ticket) => {
            drop(to.tickets.send((tenant.clone(), ticket.clone())))
        }
        Invalidation::Installs => to.runnables.invalidate_all(),
    }
}

impl AppState {
    /// Drops what `what` made stale, here and on every other replica.
    pub async fn invalidate(&self, what: Invalidation) {
        let here = Listeners {
            authz: self.authz.clone(),
            hosts: self.hosts.clone(),
            tickets: self.ticket_changes.clone(),
            runnables: self.plugins.runnables.clone(),
        };
        apply(&here, &what).await;
        if self.db.backend == Backend::Postgres {
            let sent = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(what.encode())
                .execute(&self.db.pool)
                .await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, "announcing a cache invalidation failed; other replicas catch up on reconnect");
            }
        }
    }
}

/// Listens for other replicas' changes for as long as the runtime runs.
pub fn spawn_listener(
    database_url: String,
    authz: Authz,
    hosts: HostResolver,
    tickets: broadcast::Sender<TicketChange>,
    runnables: RunnableCache,
) {
    let to = Listeners {
        authz,
        hosts,
        tickets,
        runnables,
    };
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut listener = match connect(&database_url).await {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::warn!(error = %e, "cache invalidation listener cannot connect; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            // Whatever was announced while we were away is unknown: start from empty caches.
            to.authz.invalidate_all();
            to.hosts.invalidate();
            to.runnables.invalidate_all();
            while let Ok(Some(notification)) = listener.try_recv().await {
                match Invalidation::decode(notification.payload()) {
                    Some(what) => apply(&to, &what).await,
                    None => tracing::warn!(
                        payload = notification.payload(),
                        "unknown invalidation message"
                    ),
                }
            }
        }
    });
}

async fn connect(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let tenant = TenantId::parse("01a2056e-e1dc-7011-a17e-2090f52be905").unwrap();
        let ticket = Invalidation::Ticket(
            tenant.clone(),
            "01a2056e-0000-7000-8000-000000000001".into(),
        );
        for what in [Invalidation::Policies(tenant), Invalidation::Hosts, ticket] {
            assert_eq!(Invalidation::decode(&what.encode()), Some(what));
        }
        assert_eq!(Invalidation::decode("policies:not-an-id"), None);
        assert_eq!(Invalidation::decode("everything"), None);
    }
}
