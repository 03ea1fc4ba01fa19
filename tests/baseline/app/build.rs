//! Generates the baseline's context from its `tauri.conf.json` (page: `../ui/dist`).

fn main() {
    tauri_build::build();
}
