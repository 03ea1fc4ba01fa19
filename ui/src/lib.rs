//! The IoT Chat user interface. Screens only: every action goes through a Tauri command of the
//! desktop shell, and every rule comes from the protocol crate (compiled to wasm here too).

// `#[component]` expands a crate-visible component into items that `unreachable_pub` reports;
// each shared component carries an `allow` for that, and nothing else in the crate does.

mod app;
mod auth;
mod field;
mod history;
mod icons;
mod ipc;
mod people;
mod room;
mod rooms;
mod settings;
mod sidebar;
mod state;
mod time;
mod timeline;
mod update;

pub use app::App;
