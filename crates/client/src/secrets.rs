//! Where the session's tokens live: the OS keychain, through the keyring ecosystem
//! (`keyring-core` and its per-platform stores), one entry per token.
//!
//! - macOS: the Keychain. Windows: the Credential Manager (2,560 bytes per credential, so long
//!   secrets are split over several entries). Linux: the Secret Service when one answers on the
//!   session bus, otherwise the kernel keyring (secure and per user, but emptied at reboot; the
//!   UI and CLI say so).
//! - No keychain at all: [`open_keychain`] returns a `keychain_unavailable` error and the caller
//!   keeps the session in a [`MemoryStore`]. There is never a plain-text fallback.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use iotchat_protocol::Code;
pub use iotchat_protocol::chat::StoreKind;
use keyring_core::{CredentialStore, Entry};

use crate::error::{ClientError, Result};

/// Largest piece of a secret kept in one entry (under Windows' 2,560-byte limit).
const CHUNK_BYTES: usize = 2000;
/// Marks an entry whose secret is split: the marker, then the number of pieces.
const CHUNKED_MARKER: &str = "iotchat-chunked:";

/// A place for secrets, by name. Missing names are `None`, never an error.
pub trait SecretStore: Send + Sync + fmt::Debug {
    fn kind(&self) -> StoreKind;
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>>;
    fn set(&self, name: &str, secret: &[u8]) -> Result<()>;
    /// Removes `name`; removing what is not there succeeds.
    fn delete(&self, name: &str) -> Result<()>;
}

/// Secrets in a keyring-core credential store, under one service name.
pub struct KeychainStore {
    store: Arc<CredentialStore>,
    service: String,
    kind: StoreKind,
}

impl fmt::Debug for KeychainStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeychainStore")
            .field("service", &self.service)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

fn keychain_error(what: &str, error: keyring_core::Error) -> ClientError {
    ClientError::new(Code::KeychainUnavailable, format!("The keychain could not {what}: {error}"))
}

impl KeychainStore {
    /// Wraps `store`; entries are named `service` / `<name>`.
    pub fn new(store: Arc<CredentialStore>, service: impl Into<String>, kind: StoreKind) -> Self {
        Self { store, service: service.into(), kind }
    }

    fn entry(&self, name: &str) -> Result<Entry> {
        Entry::new_in_store(&self.store, &self.service, name)
            .map_err(|e| keychain_error("name an entry", e))
    }

    fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match self.entry(name)?.get_secret() {
            Ok(secret) => Ok(Some(secret)),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(error) => Err(keychain_error("read a secret", error)),
        }
    }

    fn write(&self, name: &str, secret: &[u8]) -> Result<()> {
        self.entry(name)?.set_secret(secret).map_err(|e| keychain_error("store a secret", e))
    }

    fn remove(&self, name: &str) -> Result<()> {
        match self.entry(name)?.delete_credential() {
            Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(error) => Err(keychain_error("delete a secret", error)),
        }
    }

    fn chunk_name(name: &str, index: usize) -> String {
        format!("{name}#{index}")
    }

    fn chunk_count(head: &[u8]) -> Option<usize> {
        std::str::from_utf8(head).ok()?.strip_prefix(CHUNKED_MARKER)?.parse().ok()
    }

    /// Whether `store` answers at all (a read of a missing entry is an answer).
    fn probe(store: &Arc<CredentialStore>, service: &str) -> bool {
        Entry::new_in_store(store, service, "probe").is_ok_and(|entry| {
            matches!(entry.get_secret(), Ok(_) | Err(keyring_core::Error::NoEntry))
        })
    }
}

impl SecretStore for KeychainStore {
    fn kind(&self) -> StoreKind {
        self.kind
    }

    fn get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let Some(head) = self.read(name)? else { return Ok(None) };
        let Some(count) = Self::chunk_count(&head) else { return Ok(Some(head)) };
        let mut secret = Vec::new();
        for index in 0..count {
            match self.read(&Self::chunk_name(name, index))? {
                Some(piece) => secret.extend_from_slice(&piece),
                // A half-written secret is no secret.
                None => return Ok(None),
            }
        }
        Ok(Some(secret))
    }

    fn set(&self, name: &str, secret: &[u8]) -> Result<()> {
        self.delete(name)?;
        if secret.len() <= CHUNK_BYTES && !secret.starts_with(CHUNKED_MARKER.as_bytes()) {
            return self.write(name, secret);
        }
        let pieces: Vec<&[u8]> = secret.chunks(CHUNK_BYTES).collect();
        for (index, piece) in pieces.iter().enumerate() {
            self.write(&Self::chunk_name(name, index), piece)?;
        }
        // The head last: a reader never sees a count whose pieces are not all there.
        self.write(name, format!("{CHUNKED_MARKER}{}", pieces.len()).as_bytes())
    }

    fn delete(&self, name: &str) -> Result<()> {
        if let Some(head) = self.read(name)?
            && let Some(count) = Self::chunk_count(&head)
        {
            self.remove(name)?;
            for index in 0..count {
                self.remove(&Self::chunk_name(name, index))?;
            }
            return Ok(());
        }
        self.remove(name)
    }
}

/// Secrets in memory: the session of a machine without a keychain, gone when the app exits.
#[derive(Debug, Default)]
pub struct MemoryStore {
    secrets: Mutex<HashMap<String, Vec<u8>>>,
}

impl MemoryStore {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Vec<u8>>>> {
        self.secrets.lock().map_err(|_| ClientError::internal("the in-memory secret store failed"))
    }

    /// Names currently held (for tests that check logout leaves nothing behind).
    pub fn names(&self) -> Vec<String> {
        self.lock().map(|map| map.keys().cloned().collect()).unwrap_or_default()
    }
}

impl SecretStore for MemoryStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Memory
    }
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.lock()?.get(name).cloned())
    }
    fn set(&self, name: &str, secret: &[u8]) -> Result<()> {
        self.lock()?.insert(name.to_owned(), secret.to_vec());
        Ok(())
    }
    fn delete(&self, name: &str) -> Result<()> {
        self.lock()?.remove(name);
        Ok(())
    }
}

/// [`open_keychain`] from async code: the probe blocks, so it runs on the blocking pool.
pub async fn open_keychain_async(service: &str) -> Result<KeychainStore> {
    let service = service.to_owned();
    tokio::task::spawn_blocking(move || open_keychain(&service))
        .await
        .map_err(|e| ClientError::internal(format!("opening the keychain failed: {e}")))?
}

/// The platform's keychain, under `service`; on Linux the Secret Service if one answers, else
/// the kernel keyring. It blocks: from async code use [`open_keychain_async`].
pub fn open_keychain(service: &str) -> Result<KeychainStore> {
    let mut tried = Vec::new();
    for (kind, store) in platform_stores() {
        match store {
            Ok(store) if KeychainStore::probe(&store, service) => {
                return Ok(KeychainStore::new(store, service, kind));
            }
            Ok(_) => tried.push(format!("{kind:?} does not answer")),
            Err(error) => tried.push(format!("{kind:?}: {error}")),
        }
    }
    Err(ClientError::new(
        Code::KeychainUnavailable,
        format!(
            "No keychain is available ({}), so the session will be kept in memory only.",
            if tried.is_empty() { "none on this platform".to_owned() } else { tried.join("; ") }
        ),
    ))
}

type StoreAttempt = (StoreKind, keyring_core::Result<Arc<CredentialStore>>);

#[cfg(target_os = "linux")]
fn platform_stores() -> Vec<StoreAttempt> {
    let secret_service =
        zbus_secret_service_keyring_store::Store::new().map(|store| store as Arc<CredentialStore>);
    let kernel =
        linux_keyutils_keyring_store::Store::new().map(|store| store as Arc<CredentialStore>);
    vec![(StoreKind::SecretService, secret_service), (StoreKind::KernelKeyring, kernel)]
}

#[cfg(target_os = "macos")]
fn platform_stores() -> Vec<StoreAttempt> {
    let store = apple_native_keyring_store::keychain::Store::new()
        .map(|store| store as Arc<CredentialStore>);
    vec![(StoreKind::MacosKeychain, store)]
}

#[cfg(target_os = "windows")]
fn platform_stores() -> Vec<StoreAttempt> {
    let store =
        windows_native_keyring_store::Store::new().map(|store| store as Arc<CredentialStore>);
    vec![(StoreKind::WindowsCredentialManager, store)]
}

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
fn platform_stores() -> Vec<StoreAttempt> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mock() -> KeychainStore {
        let store: Arc<CredentialStore> = keyring_core::mock::Store::new().unwrap();
        KeychainStore::new(store, "iotchat-test", StoreKind::Mock)
    }

    #[test]
    fn short_and_long_secrets_round_trip_and_delete_completely() {
        let store = mock();
        assert_eq!(store.get("alice/refresh").unwrap(), None);
        store.set("alice/id", b"short token").unwrap();
        assert_eq!(store.get("alice/id").unwrap().as_deref(), Some(&b"short token"[..]));

        let long: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
        store.set("alice/refresh", &long).unwrap();
        assert_eq!(store.get("alice/refresh").unwrap(), Some(long.clone()));
        for index in 0..3 {
            let piece = store.read(&KeychainStore::chunk_name("alice/refresh", index)).unwrap();
            assert!(piece.is_some_and(|p| p.len() <= CHUNK_BYTES), "piece {index} fits an entry");
        }

        // Overwriting with a short secret leaves no stale pieces.
        store.set("alice/refresh", b"new").unwrap();
        assert_eq!(store.read(&KeychainStore::chunk_name("alice/refresh", 0)).unwrap(), None);
        store.set("alice/refresh", &long).unwrap();
        store.delete("alice/refresh").unwrap();
        store.delete("alice/id").unwrap();
        for name in
            ["alice/refresh", "alice/refresh#0", "alice/refresh#1", "alice/refresh#2", "alice/id"]
        {
            assert_eq!(store.read(name).unwrap(), None, "{name} is gone");
        }
        store.delete("never/there").unwrap();
    }

    #[test]
    fn a_secret_that_looks_like_a_chunk_header_survives() {
        let store = mock();
        let tricky = format!("{CHUNKED_MARKER}3");
        store.set("x", tricky.as_bytes()).unwrap();
        assert_eq!(store.get("x").unwrap().as_deref(), Some(tricky.as_bytes()));
    }
}
