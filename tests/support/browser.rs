//! A stand-in for the person at the browser during a hosted-UI sign-in: it follows the
//! redirects of `/oauth2/authorize` by hand, submits the built-in test provider's page, and
//! delivers the answer to the app's loopback redirect URI, as a browser would.

use anyhow::{Context as _, Result, bail};

/// What the person does at the test provider's page.
#[derive(Debug, Clone)]
pub enum Act {
    /// Signs in as `subject` (the federated user is `TestIdP_<subject>`).
    Allow { subject: String },
    /// Declines.
    Deny,
    /// Signs in, but the answer reaching the app carries another `state` (as a forged or
    /// stale redirect would).
    TamperState { subject: String },
}

/// Plays the browser from the sign-in address the app opened to the page its loopback
/// listener answers; returns that page's text.
pub async fn play_browser(sign_in_url: &str, act: Act) -> Result<String> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(20))
        .build()?;
    let start = url::Url::parse(sign_in_url).context("the sign-in address is a URL")?;
    let to_provider = location(browser.get(start.clone()).send().await?, "authorize")?;
    let provider_page = start.join(&to_provider)?;
    let pending = provider_page
        .query_pairs()
        .find(|(key, _)| key == "pending")
        .map(|(_, value)| value.into_owned())
        .with_context(|| format!("the test provider's page is {provider_page}"))?;
    let page = browser.get(provider_page.clone()).send().await?;
    if !page.status().is_success() {
        bail!("the test provider's page answered {}", page.status());
    }
    let (subject, action) = match &act {
        Act::Allow { subject } | Act::TamperState { subject } => (subject.as_str(), "allow"),
        Act::Deny => ("nobody", "deny"),
    };
    let answer = browser
        .post(start.join("/testidp/authorize")?)
        .form(&[("pending", pending.as_str()), ("subject", subject), ("action", action)])
        .send()
        .await?;
    let mut callback = url::Url::parse(&location(answer, "the test provider")?)?;
    if let Act::TamperState { .. } = act {
        let pairs: Vec<(String, String)> = callback
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "state" { format!("{v}-tampered") } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        callback.query_pairs_mut().clear().extend_pairs(pairs);
    }
    if callback.host_str() != Some("localhost") || callback.path() != "/callback" {
        bail!("the answer went to {callback}, not the app's loopback redirect URI");
    }
    // The app listens on 127.0.0.1 (and [::1]); reqwest resolves localhost to either.
    let page = browser.get(callback).send().await.context("the app's loopback listener")?;
    Ok(page.text().await?)
}

fn location(response: reqwest::Response, what: &str) -> Result<String> {
    if !response.status().is_redirection() {
        bail!("{what} answered {} instead of a redirect", response.status());
    }
    Ok(response
        .headers()
        .get("location")
        .with_context(|| format!("{what}'s redirect has no Location"))?
        .to_str()?
        .to_owned())
}
