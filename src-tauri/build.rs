//! Our Tauri configuration lives at the workspace root (`tauri.conf.json`), next to `icons/` and
//! `ui/`. The app context (config, ACL, embedded UI) is generated here rather than by
//! `generate_context!`, so cargo rebuilds the app whenever `ui/dist` or the icons change.

use std::path::Path;

#[path = "ui_dist.rs"]
mod ui_dist;

fn main() {
    // Read when the script runs, not when it is compiled: cargo reuses a compiled build script
    // for a checkout at another path (its hash does not include the workspace's location).
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest_dir).parent().expect("src-tauri sits inside the workspace root");
    let config = ui_dist::config_for_build(&root.join("tauri.conf.json"), "cargo xtask run");
    let attributes = tauri_build::Attributes::new()
        .config_path(config)
        .codegen(tauri_build::CodegenContext::new());
    tauri_build::try_build(attributes).expect("tauri.conf.json is valid");
}
