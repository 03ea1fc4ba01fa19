//! Sign-in through the hosted UI: which social identity providers the user pool offers, and
//! the hosted UI's domain prefix. They are template parameters, set from environment variables
//! of `iotchat-infra deploy` (docs/aws.md, "Sign in with Google or Facebook"): the secrets never
//! go on a command line, which other users of the machine can read, and nothing here prints a
//! value.

use anyhow::{Result, bail};

/// A template parameter and the environment variable that sets it.
#[derive(Clone, Copy)]
pub(crate) struct Setting {
    pub(crate) parameter: &'static str,
    pub(crate) variable: &'static str,
}

/// A social identity provider: its name in the user pool, and its app's id and secret.
pub(crate) struct Provider {
    pub(crate) name: &'static str,
    pub(crate) id: Setting,
    pub(crate) secret: Setting,
}

pub(crate) const PROVIDERS: [Provider; 2] = [
    Provider {
        name: "Google",
        id: Setting { parameter: "GoogleClientId", variable: "IOTCHAT_GOOGLE_CLIENT_ID" },
        secret: Setting {
            parameter: "GoogleClientSecret",
            variable: "IOTCHAT_GOOGLE_CLIENT_SECRET",
        },
    },
    Provider {
        name: "Facebook",
        id: Setting { parameter: "FacebookAppId", variable: "IOTCHAT_FACEBOOK_APP_ID" },
        secret: Setting { parameter: "FacebookAppSecret", variable: "IOTCHAT_FACEBOOK_APP_SECRET" },
    },
];

pub(crate) const DOMAIN_PREFIX: Setting =
    Setting { parameter: "HostedUiDomainPrefix", variable: "IOTCHAT_HOSTED_UI_DOMAIN" };

/// The ports of the app's loopback redirect URIs, `http://localhost:<port>/callback`, in the
/// order the app tries them: the template's CallbackURLs list exactly these.
pub(crate) const CALLBACK_PORTS: [u16; 3] = [28787, 28788, 28789];

/// What the environment says about each optional parameter: `Some(value)` when its variable is
/// set (an empty id turns its provider off, an empty prefix asks for the generated one), `None`
/// when it is not (the stack keeps what it has; a new stack gets the template's default: off).
/// Deliberately not `Debug`: it holds secrets.
pub(crate) struct SignIn {
    pub(crate) values: Vec<(&'static str, Option<String>)>,
    /// One line per provider and for the domain, for the deploy's report (never a value).
    pub(crate) summary: Vec<String>,
}

/// Reads the settings through `get` (the environment), checking them before anything is
/// deployed: a provider needs its id and secret together, and a prefix must be one Cognito
/// accepts.
pub(crate) fn from_env(get: impl Fn(&str) -> Result<Option<String>>) -> Result<SignIn> {
    let read = |setting: Setting| -> Result<Option<String>> {
        Ok(get(setting.variable)?.map(|value| value.trim().to_owned()))
    };
    let mut values = Vec::new();
    let mut summary = Vec::new();
    for provider in &PROVIDERS {
        let (id, secret) = (read(provider.id)?, read(provider.secret)?);
        let (id_var, secret_var) = (provider.id.variable, provider.secret.variable);
        let (id, secret) = match (id, secret) {
            (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
                summary.push(format!("{}: on ({id_var}, {secret_var})", provider.name));
                (Some(id), Some(secret))
            }
            (Some(id), _) if !id.is_empty() => {
                bail!("{id_var} is set, so {secret_var} must be set too (docs/aws.md)")
            }
            (Some(_), _) => {
                // Off: the secret goes too, so none is left behind in the stack.
                summary.push(format!("{}: off ({id_var} is empty)", provider.name));
                (Some(String::new()), Some(String::new()))
            }
            (None, Some(secret)) if !secret.is_empty() => {
                bail!("{secret_var} is set, so {id_var} must be set too (docs/aws.md)")
            }
            (None, _) => {
                summary.push(format!(
                    "{}: as the stack has it ({id_var} is not set; off for a new stack)",
                    provider.name
                ));
                (None, None)
            }
        };
        values.push((provider.id.parameter, id));
        values.push((provider.secret.parameter, secret));
    }
    let prefix = read(DOMAIN_PREFIX)?;
    let variable = DOMAIN_PREFIX.variable;
    match prefix.as_deref() {
        Some("") => summary.push(format!("hosted UI domain: generated ({variable} is empty)")),
        Some(prefix) => {
            check_domain_prefix(prefix)?;
            summary.push(format!("hosted UI domain: {prefix} ({variable})"));
        }
        None => summary.push(format!(
            "hosted UI domain: as the stack has it ({variable} is not set; generated for a new \
             stack)"
        )),
    }
    values.push((DOMAIN_PREFIX.parameter, prefix));
    Ok(SignIn { values, summary })
}

/// Cognito's rule for a domain prefix (the template's AllowedPattern, and the words it
/// reserves), so a wrong one is refused before anything is deployed.
fn check_domain_prefix(prefix: &str) -> Result<()> {
    let variable = DOMAIN_PREFIX.variable;
    let ok = (1..=63).contains(&prefix.len())
        && prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !prefix.starts_with('-')
        && !prefix.ends_with('-');
    if !ok {
        bail!(
            "{variable} {prefix:?}: a domain prefix is 1–63 lowercase letters, digits and \
             hyphens, not starting or ending with a hyphen"
        );
    }
    if let Some(word) = ["aws", "amazon", "cognito"].into_iter().find(|w| prefix.contains(w)) {
        bail!("{variable} {prefix:?}: Cognito does not allow {word:?} in a domain prefix");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(env: &[(&str, &str)]) -> Result<SignIn> {
        let env: Vec<(String, String)> =
            env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        from_env(|name| Ok(env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())))
    }

    fn value(sign_in: &SignIn, parameter: &str) -> Option<String> {
        sign_in.values.iter().find(|(k, _)| *k == parameter).and_then(|(_, v)| v.clone())
    }

    fn refused(env: &[(&str, &str)]) -> String {
        match read(env) {
            Ok(_) => panic!("accepted {env:?}"),
            Err(error) => format!("{error:#}"),
        }
    }

    #[test]
    fn nothing_set_keeps_what_the_stack_has() {
        let sign_in = read(&[]).expect("valid");
        assert_eq!(sign_in.values.len(), 5);
        assert!(sign_in.values.iter().all(|(_, v)| v.is_none()));
        assert!(sign_in.summary.iter().any(|line| line.starts_with("Google: as the stack has it")));
    }

    #[test]
    fn a_provider_is_on_with_its_id_and_secret_and_off_with_an_empty_id() {
        let sign_in = read(&[
            ("IOTCHAT_GOOGLE_CLIENT_ID", " 123-abc.apps.googleusercontent.com\n"),
            ("IOTCHAT_GOOGLE_CLIENT_SECRET", "GOCSPX-secret"),
            ("IOTCHAT_FACEBOOK_APP_ID", ""),
            ("IOTCHAT_FACEBOOK_APP_SECRET", "stale"),
            ("IOTCHAT_HOSTED_UI_DOMAIN", "team-chat-7"),
        ])
        .expect("valid");
        let google_id = value(&sign_in, "GoogleClientId");
        assert_eq!(google_id.as_deref(), Some("123-abc.apps.googleusercontent.com"), "trimmed");
        assert_eq!(value(&sign_in, "GoogleClientSecret").as_deref(), Some("GOCSPX-secret"));
        assert_eq!(value(&sign_in, "FacebookAppId").as_deref(), Some(""));
        assert_eq!(value(&sign_in, "FacebookAppSecret").as_deref(), Some(""), "cleared when off");
        assert_eq!(value(&sign_in, "HostedUiDomainPrefix").as_deref(), Some("team-chat-7"));
        let report = sign_in.summary.join("\n");
        assert!(report.contains("Google: on") && report.contains("Facebook: off"), "{report}");
        assert!(!report.contains("GOCSPX-secret") && !report.contains("123-abc"), "{report}");
    }

    #[test]
    fn half_a_provider_or_a_prefix_cognito_refuses_is_refused_before_deploying() {
        let error = refused(&[("IOTCHAT_GOOGLE_CLIENT_ID", "123")]);
        assert!(error.contains("IOTCHAT_GOOGLE_CLIENT_SECRET must be set"), "{error}");
        let error =
            refused(&[("IOTCHAT_FACEBOOK_APP_ID", "1"), ("IOTCHAT_FACEBOOK_APP_SECRET", "")]);
        assert!(error.contains("IOTCHAT_FACEBOOK_APP_SECRET must be set"), "{error}");
        let error = refused(&[("IOTCHAT_FACEBOOK_APP_SECRET", "s3cret")]);
        assert!(error.contains("IOTCHAT_FACEBOOK_APP_ID must be set"), "{error}");
        assert!(!error.contains("s3cret"), "never the secret: {error}");
        let long = "a".repeat(64);
        for prefix in ["Team", "-team", "team-", "team_chat", long.as_str()] {
            let error = refused(&[("IOTCHAT_HOSTED_UI_DOMAIN", prefix)]);
            assert!(error.contains("lowercase letters"), "{prefix}: {error}");
        }
        for prefix in ["my-aws-chat", "amazonchat", "cognito-1"] {
            let error = refused(&[("IOTCHAT_HOSTED_UI_DOMAIN", prefix)]);
            assert!(error.contains("does not allow"), "{prefix}: {error}");
        }
        let generated = read(&[("IOTCHAT_HOSTED_UI_DOMAIN", "")]).expect("valid");
        assert_eq!(value(&generated, "HostedUiDomainPrefix").as_deref(), Some(""));
    }
}
