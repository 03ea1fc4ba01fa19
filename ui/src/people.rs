//! How a person is drawn: initials in a coloured circle.

use iotchat_protocol::IdentityId;
use leptos::prelude::*;

/// Avatar colours; each carries white text at WCAG AA in both themes (see style.css).
const PALETTE: usize = 8;

/// Up to two letters: the first of the first two words, or the first two of one word.
pub(crate) fn initials(name: &str) -> String {
    let words: Vec<&str> =
        name.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let letters: String = match words.as_slice() {
        [] => "?".to_owned(),
        [one] => one.chars().take(2).collect(),
        [first, second, ..] => first.chars().take(1).chain(second.chars().take(1)).collect(),
    };
    letters.to_uppercase()
}

/// The same colour for the same identity, everywhere and every time.
pub(crate) fn colour_class(identity: &IdentityId) -> String {
    // FNV-1a: stable across builds, unlike std's randomly seeded hasher.
    let hash = identity
        .as_str()
        .bytes()
        .fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    format!("avatar c{}", hash as usize % PALETTE)
}

#[allow(unreachable_pub)] // see lib.rs
#[component]
pub(crate) fn Avatar(
    name: String,
    identity: IdentityId,
    #[prop(optional)] small: bool,
) -> impl IntoView {
    let class =
        if small { format!("{} small", colour_class(&identity)) } else { colour_class(&identity) };
    view! {
        <span class=class aria-hidden="true">
            {initials(&name)}
        </span>
    }
}
