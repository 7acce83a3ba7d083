//! Host-side bindings of the `portico:plugin@0.2.0` worlds. Only the slot calculator changed in
//! 0.2.0; the other worlds stay at 0.1.0.

wasmtime::component::bindgen!({
    path: "../../sdk/wit/plugin@0.2.0",
    world: "slot-calculator",
    imports: { default: async | trappable },
    exports: { default: async },
});
