//! Bindings for every plugin kind, each world in its own module: from `wit/plugin@0.2.0` for
//! slot calculators, from `wit/plugin@0.1.0` for the others (their worlds did not change).
//!
//! A library's bindings declare only imports; a world's exports, and the type information the
//! component needs, are emitted where a plugin calls its kind's `register_…!` macro, in the
//! plugin's own crate. So one crate (or one workspace) can hold plugins of every kind, and a
//! component imports only what its code calls. Plugin code uses the re-exports at the crate root.

/// `notification-channel`: the `log`, `http` and `smtp` imports that action steps and themes
/// share, and the `channel` export.
pub mod channel {
    wit_bindgen::generate!({
        path: "wit/plugin@0.1.0",
        world: "notification-channel",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "::portico_sdk::bindings::channel",
    });
}

/// `slot-calculator@0.2.0`.
pub mod slots {
    wit_bindgen::generate!({
        path: "wit/plugin@0.2.0",
        world: "slot-calculator",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "::portico_sdk::bindings::slots",
    });
}

/// `theme`.
pub mod theme {
    wit_bindgen::generate!({
        path: "wit/plugin@0.1.0",
        world: "theme",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "::portico_sdk::bindings::theme",
        with: {
            "portico:plugin/log@0.1.0": crate::bindings::channel::portico::plugin::log,
        },
    });
}

/// `action`.
pub mod action {
    wit_bindgen::generate!({
        path: "wit/plugin@0.1.0",
        world: "action",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "::portico_sdk::bindings::action",
        with: {
            "portico:plugin/types@0.1.0": crate::bindings::channel::portico::plugin::types,
            "portico:plugin/log@0.1.0": crate::bindings::channel::portico::plugin::log,
            "portico:plugin/http@0.1.0": crate::bindings::channel::portico::plugin::http,
        },
    });
}
