//! `iotchat-infra`: deploys IoT Chat's AWS stack and tears it down. `cargo xtask aws deploy`
//! builds the Lambda binaries and runs `deploy`; `cargo xtask aws teardown` runs `teardown`.
//!
//! ```text
//! iotchat-infra deploy --functions DIR [--stack NAME] [--region R] [--arch arm64|x86_64]
//!                      [--template PATH] [--profile-out PATH] [--endpoint-url URL]
//! iotchat-infra teardown [--stack NAME] [--region R] [--endpoint-url URL]
//! ```
//!
//! `--functions DIR` holds the three function binaries, as cargo-lambda lays them out
//! (`DIR/<name>/bootstrap`) or as cargo does (`DIR/<name>`). `--endpoint-url` sends every call
//! to a local stand-in (moto): resource types it cannot create from a template are left out
//! and named in the report.
//!
//! Sign-in with Google or Facebook through the hosted UI is set by environment variables of
//! `deploy`, never options (secrets stay off command lines): `IOTCHAT_GOOGLE_CLIENT_ID` and
//! `IOTCHAT_GOOGLE_CLIENT_SECRET`, `IOTCHAT_FACEBOOK_APP_ID` and `IOTCHAT_FACEBOOK_APP_SECRET`,
//! `IOTCHAT_HOSTED_UI_DOMAIN` (see `sign_in` and docs/aws.md).

mod aws;
mod package;
mod sign_in;
mod template;

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};

/// The three functions, as the template's code-key parameters name them.
pub(crate) const FUNCTIONS: [(&str, &str); 3] = [
    ("iotchat-lambda-api", "ApiCodeKey"),
    ("iotchat-lambda-ingest", "IngestCodeKey"),
    ("iotchat-lambda-presignup", "PreSignUpCodeKey"),
];

/// What a local stand-in (moto 5) does not create from a template: Cognito resources, topic
/// rules and API Gateway stages (it skips them, and a reference to one fails the stack).
pub(crate) const STAND_IN_SKIPS: &[&str] =
    &["AWS::Cognito::", "AWS::IoT::TopicRule", "AWS::ApiGateway::Stage"];

#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) stack: String,
    pub(crate) region: Option<String>,
    pub(crate) endpoint_url: Option<String>,
    pub(crate) arch: String,
    pub(crate) functions: Option<PathBuf>,
    pub(crate) template: PathBuf,
    pub(crate) profile_out: Option<PathBuf>,
}

const USAGE: &str = "usage:
  iotchat-infra deploy --functions DIR [--stack NAME] [--region R] [--arch arm64|x86_64]
                       [--template PATH] [--profile-out PATH] [--endpoint-url URL]
  iotchat-infra teardown [--stack NAME] [--region R] [--endpoint-url URL]
deploy reads IOTCHAT_GOOGLE_CLIENT_ID/_SECRET, IOTCHAT_FACEBOOK_APP_ID/_SECRET and
IOTCHAT_HOSTED_UI_DOMAIN from the environment (docs/aws.md)";

fn parse(args: &[String]) -> Result<(String, Options)> {
    let Some((command, rest)) = args.split_first() else { bail!("{USAGE}") };
    if command != "deploy" && command != "teardown" {
        bail!("unknown command {command:?}\n{USAGE}");
    }
    let mut options = Options {
        stack: "iotchat".to_owned(),
        region: None,
        endpoint_url: None,
        arch: "arm64".to_owned(),
        functions: None,
        template: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("template.yaml"),
        profile_out: None,
    };
    let mut rest = rest.iter();
    while let Some(flag) = rest.next() {
        let mut value =
            || rest.next().cloned().with_context(|| format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--stack" => options.stack = value()?,
            "--region" => options.region = Some(value()?),
            "--endpoint-url" => options.endpoint_url = Some(value()?),
            "--arch" => options.arch = value()?,
            "--functions" => options.functions = Some(PathBuf::from(value()?)),
            "--template" => options.template = PathBuf::from(value()?),
            "--profile-out" => options.profile_out = Some(PathBuf::from(value()?)),
            other => bail!("unknown option {other:?}\n{USAGE}"),
        }
    }
    check_stack_name(&options.stack)?;
    if options.arch != "arm64" && options.arch != "x86_64" {
        bail!("--arch {:?}: Lambda runs arm64 or x86_64", options.arch);
    }
    if command == "deploy" && options.functions.is_none() {
        bail!("deploy needs --functions DIR (cargo xtask aws deploy builds them)\n{USAGE}");
    }
    Ok((command.clone(), options))
}

/// CloudFormation's rule for stack names, and short enough for the names derived from it
/// (`<stack>-user`, `<stack>-users`, the artefacts bucket).
fn check_stack_name(name: &str) -> Result<()> {
    let ok = (1..=40).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !ok {
        bail!(
            "--stack {name:?}: a stack name is 1–40 letters, digits and dashes, starting with a \
             letter"
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match parse(&args) {
        Ok((command, options)) if command == "deploy" => aws::deploy(&options).await,
        Ok((_, options)) => aws::teardown(&options).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn options_are_checked_before_anything_is_called() {
        let (command, options) =
            parse(&args(&["deploy", "--functions", "f", "--stack", "team-a", "--arch", "x86_64"]))
                .expect("valid");
        assert_eq!((command.as_str(), options.stack.as_str()), ("deploy", "team-a"));
        assert_eq!(options.arch, "x86_64");
        let error = |list: &[&str]| parse(&args(list)).expect_err("invalid").to_string();
        assert!(error(&["deploy"]).contains("--functions"));
        assert!(error(&["deploy", "--functions", "f", "--arch", "riscv"]).contains("arm64"));
        assert!(error(&["teardown", "--stack", "9lives"]).contains("starting with a letter"));
        assert!(error(&["teardown", "--stack"]).contains("needs a value"));
        assert!(error(&["teardown", "--colour", "red"]).contains("unknown option"));
        assert!(error(&["launch"]).contains("unknown command"));
    }
}
