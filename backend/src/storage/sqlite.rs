//! SQLite storage: one file in the data directory, WAL journal, `synchronous = FULL` so that
//! whatever a caller was told is stored survives a crash or a power cut.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use iotchat_protocol::IdentityId;
use rusqlite::{Connection, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};

use super::{CredentialRecord, SessionRecord, Store, StoreError, StoreResult, UserRecord};

/// Schema history. Append only: a released migration is never edited.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(
        "CREATE TABLE users (
            sub TEXT PRIMARY KEY,
            username TEXT NOT NULL,
            username_key TEXT NOT NULL UNIQUE,
            email TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            confirmed INTEGER NOT NULL,
            created_at_ms INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE sessions (
            origin_jti TEXT PRIMARY KEY,
            refresh_sha256 TEXT NOT NULL UNIQUE,
            sub TEXT NOT NULL REFERENCES users(sub),
            issued_at_ms INTEGER NOT NULL,
            expires_at_ms INTEGER NOT NULL,
            auth_time_s INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX sessions_by_sub ON sessions(sub);
        CREATE TABLE identities (
            identity_id TEXT PRIMARY KEY,
            sub TEXT NOT NULL UNIQUE REFERENCES users(sub)
        ) STRICT;
        CREATE TABLE credentials (
            access_key_id TEXT PRIMARY KEY,
            secret_access_key TEXT NOT NULL,
            session_token TEXT NOT NULL,
            identity_id TEXT NOT NULL REFERENCES identities(identity_id),
            expires_at_ms INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE secrets (
            name TEXT PRIMARY KEY,
            value BLOB NOT NULL
        ) STRICT;",
    )])
}

/// The SQLite store. Cloning shares the connection.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/iotchat.sqlite3` and brings its schema up to date.
    pub fn open(dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Backend(format!("creating {}: {e}", dir.display())))?;
        let mut conn = Connection::open(dir.join("iotchat.sqlite3"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrations()
            .to_latest(&mut conn)
            .map_err(|e| StoreError::Backend(format!("migrating the database: {e}")))?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)) })
    }

    /// Runs `f` on the connection on a blocking thread (SQLite calls block on disk I/O).
    async fn with<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Backend("the database lock is poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("storage task failed: {e}")))?
    }
}

fn username_key(username: &str) -> String {
    username.to_lowercase()
}

fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

fn ms(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        sub: row.get("sub")?,
        username: row.get("username")?,
        email: row.get("email")?,
        password_hash: row.get("password_hash")?,
        confirmed: row.get("confirmed")?,
        created_at_ms: ms(row.get("created_at_ms")?),
    })
}

fn identity(raw: String) -> StoreResult<IdentityId> {
    IdentityId::parse(&raw).map_err(|e| StoreError::Backend(format!("stored identity: {e}")))
}

#[async_trait]
impl Store for SqliteStore {
    async fn user_insert(&self, user: UserRecord) -> StoreResult<()> {
        self.with(move |conn| {
            let result = conn.execute(
                "INSERT INTO users (sub, username, username_key, email, password_hash, confirmed,
                                    created_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    user.sub,
                    user.username,
                    username_key(&user.username),
                    user.email,
                    user.password_hash,
                    user.confirmed,
                    sql_int(user.created_at_ms),
                ],
            );
            match result {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict("user")),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let key = username_key(username);
        self.with(move |conn| {
            Ok(conn
                .query_row("SELECT * FROM users WHERE username_key = ?1", [key], user_from_row)
                .optional()?)
        })
        .await
    }

    async fn user_by_sub(&self, sub: &str) -> StoreResult<Option<UserRecord>> {
        let sub = sub.to_owned();
        self.with(move |conn| {
            Ok(conn
                .query_row("SELECT * FROM users WHERE sub = ?1", [sub], user_from_row)
                .optional()?)
        })
        .await
    }

    async fn user_confirm(&self, username: &str) -> StoreResult<bool> {
        let key = username_key(username);
        self.with(move |conn| {
            Ok(conn.execute("UPDATE users SET confirmed = 1 WHERE username_key = ?1", [key])? == 1)
        })
        .await
    }

    async fn session_insert(&self, session: SessionRecord) -> StoreResult<()> {
        self.with(move |conn| {
            conn.execute(
                "INSERT INTO sessions (origin_jti, refresh_sha256, sub, issued_at_ms, expires_at_ms,
                                       auth_time_s)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    session.origin_jti,
                    session.refresh_sha256,
                    session.sub,
                    sql_int(session.issued_at_ms),
                    sql_int(session.expires_at_ms),
                    sql_int(session.auth_time_s),
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn session_by_refresh(&self, refresh_sha256: &str) -> StoreResult<Option<SessionRecord>> {
        let hash = refresh_sha256.to_owned();
        self.with(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT origin_jti, refresh_sha256, sub, issued_at_ms, expires_at_ms, auth_time_s
                     FROM sessions WHERE refresh_sha256 = ?1",
                    [hash],
                    |row| {
                        Ok(SessionRecord {
                            origin_jti: row.get(0)?,
                            refresh_sha256: row.get(1)?,
                            sub: row.get(2)?,
                            issued_at_ms: ms(row.get(3)?),
                            expires_at_ms: ms(row.get(4)?),
                            auth_time_s: ms(row.get(5)?),
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    async fn session_active(&self, origin_jti: &str, now_ms: u64) -> StoreResult<bool> {
        let jti = origin_jti.to_owned();
        self.with(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT 1 FROM sessions WHERE origin_jti = ?1 AND expires_at_ms > ?2",
                    params![jti, sql_int(now_ms)],
                    |_| Ok(()),
                )
                .optional()?
                .is_some())
        })
        .await
    }

    async fn sessions_end(&self, sub: &str) -> StoreResult<()> {
        let sub = sub.to_owned();
        self.with(move |conn| {
            conn.execute("DELETE FROM sessions WHERE sub = ?1", [sub])?;
            Ok(())
        })
        .await
    }

    async fn identity_for_sub(&self, sub: &str, new_id: IdentityId) -> StoreResult<IdentityId> {
        let sub = sub.to_owned();
        self.with(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO identities (identity_id, sub) VALUES (?1, ?2)
                 ON CONFLICT (sub) DO NOTHING",
                params![new_id.as_str(), sub],
            )?;
            let id: String =
                tx.query_row("SELECT identity_id FROM identities WHERE sub = ?1", [&sub], |r| {
                    r.get(0)
                })?;
            tx.commit()?;
            identity(id)
        })
        .await
    }

    async fn identity_owner(&self, id: &IdentityId) -> StoreResult<Option<String>> {
        let id = id.as_str().to_owned();
        self.with(move |conn| {
            Ok(conn
                .query_row("SELECT sub FROM identities WHERE identity_id = ?1", [id], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    async fn credentials_insert(&self, record: CredentialRecord) -> StoreResult<()> {
        self.with(move |conn| {
            conn.execute(
                "INSERT INTO credentials
                   (access_key_id, secret_access_key, session_token, identity_id, expires_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    record.access_key_id,
                    record.secret_access_key,
                    record.session_token,
                    record.identity_id.as_str(),
                    sql_int(record.expires_at_ms),
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn credentials_get(&self, access_key_id: &str) -> StoreResult<Option<CredentialRecord>> {
        let key = access_key_id.to_owned();
        self.with(move |conn| {
            let row = conn
                .query_row(
                    "SELECT access_key_id, secret_access_key, session_token, identity_id,
                            expires_at_ms
                     FROM credentials WHERE access_key_id = ?1",
                    [key],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, i64>(4)?,
                        ))
                    },
                )
                .optional()?;
            row.map(|(access_key_id, secret_access_key, session_token, id, expires)| {
                Ok(CredentialRecord {
                    access_key_id,
                    secret_access_key,
                    session_token,
                    identity_id: identity(id)?,
                    expires_at_ms: ms(expires),
                })
            })
            .transpose()
        })
        .await
    }

    async fn secret_get_or_insert(
        &self,
        name: &str,
        generate: Box<dyn FnOnce() -> Vec<u8> + Send>,
    ) -> StoreResult<Vec<u8>> {
        let name = name.to_owned();
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let existing: Option<Vec<u8>> = tx
                .query_row("SELECT value FROM secrets WHERE name = ?1", [&name], |r| r.get(0))
                .optional()?;
            let value = match existing {
                Some(value) => value,
                None => {
                    let value = generate();
                    tx.execute(
                        "INSERT INTO secrets (name, value) VALUES (?1, ?2)",
                        params![name, value],
                    )?;
                    value
                }
            };
            tx.commit()?;
            Ok(value)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(sub: &str, name: &str) -> UserRecord {
        UserRecord {
            sub: sub.into(),
            username: name.into(),
            email: format!("{name}@example.com"),
            password_hash: "$argon2id$...".into(),
            confirmed: true,
            created_at_ms: 1,
        }
    }

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[tokio::test]
    async fn usernames_are_unique_case_insensitively_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        store.user_insert(user("s1", "Alice")).await.unwrap();
        let err = store.user_insert(user("s2", "alice")).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict("user")), "{err}");
        drop(store);

        let store = SqliteStore::open(dir.path()).unwrap();
        let found = store.user_by_username("ALICE").await.unwrap().unwrap();
        assert_eq!(found.username, "Alice", "the name keeps the case it was registered with");
        assert_eq!(store.user_by_sub("s1").await.unwrap().unwrap(), found);
    }

    #[tokio::test]
    async fn an_identity_is_created_once_per_user() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        store.user_insert(user("s1", "alice")).await.unwrap();
        let first = IdentityId::parse("us-east-1:00000000-0000-0000-0000-000000000001").unwrap();
        let second = IdentityId::parse("us-east-1:00000000-0000-0000-0000-000000000002").unwrap();
        assert_eq!(store.identity_for_sub("s1", first.clone()).await.unwrap(), first);
        assert_eq!(store.identity_for_sub("s1", second).await.unwrap(), first);
        assert_eq!(store.identity_owner(&first).await.unwrap().as_deref(), Some("s1"));
    }

    #[tokio::test]
    async fn ending_sessions_kills_their_tokens_and_refresh_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        store.user_insert(user("s1", "alice")).await.unwrap();
        let session = SessionRecord {
            origin_jti: "j1".into(),
            refresh_sha256: "h1".into(),
            sub: "s1".into(),
            issued_at_ms: 1,
            expires_at_ms: 100,
            auth_time_s: 0,
        };
        store.session_insert(session.clone()).await.unwrap();
        assert_eq!(store.session_by_refresh("h1").await.unwrap(), Some(session));
        assert!(store.session_active("j1", 50).await.unwrap());
        assert!(!store.session_active("j1", 100).await.unwrap(), "expired at expires_at_ms");
        store.sessions_end("s1").await.unwrap();
        assert!(!store.session_active("j1", 50).await.unwrap());
        assert_eq!(store.session_by_refresh("h1").await.unwrap(), None);
    }

    #[tokio::test]
    async fn secrets_are_generated_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let a = store.secret_get_or_insert("k", Box::new(|| vec![1, 2, 3])).await.unwrap();
        let b = store.secret_get_or_insert("k", Box::new(|| vec![9])).await.unwrap();
        assert_eq!((a, b), (vec![1, 2, 3], vec![1, 2, 3]));
    }
}
