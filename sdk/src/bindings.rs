//! Bindings generated for the enabled plugin kind: from `wit/plugin@0.2.0` for slot calculators,
//! from `wit/plugin@0.1.0` for the others (their worlds did not change). Plugin code uses the
//! re-exports at the crate root instead.

#[cfg(feature = "channel")]
wit_bindgen::generate!({
    path: "wit/plugin@0.1.0",
    world: "notification-channel",
    pub_export_macro: true,
    export_macro_name: "__export_plugin",
    default_bindings_module: "::portico_sdk::bindings",
});

#[cfg(feature = "slot-calculator")]
wit_bindgen::generate!({
    path: "wit/plugin@0.2.0",
    world: "slot-calculator",
    pub_export_macro: true,
    export_macro_name: "__export_plugin",
    default_bindings_module: "::portico_sdk::bindings",
});

#[cfg(feature = "theme")]
wit_bindgen::generate!({
    path: "wit/plugin@0.1.0",
    world: "theme",
    pub_export_macro: true,
    export_macro_name: "__export_plugin",
    default_bindings_module: "::portico_sdk::bindings",
});

#[cfg(feature = "action")]
wit_bindgen::generate!({
    path: "wit/plugin@0.1.0",
    world: "action",
    pub_export_macro: true,
    export_macro_name: "__export_plugin",
    default_bindings_module: "::portico_sdk::bindings",
});
