//! The real desktop app, end to end: built with the UI embedded, driven through tauri-driver and
//! WebKitWebDriver in a headless X session.

mod smoke;
