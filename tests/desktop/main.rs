//! The real desktop app, end to end: built with the UI embedded, driven through tauri-driver and
//! WebKitWebDriver in a headless X session with its own D-Bus session bus.

mod install;
mod journey;
mod social;
mod tray;
mod updates;
mod window;
