//! Host-side bindings of the `portico:plugin@0.1.0` worlds. The import interfaces (log, http,
//! smtp) are generated once, with the channel world, and shared by the others.

wasmtime::component::bindgen!({
    path: "../../sdk/wit/plugin@0.1.0",
    world: "notification-channel",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub mod slots {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit/plugin@0.1.0",
        world: "slot-calculator",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "portico:plugin/types": super::portico::plugin::types,
            "portico:plugin/log": super::portico::plugin::log,
        },
    });
}

pub mod theme {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit/plugin@0.1.0",
        world: "theme",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "portico:plugin/log": super::portico::plugin::log,
        },
    });
}

pub mod action {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit/plugin@0.1.0",
        world: "action",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "portico:plugin/types": super::portico::plugin::types,
            "portico:plugin/log": super::portico::plugin::log,
            "portico:plugin/http": super::portico::plugin::http,
        },
    });
}
