//! Tauri reads its configuration from the build script's working directory. Ours lives at the
//! workspace root (`tauri.conf.json`), next to `icons/` and `ui/`, so build from there.

use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("src-tauri sits inside the workspace root");
    println!("cargo:rerun-if-changed={}", root.join("tauri.conf.json").display());
    println!("cargo:rerun-if-changed={}", root.join("icons").display());
    std::env::set_current_dir(root).expect("the workspace root is readable");
    tauri_build::build();
}
