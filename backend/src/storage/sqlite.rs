//! SQLite storage: one file in the data directory, WAL journal, `synchronous = FULL` so that
//! whatever a caller was told is stored survives a crash or a power cut.
//!
//! Chat messages are written by a group commit: one thread takes every message waiting when
//! it is free and writes them in one transaction (one fsync), then answers each caller. A
//! message is reported stored only after the commit that holds it, so "acknowledged means
//! stored" holds, and a burst costs one fsync per batch instead of one per message.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use iotchat_api::{ChatStore, StoreResult as ChatResult};
use iotchat_protocol::api::{Room, RoomType, StoredMessage, User};
use iotchat_protocol::{IdentityId, MessageId, RoomName, RoomSlug};
use rusqlite::{Connection, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};

use super::{
    CodeRecord, CredentialRecord, SessionRecord, Store, StoreError, StoreResult, UserRecord,
};

/// Schema history. Append only: a released migration is never edited.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(
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
        ),
        M::up(
            "CREATE TABLE profiles (
            identity_id TEXT PRIMARY KEY REFERENCES identities(identity_id),
            username TEXT NOT NULL
        ) STRICT;
        CREATE TABLE policy_attachments (
            identity_id TEXT PRIMARY KEY REFERENCES identities(identity_id),
            attached_at_ms INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE rooms (
            slug TEXT PRIMARY KEY,
            display_name TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at_ms INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE messages (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            -- No foreign key: the broker stores what it accepts, as AWS's IoT rule does,
            -- whether or not the room was created through the API.
            room_slug TEXT NOT NULL,
            id TEXT NOT NULL,
            sender TEXT NOT NULL,
            message TEXT NOT NULL,
            sent_at_ms INTEGER NOT NULL,
            received_at_ms INTEGER NOT NULL,
            UNIQUE (room_slug, id)
        ) STRICT;",
        ),
        // The hosted UI: users who sign in through another identity provider, and the
        // one-time authorization codes the token endpoint exchanges (kept as SHA-256).
        M::up(
            "CREATE TABLE federated_identities (
            provider TEXT NOT NULL,
            provider_sub TEXT NOT NULL,
            sub TEXT NOT NULL UNIQUE REFERENCES users(sub),
            created_at_ms INTEGER NOT NULL,
            PRIMARY KEY (provider, provider_sub)
        ) STRICT;
        CREATE TABLE oauth_codes (
            code_sha256 TEXT PRIMARY KEY,
            client_id TEXT NOT NULL,
            redirect_uri TEXT NOT NULL,
            sub TEXT NOT NULL REFERENCES users(sub),
            scope TEXT NOT NULL,
            code_challenge TEXT,
            nonce TEXT,
            auth_time_s INTEGER NOT NULL,
            expires_at_ms INTEGER NOT NULL
        ) STRICT;",
        ),
    ])
}

/// The SQLite store. Cloning shares the connection.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    history: std::sync::mpsc::Sender<PendingMessage>,
}

/// A message waiting for the group commit, and where its outcome goes.
type PendingMessage = (StoredMessage, tokio::sync::oneshot::Sender<StoreResult<bool>>);

/// The most messages one history transaction holds.
const MAX_BATCH: usize = 1024;

/// The group-commit thread: waits for a message, takes every other one already waiting,
/// writes them all in one transaction and answers each after the commit. It ends when the
/// last [`SqliteStore`] is dropped.
fn history_writer(conn: Arc<Mutex<Connection>>, queue: std::sync::mpsc::Receiver<PendingMessage>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let outcome = conn
            .lock()
            .map_err(|_| StoreError::Backend("the database lock is poisoned".into()))
            .and_then(|mut guard| insert_messages(&mut guard, &batch));
        match outcome {
            Ok(inserted) => {
                for ((_, reply), inserted) in batch.into_iter().zip(inserted) {
                    let _ = reply.send(Ok(inserted));
                }
            }
            Err(error) => {
                // Nothing of the batch is stored (the transaction rolled back): each caller
                // hears so, and its message is not acknowledged.
                for (_, reply) in batch {
                    let _ = reply.send(Err(StoreError::Backend(error.to_string())));
                }
            }
        }
    }
}

/// Inserts `batch` in one transaction; whether each was new (not a duplicate id).
fn insert_messages(conn: &mut Connection, batch: &[PendingMessage]) -> StoreResult<Vec<bool>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut inserted = Vec::with_capacity(batch.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO messages (room_slug, id, sender, message, sent_at_ms, received_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (room_slug, id) DO NOTHING",
        )?;
        for (message, _) in batch {
            let rows = insert.execute(params![
                message.room.slug().as_str(),
                message.id.as_str(),
                message.sender.as_str(),
                message.message,
                sql_int(message.sent_at),
                sql_int(message.received_at),
            ])?;
            inserted.push(rows == 1);
        }
    }
    tx.commit()?;
    Ok(inserted)
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
        let conn = Arc::new(Mutex::new(conn));
        let (history, queue) = std::sync::mpsc::channel();
        let writer = Arc::clone(&conn);
        std::thread::Builder::new()
            .name("history-writer".into())
            .spawn(move || history_writer(writer, queue))
            .map_err(|e| StoreError::Backend(format!("starting the history writer: {e}")))?;
        Ok(Self { conn, history })
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

    /// [`Self::with`], for the API's [`ChatStore`].
    async fn chat<T, F>(&self, f: F) -> ChatResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        self.with(f).await.map_err(Into::into)
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

fn slug(raw: &str) -> StoreResult<RoomSlug> {
    RoomSlug::parse(raw).map_err(|e| StoreError::Backend(format!("stored room: {e}")))
}

/// A row read as plain values; typed conversion happens outside the SQLite closure so a
/// corrupt row is an error, not a panic.
type RoomRow = (String, String, String, i64);
type MessageRow = (i64, String, String, String, String, i64, i64);

fn room_from(row: RoomRow) -> StoreResult<Room> {
    let (slug_text, display_name, created_by, created_at) = row;
    Ok(Room {
        name: RoomName::new(slug(&slug_text)?),
        display_name,
        room_type: RoomType::Public,
        created_by: identity(created_by)?,
        created_at: ms(created_at),
    })
}

fn message_from(row: MessageRow) -> StoreResult<(u64, StoredMessage)> {
    let (seq, room, id, sender, message, sent_at, received_at) = row;
    let id = MessageId::parse(&id).map_err(|e| StoreError::Backend(format!("stored id: {e}")))?;
    Ok((
        ms(seq),
        StoredMessage {
            id,
            room: RoomName::new(slug(&room)?),
            sender: identity(sender)?,
            message,
            sent_at: ms(sent_at),
            received_at: ms(received_at),
        },
    ))
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

    async fn federated_user(
        &self,
        provider: &str,
        provider_sub: &str,
        new_user: UserRecord,
    ) -> StoreResult<UserRecord> {
        let (provider, provider_sub) = (provider.to_owned(), provider_sub.to_owned());
        self.with(move |conn| {
            let tx = conn.transaction()?;
            let linked = tx
                .query_row(
                    "SELECT users.* FROM federated_identities JOIN users USING (sub)
                     WHERE provider = ?1 AND provider_sub = ?2",
                    params![provider, provider_sub],
                    user_from_row,
                )
                .optional()?;
            if let Some(user) = linked {
                return Ok(user);
            }
            let inserted = tx.execute(
                "INSERT INTO users (sub, username, username_key, email, password_hash, confirmed,
                                    created_at_ms)
                 VALUES (?1, ?2, ?3, ?4, '', 1, ?5)",
                params![
                    new_user.sub,
                    new_user.username,
                    username_key(&new_user.username),
                    new_user.email,
                    sql_int(new_user.created_at_ms),
                ],
            );
            match inserted {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Err(StoreError::Conflict("user")),
                Err(e) => return Err(e.into()),
            }
            tx.execute(
                "INSERT INTO federated_identities (provider, provider_sub, sub, created_at_ms)
                 VALUES (?1, ?2, ?3, ?4)",
                params![provider, provider_sub, new_user.sub, sql_int(new_user.created_at_ms)],
            )?;
            tx.commit()?;
            Ok(UserRecord { password_hash: String::new(), confirmed: true, ..new_user })
        })
        .await
    }

    async fn oauth_code_insert(&self, code: CodeRecord) -> StoreResult<()> {
        self.with(move |conn| {
            conn.execute(
                "INSERT INTO oauth_codes (code_sha256, client_id, redirect_uri, sub, scope,
                                          code_challenge, nonce, auth_time_s, expires_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    code.code_sha256,
                    code.client_id,
                    code.redirect_uri,
                    code.sub,
                    code.scope,
                    code.code_challenge,
                    code.nonce,
                    sql_int(code.auth_time_s),
                    sql_int(code.expires_at_ms),
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn oauth_code_take(&self, code_sha256: &str) -> StoreResult<Option<CodeRecord>> {
        let key = code_sha256.to_owned();
        self.with(move |conn| {
            // Deleted as it is read: a code is good for one exchange, whatever its outcome.
            Ok(conn
                .query_row(
                    "DELETE FROM oauth_codes WHERE code_sha256 = ?1
                     RETURNING code_sha256, client_id, redirect_uri, sub, scope, code_challenge,
                               nonce, auth_time_s, expires_at_ms",
                    [key],
                    |row| {
                        Ok(CodeRecord {
                            code_sha256: row.get(0)?,
                            client_id: row.get(1)?,
                            redirect_uri: row.get(2)?,
                            sub: row.get(3)?,
                            scope: row.get(4)?,
                            code_challenge: row.get(5)?,
                            nonce: row.get(6)?,
                            auth_time_s: ms(row.get(7)?),
                            expires_at_ms: ms(row.get(8)?),
                        })
                    },
                )
                .optional()?)
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

    async fn expired_remove(&self, now_ms: u64) -> StoreResult<u64> {
        self.with(move |conn| {
            let now = sql_int(now_ms);
            let credentials =
                conn.execute("DELETE FROM credentials WHERE expires_at_ms < ?1", [now])?;
            let sessions = conn.execute("DELETE FROM sessions WHERE expires_at_ms < ?1", [now])?;
            let codes = conn.execute("DELETE FROM oauth_codes WHERE expires_at_ms < ?1", [now])?;
            Ok((credentials + sessions + codes) as u64)
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

    async fn policy_attach(&self, id: &IdentityId, at_ms: u64) -> StoreResult<()> {
        let id = id.as_str().to_owned();
        self.with(move |conn| {
            conn.execute(
                "INSERT INTO policy_attachments (identity_id, attached_at_ms) VALUES (?1, ?2)
                 ON CONFLICT (identity_id) DO NOTHING",
                params![id, sql_int(at_ms)],
            )?;
            Ok(())
        })
        .await
    }

    async fn policy_attached(&self, id: &IdentityId) -> StoreResult<bool> {
        let id = id.as_str().to_owned();
        self.with(move |conn| {
            Ok(conn
                .query_row("SELECT 1 FROM policy_attachments WHERE identity_id = ?1", [id], |_| {
                    Ok(())
                })
                .optional()?
                .is_some())
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

#[async_trait]
impl ChatStore for SqliteStore {
    async fn profile_put(&self, user: User) -> ChatResult<()> {
        self.chat(move |conn| {
            conn.execute(
                "INSERT INTO profiles (identity_id, username) VALUES (?1, ?2)
                 ON CONFLICT (identity_id) DO UPDATE SET username = excluded.username",
                params![user.identity_id.as_str(), user.username],
            )?;
            Ok(())
        })
        .await
    }

    async fn profile_get(&self, id: &IdentityId) -> ChatResult<Option<User>> {
        let key = id.as_str().to_owned();
        let id = id.clone();
        self.chat(move |conn| {
            let name: Option<String> = conn
                .query_row("SELECT username FROM profiles WHERE identity_id = ?1", [key], |r| {
                    r.get(0)
                })
                .optional()?;
            Ok(name.map(|username| User { identity_id: id, username }))
        })
        .await
    }

    async fn profiles_list(&self) -> ChatResult<Vec<User>> {
        self.chat(|conn| {
            let mut stmt = conn.prepare(
                "SELECT identity_id, username FROM profiles ORDER BY username COLLATE NOCASE",
            )?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(id, username)| Ok(User { identity_id: identity(id)?, username }))
                .collect()
        })
        .await
    }

    async fn room_insert(&self, room: Room) -> ChatResult<()> {
        self.chat(move |conn| {
            let result = conn.execute(
                "INSERT INTO rooms (slug, display_name, created_by, created_at_ms)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    room.name.slug().as_str(),
                    room.display_name,
                    room.created_by.as_str(),
                    sql_int(room.created_at),
                ],
            );
            match result {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict("room")),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn room_get(&self, room: &RoomSlug) -> ChatResult<Option<Room>> {
        let key = room.as_str().to_owned();
        self.chat(move |conn| {
            let row: Option<RoomRow> = conn
                .query_row(
                    "SELECT slug, display_name, created_by, created_at_ms FROM rooms WHERE slug = ?1",
                    [key],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            row.map(room_from).transpose()
        })
        .await
    }

    async fn rooms_list(&self) -> ChatResult<Vec<Room>> {
        self.chat(|conn| {
            let mut stmt = conn.prepare(
                "SELECT slug, display_name, created_by, created_at_ms FROM rooms ORDER BY slug",
            )?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<Vec<RoomRow>, _>>()?;
            rows.into_iter().map(room_from).collect()
        })
        .await
    }

    async fn message_insert(&self, message: StoredMessage) -> ChatResult<bool> {
        let (reply, outcome) = tokio::sync::oneshot::channel();
        self.history
            .send((message, reply))
            .map_err(|_| StoreError::Backend("the history writer has stopped".into()))?;
        let inserted = outcome
            .await
            .map_err(|_| StoreError::Backend("the history writer has stopped".into()))??;
        Ok(inserted)
    }

    async fn messages_page(
        &self,
        room: &RoomSlug,
        before: Option<&str>,
        limit: u32,
    ) -> ChatResult<(Vec<StoredMessage>, Option<String>)> {
        let key = room.as_str().to_owned();
        // The cursor is the `seq` of the last message of the previous page.
        let before = match before {
            None => i64::MAX,
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .and_then(|seq| i64::try_from(seq).ok())
                .ok_or(iotchat_api::StoreError::BadCursor)?,
        };
        self.chat(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT seq, room_slug, id, sender, message, sent_at_ms, received_at_ms
                 FROM messages WHERE room_slug = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
            )?;
            // One extra row tells whether an older page exists.
            let rows = stmt
                .query_map(params![key, before, i64::from(limit) + 1], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                })?
                .collect::<Result<Vec<MessageRow>, _>>()?;
            let mut page = rows.into_iter().map(message_from).collect::<StoreResult<Vec<_>>>()?;
            let more = page.len() > limit as usize;
            page.truncate(limit as usize);
            let next = if more { page.last().map(|(seq, _)| seq.to_string()) } else { None };
            Ok((page.into_iter().map(|(_, m)| m).collect(), next))
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
    async fn a_federated_sign_in_names_one_user_for_good_and_never_a_password_user() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        store.user_insert(user("p1", "TestIdP_alice")).await.unwrap();
        let first = store
            .federated_user("TestIdP", "alice-123", user("f1", "TestIdP_alice-123"))
            .await
            .unwrap();
        assert_eq!((first.sub.as_str(), first.confirmed), ("f1", true));
        assert!(first.password_hash.is_empty(), "no password: it cannot sign in with one");
        // The same subject again is the same user, whatever new user was proposed.
        let again = store
            .federated_user("TestIdP", "alice-123", user("f2", "TestIdP_other"))
            .await
            .unwrap();
        assert_eq!(again.sub, "f1");
        assert_eq!(store.user_by_username("testidp_alice-123").await.unwrap().unwrap().sub, "f1");
        // Another provider's subject with the same value is another user.
        let google =
            store.federated_user("Google", "alice-123", user("g1", "Google_alice-123")).await;
        assert_eq!(google.unwrap().sub, "g1");
        // A name a password user holds is not taken over.
        let taken = store.federated_user("TestIdP", "alice", user("f3", "TestIdP_alice")).await;
        assert!(matches!(taken, Err(StoreError::Conflict("user"))), "{taken:?}");
        assert_eq!(store.user_by_username("TestIdP_alice").await.unwrap().unwrap().sub, "p1");
    }

    #[tokio::test]
    async fn an_authorization_code_is_taken_once_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        store.user_insert(user("s1", "alice")).await.unwrap();
        let code = |hash: &str, expires_at_ms| CodeRecord {
            code_sha256: hash.into(),
            client_id: "client".into(),
            redirect_uri: "http://localhost:28787/callback".into(),
            sub: "s1".into(),
            scope: "openid".into(),
            code_challenge: Some("challenge".into()),
            nonce: None,
            auth_time_s: 1,
            expires_at_ms,
        };
        store.oauth_code_insert(code("h1", 10_000)).await.unwrap();
        store.oauth_code_insert(code("h2", 500)).await.unwrap();
        assert_eq!(store.oauth_code_take("h1").await.unwrap(), Some(code("h1", 10_000)));
        assert_eq!(store.oauth_code_take("h1").await.unwrap(), None, "used once");
        assert_eq!(store.expired_remove(1_000).await.unwrap(), 1, "the expired code goes");
        assert_eq!(store.oauth_code_take("h2").await.unwrap(), None);
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

    fn msg(n: u32, room: &str) -> StoredMessage {
        StoredMessage {
            id: MessageId::parse(&format!("m{n}")).unwrap(),
            room: RoomName::new(RoomSlug::parse(room).unwrap()),
            sender: IdentityId::parse("us-east-1:0a").unwrap(),
            message: format!("message {n}"),
            sent_at: u64::from(n),
            received_at: u64::from(n),
        }
    }

    #[tokio::test]
    async fn history_pages_newest_first_without_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        for slug in ["general", "other"] {
            store
                .room_insert(Room {
                    name: RoomName::new(RoomSlug::parse(slug).unwrap()),
                    display_name: slug.into(),
                    room_type: RoomType::Public,
                    created_by: IdentityId::parse("us-east-1:0a").unwrap(),
                    created_at: 1,
                })
                .await
                .unwrap();
        }
        for n in 1..=5 {
            assert!(store.message_insert(msg(n, "general")).await.unwrap());
        }
        assert!(
            !store.message_insert(msg(3, "general")).await.unwrap(),
            "same id: not stored twice"
        );
        assert!(store.message_insert(msg(3, "other")).await.unwrap(), "ids are per room");

        let general = RoomSlug::parse("general").unwrap();
        let texts =
            |page: &[StoredMessage]| page.iter().map(|m| m.id.to_string()).collect::<Vec<_>>();
        let (first, cursor) = store.messages_page(&general, None, 2).await.unwrap();
        assert_eq!(texts(&first), ["m5", "m4"]);
        let (second, cursor) = store.messages_page(&general, cursor.as_deref(), 2).await.unwrap();
        assert_eq!(texts(&second), ["m3", "m2"]);
        let (last, cursor) = store.messages_page(&general, cursor.as_deref(), 2).await.unwrap();
        assert_eq!(
            (texts(&last), cursor),
            (vec!["m1".to_owned()], None),
            "the oldest page ends it"
        );
        let dup = store.room_insert(Room {
            name: RoomName::new(general.clone()),
            display_name: "General".into(),
            room_type: RoomType::Public,
            created_by: IdentityId::parse("us-east-1:0b").unwrap(),
            created_at: 2,
        });
        assert!(matches!(dup.await, Err(iotchat_api::StoreError::Conflict("room"))));
        assert!(matches!(
            store.messages_page(&general, Some("not-a-cursor"), 2).await,
            Err(iotchat_api::StoreError::BadCursor)
        ));
        assert_eq!(store.rooms_list().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn expired_credentials_and_sessions_are_forgotten_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        store.user_insert(user("s1", "alice")).await.unwrap();
        let id = IdentityId::parse("us-east-1:7f86d9a8-b9f4-439e-bcf3-9756e4d2bbdf").unwrap();
        let id = store.identity_for_sub("s1", id).await.unwrap();
        for (key, expires) in [("OLD", 1_000), ("NEW", 5_000)] {
            let record = CredentialRecord {
                access_key_id: key.into(),
                secret_access_key: "s".into(),
                session_token: "t".into(),
                identity_id: id.clone(),
                expires_at_ms: expires,
            };
            store.credentials_insert(record).await.unwrap();
            let session = SessionRecord {
                origin_jti: key.into(),
                refresh_sha256: key.into(),
                sub: "s1".into(),
                issued_at_ms: 0,
                expires_at_ms: expires,
                auth_time_s: 0,
            };
            store.session_insert(session).await.unwrap();
        }
        assert_eq!(store.expired_remove(2_000).await.unwrap(), 2);
        assert!(store.credentials_get("OLD").await.unwrap().is_none());
        assert!(store.credentials_get("NEW").await.unwrap().is_some());
        assert!(store.session_by_refresh("OLD").await.unwrap().is_none());
        assert!(store.session_by_refresh("NEW").await.unwrap().is_some());
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
