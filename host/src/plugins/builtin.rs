//! The built-in plugins of `plugins/` and themes of `themes/`, compiled into every host by
//! `build.rs`. They are catalogued at start-up and installed for every new tenant, with the
//! capabilities their manifests ask for approved: they are part of the platform.

use portico_plugin_runtime::manifest::{self, Manifest};

use super::model::{InstallRow, to_column};
use super::{catalogue, store};
use crate::AppState;
use crate::db::{self, now_ms};
use crate::error::Result;
use crate::events::{BoxFuture, Event, Reaction, Recorded};
use crate::types::TenantId;

/// Manifest text and component of each built-in plugin.
const BUILT_INS: &[(&str, &[u8])] = &[
    (
        include_str!(env!("PORTICO_BUILTIN_EMAIL_MANIFEST")),
        include_bytes!(env!("PORTICO_BUILTIN_EMAIL")),
    ),
    (
        include_str!(env!("PORTICO_BUILTIN_WEBHOOK_MANIFEST")),
        include_bytes!(env!("PORTICO_BUILTIN_WEBHOOK")),
    ),
    (
        include_str!(env!("PORTICO_BUILTIN_SMS_MANIFEST")),
        include_bytes!(env!("PORTICO_BUILTIN_SMS")),
    ),
    (
        include_str!(env!("PORTICO_BUILTIN_STANDARD_SLOTS_MANIFEST")),
        include_bytes!(env!("PORTICO_BUILTIN_STANDARD_SLOTS")),
    ),
    (
        include_str!(env!("PORTICO_BUILTIN_HARBOUR_MANIFEST")),
        include_bytes!(env!("PORTICO_BUILTIN_HARBOUR")),
    ),
    (
        include_str!(env!("PORTICO_BUILTIN_SIGNAL_MANIFEST")),
        include_bytes!(env!("PORTICO_BUILTIN_SIGNAL")),
    ),
];

fn manifests() -> impl Iterator<Item = Manifest> {
    BUILT_INS
        .iter()
        .filter_map(|(text, _)| Manifest::parse(text).ok())
}

/// Catalogues the built-ins that are not yet (start-up).
pub async fn publish(state: &AppState) -> anyhow::Result<()> {
    for (text, wasm) in BUILT_INS {
        let package = manifest::pack(text, wasm)?;
        catalogue::publish_built_in(state, &package).await?;
    }
    Ok(())
}

/// Gives a new tenant the built-ins, in the transaction that creates it.
pub struct InstallForNewTenant;

impl Reaction for InstallForNewTenant {
    fn react<'a>(
        &'a self,
        conn: &'a mut sqlx::AnyConnection,
        event: &'a Recorded,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match (&event.event, &event.tenant) {
                (Event::TenantCreated { .. }, Some(tenant)) => install_for(conn, tenant).await,
                _ => Ok(()),
            }
        })
    }
}

/// Installs every built-in for a new tenant, enabled, with its requested capabilities approved
/// but for "any host" (the webhook's): the tenant names its receiver's host.
async fn install_for(conn: &mut sqlx::AnyConnection, tenant: &TenantId) -> Result<()> {
    let now = now_ms();
    for manifest in manifests() {
        let row = InstallRow {
            id: db::new_id(),
            plugin_id: manifest.id,
            version: manifest.version,
            previous_version: None,
            enabled: 1,
            config: "{}".into(),
            grants: to_column(&manifest.capabilities.without_any_host())?,
            secrets: None,
            limits: None,
            keep_failed_inputs: 0,
            created_at: now,
            updated_at: now,
        };
        store::insert(&mut *conn, tenant, &row).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn built_ins_are_valid_packages() {
        for (text, wasm) in super::BUILT_INS {
            let package = super::manifest::pack(text, wasm).unwrap();
            let (manifest, _) = super::manifest::unpack(&package).unwrap();
            assert_eq!(manifest.authors, ["Portico"]);
        }
        assert_eq!(super::manifests().count(), super::BUILT_INS.len());
    }
}
