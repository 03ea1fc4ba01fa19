//! Generates the baseline's context from its `tauri.conf.json` (page: `../ui/dist`), here rather
//! than with `generate_context!`, so a checkout without the page built still compiles.

use std::path::Path;

#[path = "../../../src-tauri/ui_dist.rs"]
mod ui_dist;

fn main() {
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let config = ui_dist::config_for_build(
        &Path::new(&manifest_dir).join("tauri.conf.json"),
        "cargo xtask bench",
    );
    let attributes = tauri_build::Attributes::new()
        .config_path(config)
        .codegen(tauri_build::CodegenContext::new());
    tauri_build::try_build(attributes).expect("tauri.conf.json is valid");
}
