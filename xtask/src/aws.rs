//! `cargo xtask aws deploy|teardown`: builds the Lambda functions with cargo-lambda (release,
//! for Lambda's Amazon Linux 2023 on arm64 or x86_64) and runs `iotchat-infra`, which talks
//! to AWS (or to a stand-in given `--endpoint-url`).

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::sh::{Cmd, step};
use crate::{root, setup, target_dir};

const USAGE: &str = "usage:
  cargo xtask aws deploy [--stack NAME] [--region R] [--arch arm64|x86_64] [--endpoint-url URL]
  cargo xtask aws teardown [--stack NAME] [--region R] [--endpoint-url URL]";

pub(crate) fn aws(args: &[String]) -> Result<()> {
    let Some((command, rest)) = args.split_first() else { bail!("{USAGE}") };
    let flag =
        |name: &str| rest.iter().position(|a| a == name).and_then(|i| rest.get(i + 1)).cloned();
    // iotchat-infra checks every option; only what the build needs is read here.
    let stack = flag("--stack").unwrap_or_else(|| "iotchat".to_owned());
    let arch = flag("--arch").unwrap_or_else(|| "arm64".to_owned());
    match command.as_str() {
        "deploy" => {
            let functions = build_functions(&arch)?;
            let profile = target_dir()?.join("aws").join(&stack).join("profile.json");
            let mut args: Vec<String> = vec![
                "deploy".into(),
                "--functions".into(),
                functions.to_string_lossy().into_owned(),
                "--profile-out".into(),
                profile.to_string_lossy().into_owned(),
            ];
            if flag("--stack").is_none() {
                args.extend(["--stack".into(), stack]);
            }
            if flag("--arch").is_none() {
                args.extend(["--arch".into(), arch]);
            }
            args.extend(rest.iter().cloned());
            infra(&args)
        }
        "teardown" => {
            let mut args: Vec<String> = vec!["teardown".into()];
            args.extend(rest.iter().cloned());
            infra(&args)
        }
        other => bail!("unknown aws command {other:?}\n{USAGE}"),
    }
}

/// Builds the three functions for Lambda; returns the directory cargo-lambda put them in
/// (`<dir>/<name>/bootstrap`).
fn build_functions(arch: &str) -> Result<PathBuf> {
    let (flag, target) = match arch {
        "arm64" => ("--arm64", "aarch64-unknown-linux-gnu"),
        "x86_64" => ("--x86-64", "x86_64-unknown-linux-gnu"),
        other => bail!("--arch {other:?}: Lambda runs arm64 or x86_64\n{USAGE}"),
    };
    step("Checking the build tools for Lambda");
    setup::ensure_rust_target(target)?;
    let venv_bin = setup::cargo_lambda()?;
    let out = target_dir()?.join("lambda");
    step(&format!(
        "Building the Lambda functions for {arch} Linux (cargo lambda build --release; Zig \
         links them against the glibc of Amazon Linux 2023)"
    ));
    Cmd::new("cargo")
        .args(["lambda", "build", "--release", flag, "--package", "iotchat-lambda"])
        .arg("--lambda-dir")
        .arg(&out)
        .dir(root())
        .path_prepend(&venv_bin)
        .run()?;
    Ok(out)
}

/// Runs iotchat-infra (built in release: it zips and uploads tens of megabytes).
fn infra(args: &[String]) -> Result<()> {
    step("Building iotchat-infra");
    Cmd::new("cargo")
        .args(["build", "--release", "--package", "iotchat-infra"])
        .dir(root())
        .run()?;
    let exe = target_dir()?
        .join("release")
        .join(format!("iotchat-infra{}", std::env::consts::EXE_SUFFIX));
    Cmd::new(exe).args(args).dir(root()).run()
}
