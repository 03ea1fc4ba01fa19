//! Running commands loudly: every command is echoed before it runs, and a failure names it.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Prints a step heading.
pub(crate) fn step(what: &str) {
    println!("\n==> {what}");
}

/// A command to run in the foreground.
#[derive(Debug)]
pub(crate) struct Cmd {
    inner: Command,
    shown: String,
}

impl Cmd {
    pub(crate) fn new(program: impl AsRef<OsStr>) -> Self {
        let shown = program.as_ref().to_string_lossy().into_owned();
        Self { inner: Command::new(program), shown }
    }

    pub(crate) fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.shown.push(' ');
        self.shown.push_str(&arg.as_ref().to_string_lossy());
        self.inner.arg(arg);
        self
    }

    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for arg in args {
            self = self.arg(arg);
        }
        self
    }

    pub(crate) fn dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.inner.current_dir(dir);
        self
    }

    pub(crate) fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.inner.env(key, value);
        self
    }

    /// Puts `dir` first on PATH for this command (tools installed by `cargo install`).
    pub(crate) fn path_prepend(mut self, dir: &Path) -> Self {
        let mut paths: Vec<PathBuf> = vec![dir.to_path_buf()];
        if let Some(current) = std::env::var_os("PATH") {
            paths.extend(std::env::split_paths(&current));
        }
        let joined: OsString = std::env::join_paths(paths).unwrap_or_default();
        self.inner.env("PATH", joined);
        self
    }

    /// Runs the command, inheriting the terminal; fails unless it exits with 0.
    pub(crate) fn run(mut self) -> Result<()> {
        println!("$ {}", self.shown);
        let status =
            self.inner.status().with_context(|| format!("could not start `{}`", self.shown))?;
        if !status.success() {
            bail!("`{}` failed ({status})", self.shown);
        }
        Ok(())
    }

    /// Runs the command quietly and returns its standard output.
    pub(crate) fn output(mut self) -> Result<String> {
        let out =
            self.inner.output().with_context(|| format!("could not start `{}`", self.shown))?;
        if !out.status.success() {
            bail!(
                "`{}` failed ({}): {}",
                self.shown,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs the command quietly; true if it exits with 0 (false also if it cannot start).
    pub(crate) fn succeeds(mut self) -> bool {
        self.inner.output().is_ok_and(|out| out.status.success())
    }
}
