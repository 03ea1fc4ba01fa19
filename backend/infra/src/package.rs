//! Lambda's `provided.al2023` packages: a zip holding one executable named `bootstrap`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use sha2::{Digest as _, Sha256};

/// A function's package and the S3 key it is stored under (named by its content, so a
/// changed binary is a changed key and CloudFormation updates the function).
#[derive(Debug)]
pub(crate) struct Package {
    pub(crate) zip: Vec<u8>,
    pub(crate) key: String,
}

/// Where the binary of `name` is in `dir`: cargo-lambda's `DIR/<name>/bootstrap`, or cargo's
/// `DIR/<name>`.
pub(crate) fn binary(dir: &Path, name: &str) -> Result<PathBuf> {
    let candidates = [dir.join(name).join("bootstrap"), dir.join(name)];
    candidates.iter().find(|p| p.is_file()).cloned().with_context(|| {
        format!(
            "no binary for {name} in {}: expected {} or {} (cargo xtask aws deploy builds them)",
            dir.display(),
            candidates[0].display(),
            candidates[1].display()
        )
    })
}

/// Zips the binary of `name` as `bootstrap` (executable).
pub(crate) fn package(dir: &Path, stack: &str, name: &str) -> Result<Package> {
    let path = binary(dir, name)?;
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    if !bytes.starts_with(b"\x7fELF") {
        bail!("{} is not a Linux executable (Lambda runs Linux ELF binaries)", path.display());
    }
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o755);
    zip.start_file("bootstrap", options).context("zipping")?;
    zip.write_all(&bytes).context("zipping")?;
    let zip = zip.finish().context("zipping")?.into_inner();
    let digest = Sha256::digest(&zip);
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Ok(Package { key: format!("{stack}/{name}-{hex}.zip"), zip })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_package_holds_an_executable_bootstrap_and_is_named_by_its_content() {
        let dir = tempfile_dir();
        std::fs::write(dir.join("fn-a"), b"\x7fELF one").expect("write");
        std::fs::create_dir_all(dir.join("fn-b")).expect("mkdir");
        std::fs::write(dir.join("fn-b").join("bootstrap"), b"\x7fELF two").expect("write");
        std::fs::write(dir.join("script"), b"#!/bin/sh").expect("write");
        let a = package(&dir, "s", "fn-a").expect("cargo's layout");
        let b = package(&dir, "s", "fn-b").expect("cargo-lambda's layout");
        assert!(a.key.starts_with("s/fn-a-") && a.key.ends_with(".zip"));
        assert_ne!(a.key.rsplit('-').next(), b.key.rsplit('-').next(), "content names the key");
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(a.zip)).expect("a zip");
        let entry = archive.by_name("bootstrap").expect("bootstrap inside");
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
        drop(entry);
        assert!(package(&dir, "s", "script").unwrap_err().to_string().contains("ELF"));
        assert!(package(&dir, "s", "missing").unwrap_err().to_string().contains("no binary"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("iotchat-infra-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }
}
