//! The baseline page: as little Leptos as shows something and reacts to a click. The desktop
//! benchmark times its first render (start-up) and its view switch (against a room switch).

use leptos::prelude::*;

fn main() {
    leptos::mount::mount_to_body(Page);
}

#[component]
fn Page() -> impl IntoView {
    let (second, set_second) = signal(false);
    view! {
        <main data-testid="baseline">
            <h1 data-testid="view-title">
                {move || if second.get() { "Second view" } else { "First view" }}
            </h1>
            <button data-testid="switch-view" on:click=move |_| set_second.update(|s| *s = !*s)>
                "Switch view"
            </button>
        </main>
    }
}
