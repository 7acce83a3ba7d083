//! The OpenAPI document, generated from the route annotations, and a readable page of it.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, LicenseBuilder, OpenApi, SecurityRequirement};

/// Adds bearer authentication as the default for every operation.
pub fn finish(mut api: OpenApi) -> OpenApi {
    api.info = InfoBuilder::new()
        .title("Portico admin API")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Tenants, domains, staff, tokens, role policies, plugins and the audit log.",
        ))
        .license(Some(
            LicenseBuilder::new()
                .name("Apache-2.0")
                .identifier(Some("Apache-2.0"))
                .build(),
        ))
        .build();
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("ptk_…")
                .build(),
        ),
    );
    api.security = Some(vec![SecurityRequirement::new(
        "bearer",
        Vec::<String>::new(),
    )]);
    api
}

#[derive(Serialize)]
pub struct OperationSummary {
    method: String,
    path: String,
    summary: String,
    body: Option<String>,
}

#[derive(Serialize)]
pub struct TagGroup {
    tag: String,
    operations: Vec<OperationSummary>,
}

/// Operations grouped by tag, for the docs page.
pub fn groups(api: &OpenApi) -> Vec<TagGroup> {
    let mut by_tag: BTreeMap<String, Vec<OperationSummary>> = BTreeMap::new();
    let doc = serde_json::to_value(api).unwrap_or_default();
    let Some(paths) = doc.get("paths").and_then(|p| p.as_object()) else {
        return Vec::new();
    };
    for (path, item) in paths {
        let Some(ops) = item.as_object() else {
            continue;
        };
        for (method, op) in ops {
            let tag = op["tags"]
                .get(0)
                .and_then(|t| t.as_str())
                .unwrap_or("other")
                .to_string();
            let text = |key: &str| op.get(key).and_then(|v| v.as_str()).map(str::to_string);
            let summary = text("summary")
                .or_else(|| text("description"))
                .unwrap_or_default();
            let body = op
                .pointer("/requestBody/content/application~1json/schema/$ref")
                .and_then(|r| r.as_str())
                .map(|r| r.rsplit('/').next().unwrap_or(r).to_string());
            by_tag.entry(tag).or_default().push(OperationSummary {
                method: method.clone(),
                path: path.clone(),
                summary,
                body,
            });
        }
    }
    by_tag
        .into_iter()
        .map(|(tag, operations)| TagGroup { tag, operations })
        .collect()
}
