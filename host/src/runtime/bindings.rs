//! The generated host side of the `sandcron:job` world, and nothing else.
//!
//! Exports are async so a run is driven by `call_async` and yields to tokio on every epoch
//! tick; imports are plain functions because each one is a quick, bounded host operation.

wasmtime::component::bindgen!({
    world: "job",
    path: "../wit",
    exports: { default: async },
});

pub(crate) use self::sandcron::job::types::TriggerKind;
