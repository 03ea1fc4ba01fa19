//! Password hashing with argon2id (the crate's recommended parameters: 19 MiB, 2 passes), off
//! the async threads, and never more at once than the machine has cores.
//!
//! Each hash holds 19 MiB for its run; without a bound, a flood of sign-ins or sign-ups (which
//! need no account) would hold one per blocking thread (tokio allows 512: about 10 GiB) and
//! starve storage, which shares those threads. Callers wait their turn for [`QUEUE_WAIT`] at
//! most, then are told the server is busy.

use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::Semaphore;

/// How long a sign-in or sign-up waits for a free hasher before it is refused as busy.
pub const QUEUE_WAIT: Duration = Duration::from_secs(10);

/// Why hashing or verifying did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Every hasher stayed busy for [`QUEUE_WAIT`].
    #[error("the server is busy checking other passwords")]
    Busy,
    #[error("{0}")]
    Failed(String),
}

/// The server's password hashers: at most one run per core at a time.
#[derive(Debug)]
pub struct Passwords {
    permits: Semaphore,
}

impl Default for Passwords {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Self::with_parallelism(cores)
    }
}

impl Passwords {
    /// At most `runs` hashes at once.
    pub fn with_parallelism(runs: usize) -> Self {
        Self { permits: Semaphore::new(runs.max(1)) }
    }

    /// Waits (at most [`QUEUE_WAIT`]) for a free hasher and holds it until the returned
    /// [`Hasher`] is used or dropped.
    pub async fn hasher(&self) -> Result<Hasher<'_>, PasswordError> {
        let permit = tokio::time::timeout(QUEUE_WAIT, self.permits.acquire())
            .await
            .map_err(|_| PasswordError::Busy)?
            .map_err(|_| PasswordError::Failed("the password hashers were shut down".into()))?;
        Ok(Hasher { _permit: permit })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        self.hasher().await?.run(work).await
    }

    /// Hashes `password` into a PHC string.
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|e| PasswordError::Failed(format!("hashing a password: {e}")))
        })
        .await
    }

    /// Whether `password` matches the PHC string `hash`.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, PasswordError> {
        self.hasher().await?.verify(password, hash).await
    }
}

/// One of the server's hashers, held: what it runs does not wait in the queue again.
#[derive(Debug)]
pub struct Hasher<'a> {
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl Hasher<'_> {
    async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let result = tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| PasswordError::Failed(format!("a password hash task failed: {e}")))?;
        drop(self);
        result
    }

    /// Whether `password` matches the PHC string `hash`; the hasher is free again after.
    pub async fn verify(self, password: String, hash: String) -> Result<bool, PasswordError> {
        self.run(move || {
            let parsed = PasswordHash::new(&hash)
                .map_err(|e| PasswordError::Failed(format!("a stored hash is corrupt: {e}")))?;
            Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn runs_never_exceed_the_parallelism() {
        let passwords = std::sync::Arc::new(Passwords::with_parallelism(2));
        let running = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (passwords, running, most) = (passwords.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    passwords
                        .run(move || {
                            use std::sync::atomic::Ordering::SeqCst;
                            let now = running.fetch_add(1, SeqCst) + 1;
                            most.fetch_max(now, SeqCst);
                            std::thread::sleep(Duration::from_millis(20));
                            running.fetch_sub(1, SeqCst);
                            Ok(())
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 2, "two at a time, no more");
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let passwords = Passwords::default();
        let hash = passwords.hash("Correct-Horse-9".into()).await.unwrap();
        assert!(passwords.verify("Correct-Horse-9".into(), hash.clone()).await.unwrap());
        assert!(!passwords.verify("Correct-Horse-8".into(), hash).await.unwrap());
    }
}
