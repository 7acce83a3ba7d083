//! The OpenAPI document, generated from the route annotations, and a readable page of it.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, LicenseBuilder, OpenApi, Ref, ResponseBuilder, SecurityRequirement,
};

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
    with_common_answers(&mut api);
    close_tagged_variants(&mut api);
    open_flattened_members(&mut api);
    api
}

/// Tagged enums whose variants refuse unknown fields (`deny_unknown_fields`), which utoipa
/// states for structs but not for an enum's variants.
const CLOSED_TAGGED_ENUMS: [&str; 3] = ["ActionStep", "Source", "Trigger"];

/// States `additionalProperties: false` on each variant of [`CLOSED_TAGGED_ENUMS`].
fn close_tagged_variants(api: &mut OpenApi) {
    use utoipa::openapi::schema::AdditionalProperties;
    use utoipa::openapi::{RefOr, Schema};
    let Some(components) = api.components.as_mut() else {
        return;
    };
    for name in CLOSED_TAGGED_ENUMS {
        let Some(RefOr::T(Schema::OneOf(one_of))) = components.schemas.get_mut(name) else {
            panic!("{name} is no longer a tagged enum in the document");
        };
        for variant in &mut one_of.items {
            if let RefOr::T(Schema::Object(object)) = variant {
                object.additional_properties =
                    Some(Box::new(AdditionalProperties::FreeForm(false)));
            }
        }
    }
}

/// A request type that refuses unknown fields (`additionalProperties: false`) and is flattened
/// into a response (a rule set's definition beside its id) would make that response refuse its
/// own fields. Such members of an `allOf` are inlined without the restriction.
fn open_flattened_members(api: &mut OpenApi) {
    use utoipa::openapi::schema::AdditionalProperties;
    use utoipa::openapi::{RefOr, Schema};
    let Some(components) = api.components.as_mut() else {
        return;
    };
    let closed: BTreeMap<String, Schema> = components
        .schemas
        .iter()
        .filter_map(|(name, schema)| match schema {
            RefOr::T(Schema::Object(object))
                if matches!(
                    object.additional_properties.as_deref(),
                    Some(AdditionalProperties::FreeForm(false))
                ) =>
            {
                let mut open = object.clone();
                open.additional_properties = None;
                Some((format!("#/components/schemas/{name}"), Schema::Object(open)))
            }
            _ => None,
        })
        .collect();
    for schema in components.schemas.values_mut() {
        open_members(schema, &closed, false);
    }
}

/// [`open_flattened_members`] through a schema and everything nested in it (a page of rule sets
/// holds them inline).
fn open_members(
    schema: &mut utoipa::openapi::RefOr<utoipa::openapi::Schema>,
    closed: &BTreeMap<String, utoipa::openapi::Schema>,
    in_all_of: bool,
) {
    use utoipa::openapi::schema::ArrayItems;
    use utoipa::openapi::{RefOr, Schema};
    match schema {
        RefOr::Ref(reference) if in_all_of => {
            if let Some(open) = closed.get(&reference.ref_location) {
                *schema = RefOr::T(open.clone());
            }
        }
        RefOr::Ref(_) => {}
        RefOr::T(Schema::AllOf(all)) => {
            for member in &mut all.items {
                open_members(member, closed, true);
            }
        }
        RefOr::T(Schema::Object(object)) => {
            for property in object.properties.values_mut() {
                open_members(property, closed, false);
            }
        }
        RefOr::T(Schema::Array(array)) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                open_members(items, closed, false);
            }
        }
        RefOr::T(_) => {}
    }
}

/// What any operation may answer besides its own statuses, said once here rather than on
/// every route: 400 for a malformed request, 422 for a body that does not fit its schema, and,
/// behind the guard (operations without a security override of their own), 401 and 403.
fn with_common_answers(api: &mut OpenApi) {
    let guard = [
        ("401", "No valid bearer token (`unauthorized`)"),
        (
            "403",
            "The caller's role may not do this (`forbidden`), or the tenant is suspended (`tenant_suspended`)",
        ),
    ];
    let malformed = (
        "400",
        "A malformed request: a query string, path parameter or JSON body that does not parse (`invalid_query`, `invalid_path`, `malformed_body`, `unsupported_content_type`)",
    );
    let not_found = (
        "404",
        "The tenant or an object the path names does not exist, or is another tenant's (`not_found`)",
    );
    let invalid_body = (
        "422",
        "A JSON body that parses but does not fit the schema (`invalid_body`), or a value the service refuses; the message names the field",
    );
    for item in api.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            let mut answers = vec![malformed];
            let in_path = |p: &utoipa::openapi::path::Parameter| {
                p.parameter_in == utoipa::openapi::path::ParameterIn::Path
            };
            if operation.parameters.iter().flatten().any(in_path) {
                answers.push(not_found);
            }
            if operation.request_body.is_some() {
                answers.push(invalid_body);
            }
            if operation.security.is_none() {
                answers.extend(guard);
            }
            for (status, description) in answers {
                operation
                    .responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| {
                        ResponseBuilder::new()
                            .description(description)
                            .content(
                                "application/json",
                                ContentBuilder::new()
                                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                                    .build(),
                            )
                            .build()
                            .into()
                    });
            }
        }
    }
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
