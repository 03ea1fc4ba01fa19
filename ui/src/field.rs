//! A labelled text input with its hint and the error that concerns it.

use leptos::prelude::*;

/// The error shown under a field, and the id (also its `data-testid`) it is shown with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldError {
    id: &'static str,
    message: Signal<Option<String>>,
}

impl FieldError {
    pub(crate) fn new(id: &'static str, message: impl Into<Signal<Option<String>>>) -> Self {
        Self { id, message: message.into() }
    }
}

/// An error paragraph: under a field, or under a whole form.
pub(crate) fn error_message(id: &'static str, message: String) -> impl IntoView {
    view! {
        <p class="field-error" role="alert" id=id data-testid=id>
            {message}
        </p>
    }
}

/// A `.field`: the label, the input (`id` is also its `data-testid`), an optional hint (with the
/// id `<id>-hint`) and, while `error` has a message, the error. The input points at both with
/// `aria-describedby` and is `aria-invalid` while the error is shown.
#[allow(unreachable_pub)] // see lib.rs
#[component]
pub(crate) fn TextField(
    id: &'static str,
    label: &'static str,
    /// The input's `type`: text, password, email, url.
    input_type: &'static str,
    value: RwSignal<String>,
    #[prop(optional)] autocomplete: Option<&'static str>,
    #[prop(optional)] autocapitalize: Option<&'static str>,
    #[prop(optional)] spellcheck: Option<&'static str>,
    #[prop(optional)] placeholder: Option<&'static str>,
    #[prop(optional)] hint: Option<&'static str>,
    #[prop(optional)] error: Option<FieldError>,
) -> impl IntoView {
    let hint_id = hint.map(|_| format!("{id}-hint"));
    // The error, while it has a message.
    let shown = move || error.filter(|e| e.message.with(Option::is_some));
    let described_by = {
        let hint_id = hint_id.clone();
        move || match (hint_id.as_deref(), shown().map(|e| e.id)) {
            (Some(hint), Some(error)) => Some(format!("{hint} {error}")),
            (Some(hint), None) => Some(hint.to_owned()),
            (None, Some(error)) => Some(error.to_owned()),
            (None, None) => None,
        }
    };

    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input
                id=id
                data-testid=id
                type=input_type
                autocomplete=autocomplete
                autocapitalize=autocapitalize
                spellcheck=spellcheck
                placeholder=placeholder
                prop:value=value
                on:input=move |ev| value.set(event_target_value(&ev))
                aria-invalid=move || shown().map(|_| "true")
                aria-describedby=described_by
            />
            {hint.map(|hint| view! { <p class="hint" id=hint_id>{hint}</p> })}
            {move || error.and_then(|e| e.message.get().map(|m| error_message(e.id, m)))}
        </div>
    }
}
