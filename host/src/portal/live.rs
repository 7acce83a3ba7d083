//! Live tracking pages: a server-sent event stream per open page that sends the ticket as it
//! changes. The link is checked again on every change and at a fixed interval, so a stream ends
//! once its link is revoked or expired or its tenant suspended; streams are capped per client,
//! per ticket, per tenant and in all, and each ends after a maximum lifetime (the browser
//! reconnects).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast;
use tokio::time::{Instant, Interval};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use super::{Visitor, open, view};
use crate::AppState;
use crate::events::{BoxFuture, Event as DomainEvent, Recorded, Subscriber};
use crate::types::TenantId;

/// Streams one client address may hold open at once.
const MAX_STREAMS_PER_CLIENT: usize = 16;
/// Streams open on one ticket at once.
const MAX_STREAMS_PER_TICKET: usize = 32;
/// Streams open on one tenant's tickets at once, and on the whole host: below the server's
/// connection cap, so that live pages never hold every connection.
const MAX_STREAMS_PER_TENANT: usize = 1_000;
const MAX_STREAMS: usize = 4_000;
/// How often an open stream checks its link again, changes or not.
const RECHECK: Duration = Duration::from_secs(30);
/// How long a stream lives; the browser then opens a new one (and its link is checked anew).
const LIFETIME: Duration = Duration::from_secs(30 * 60);

/// Tickets as they change, for live pages: a subscriber to the ticket events of every replica.
/// `(tenant, ticket)`; an empty ticket stands for all of the tenant's (it was suspended, say).
#[derive(Clone)]
pub struct TicketChanges(broadcast::Sender<(TenantId, String)>);

impl TicketChanges {
    pub fn new() -> Self {
        Self(broadcast::channel(1024).0)
    }

    /// Every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<(TenantId, String)> {
        self.0.subscribe()
    }
}

impl Default for TicketChanges {
    fn default() -> Self {
        Self::new()
    }
}

impl Subscriber for TicketChanges {
    fn notify<'a>(&'a self, event: &'a Recorded) -> BoxFuture<'a, ()> {
        if let Some(tenant) = &event.tenant {
            let ticket = match &event.event {
                e if e.touches_ticket() => Some(event.subject.clone()),
                DomainEvent::TenantChanged => Some(String::new()),
                _ => None,
            };
            if let Some(ticket) = ticket {
                // Nobody watching is fine.
                drop(self.0.send((tenant.clone(), ticket)));
            }
        }
        Box::pin(async {})
    }
}

/// Open streams, counted per client address and per ticket.
#[derive(Clone, Default)]
pub struct LiveStreams(Arc<Mutex<HashMap<String, usize>>>);

/// One open stream's place in the counts, given back when the stream ends.
struct Slot {
    streams: LiveStreams,
    keys: Vec<String>,
}

impl LiveStreams {
    fn take(&self, client: Option<IpAddr>, tenant: &TenantId, ticket: &str) -> Option<Slot> {
        let mut wanted = vec![
            (format!("ticket {tenant} {ticket}"), MAX_STREAMS_PER_TICKET),
            (format!("tenant {tenant}"), MAX_STREAMS_PER_TENANT),
            ("all".to_string(), MAX_STREAMS),
        ];
        if let Some(client) = client {
            wanted.push((format!("client {client}"), MAX_STREAMS_PER_CLIENT));
        }
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if wanted
            .iter()
            .any(|(key, max)| counts.get(key).copied().unwrap_or(0) >= *max)
        {
            return None;
        }
        for (key, _) in &wanted {
            *counts.entry(key.clone()).or_default() += 1;
        }
        Some(Slot {
            streams: self.clone(),
            keys: wanted.into_iter().map(|(key, _)| key).collect(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.streams.0.lock().unwrap_or_else(|e| e.into_inner());
        for key in &self.keys {
            if let Some(count) = counts.get_mut(key) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(key);
                }
            }
        }
    }
}

/// What an open stream needs between events.
struct Live {
    state: AppState,
    visitor: Visitor,
    token: String,
    changes: BroadcastStream<(TenantId, String)>,
    watched: (TenantId, String),
    recheck: Interval,
    ends: Instant,
    started: bool,
    _slot: Slot,
}

impl Live {
    /// Waits for a reason to send the ticket again; false when the stream should end.
    async fn woken(&mut self) -> bool {
        if !self.started {
            self.started = true;
            return true;
        }
        loop {
            tokio::select! {
                change = self.changes.next() => match change {
                    Some(Ok((tenant, ticket))) => {
                        if tenant == self.watched.0 && (ticket.is_empty() || ticket == self.watched.1) {
                            return true;
                        }
                    }
                    // Missed messages: send the current state anyway.
                    Some(Err(_)) => return true,
                    None => return false,
                },
                _ = self.recheck.tick() => return true,
                () = tokio::time::sleep_until(self.ends) => return false,
            }
        }
    }
}

pub(super) async fn tracking_events(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let visitor = Visitor::of(&state, &request);
    let opened = match open(&state, &visitor, &token).await {
        Ok(opened) => opened,
        Err(page) => return page,
    };
    let (tenant, ticket) = (opened.tenant.id.clone(), opened.ticket.id.clone());
    let tenant_of_stream = tenant.clone();
    let Some(slot) = state.live_streams.take(visitor.client, &tenant, &ticket) else {
        let mut refused = StatusCode::TOO_MANY_REQUESTS.into_response();
        refused.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(RECHECK.as_secs()),
        );
        return refused;
    };
    let mut recheck = tokio::time::interval_at(Instant::now() + RECHECK, RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let live = Live {
        changes: BroadcastStream::new(state.ticket_changes.subscribe()),
        state,
        visitor,
        token,
        watched: (tenant, ticket),
        recheck,
        ends: Instant::now() + LIFETIME,
        started: false,
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(live, |mut live| async move {
        if !live.woken().await {
            return None;
        }
        // The link as it is now: revoked, expired or suspended ends the stream.
        let opened = open(&live.state, &live.visitor, &live.token).await.ok()?;
        let texts = live.state.texts.get(&opened.language);
        let view = view::ticket_view(
            &live.state,
            &opened.tenant,
            &opened.ticket,
            texts,
            &opened.language,
        )
        .await;
        let data = serde_json::to_string(&view).unwrap_or_default();
        let event = Event::default().event("ticket").data(data);
        Some((Ok::<_, Infallible>(event), live))
    });
    // The body is polled after this handler returns, outside the request's tenant.
    let stream = crate::db::stream_within_tenant(&tenant_of_stream, Box::pin(stream));
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
