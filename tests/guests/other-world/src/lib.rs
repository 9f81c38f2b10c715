//! other-world: a valid component of the wrong world (`test:other/other`).
//!
//! It exists so the host's tests can prove that a component which does not implement
//! `sandcron:job/job` is rejected with a clear reason instead of being run. It is built
//! with wit-bindgen directly, not the SDK, so nothing of sandcron's world leaks in.

// The generated export glue is `extern "C"` with `export_name`: unsafe by nature.
#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "other" });

    use super::Greeter;
    export!(Greeter);
}

struct Greeter;

impl bindings::Guest for Greeter {
    fn greet(name: String) -> String {
        format!("hello, {name}")
    }
}
