//! Line icons drawn inline (the CSP allows no external images or fonts). Shapes after Feather
//! (MIT); each is decorative, so the control around it carries the label.

use leptos::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Icon {
    Bell,
    BellOff,
    Settings,
    LogOut,
    Clock,
    Alert,
    Hash,
    Search,
    Plus,
    Send,
    Close,
    Download,
}

impl Icon {
    fn paths(self) -> &'static [&'static str] {
        const CIRCLE: &str = "M22 12a10 10 0 1 1-20 0 10 10 0 0 1 20 0z";
        match self {
            Icon::Bell => {
                &["M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9", "M13.73 21a2 2 0 0 1-3.46 0"]
            }
            Icon::BellOff => &[
                "M13.73 21a2 2 0 0 1-3.46 0",
                "M18.63 13A17.89 17.89 0 0 1 18 8",
                "M6.26 6.26A5.86 5.86 0 0 0 6 8c0 7-3 9-3 9h14",
                "M18 8a6 6 0 0 0-9.33-5",
                "M1 1l22 22",
            ],
            Icon::Settings => &[
                "M15 12a3 3 0 1 1-6 0 3 3 0 0 1 6 0z",
                "M19.4 15a1.65 1.65 0 0 0 .33 1.82l.06.06a2 2 0 1 1-2.83 2.83l-.06-.06a1.65 1.65 0 0 0-1.82-.33 1.65 1.65 0 0 0-1 1.51V21a2 2 0 1 1-4 0v-.09A1.65 1.65 0 0 0 9 19.4a1.65 1.65 0 0 0-1.82.33l-.06.06a2 2 0 1 1-2.83-2.83l.06-.06a1.65 1.65 0 0 0 .33-1.82 1.65 1.65 0 0 0-1.51-1H3a2 2 0 1 1 0-4h.09A1.65 1.65 0 0 0 4.6 9a1.65 1.65 0 0 0-.33-1.82l-.06-.06a2 2 0 1 1 2.83-2.83l.06.06a1.65 1.65 0 0 0 1.82.33H9a1.65 1.65 0 0 0 1-1.51V3a2 2 0 1 1 4 0v.09a1.65 1.65 0 0 0 1 1.51 1.65 1.65 0 0 0 1.82-.33l.06-.06a2 2 0 1 1 2.83 2.83l-.06.06a1.65 1.65 0 0 0-.33 1.82V9a1.65 1.65 0 0 0 1.51 1H21a2 2 0 1 1 0 4h-.09a1.65 1.65 0 0 0-1.51 1z",
            ],
            Icon::Download => {
                &["M21 15v4a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-4", "M7 10l5 5 5-5", "M12 15V3"]
            }
            Icon::LogOut => {
                &["M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4", "M16 17l5-5-5-5", "M21 12H9"]
            }
            Icon::Clock => &[CIRCLE, "M12 6v6l4 2"],
            Icon::Alert => &[CIRCLE, "M12 8v4", "M12 16h.01"],
            Icon::Hash => &["M4 9h16", "M4 15h16", "M10 3L8 21", "M16 3l-2 18"],
            Icon::Search => &["M19 11a8 8 0 1 1-16 0 8 8 0 0 1 16 0z", "M21 21l-4.35-4.35"],
            Icon::Plus => &["M12 5v14", "M5 12h14"],
            Icon::Send => &["M22 2L11 13", "M22 2l-7 20-4-9-9-4 20-7z"],
            Icon::Close => &["M18 6L6 18", "M6 6l12 12"],
        }
    }
}

/// An icon at the current text colour.
#[allow(unreachable_pub)] // see lib.rs
#[component]
pub(crate) fn Svg(icon: Icon) -> impl IntoView {
    view! {
        <svg
            class="icon"
            viewBox="0 0 24 24"
            width="16"
            height="16"
            fill="none"
            stroke="currentColor"
            stroke-width="2"
            stroke-linecap="round"
            stroke-linejoin="round"
            aria-hidden="true"
            focusable="false"
        >
            {icon.paths().iter().map(|d| view! { <path d=*d /> }).collect_view()}
        </svg>
    }
}
