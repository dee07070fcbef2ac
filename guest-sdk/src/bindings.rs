//! Raw bindings generated from `wit/weft.wit`. Prefer the typed API in the
//! crate root; these are public so the export macros can name them.

/// Bindings of the `workflow` world.
pub mod workflow {
    wit_bindgen::generate!({
        world: "workflow",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "export_workflow",
        default_bindings_module: "weft_sdk::bindings::workflow",
    });
}

/// Bindings of the `activity` world.
pub mod activity {
    wit_bindgen::generate!({
        world: "activity",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "export_activity",
        default_bindings_module: "weft_sdk::bindings::activity",
    });
}
