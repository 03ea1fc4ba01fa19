//! The signed-out screens: log in, register, and where the backend is.

use iotchat_protocol::desktop::{BackendChoice, BackendInfo};
use iotchat_protocol::{Code, ErrorBody};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::field::{FieldError, TextField, error_message};
use crate::ipc;
use crate::state::{AppState, use_state};
use crate::update::UpdateBanner;

/// Which field an error concerns, so it is shown next to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Username,
    Email,
    Password,
    /// The form as a whole (wrong credentials, server unreachable, …).
    Form,
}

/// An error and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FormError {
    field: Field,
    message: String,
}

impl FormError {
    fn at(field: Field, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }

    fn from_body(error: &ErrorBody) -> Self {
        let field = match error.code {
            Code::UsernameExists => Field::Username,
            Code::InvalidPassword => Field::Password,
            _ => Field::Form,
        };
        Self::at(field, error.message.clone())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Login,
    Register,
}

/// A centred card with the login or register form and the backend chooser.
#[allow(unreachable_pub)] // see lib.rs
#[component]
pub(crate) fn AuthScreen() -> impl IntoView {
    let state = use_state();
    let mode = RwSignal::new(Mode::Login);
    // What was typed survives switching between the forms.
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    // The provider whose sign-in is open in the browser.
    let waiting = RwSignal::new(None::<String>);

    view! {
        <main class="centered auth" data-testid="auth-screen">
            <div class="auth-banner"><UpdateBanner /></div>
            <section class="card auth-card" aria-labelledby="auth-title">
                <img class="logo" src="/128x128@2x.png" alt="" width="48" height="48" />
                <h1 id="auth-title">
                    {move || match mode.get() {
                        Mode::Login => "Log in to IoT Chat",
                        Mode::Register => "Create your account",
                    }}
                </h1>
                <p class="muted subtitle">
                    "Chat over MQTT — on this computer, on your own server, or on AWS."
                </p>
                {move || {
                    state
                        .notice
                        .get()
                        .map(|notice| {
                            view! {
                                <p class="notice-inline" role="status" data-testid="session-notice">
                                    {notice}
                                </p>
                            }
                        })
                }}
                {move || {
                    state
                        .error
                        .get()
                        .map(|error| {
                            view! {
                                <p class="notice-inline error-inline" role="alert" data-testid="app-error">
                                    {error}
                                </p>
                            }
                        })
                }}
                {move || match (waiting.get(), mode.get()) {
                    (Some(provider), _) => view! { <ProviderWaiting provider waiting /> }.into_any(),
                    (None, Mode::Login) => view! {
                        <LoginForm mode username password />
                        <ProviderButtons waiting />
                    }
                    .into_any(),
                    (None, Mode::Register) => view! {
                        <RegisterForm mode username password />
                        <ProviderButtons waiting />
                    }
                    .into_any(),
                }}
                <Show when=move || waiting.get().is_none()>
                    <BackendChooser />
                </Show>
            </section>
        </main>
    }
}

/// The form's error, shown as `id` next to `field` while it concerns that field.
fn error_at(error: RwSignal<Option<FormError>>, field: Field, id: &'static str) -> FieldError {
    FieldError::new(
        id,
        Signal::derive(move || {
            error.with(|e| e.as_ref().filter(|e| e.field == field).map(|e| e.message.clone()))
        }),
    )
}

/// The error under the form, when it concerns no single field.
fn form_error(error: RwSignal<Option<FormError>>, id: &'static str) -> impl IntoView {
    move || error.get().filter(|e| e.field == Field::Form).map(|e| error_message(id, e.message))
}

#[component]
fn LoginForm(
    mode: RwSignal<Mode>,
    username: RwSignal<String>,
    password: RwSignal<String>,
) -> impl IntoView {
    let state = use_state();
    let error = RwSignal::new(None::<FormError>);
    let busy = RwSignal::new(false);

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let name = username.get_untracked().trim().to_owned();
        let secret = password.get_untracked();
        if name.is_empty() {
            error.set(Some(FormError::at(Field::Username, "Enter your username.")));
            return;
        }
        if secret.is_empty() {
            error.set(Some(FormError::at(Field::Password, "Enter your password.")));
            return;
        }
        error.set(None);
        busy.set(true);
        spawn_local(async move {
            match ipc::session_login(&name, &secret).await {
                Ok(account) => {
                    password.set(String::new());
                    state.logged_in(account);
                }
                Err(e) => {
                    busy.set(false);
                    error.set(Some(FormError::from_body(&e)));
                }
            }
        });
    };

    const ERR: &str = "login-error";
    view! {
        <form class="form" data-testid="login-form" novalidate on:submit=submit>
            <TextField
                id="login-username"
                label="Username"
                input_type="text"
                value=username
                autocomplete="username"
                autocapitalize="off"
                spellcheck="false"
                error=error_at(error, Field::Username, ERR)
            />
            <TextField
                id="login-password"
                label="Password"
                input_type="password"
                value=password
                autocomplete="current-password"
                error=error_at(error, Field::Password, ERR)
            />
            {form_error(error, ERR)}
            <button
                class="button primary wide"
                type="submit"
                data-testid="login-submit"
                disabled=move || busy.get()
            >
                {move || if busy.get() { "Logging in…" } else { "Log in" }}
            </button>
            <p class="switch">
                "New here? "
                <button
                    class="link"
                    type="button"
                    data-testid="go-register"
                    on:click=move |_| mode.set(Mode::Register)
                >
                    "Create an account"
                </button>
            </p>
        </form>
    }
}

#[component]
fn RegisterForm(
    mode: RwSignal<Mode>,
    username: RwSignal<String>,
    password: RwSignal<String>,
) -> impl IntoView {
    let state = use_state();
    let email = RwSignal::new(String::new());
    let error = RwSignal::new(None::<FormError>);
    let busy = RwSignal::new(None::<&'static str>);

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked().is_some() {
            return;
        }
        let name = username.get_untracked().trim().to_owned();
        let mail = email.get_untracked().trim().to_owned();
        let secret = password.get_untracked();
        let problem = if name.is_empty() {
            Some(FormError::at(Field::Username, "Choose a username."))
        } else if mail.is_empty() {
            Some(FormError::at(Field::Email, "Enter your email address."))
        } else if !mail.contains('@') {
            Some(FormError::at(Field::Email, "That does not look like an email address."))
        } else if secret.is_empty() {
            Some(FormError::at(Field::Password, "Choose a password."))
        } else {
            None
        };
        if problem.is_some() {
            error.set(problem);
            return;
        }
        error.set(None);
        busy.set(Some("Creating your account…"));
        spawn_local(async move {
            if let Err(e) = ipc::session_register(&name, &mail, &secret).await {
                busy.set(None);
                error.set(Some(FormError::from_body(&e)));
                return;
            }
            busy.set(Some("Logging in…"));
            match ipc::session_login(&name, &secret).await {
                Ok(account) => {
                    password.set(String::new());
                    state.logged_in(account);
                }
                Err(e) => {
                    busy.set(None);
                    error.set(Some(FormError::at(
                        Field::Form,
                        format!("Your account was created, but logging in failed: {}", e.message),
                    )));
                }
            }
        });
    };

    const ERR: &str = "register-error";
    view! {
        <form class="form" data-testid="register-form" novalidate on:submit=submit>
            <TextField
                id="register-username"
                label="Username"
                input_type="text"
                value=username
                autocomplete="username"
                autocapitalize="off"
                spellcheck="false"
                error=error_at(error, Field::Username, ERR)
            />
            <TextField
                id="register-email"
                label="Email"
                input_type="email"
                value=email
                autocomplete="email"
                spellcheck="false"
                error=error_at(error, Field::Email, ERR)
            />
            <TextField
                id="register-password"
                label="Password"
                input_type="password"
                value=password
                autocomplete="new-password"
                hint="At least 8 characters, with upper and lower case letters, a digit and a symbol."
                error=error_at(error, Field::Password, ERR)
            />
            {form_error(error, ERR)}
            <button
                class="button primary wide"
                type="submit"
                data-testid="register-submit"
                disabled=move || busy.get().is_some()
            >
                {move || busy.get().unwrap_or("Create account")}
            </button>
            <p class="switch">
                "Already have an account? "
                <button
                    class="link"
                    type="button"
                    data-testid="go-login"
                    on:click=move |_| mode.set(Mode::Login)
                >
                    "Log in"
                </button>
            </p>
        </form>
    }
}

/// How a provider is named on its button.
fn provider_label(provider: &str) -> &str {
    match provider {
        "TestIdP" => "Test IdP",
        other => other,
    }
}

/// "Continue with Google", … for each identity provider the backend signs in with (none for a
/// profile without a hosted UI).
#[component]
fn ProviderButtons(waiting: RwSignal<Option<String>>) -> impl IntoView {
    let state = use_state();
    let providers =
        Memo::new(move |_| state.backend.with(|b| b.as_ref().map(|b| b.providers.clone())));
    let start = move |provider: String| {
        state.error.set(None);
        state.sign_in_url.set(None);
        waiting.set(Some(provider.clone()));
        spawn_local(async move {
            let result = ipc::session_login_provider(&provider).await;
            waiting.set(None);
            match result {
                Ok(account) => state.logged_in(account),
                // Cancelled: back to the card as it was, nothing to say.
                Err(e) if e.code == Code::Cancelled => {}
                Err(e) => state.error.set(Some(e.message)),
            }
        });
    };
    move || {
        let providers = providers.get().unwrap_or_default();
        (!providers.is_empty()).then(|| {
            view! {
                <div class="providers" data-testid="providers">
                    <p class="divider" aria-hidden="true"><span>"or"</span></p>
                    {providers
                        .into_iter()
                        .map(|provider| {
                            let label = format!("Continue with {}", provider_label(&provider));
                            let testid = format!("provider-{provider}");
                            let name = provider.clone();
                            view! {
                                <button
                                    class="button wide provider"
                                    type="button"
                                    data-testid=testid
                                    on:click=move |_| start(name.clone())
                                >
                                    {label}
                                </button>
                            }
                        })
                        .collect_view()}
                </div>
            }
        })
    }
}

/// While the sign-in is open in the browser: what to do there, the address to open by hand if
/// no browser came up, and Cancel.
#[component]
fn ProviderWaiting(provider: String, waiting: RwSignal<Option<String>>) -> impl IntoView {
    let state = use_state();
    let cancelling = RwSignal::new(false);
    let cancel = move |_| {
        cancelling.set(true);
        spawn_local(async move {
            if let Err(e) = ipc::session_login_provider_cancel().await {
                cancelling.set(false);
                state.error.set(Some(e.message));
            } else {
                waiting.set(None);
            }
        });
    };
    let label = provider_label(&provider).to_owned();
    view! {
        <div class="provider-waiting" data-testid="provider-waiting" role="status" aria-live="polite">
            <div class="spinner" aria-hidden="true"></div>
            <p class="waiting-title">{format!("Finish signing in with {label} in your browser.")}</p>
            <p class="muted">"IoT Chat continues by itself when you are done there."</p>
            {move || {
                state
                    .sign_in_url
                    .get()
                    .map(|url| {
                        view! {
                            <div class="field">
                                <label for="sign-in-url">"No browser opened? Copy this address into one:"</label>
                                <input
                                    id="sign-in-url"
                                    type="url"
                                    class="mono"
                                    data-testid="sign-in-url"
                                    readonly
                                    prop:value=url
                                    on:focus=move |ev| {
                                        let input: web_sys::HtmlInputElement = event_target(&ev);
                                        input.select();
                                    }
                                />
                            </div>
                        }
                    })
            }}
            <button
                class="button wide"
                type="button"
                data-testid="provider-cancel"
                disabled=move || cancelling.get()
                on:click=cancel
            >
                "Cancel"
            </button>
        </div>
    }
}

fn choice_kind(choice: &BackendChoice) -> &'static str {
    match choice {
        BackendChoice::Local => "local",
        BackendChoice::Server { .. } => "server",
        BackendChoice::Profile { .. } => "profile",
    }
}

/// The folded chooser's one line: what kind of backend, and which.
fn backend_summary(backend: Option<&BackendInfo>) -> (&'static str, String) {
    match backend.map(|b| &b.choice) {
        None | Some(BackendChoice::Local) => ("Server: ", "This computer".to_owned()),
        Some(BackendChoice::Server { address, .. }) => {
            let host = address.split_once("://").map_or(address.as_str(), |(_, rest)| rest);
            ("Server: ", host.trim_end_matches('/').to_owned())
        }
        Some(BackendChoice::Profile { json }) => {
            ("AWS profile: ", profile_region(json).unwrap_or_else(|| "not readable".to_owned()))
        }
    }
}

/// The region of a profile document, in either of its shapes (ours or the seed's
/// `config.json`). Read with the browser's JSON parser: `Profile::from_json` would bring a URL
/// parser into the wasm just for a label; the shell validates the profile anyway.
fn profile_region(json: &str) -> Option<String> {
    let document = js_sys::JSON::parse(json).ok()?;
    ["region", "AwsRegion"]
        .into_iter()
        .find_map(|key| js_sys::Reflect::get(&document, &key.into()).ok()?.as_string())
}

/// Where the account lives: this computer (the default), a server, or an AWS deployment.
/// Folded to one line until the user asks to change it, so the card stays short.
#[component]
fn BackendChooser() -> impl IntoView {
    let state = use_state();
    let current = move || state.backend.get();
    let initial = state.backend.get_untracked();
    let kind = RwSignal::new(initial.as_ref().map_or("local", |b| choice_kind(&b.choice)));
    let (address, ca) = match initial.as_ref().map(|b| &b.choice) {
        Some(BackendChoice::Server { address, ca_certificate }) => {
            (address.clone(), ca_certificate.clone().unwrap_or_default())
        }
        _ => (String::new(), String::new()),
    };
    let address = RwSignal::new(address);
    let ca = RwSignal::new(ca);
    let profile = RwSignal::new(match initial.as_ref().map(|b| &b.choice) {
        Some(BackendChoice::Profile { json }) => json.clone(),
        _ => String::new(),
    });
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let applied = RwSignal::new(false);
    let expanded = RwSignal::new(false);
    let summary = Memo::new(move |_| state.backend.with(|b| backend_summary(b.as_ref())));
    let toggle = NodeRef::<leptos::html::Button>::new();
    let options = NodeRef::<leptos::html::Div>::new();

    let apply = move |_| {
        if busy.get_untracked() {
            return;
        }
        let choice = match kind.get_untracked() {
            "server" => {
                let address = address.get_untracked().trim().to_owned();
                if address.is_empty() {
                    error.set(Some(
                        "Enter the server's address, like https://chat.example.com.".to_owned(),
                    ));
                    return;
                }
                let ca = ca.get_untracked().trim().to_owned();
                BackendChoice::Server { address, ca_certificate: (!ca.is_empty()).then_some(ca) }
            }
            "profile" => {
                let json = profile.get_untracked().trim().to_owned();
                if json.is_empty() {
                    error.set(Some(
                        "Paste the profile JSON that the AWS deployment printed.".to_owned(),
                    ));
                    return;
                }
                BackendChoice::Profile { json }
            }
            _ => BackendChoice::Local,
        };
        error.set(None);
        applied.set(false);
        busy.set(true);
        spawn_local(async move {
            if !apply_backend(state, choice, error, busy, applied).await {
                return;
            }
            // Fold again; focus leaves with the options, so it goes back to the toggle.
            let focused = document().active_element();
            let had_focus =
                options.get_untracked().is_some_and(|options| options.contains(focused.as_deref()));
            expanded.set(false);
            if had_focus && let Some(toggle) = toggle.get_untracked() {
                let _ = toggle.focus();
            }
        });
    };

    view! {
        <section class="backend" data-testid="backend" aria-label="Where your account lives">
            <div class="backend-summary">
                <p class="backend-current" id="backend-summary">
                    {move || summary.get().0}
                    <strong data-testid="backend-label">
                        {move || summary.get().1}
                    </strong>
                    {move || applied.get().then(|| view! { <span class="ok">" ✓"</span> })}
                </p>
                <button
                    class="button small"
                    type="button"
                    data-testid="backend-change"
                    node_ref=toggle
                    aria-expanded=move || expanded.get().to_string()
                    aria-controls=move || expanded.get().then_some("backend-options")
                    aria-describedby="backend-summary"
                    on:click=move |_| expanded.update(|open| *open = !*open)
                >
                    {move || if expanded.get() { "Close" } else { "Change" }}
                </button>
            </div>
            {move || {
                current()
                    .and_then(|b| b.problem)
                    .map(|problem| {
                        view! { <p class="field-error" role="alert" data-testid="backend-problem">{problem}</p> }
                    })
            }}
            <Show when=move || expanded.get()>
                <div class="backend-options" id="backend-options" node_ref=options>
                    <div class="backend-row">
                        <label class="sr-only" for="backend-chooser">"Backend"</label>
                        <select
                            id="backend-chooser"
                            data-testid="backend-chooser"
                            on:change=move |ev| {
                                kind.set(match event_target_value(&ev).as_str() {
                                    "server" => "server",
                                    "profile" => "profile",
                                    _ => "local",
                                });
                                error.set(None);
                                applied.set(false);
                            }
                        >
                            <option value="local" prop:selected=move || kind.get() == "local">
                                "This computer"
                            </option>
                            <option value="server" prop:selected=move || kind.get() == "server">
                                "A server"
                            </option>
                            <option value="profile" prop:selected=move || kind.get() == "profile">
                                "AWS profile"
                            </option>
                        </select>
                        <button
                            class="button"
                            type="button"
                            data-testid="backend-apply"
                            disabled=move || busy.get()
                            on:click=apply
                        >
                            {move || if busy.get() { "Checking…" } else { "Apply" }}
                        </button>
                    </div>
                    {move || match kind.get() {
                        "server" => view! {
                            <TextField
                                id="backend-address"
                                label="Server address"
                                input_type="url"
                                value=address
                                spellcheck="false"
                                placeholder="https://chat.example.com"
                            />
                            <div class="field">
                                <label for="backend-ca">"CA certificate " <span class="muted">"(optional)"</span></label>
                                <textarea
                                    id="backend-ca"
                                    data-testid="backend-ca"
                                    class="mono"
                                    rows="3"
                                    spellcheck="false"
                                    placeholder="-----BEGIN CERTIFICATE-----"
                                    prop:value=ca
                                    on:input=move |ev| ca.set(event_target_value(&ev))
                                ></textarea>
                                <p class="hint">"Only for a server with a self-signed certificate: paste the PEM its operator gave you."</p>
                            </div>
                        }
                        .into_any(),
                        "profile" => view! {
                            <div class="field">
                                <label for="backend-profile-json">"Profile JSON"</label>
                                <textarea
                                    id="backend-profile-json"
                                    data-testid="backend-profile-json"
                                    class="mono"
                                    rows="5"
                                    spellcheck="false"
                                    placeholder="{\"region\": \"eu-west-1\", …}"
                                    prop:value=profile
                                    on:input=move |ev| profile.set(event_target_value(&ev))
                                ></textarea>
                                <p class="hint">"The JSON the AWS deployment printed (or the seed's config.json)."</p>
                            </div>
                        }
                        .into_any(),
                        _ => ().into_any(),
                    }}
                    {move || {
                        error
                            .get()
                            .map(|e| {
                                view! { <p class="field-error" role="alert" data-testid="backend-error">{e}</p> }
                            })
                    }}
                </div>
            </Show>
        </section>
    }
}

/// Switches the backend; true when it is in use and has no problem.
async fn apply_backend(
    state: AppState,
    choice: BackendChoice,
    error: RwSignal<Option<String>>,
    busy: RwSignal<bool>,
    applied: RwSignal<bool>,
) -> bool {
    let result: Result<BackendInfo, ErrorBody> = ipc::backend_set(&choice).await;
    busy.set(false);
    match result {
        Ok(info) => {
            let usable = info.problem.is_none();
            applied.set(usable);
            state.backend.set(Some(info));
            usable
        }
        Err(e) => {
            error.set(Some(e.message));
            false
        }
    }
}
