//! Our Tauri configuration lives at the workspace root (`tauri.conf.json`), next to `icons/` and
//! `ui/`. The app context (config, ACL, embedded UI) is generated here rather than by
//! `generate_context!`, so cargo rebuilds the app whenever `ui/dist` or the icons change.

use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("src-tauri sits inside the workspace root");
    let attributes = tauri_build::Attributes::new()
        .config_path(root.join("tauri.conf.json"))
        .codegen(tauri_build::CodegenContext::new());
    tauri_build::try_build(attributes).expect("tauri.conf.json is valid and ui/dist is built");
}
