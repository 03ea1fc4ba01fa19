//! The signed-out screens: log in, register, and where the backend is.

use iotchat_protocol::desktop::{BackendChoice, BackendInfo};
use iotchat_protocol::{Code, ErrorBody};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::ipc;
use crate::state::{AppState, use_state};

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

    view! {
        <main class="centered auth" data-testid="auth-screen">
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
                {move || match mode.get() {
                    Mode::Login => view! { <LoginForm mode username password /> }.into_any(),
                    Mode::Register => view! { <RegisterForm mode username password /> }.into_any(),
                }}
                <BackendChooser />
            </section>
        </main>
    }
}

/// The error under a field, or under the form when `field` is `Form`.
fn error_slot(
    error: RwSignal<Option<FormError>>,
    field: Field,
    testid: &'static str,
) -> impl IntoView {
    move || {
        error.get().filter(|e| e.field == field).map(|e| {
            view! {
                <p class="field-error" role="alert" id=testid data-testid=testid>
                    {e.message}
                </p>
            }
        })
    }
}

/// `aria-invalid` and `aria-describedby` for a field while an error concerns it.
fn invalid(error: RwSignal<Option<FormError>>, field: Field) -> impl Fn() -> Option<&'static str> {
    move || error.with(|e| e.as_ref().is_some_and(|e| e.field == field).then_some("true"))
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
            <div class="field">
                <label for="login-username">"Username"</label>
                <input
                    id="login-username"
                    data-testid="login-username"
                    type="text"
                    autocomplete="username"
                    autocapitalize="off"
                    spellcheck="false"
                    prop:value=username
                    on:input=move |ev| username.set(event_target_value(&ev))
                    aria-invalid=invalid(error, Field::Username)
                    aria-describedby=move || invalid(error, Field::Username)().map(|_| ERR)
                />
                {error_slot(error, Field::Username, ERR)}
            </div>
            <div class="field">
                <label for="login-password">"Password"</label>
                <input
                    id="login-password"
                    data-testid="login-password"
                    type="password"
                    autocomplete="current-password"
                    prop:value=password
                    on:input=move |ev| password.set(event_target_value(&ev))
                    aria-invalid=invalid(error, Field::Password)
                    aria-describedby=move || invalid(error, Field::Password)().map(|_| ERR)
                />
                {error_slot(error, Field::Password, ERR)}
            </div>
            {error_slot(error, Field::Form, ERR)}
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
            <div class="field">
                <label for="register-username">"Username"</label>
                <input
                    id="register-username"
                    data-testid="register-username"
                    type="text"
                    autocomplete="username"
                    autocapitalize="off"
                    spellcheck="false"
                    prop:value=username
                    on:input=move |ev| username.set(event_target_value(&ev))
                    aria-invalid=invalid(error, Field::Username)
                    aria-describedby=move || invalid(error, Field::Username)().map(|_| ERR)
                />
                {error_slot(error, Field::Username, ERR)}
            </div>
            <div class="field">
                <label for="register-email">"Email"</label>
                <input
                    id="register-email"
                    data-testid="register-email"
                    type="email"
                    autocomplete="email"
                    spellcheck="false"
                    prop:value=email
                    on:input=move |ev| email.set(event_target_value(&ev))
                    aria-invalid=invalid(error, Field::Email)
                    aria-describedby=move || invalid(error, Field::Email)().map(|_| ERR)
                />
                {error_slot(error, Field::Email, ERR)}
            </div>
            <div class="field">
                <label for="register-password">"Password"</label>
                <input
                    id="register-password"
                    data-testid="register-password"
                    type="password"
                    autocomplete="new-password"
                    prop:value=password
                    on:input=move |ev| password.set(event_target_value(&ev))
                    aria-invalid=invalid(error, Field::Password)
                    aria-describedby=move || {
                        if invalid(error, Field::Password)().is_some() {
                            "register-password-hint register-error"
                        } else {
                            "register-password-hint"
                        }
                    }
                />
                <p class="hint" id="register-password-hint">
                    "At least 8 characters, with upper and lower case letters, a digit and a symbol."
                </p>
                {error_slot(error, Field::Password, ERR)}
            </div>
            {error_slot(error, Field::Form, ERR)}
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

fn choice_kind(choice: &BackendChoice) -> &'static str {
    match choice {
        BackendChoice::Local => "local",
        BackendChoice::Server { .. } => "server",
        BackendChoice::Profile { .. } => "profile",
    }
}

/// Where the account lives: this computer (the default), a server, or an AWS deployment.
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
        spawn_local(apply_backend(state, choice, error, busy, applied));
    };

    view! {
        <section class="backend" data-testid="backend" aria-labelledby="backend-title">
            <h2 id="backend-title" class="section-title">"Where your account lives"</h2>
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
                    <div class="field">
                        <label for="backend-address">"Server address"</label>
                        <input
                            id="backend-address"
                            data-testid="backend-address"
                            type="url"
                            placeholder="https://chat.example.com"
                            spellcheck="false"
                            prop:value=address
                            on:input=move |ev| address.set(event_target_value(&ev))
                        />
                    </div>
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
            <p class="backend-current">
                "Using "
                <strong data-testid="backend-label">
                    {move || current().map_or_else(|| "this computer".to_owned(), |b| b.label)}
                </strong>
                {move || applied.get().then(|| view! { <span class="ok">" ✓"</span> })}
            </p>
            {move || {
                current()
                    .and_then(|b| b.problem)
                    .map(|problem| {
                        view! { <p class="field-error" role="alert" data-testid="backend-problem">{problem}</p> }
                    })
            }}
            {move || {
                error
                    .get()
                    .map(|e| {
                        view! { <p class="field-error" role="alert" data-testid="backend-error">{e}</p> }
                    })
            }}
        </section>
    }
}

async fn apply_backend(
    state: AppState,
    choice: BackendChoice,
    error: RwSignal<Option<String>>,
    busy: RwSignal<bool>,
    applied: RwSignal<bool>,
) {
    let result: Result<BackendInfo, ErrorBody> = ipc::backend_set(&choice).await;
    busy.set(false);
    match result {
        Ok(info) => {
            applied.set(info.problem.is_none());
            state.backend.set(Some(info));
        }
        Err(e) => error.set(Some(e.message)),
    }
}
