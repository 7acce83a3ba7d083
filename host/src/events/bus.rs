//! Emitting and fanning out: a [`Tx`] writes events with the change, and only once it commits do
//! subscribers here, subscribers on other replicas (PostgreSQL `NOTIFY`, sent inside the
//! transaction so a rollback sends nothing) and durable consumers hear of them.

use std::collections::VecDeque;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use sqlx::AnyConnection;
use sqlx::postgres::PgListener;
use tokio::sync::Notify;

use super::model::{Event, Recorded};
use super::store;
use crate::db::{Backend, Db};
use crate::error::Result;
use crate::types::{Secret, TenantId};

const CHANNEL: &str = "portico_events";

/// A boxed future, as the registered handlers return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Reacts after commit, in every process (caches, live pages). Must be quick and infallible.
pub trait Subscriber: Send + Sync + 'static {
    fn notify<'a>(&'a self, event: &'a Recorded) -> BoxFuture<'a, ()>;
}

/// Reacts inside the emitting transaction, for what must commit with the change or not at all
/// (a new tenant's built-in plugins and default profile). An error rolls the change back.
pub trait Reaction: Send + Sync + 'static {
    fn react<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        event: &'a Recorded,
    ) -> BoxFuture<'a, Result<()>>;
}

#[derive(Default)]
struct Handlers {
    subscribers: Vec<Arc<dyn Subscriber>>,
    reactions: Vec<Arc<dyn Reaction>>,
}

struct Inner {
    db: Db,
    handlers: RwLock<Handlers>,
    /// Wakes durable consumers when events committed here or on another replica.
    committed: Notify,
    /// Tells this process's notifications apart from other replicas'.
    origin: String,
    /// Positions of the events this process committed lately, so the SQLite watcher does not
    /// apply them twice.
    dispatched: Mutex<VecDeque<i64>>,
}

/// How many of its own recent events a process remembers.
const REMEMBERED: usize = 4096;

/// The event bus of one process. Cheap to clone.
#[derive(Clone)]
pub struct Bus(Arc<Inner>);

impl Bus {
    pub fn new(db: Db) -> Self {
        Self(Arc::new(Inner {
            db,
            handlers: RwLock::default(),
            committed: Notify::new(),
            origin: uuid::Uuid::new_v4().to_string(),
            dispatched: Mutex::default(),
        }))
    }

    pub fn db(&self) -> &Db {
        &self.0.db
    }

    /// Registers an after-commit subscriber (at start-up).
    pub fn subscribe(&self, subscriber: impl Subscriber) {
        let mut handlers = self.0.handlers.write().unwrap_or_else(|e| e.into_inner());
        handlers.subscribers.push(Arc::new(subscriber));
    }

    /// Registers an in-transaction reaction (at start-up).
    pub fn react(&self, reaction: impl Reaction) {
        let mut handlers = self.0.handlers.write().unwrap_or_else(|e| e.into_inner());
        handlers.reactions.push(Arc::new(reaction));
    }

    fn subscribers(&self) -> Vec<Arc<dyn Subscriber>> {
        let handlers = self.0.handlers.read().unwrap_or_else(|e| e.into_inner());
        handlers.subscribers.clone()
    }

    fn reactions(&self) -> Vec<Arc<dyn Reaction>> {
        let handlers = self.0.handlers.read().unwrap_or_else(|e| e.into_inner());
        handlers.reactions.clone()
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`), so a read followed by a write in it cannot interleave with another writer;
    /// on PostgreSQL services lock the rows they read before writing (`FOR UPDATE`).
    pub async fn begin(&self) -> Result<Tx> {
        let db = &self.0.db;
        let inner = match db.backend {
            Backend::Sqlite => db.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => db.pool.begin().await?,
        };
        Ok(Tx {
            inner,
            bus: self.clone(),
            emitted: Vec::new(),
        })
    }

    /// A future that completes when events commit after this call (here or, on PostgreSQL, on
    /// another replica), or when `timeout` passes. It listens from the moment it is made, so a
    /// commit between making and awaiting it is not missed.
    pub fn committed(&self, timeout: Duration) -> impl Future<Output = ()> + Send + '_ {
        let mut notified = Box::pin(self.0.committed.notified());
        notified.as_mut().enable();
        async move { drop(tokio::time::timeout(timeout, notified).await) }
    }

    async fn dispatch(&self, events: &[Recorded]) {
        let subscribers = self.subscribers();
        for event in events {
            for subscriber in &subscribers {
                subscriber.notify(event).await;
            }
        }
        self.0.committed.notify_waiters();
    }
}

/// A write transaction that carries the events of its change. Dropped without [`Tx::commit`],
/// it rolls back and nobody hears of its events.
pub struct Tx {
    inner: sqlx::Transaction<'static, sqlx::Any>,
    bus: Bus,
    emitted: Vec<Recorded>,
}

impl Tx {
    pub fn backend(&self) -> Backend {
        self.bus.0.db.backend
    }

    /// ` FOR UPDATE` on PostgreSQL, to lock rows read before writing them; nothing on SQLite,
    /// where the transaction already holds the write lock.
    pub fn for_update(&self) -> &'static str {
        match self.backend() {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        }
    }

    /// Names the tenant (`None`: the platform) that the rest of this transaction works for, on
    /// PostgreSQL behind its row-level security (see [`crate::db`]); nothing on SQLite.
    pub async fn work_for(&mut self, tenant: Option<&TenantId>) -> Result<()> {
        if self.backend() == Backend::Postgres {
            crate::db::wall_transaction(&mut self.inner, tenant).await?;
        }
        Ok(())
    }

    /// Records `event` about `subject` in this transaction and runs the in-transaction
    /// reactions. `tenant` is `None` only for platform events.
    pub async fn emit(
        &mut self,
        tenant: Option<&TenantId>,
        subject: &str,
        actor: &str,
        event: Event,
    ) -> Result<()> {
        let recorded = store::insert(&mut self.inner, tenant, subject, actor, event).await?;
        for reaction in self.bus.reactions() {
            reaction.react(&mut self.inner, &recorded).await?;
        }
        if self.backend() == Backend::Postgres {
            // Delivered by PostgreSQL at commit, and never if the transaction rolls back.
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(format!("{}:{}", self.bus.0.origin, recorded.seq))
                .execute(&mut *self.inner)
                .await?;
        }
        self.emitted.push(recorded);
        Ok(())
    }

    /// Commits, then tells this process's subscribers and wakes the durable consumers.
    pub async fn commit(self) -> Result<()> {
        let Self {
            inner,
            bus,
            emitted,
        } = self;
        inner.commit().await?;
        {
            let mut mine = bus.0.dispatched.lock().unwrap_or_else(|e| e.into_inner());
            for event in &emitted {
                if mine.len() == REMEMBERED {
                    mine.pop_front();
                }
                mine.push_back(event.seq);
            }
        }
        bus.dispatch(&emitted).await;
        Ok(())
    }
}

impl Deref for Tx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.inner
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.inner
    }
}

/// Applies other replicas' events to this process's subscribers, for as long as the runtime
/// runs. After a lost connection notifications may have been missed, so `on_reconnect` (which
/// empties every cache) runs before listening again.
pub fn spawn_replica_listener(
    bus: Bus,
    database_url: Secret<String>,
    on_reconnect: impl Fn() + Send + Sync + 'static,
) {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut listener = match connect(database_url.expose()).await {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::warn!(error = %e, "event listener cannot connect; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            on_reconnect();
            while let Ok(Some(notification)) = listener.try_recv().await {
                let Some((origin, seq)) = notification.payload().split_once(':') else {
                    continue;
                };
                if origin == bus.0.origin {
                    continue;
                }
                let Ok(seq) = seq.parse::<i64>() else {
                    continue;
                };
                match store::by_seq(&bus.0.db.pool, seq).await {
                    Ok(Some(event)) => bus.dispatch(&[event]).await,
                    // Pruned already: nothing to apply.
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = ?e, seq, "reading a replica's event failed"),
                }
            }
        }
    });
}

async fn connect(url: &str) -> std::result::Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// SQLite has no notifications, and the command line (`portico tenant create`) writes from
/// another process: this reads what other processes committed, every half second, and applies
/// it to this process's subscribers.
pub async fn spawn_process_watcher(bus: Bus) -> Result<()> {
    let mut seen = store::last_seq(&bus.0.db.pool).await?;
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(500));
        loop {
            every.tick().await;
            let events = match store::after_seq(&bus.0.db.pool, seen, 500).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(error = ?e, "reading other processes' events failed");
                    continue;
                }
            };
            let Some(last) = events.last().map(|e| e.seq) else {
                continue;
            };
            seen = last;
            let foreign: Vec<Recorded> = {
                let mine = bus.0.dispatched.lock().unwrap_or_else(|e| e.into_inner());
                events
                    .into_iter()
                    .filter(|e| !mine.contains(&e.seq))
                    .collect()
            };
            if !foreign.is_empty() {
                bus.dispatch(&foreign).await;
            }
        }
    });
    Ok(())
}
