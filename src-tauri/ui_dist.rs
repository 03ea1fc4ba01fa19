//! Shared by the build scripts of the app (`src-tauri/build.rs`) and of the benchmark's baseline
//! (`tests/baseline/app/build.rs`): tauri-build embeds the page in `frontendDist` and panics when
//! it does not exist, which is the case in a fresh checkout until trunk has built it. Then the
//! build goes on with a page that says how to build the real one, and cargo says so too, so that
//! `cargo check`, `cargo clippy` and `cargo test` work before the first UI build.

use std::path::{Path, PathBuf};

/// The configuration tauri-build should read: `config` itself when its `frontendDist` exists,
/// else a copy in `OUT_DIR` that points at a placeholder page. `build_command` is what builds
/// the real page.
pub(crate) fn config_for_build(config: &Path, build_command: &str) -> PathBuf {
    let text = std::fs::read_to_string(config)
        .unwrap_or_else(|e| panic!("reading {}: {e}", config.display()));
    let mut json: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", config.display()));
    let config_dir = config.parent().expect("a configuration file sits in a directory");
    let dist = json["build"]["frontendDist"]
        .as_str()
        .map(|dist| config_dir.join(dist))
        .expect("tauri.conf.json names build.frontendDist");
    // A missing path makes cargo run this script again on every build, until the page exists.
    println!("cargo:rerun-if-changed={}", dist.join("index.html").display());
    if dist.join("index.html").is_file() {
        return config.to_path_buf();
    }
    println!(
        "cargo:warning=the UI is not built ({} is missing): this build shows a page saying so. \
         `{build_command}` builds it.",
        dist.display()
    );
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let placeholder = out.join("ui-not-built");
    std::fs::create_dir_all(&placeholder).expect("OUT_DIR is writable");
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>UI not \
         built</title></head>\n<body><h1>The UI is not built</h1>\n<p>This build was made \
         before <code>{}</code> existed. Run <code>{build_command}</code>, which builds the \
         page and then the app.</p></body></html>\n",
        dist.display()
    );
    std::fs::write(placeholder.join("index.html"), page).expect("OUT_DIR is writable");
    json["build"]["frontendDist"] = placeholder.display().to_string().into();
    // Relative paths in the copy would be read from OUT_DIR: anchor them at the original.
    if let Some(icons) = json["bundle"]["icon"].as_array_mut() {
        for icon in icons {
            if let Some(path) = icon.as_str() {
                *icon = config_dir.join(path).display().to_string().into();
            }
        }
    }
    let copy_dir = out.join("config-without-ui");
    std::fs::create_dir_all(&copy_dir).expect("OUT_DIR is writable");
    let copy = copy_dir.join("tauri.conf.json");
    let text = serde_json::to_string_pretty(&json).expect("JSON values serialize");
    std::fs::write(&copy, text).expect("OUT_DIR is writable");
    copy
}
