//! Releases and installers: `cargo xtask release <version>` builds the bundles of this platform
//! with the bundled server, signs them for the updater, and writes the channel's `latest.json`;
//! the test command uses the same pieces for the `.deb` it installs and the two builds the
//! updater test updates between.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine as _;

use crate::setup::Tools;
use crate::sh::{Cmd, step};
use crate::{build_app_with, build_ui, root, target_dir};

/// Where the public releases are downloaded from; `cargo xtask release --base-url` changes it.
const DEFAULT_BASE_URL: &str = "https://github.com/iotchat/iotchat/releases/download";

const USAGE: &str = "usage: cargo xtask release <version> [--channel stable|beta] [--out DIR] \
                     [--notes TEXT | --notes-file FILE] [--base-url URL] [--appimage]";

/// The channels, as the updater's endpoint template names them.
const CHANNELS: &[&str] = &["stable", "beta"];

#[derive(Debug)]
struct ReleaseArgs {
    version: semver::Version,
    channel: String,
    out: Option<PathBuf>,
    notes: String,
    base_url: String,
    /// Also an AppImage (Linux; the bundler downloads its tools from GitHub for it).
    appimage: bool,
}

fn parse(args: &[String]) -> Result<ReleaseArgs> {
    let mut args = args.iter();
    let version = args.next().with_context(|| format!("no version given\n{USAGE}"))?;
    let version = semver::Version::parse(version.trim_start_matches('v')).with_context(|| {
        format!("{version:?} is not a version like 1.2.0 or 1.3.0-beta.1\n{USAGE}")
    })?;
    let mut channel = None;
    let mut out = None;
    let mut notes = None;
    let mut base_url = None;
    let mut appimage = false;
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--channel" => channel = Some(value()?.clone()),
            "--out" => out = Some(PathBuf::from(value()?)),
            "--notes" => notes = Some(value()?.clone()),
            "--notes-file" => {
                let path = value()?;
                notes = Some(
                    std::fs::read_to_string(path)
                        .with_context(|| format!("reading the release notes from {path}"))?,
                );
            }
            "--base-url" => base_url = Some(value()?.trim_end_matches('/').to_owned()),
            "--appimage" => appimage = true,
            other => bail!("unknown option {other:?}\n{USAGE}"),
        }
    }
    let channel = channel
        .unwrap_or_else(|| if version.pre.is_empty() { "stable" } else { "beta" }.to_owned());
    if !CHANNELS.contains(&channel.as_str()) {
        bail!("unknown channel {channel:?}: it is `stable` or `beta`");
    }
    if channel == "stable" && !version.pre.is_empty() {
        bail!(
            "{version} is a pre-release, which stable users must not get: release it with \
             `--channel beta`, or drop the `-{}` part",
            version.pre
        );
    }
    let base_url = base_url.unwrap_or_else(|| format!("{DEFAULT_BASE_URL}/v{version}"));
    Ok(ReleaseArgs {
        notes: notes.unwrap_or_else(|| format!("IoT Chat {version}")),
        version,
        channel,
        out,
        base_url,
        appimage,
    })
}

/// The signing key from the environment (the key itself, or a path to it), as the Tauri CLI
/// reads it.
fn signing_key() -> Result<(String, String)> {
    let Ok(key) = std::env::var("TAURI_SIGNING_PRIVATE_KEY") else {
        bail!(
            "releases are signed for the updater: set TAURI_SIGNING_PRIVATE_KEY to the private \
             key (or its path) and TAURI_SIGNING_PRIVATE_KEY_PASSWORD to its password. A new \
             pair comes from `tauri signer generate`; its public key belongs in tauri.conf.json \
             (plugins.updater.pubkey), and the private key never in the repository."
        );
    };
    let key = match std::fs::read_to_string(&key) {
        Ok(text) => text.trim().to_owned(),
        Err(_) => key,
    };
    let password = std::env::var("TAURI_SIGNING_PRIVATE_KEY_PASSWORD").unwrap_or_default();
    Ok((key, password))
}

/// `cargo xtask release <version> [--channel beta] [--out DIR]`.
pub(crate) fn release(tools: &Tools, args: &[String]) -> Result<()> {
    let args = parse(args)?;
    let (key, password) = signing_key()?;
    let version = args.version.to_string();
    let out = match &args.out {
        Some(out) => out.clone(),
        None => target_dir()?.join("releases").join(&args.channel).join(&version),
    };
    step(&format!(
        "Releasing IoT Chat {version} on the {} channel into {}",
        args.channel,
        out.display()
    ));
    build_ui(tools)?;
    let overlay = serde_json::json!({ "version": version });
    let app = build_app_with(&[], Some(&overlay.to_string()))?;
    let bundles = bundle(tools, &app, &version, args.appimage)?;
    std::fs::create_dir_all(&out)?;
    let pubkey = configured_pubkey()?;
    let mut platforms = serde_json::Map::new();
    for bundle in &bundles {
        let name = bundle.file_name();
        let target = out.join(&name);
        if bundle.path.is_dir() {
            // A macOS .app is a folder: the updater takes it as a .tar.gz.
            let parent = bundle.path.parent().context("the .app sits in a folder")?;
            let folder = bundle.path.file_name().context("the .app has a name")?;
            Cmd::new("tar").arg("-czf").arg(&target).arg("-C").arg(parent).arg(folder).run()?;
        } else {
            std::fs::copy(&bundle.path, &target).with_context(|| {
                format!("copying {} to {}", bundle.path.display(), out.display())
            })?;
        }
        let size = std::fs::metadata(&target)?.len() / 1024;
        let targets = bundle.updater_targets();
        if targets.is_empty() {
            println!("    {name}: {size} KB (a download; the updater does not use it)");
            continue;
        }
        let signature = sign(tools, &target, &version, &key, &password)?;
        verify(&pubkey, &target, &signature).with_context(|| {
            format!(
                "{} was signed, but not with the key whose public half is in tauri.conf.json: \
                 installed apps would refuse it",
                target.display()
            )
        })?;
        for updater_target in targets {
            platforms.insert(
                updater_target,
                serde_json::json!({
                    "url": format!("{}/{name}", args.base_url),
                    "signature": signature,
                }),
            );
        }
        println!("    {name}: {size} KB, signed");
    }
    let manifest = serde_json::json!({
        "version": version,
        "notes": args.notes,
        "pub_date": rfc3339_now(),
        "platforms": platforms,
    });
    std::fs::write(out.join("latest.json"), serde_json::to_string_pretty(&manifest)? + "\n")?;
    step(&format!(
        "Done: upload the files in {} to {}/, and latest.json where the {} channel's endpoint \
         points (plugins.updater.endpoints in tauri.conf.json)",
        out.display(),
        args.base_url,
        args.channel
    ));
    Ok(())
}

/// One installer this platform builds.
#[derive(Debug)]
pub(crate) struct Bundle {
    pub(crate) path: PathBuf,
    /// `deb`, `rpm`, …: the updater's `{{bundle_type}}`.
    kind: &'static str,
    version: String,
}

impl Bundle {
    /// A name without spaces (the bundler puts the product name in it), unique per platform.
    fn file_name(&self) -> String {
        let arch = match (std::env::consts::ARCH, self.kind) {
            ("x86_64", "deb" | "appimage") => "amd64",
            ("aarch64", "deb" | "appimage") => "arm64",
            (arch, _) => arch,
        };
        let version = &self.version;
        match self.kind {
            "app" => format!("iotchat_{version}_{arch}.app.tar.gz"),
            "appimage" => format!("iotchat_{version}_{arch}.AppImage"),
            "nsis" => format!("iotchat_{version}_{arch}-setup.exe"),
            kind => format!("iotchat_{version}_{arch}.{kind}"),
        }
    }

    /// The manifest keys the updater looks up: `{os}-{arch}-{bundle_type}` first, then
    /// `{os}-{arch}` (for the platform's default format). None: not an update package.
    fn updater_targets(&self) -> Vec<String> {
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            os => os,
        };
        let arch = std::env::consts::ARCH;
        let typed = format!("{os}-{arch}-{}", self.kind);
        match self.kind {
            "dmg" => Vec::new(),
            "appimage" | "app" | "nsis" => vec![typed, format!("{os}-{arch}")],
            _ => vec![typed],
        }
    }
}

/// The Rust target this machine builds for (the sidecar's file name carries it).
fn host_triple() -> Result<String> {
    let out = Cmd::new("rustc").arg("-vV").output()?;
    out.lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV names no host")
}

/// Builds the release server and puts it where `bundle.externalBin` expects it. Returns the
/// externalBin path (without the target suffix).
fn sidecar() -> Result<PathBuf> {
    step("Building iotchat-server, which the bundles carry (release)");
    Cmd::new("cargo")
        .args(["build", "--release", "--package", "iotchat-server"])
        .dir(root())
        .run()?;
    let exe = std::env::consts::EXE_SUFFIX;
    let built = target_dir()?.join("release").join(format!("iotchat-server{exe}"));
    let dir = target_dir()?.join("sidecar");
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(&built, dir.join(format!("iotchat-server-{}{exe}", host_triple()?)))
        .with_context(|| format!("copying {}", built.display()))?;
    Ok(dir.join("iotchat-server"))
}

/// Builds this platform's installers from the release app `app` (built for `version`), with
/// the server inside. Linux: `.deb` and `.rpm` (AppImage needs tools from outside the package
/// registries; the release workflow builds it).
pub(crate) fn bundle(
    tools: &Tools,
    app: &Path,
    version: &str,
    appimage: bool,
) -> Result<Vec<Bundle>> {
    let external_bin = sidecar()?;
    let triple = host_triple()?;
    // The bundler marks the binary it packs with the package type, in place: it gets a copy in
    // a target folder of its own, so the app the tests run stays unmarked.
    let staging = target_dir()?.join(&triple).join("release");
    std::fs::create_dir_all(&staging)?;
    let name = app.file_name().context("the app has a file name")?;
    std::fs::copy(app, staging.join(name))?;
    let exe = std::env::consts::EXE_SUFFIX;
    std::fs::copy(
        external_bin.with_file_name(format!("iotchat-server-{triple}{exe}")),
        staging.join(format!("iotchat-server{exe}")),
    )?;
    let prerelease = version.contains('-');
    let kinds: Vec<&'static str> = if cfg!(target_os = "linux") {
        if appimage { vec!["deb", "rpm", "appimage"] } else { vec!["deb", "rpm"] }
    } else if cfg!(target_os = "macos") {
        vec!["app", "dmg"]
    } else if prerelease {
        // MSI versions are numbers only: a beta ships as the NSIS installer alone.
        println!("    {version} is a pre-release: NSIS only (MSI takes numeric versions)");
        vec!["nsis"]
    } else {
        vec!["msi", "nsis"]
    };
    let bundle_dir = staging.join("bundle");
    if bundle_dir.exists() {
        std::fs::remove_dir_all(&bundle_dir)?;
    }
    let overlay = serde_json::json!({
        "version": version,
        "bundle": { "externalBin": [external_bin] },
        // xtask built the UI and the app already.
        "build": { "beforeBundleCommand": null, "beforeBuildCommand": null },
    });
    step(&format!("Bundling {} (tauri bundle)", kinds.join(", ")));
    let config = CliConfig::write()?;
    Cmd::new(&tools.tauri_cli)
        .args(["bundle", "--ci", "--bundles", &kinds.join(","), "--target", &triple])
        .arg("--config")
        .arg(overlay.to_string())
        .env("TAURI_APP_PATH", root().join("src-tauri"))
        .env("TAURI_FRONTEND_PATH", root().join("ui"))
        .dir(root())
        .run()?;
    drop(config);
    let mut bundles = Vec::new();
    for kind in kinds {
        // The bundler's folder for each format, and the extension of what it makes there.
        let (folder, ext) = match kind {
            "app" => ("macos", "app"),
            "nsis" => ("nsis", "exe"),
            "appimage" => ("appimage", "AppImage"),
            kind => (kind, kind),
        };
        let dir = bundle_dir.join(folder);
        let found = std::fs::read_dir(&dir)
            .with_context(|| format!("the bundler made no {}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .find(|path| path.extension().is_some_and(|e| e == ext))
            .with_context(|| format!("no .{ext} in {}", dir.display()))?;
        let mut bundle = Bundle { path: found, kind, version: version.to_owned() };
        // Under a name without spaces (the bundler's carry the product name).
        if bundle.path.is_file() {
            let named = target_dir()?.join("bundles").join(bundle.file_name());
            std::fs::create_dir_all(named.parent().context("a folder")?)?;
            std::fs::copy(&bundle.path, &named)?;
            bundle.path = named;
        }
        bundles.push(bundle);
    }
    Ok(bundles)
}

/// The Tauri CLI wants its configuration beside the app crate's `Cargo.toml`; ours is at the
/// top of the workspace (tauri-build is pointed at it). For a CLI run, a copy with its relative
/// paths anchored at the top is written to `src-tauri/` (git ignores it), and removed after.
struct CliConfig(PathBuf);

impl CliConfig {
    fn write() -> Result<Self> {
        let top = root().join("tauri.conf.json");
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&top)?)
                .with_context(|| format!("{} is not valid JSON", top.display()))?;
        let anchor = |value: &mut serde_json::Value| {
            if let Some(path) = value.as_str()
                && !Path::new(path).is_absolute()
            {
                *value = format!("../{path}").into();
            }
        };
        anchor(&mut config["build"]["frontendDist"]);
        if let Some(icons) = config["bundle"]["icon"].as_array_mut() {
            icons.iter_mut().for_each(anchor);
        }
        for format in ["deb", "rpm"] {
            if config["bundle"]["linux"][format]["desktopTemplate"].is_string() {
                anchor(&mut config["bundle"]["linux"][format]["desktopTemplate"]);
            }
        }
        let copy = root().join("src-tauri").join("tauri.conf.json");
        std::fs::write(&copy, serde_json::to_string_pretty(&config)?)?;
        Ok(Self(copy))
    }
}

impl Drop for CliConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The updater's public key in tauri.conf.json.
fn configured_pubkey() -> Result<String> {
    let text = std::fs::read_to_string(root().join("tauri.conf.json"))?;
    let config: serde_json::Value = serde_json::from_str(&text)?;
    config["plugins"]["updater"]["pubkey"]
        .as_str()
        .map(str::to_owned)
        .context("tauri.conf.json has no plugins.updater.pubkey")
}

/// Signs `file` for the updater, binding the signature to `version`. Returns the signature as
/// the manifest carries it.
pub(crate) fn sign(
    tools: &Tools,
    file: &Path,
    version: &str,
    key: &str,
    password: &str,
) -> Result<String> {
    Cmd::new(&tools.tauri_cli)
        .args(["signer", "sign", "--app-version", version])
        .env("TAURI_SIGNING_PRIVATE_KEY", key)
        .env("TAURI_SIGNING_PRIVATE_KEY_PASSWORD", password)
        .arg(file)
        .output()
        .with_context(|| format!("signing {}", file.display()))?;
    let mut sig = file.as_os_str().to_owned();
    sig.push(".sig");
    Ok(std::fs::read_to_string(&sig)?.trim().to_owned())
}

/// Checks `signature` (as in a manifest) over `file` against `pubkey` (as in tauri.conf.json).
pub(crate) fn verify(pubkey: &str, file: &Path, signature: &str) -> Result<()> {
    let decode = |b64: &str| -> Result<String> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64.trim())?;
        Ok(String::from_utf8(bytes)?)
    };
    let key = minisign_verify::PublicKey::decode(&decode(pubkey)?)?;
    let signature = minisign_verify::Signature::decode(&decode(signature)?)?;
    key.verify(&std::fs::read(file)?, &signature, false)?;
    Ok(())
}

/// The two builds the updater test updates between, signed with a throw-away key.
#[derive(Debug)]
pub(crate) struct UpdateTestBuilds {
    pub(crate) a: PathBuf,
    pub(crate) b: PathBuf,
}

/// Version A (1.0.0) and version B (1.1.0-beta.1) of the app, both trusting a throw-away key
/// kept in the target directory (never the release key), and B signed with it. Both also take
/// a plain-http update server, which the test serves on 127.0.0.1 (shipped builds take https
/// only).
pub(crate) fn update_test_builds(tools: &Tools) -> Result<UpdateTestBuilds> {
    let dir = target_dir()?.join("update-test");
    std::fs::create_dir_all(&dir)?;
    let key = dir.join("test-signing.key");
    let pubkey_file = dir.join("test-signing.key.pub");
    if !key.is_file() || !pubkey_file.is_file() {
        step("Making a throw-away signing key for the updater test");
        Cmd::new(&tools.tauri_cli)
            .args(["signer", "generate", "--ci", "--force", "--password", "", "--write-keys"])
            .arg(&key)
            .output()?;
    }
    let pubkey = std::fs::read_to_string(&pubkey_file)?.trim().to_owned();
    let mut built = Vec::new();
    for (feature, version) in [("update-test-a", "1.0.0"), ("update-test-b", "1.1.0-beta.1")] {
        let overlay = serde_json::json!({
            "version": version,
            "plugins": { "updater": {
                "pubkey": pubkey,
                "dangerousInsecureTransportProtocol": true,
            }},
        });
        step(&format!("Building IoT Chat {version} for the updater test"));
        let app = build_app_with(&[feature], Some(&overlay.to_string()))?;
        let copy = dir.join(version).join("iotchat-desktop");
        std::fs::create_dir_all(copy.parent().context("a folder")?)?;
        std::fs::copy(&app, &copy)?;
        built.push((copy, version));
    }
    let (b, b_version) = &built[1];
    let key_text = std::fs::read_to_string(&key)?.trim().to_owned();
    let signature = sign(tools, b, b_version, &key_text, "")?;
    verify(&pubkey, b, &signature)?;
    Ok(UpdateTestBuilds { a: built[0].0.clone(), b: built[1].0.clone() })
}

/// Now as RFC 3339 in UTC (the manifest's `pub_date`).
fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rest = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_channel_follows_the_version_unless_given() {
        assert_eq!(parse(&args(&["1.2.0"])).unwrap().channel, "stable");
        assert_eq!(parse(&args(&["v1.3.0-beta.1"])).unwrap().channel, "beta");
        assert_eq!(parse(&args(&["1.2.0", "--channel", "beta"])).unwrap().channel, "beta");
    }

    #[test]
    fn a_pre_release_is_never_stable_and_nonsense_is_refused() {
        let error = parse(&args(&["1.3.0-beta.1", "--channel", "stable"])).unwrap_err();
        assert!(error.to_string().contains("--channel beta"), "{error}");
        assert!(parse(&args(&["1.2"])).is_err());
        assert!(parse(&args(&["1.2.0", "--channel", "nightly"])).is_err());
        assert!(parse(&args(&["1.2.0", "--out"])).is_err());
    }

    #[test]
    fn download_urls_default_to_the_tagged_release() {
        let release = parse(&args(&["1.2.0"])).unwrap();
        assert_eq!(release.base_url, format!("{DEFAULT_BASE_URL}/v1.2.0"));
    }

    #[test]
    fn dates_are_rfc3339() {
        let now = rfc3339_now();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z'), "{now}");
    }
}
