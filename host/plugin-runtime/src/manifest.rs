//! Plugin packages: a component with its manifest (`portico-plugin.toml`) embedded as a custom
//! section, so that one file, named by its sha256, carries both.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::PluginKind;
use crate::outbound::Grants;

/// Name of the custom section holding the manifest.
pub const MANIFEST_SECTION: &str = "portico-plugin.toml";
/// Largest package accepted.
pub const MAX_PACKAGE_BYTES: usize = 16 << 20;

/// What a plugin is and what it asks for.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Unique id: lower-case letters, digits and hyphens.
    pub id: String,
    /// Name shown to tenant admins.
    pub name: String,
    /// Semantic version, such as `1.2.0`.
    pub version: String,
    /// `channel`, `slot-calculator`, `theme` or `action`.
    pub kind: PluginKind,
    /// Version of the `portico:plugin` WIT package it was built against.
    pub wit: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub authors: Vec<String>,
    /// Capabilities it asks for; tenants approve them per install.
    #[serde(default)]
    pub capabilities: Grants,
    /// JSON Schema of the tenant's configuration.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config_schema: Option<serde_json::Value>,
    /// Names of secrets the tenant provides (stored encrypted, never shown again).
    #[serde(default)]
    pub secrets: Vec<String>,
}

/// Why a package or manifest was refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ManifestError(pub String);

fn fail<T>(message: impl Into<String>) -> Result<T, ManifestError> {
    Err(ManifestError(message.into()))
}

impl Manifest {
    /// Parses and checks a manifest's text.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let manifest: Manifest =
            toml::from_str(text).map_err(|e| ManifestError(format!("manifest: {e}")))?;
        manifest.check()?;
        Ok(manifest)
    }

    fn check(&self) -> Result<(), ManifestError> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !self.id.starts_with('-');
        if !id_ok {
            return fail("manifest: id must be 1 to 64 lower-case letters, digits or hyphens");
        }
        if self.name.trim().is_empty() || self.name.len() > 100 {
            return fail("manifest: name must be 1 to 100 characters");
        }
        if !is_semver(&self.version) {
            return fail(format!(
                "manifest: version {:?} is not a semantic version such as 1.0.0",
                self.version
            ));
        }
        let versions = self.kind.wit_versions();
        if !versions.contains(&self.wit.as_str()) {
            return fail(format!(
                "manifest: WIT version {} is not supported for kind {} (this host implements {})",
                self.wit,
                self.kind.as_str(),
                versions.join(", ")
            ));
        }
        if self.kind.is_deterministic() && self.capabilities != Grants::none() {
            return fail(format!(
                "manifest: plugins of kind {} cannot ask for capabilities",
                self.kind.as_str()
            ));
        }
        if self.kind == PluginKind::Action && self.capabilities.smtp {
            return fail("manifest: action plugins cannot send email");
        }
        if let Some(schema) = &self.config_schema {
            jsonschema::validator_for(schema).map_err(|e| {
                ManifestError(format!(
                    "manifest: config_schema is not a valid JSON Schema: {e}"
                ))
            })?;
        }
        if self.secrets.iter().any(|s| s.is_empty() || s.len() > 64) {
            return fail("manifest: secret names must be 1 to 64 characters");
        }
        Ok(())
    }

    /// What an install of this version must fit, as the API checks it and `portico plugin run`
    /// does locally: the configuration against the schema, grants among the capabilities asked
    /// for, and only the secrets the manifest names.
    pub fn check_install<'a>(
        &self,
        config: &serde_json::Value,
        grants: &Grants,
        secret_names: impl IntoIterator<Item = &'a String>,
    ) -> Result<(), InstallProblem> {
        self.check_config(config).map_err(|e| InstallProblem {
            code: "invalid_config",
            message: e.0,
        })?;
        if !grants.is_within(&self.capabilities) {
            return Err(InstallProblem {
                code: "capability_not_requested",
                message: format!(
                    "grants must be among the capabilities {} {} asks for",
                    self.id, self.version
                ),
            });
        }
        if let Some(unknown) = secret_names
            .into_iter()
            .find(|name| !self.secrets.contains(name))
        {
            return Err(InstallProblem {
                code: "unknown_secret",
                message: format!("{} does not use a secret called {unknown:?}", self.id),
            });
        }
        Ok(())
    }

    /// Checks a tenant's configuration against the schema.
    pub fn check_config(&self, config: &serde_json::Value) -> Result<(), ManifestError> {
        let Some(schema) = &self.config_schema else {
            return Ok(());
        };
        let validator = jsonschema::validator_for(schema)
            .map_err(|e| ManifestError(format!("config_schema: {e}")))?;
        let problems: Vec<String> = validator
            .iter_errors(config)
            .take(5)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            fail(format!("configuration: {}", problems.join("; ")))
        }
    }
}

/// Why an install's settings do not fit its manifest: a stable code and a message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct InstallProblem {
    pub code: &'static str,
    pub message: String,
}

fn is_semver(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p.len() == 1 || !p.starts_with('0'))
        })
}

/// Makes a package: the component with the manifest appended as a custom section.
pub fn pack(manifest_text: &str, component: &[u8]) -> Result<Vec<u8>, ManifestError> {
    Manifest::parse(manifest_text)?;
    if !crate::runtime::is_component(component) {
        return fail("the wasm file is not a component; build with --target wasm32-wasip2");
    }
    if read_section(component, MANIFEST_SECTION).is_some() {
        return fail("the component already carries a manifest");
    }
    let mut payload = Vec::new();
    leb128(&mut payload, MANIFEST_SECTION.len() as u32);
    payload.extend_from_slice(MANIFEST_SECTION.as_bytes());
    payload.extend_from_slice(manifest_text.as_bytes());
    let mut package = component.to_vec();
    package.push(0);
    leb128(&mut package, payload.len() as u32);
    package.extend_from_slice(&payload);
    Ok(package)
}

/// Reads a package's manifest.
pub fn unpack(package: &[u8]) -> Result<(Manifest, String), ManifestError> {
    if package.len() > MAX_PACKAGE_BYTES {
        return fail(format!(
            "packages are at most {} MiB",
            MAX_PACKAGE_BYTES >> 20
        ));
    }
    if !crate::runtime::is_component(package) {
        return fail("not a plugin package: the file is not a WebAssembly component");
    }
    let text = read_section(package, MANIFEST_SECTION).ok_or_else(|| {
        ManifestError(
            "the component carries no manifest; make packages with `portico plugin pack`".into(),
        )
    })?;
    let text = String::from_utf8(text.to_vec())
        .map_err(|_| ManifestError("the manifest is not UTF-8".into()))?;
    Ok((Manifest::parse(&text)?, text))
}

fn leb128(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read_leb128(bytes: &[u8], pos: &mut usize) -> Option<u32> {
    let mut value: u32 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        value |= u32::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The contents of the top-level custom section `name`.
fn read_section<'a>(wasm: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let mut pos = 8;
    while pos < wasm.len() {
        let id = wasm[pos];
        pos += 1;
        let size = read_leb128(wasm, &mut pos)? as usize;
        let end = pos.checked_add(size).filter(|&e| e <= wasm.len())?;
        if id == 0 {
            let mut inner = pos;
            let name_len = read_leb128(wasm, &mut inner)? as usize;
            let name_end = inner.checked_add(name_len).filter(|&e| e <= end)?;
            if &wasm[inner..name_end] == name.as_bytes() {
                return Some(&wasm[name_end..end]);
            }
        }
        pos = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
id = "hello"
name = "Hello"
version = "1.0.0"
kind = "theme"
wit = "0.1.0"
[config_schema]
type = "object"
required = ["accent"]
[config_schema.properties.accent]
type = "string"
"#;

    /// The smallest component: header only.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

    #[test]
    fn packs_and_unpacks() {
        let package = pack(MANIFEST, EMPTY_COMPONENT).unwrap();
        let (manifest, text) = unpack(&package).unwrap();
        assert_eq!(manifest.id, "hello");
        assert_eq!(text, MANIFEST);
        assert!(
            pack(MANIFEST, &package).is_err(),
            "one manifest per package"
        );
        assert!(unpack(EMPTY_COMPONENT).is_err());
        assert!(
            unpack(b"\0asm\x01\x00\x00\x00").is_err(),
            "a core module is not a package"
        );
        assert!(unpack(b"random bytes, not wasm").is_err());
    }

    #[test]
    fn manifests_are_checked() {
        assert!(Manifest::parse(&MANIFEST.replace("1.0.0", "1.0")).is_err());
        assert!(Manifest::parse(&MANIFEST.replace("wit = \"0.1.0\"", "wit = \"9.0.0\"")).is_err());
        assert!(
            Manifest::parse(&MANIFEST.replace("id = \"hello\"", "id = \"Hello World\"")).is_err()
        );
        let theme_with_http = format!("{MANIFEST}\n[capabilities]\nhttp_hosts = [\"x.example\"]\n");
        assert!(
            Manifest::parse(&theme_with_http).is_err(),
            "themes have no capabilities"
        );
        let manifest = Manifest::parse(MANIFEST).unwrap();
        assert!(
            manifest
                .check_config(&serde_json::json!({"accent": "#fff"}))
                .is_ok()
        );
        let err = manifest
            .check_config(&serde_json::json!({"accent": 3}))
            .unwrap_err();
        assert!(err.0.contains("accent"), "{}", err.0);
        assert!(manifest.check_config(&serde_json::json!({})).is_err());
    }
}
