//! The signed-in user's local state, in SQLite in the platform's data directory: followed rooms
//! with their unread counts and mute flags, the outbox, the ids of messages already shown
//! (dedupe), and the author-name cache. Writes that must survive a crash (the outbox, unread
//! counts) are committed with `synchronous=FULL`.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use iotchat_protocol::{IdentityId, MessageId, RoomName};
use rusqlite::{Connection, OptionalExtension as _, params};
use rusqlite_migration::{M, Migrations};

use crate::error::{ClientError, Result};
pub use iotchat_protocol::chat::FollowedRoom;

/// A message waiting to be delivered (or given up on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutboxEntry {
    pub(crate) id: MessageId,
    pub(crate) room: RoomName,
    pub(crate) text: String,
    pub(crate) sent_at_ms: u64,
    pub(crate) attempts: u32,
    pub(crate) failed: Option<String>,
}

/// The local state database of one user on one backend.
#[derive(Debug)]
pub(crate) struct LocalState {
    db: Mutex<Connection>,
}

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(
        "CREATE TABLE followed (
             room TEXT PRIMARY KEY,
             display_name TEXT NOT NULL,
             joined_at INTEGER NOT NULL,
             unread INTEGER NOT NULL DEFAULT 0,
             muted INTEGER NOT NULL DEFAULT 0
         );
         CREATE TABLE seen (
             room TEXT NOT NULL,
             id TEXT NOT NULL,
             at INTEGER NOT NULL,
             PRIMARY KEY (room, id)
         ) WITHOUT ROWID;
         CREATE TABLE outbox (
             seq INTEGER PRIMARY KEY AUTOINCREMENT,
             id TEXT NOT NULL UNIQUE,
             room TEXT NOT NULL,
             text TEXT NOT NULL,
             sent_at INTEGER NOT NULL,
             attempts INTEGER NOT NULL DEFAULT 0,
             failed TEXT
         );
         CREATE TABLE authors (
             identity TEXT PRIMARY KEY,
             username TEXT NOT NULL
         );",
    )])
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> ClientError {
    ClientError::internal(format!("The local database holds an invalid {what}: {detail}"))
}

impl LocalState {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                ClientError::internal(format!("Cannot create {}: {e}", dir.display()))
            })?;
        }
        let mut db = Connection::open(path)?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "FULL")?;
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        migrations().to_latest(&mut db).map_err(|e| {
            ClientError::internal(format!(
                "Cannot prepare the local database {}: {e}",
                path.display()
            ))
        })?;
        // Dedupe needs recent ids only; keep a month.
        let month_ago = crate::auth::now_ms().saturating_sub(30 * 24 * 3600 * 1000);
        db.execute("DELETE FROM seen WHERE at < ?1", [month_ago as i64])?;
        Ok(Self { db: Mutex::new(db) })
    }

    fn db(&self) -> Result<MutexGuard<'_, Connection>> {
        self.db.lock().map_err(|_| ClientError::internal("the local database lock is poisoned"))
    }

    // ---- followed rooms and unread counts ----

    pub(crate) fn follow(&self, room: &RoomName, display_name: &str, now_ms: u64) -> Result<()> {
        self.db()?.execute(
            "INSERT INTO followed (room, display_name, joined_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (room) DO UPDATE SET display_name = excluded.display_name",
            params![room.to_string(), display_name, now_ms as i64],
        )?;
        Ok(())
    }

    pub(crate) fn unfollow(&self, room: &RoomName) -> Result<bool> {
        let db = self.db()?;
        let removed = db.execute("DELETE FROM followed WHERE room = ?1", [room.to_string()])?;
        db.execute("DELETE FROM seen WHERE room = ?1", [room.to_string()])?;
        Ok(removed > 0)
    }

    pub(crate) fn followed(&self) -> Result<Vec<FollowedRoom>> {
        let db = self.db()?;
        let mut statement = db.prepare(
            "SELECT room, display_name, joined_at, unread, muted FROM followed ORDER BY room",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, bool>(4)?,
            ))
        })?;
        let mut rooms = Vec::new();
        for row in rows {
            let (room, display_name, joined_at, unread, muted) = row?;
            rooms.push(FollowedRoom {
                name: RoomName::parse(&room).map_err(|e| corrupt("room", e))?,
                display_name,
                joined_at_ms: joined_at as u64,
                unread: unread as u32,
                muted,
            });
        }
        Ok(rooms)
    }

    pub(crate) fn followed_room(&self, room: &RoomName) -> Result<Option<FollowedRoom>> {
        Ok(self.followed()?.into_iter().find(|f| &f.name == room))
    }

    /// Marks a room read; returns whether its count changed.
    pub(crate) fn unread_reset(&self, room: &RoomName) -> Result<bool> {
        let changed = self.db()?.execute(
            "UPDATE followed SET unread = 0 WHERE room = ?1 AND unread <> 0",
            [room.to_string()],
        )?;
        Ok(changed > 0)
    }

    pub(crate) fn set_muted(&self, room: &RoomName, muted: bool) -> Result<bool> {
        let changed = self.db()?.execute(
            "UPDATE followed SET muted = ?2 WHERE room = ?1",
            params![room.to_string(), muted],
        )?;
        Ok(changed > 0)
    }

    // ---- dedupe ----

    /// Records that a message has been shown; false when it had been already.
    pub(crate) fn mark_seen(&self, room: &RoomName, id: &MessageId, now_ms: u64) -> Result<bool> {
        let inserted = self.db()?.execute(
            "INSERT OR IGNORE INTO seen (room, id, at) VALUES (?1, ?2, ?3)",
            params![room.to_string(), id.as_str(), now_ms as i64],
        )?;
        Ok(inserted > 0)
    }

    /// A message arriving: records it as seen and, when `count_unread`, adds it to its room's
    /// unread count, in one commit (one fsync instead of two). `None` when it had been seen
    /// already (nothing changes); else the room's new unread count if it was counted.
    pub(crate) fn arrive(
        &self,
        room: &RoomName,
        id: &MessageId,
        now_ms: u64,
        count_unread: bool,
    ) -> Result<Option<Option<u32>>> {
        let mut db = self.db()?;
        let tx = db.transaction()?;
        let new = tx.execute(
            "INSERT OR IGNORE INTO seen (room, id, at) VALUES (?1, ?2, ?3)",
            params![room.to_string(), id.as_str(), now_ms as i64],
        )? > 0;
        if !new {
            return Ok(None);
        }
        let unread = if count_unread {
            let count: Option<i64> = tx
                .query_row(
                    "UPDATE followed SET unread = unread + 1 WHERE room = ?1 RETURNING unread",
                    [room.to_string()],
                    |row| row.get(0),
                )
                .optional()?;
            Some(count.unwrap_or(0) as u32)
        } else {
            None
        };
        tx.commit()?;
        Ok(Some(unread))
    }

    pub(crate) fn is_seen(&self, room: &RoomName, id: &MessageId) -> Result<bool> {
        let found: Option<i64> = self
            .db()?
            .query_row(
                "SELECT 1 FROM seen WHERE room = ?1 AND id = ?2",
                params![room.to_string(), id.as_str()],
                |row| row.get(0),
            )
            .optional()?;
        Ok(found.is_some())
    }

    // ---- outbox ----

    pub(crate) fn outbox_push(&self, entry: &OutboxEntry) -> Result<()> {
        self.db()?.execute(
            "INSERT INTO outbox (id, room, text, sent_at) VALUES (?1, ?2, ?3, ?4)",
            params![entry.id.as_str(), entry.room.to_string(), entry.text, entry.sent_at_ms as i64],
        )?;
        Ok(())
    }

    /// Every outbox entry in the order it was written; `deliverable` only those not given up on.
    pub(crate) fn outbox(&self, deliverable: bool) -> Result<Vec<OutboxEntry>> {
        let db = self.db()?;
        let sql = if deliverable {
            "SELECT id, room, text, sent_at, attempts, failed FROM outbox WHERE failed IS NULL ORDER BY seq"
        } else {
            "SELECT id, room, text, sent_at, attempts, failed FROM outbox ORDER BY seq"
        };
        let mut statement = db.prepare(sql)?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, Option<String>>(5)?,
            ))
        })?;
        let mut entries = Vec::new();
        for row in rows {
            let (id, room, text, sent_at, attempts, failed) = row?;
            entries.push(OutboxEntry {
                id: MessageId::parse(&id).map_err(|e| corrupt("message id", e))?,
                room: RoomName::parse(&room).map_err(|e| corrupt("room", e))?,
                text,
                sent_at_ms: sent_at as u64,
                attempts: attempts as u32,
                failed,
            });
        }
        Ok(entries)
    }

    /// Removes a delivered message; returns its room when it was in the outbox.
    pub(crate) fn outbox_delivered(&self, id: &MessageId) -> Result<Option<RoomName>> {
        let room: Option<String> = self
            .db()?
            .query_row("DELETE FROM outbox WHERE id = ?1 RETURNING room", [id.as_str()], |row| {
                row.get(0)
            })
            .optional()?;
        room.map(|r| RoomName::parse(&r).map_err(|e| corrupt("room", e))).transpose()
    }

    /// Counts a delivery attempt that ended without an acknowledgement; after `max` the entry
    /// is marked failed with `reason`. Returns true when it just failed.
    pub(crate) fn outbox_attempt_failed(
        &self,
        id: &MessageId,
        max: u32,
        reason: &str,
    ) -> Result<bool> {
        let db = self.db()?;
        let attempts: Option<i64> = db
            .query_row(
                "UPDATE outbox SET attempts = attempts + 1 WHERE id = ?1 RETURNING attempts",
                [id.as_str()],
                |row| row.get(0),
            )
            .optional()?;
        if attempts.is_some_and(|a| a as u32 >= max) {
            db.execute(
                "UPDATE outbox SET failed = ?2 WHERE id = ?1",
                params![id.as_str(), reason],
            )?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Puts a failed message back in line; false if there is no such failed message.
    pub(crate) fn outbox_retry(&self, id: &MessageId) -> Result<bool> {
        let changed = self.db()?.execute(
            "UPDATE outbox SET failed = NULL, attempts = 0 WHERE id = ?1 AND failed IS NOT NULL",
            [id.as_str()],
        )?;
        Ok(changed > 0)
    }

    /// Drops a message from the outbox (the user gave up on it).
    pub(crate) fn outbox_discard(&self, id: &MessageId) -> Result<bool> {
        Ok(self.db()?.execute("DELETE FROM outbox WHERE id = ?1", [id.as_str()])? > 0)
    }

    // ---- author names ----

    pub(crate) fn author(&self, identity: &IdentityId) -> Result<Option<String>> {
        Ok(self
            .db()?
            .query_row(
                "SELECT username FROM authors WHERE identity = ?1",
                [identity.as_str()],
                |row| row.get(0),
            )
            .optional()?)
    }

    pub(crate) fn author_set(&self, identity: &IdentityId, username: &str) -> Result<()> {
        self.db()?.execute(
            "INSERT INTO authors (identity, username) VALUES (?1, ?2)
             ON CONFLICT (identity) DO UPDATE SET username = excluded.username",
            params![identity.as_str(), username],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(slug: &str) -> RoomName {
        RoomName::from_user_input(slug).unwrap()
    }

    fn id(n: u8) -> MessageId {
        MessageId::parse(&format!("00000000-0000-4000-8000-0000000000{n:02}")).unwrap()
    }

    #[test]
    fn unread_counts_and_follows_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite3");
        {
            let state = LocalState::open(&path).unwrap();
            state.follow(&room("general"), "General", 1).unwrap();
            state.follow(&room("random"), "Random", 2).unwrap();
            assert_eq!(state.arrive(&room("random"), &id(1), 0, true).unwrap(), Some(Some(1)));
            assert_eq!(state.arrive(&room("random"), &id(2), 0, true).unwrap(), Some(Some(2)));
            // Seen before: nothing changes, nothing is counted twice.
            assert_eq!(state.arrive(&room("random"), &id(2), 0, true).unwrap(), None);
            // Not counted (ours, or the room is on screen), but seen from now on.
            assert_eq!(state.arrive(&room("random"), &id(3), 0, false).unwrap(), Some(None));
            assert!(state.is_seen(&room("random"), &id(3)).unwrap());
            let other = room("not-followed");
            assert_eq!(state.arrive(&other, &id(1), 0, true).unwrap(), Some(Some(0)));
        }
        let state = LocalState::open(&path).unwrap();
        let followed = state.followed().unwrap();
        assert_eq!(followed.len(), 2);
        assert_eq!(followed[1].unread, 2, "counts are persisted");
        assert!(state.unread_reset(&room("random")).unwrap());
        assert!(!state.unread_reset(&room("random")).unwrap(), "already read");
        assert!(state.unfollow(&room("general")).unwrap());
        assert_eq!(state.followed().unwrap().len(), 1);
    }

    #[test]
    fn the_outbox_keeps_order_counts_attempts_and_retries() {
        let dir = tempfile::tempdir().unwrap();
        let state = LocalState::open(&dir.path().join("s.sqlite3")).unwrap();
        for n in 1..=3 {
            let entry = OutboxEntry {
                id: id(n),
                room: room("general"),
                text: format!("m{n}"),
                sent_at_ms: u64::from(n),
                attempts: 0,
                failed: None,
            };
            state.outbox_push(&entry).unwrap();
        }
        let texts: Vec<String> = state.outbox(true).unwrap().into_iter().map(|e| e.text).collect();
        assert_eq!(texts, ["m1", "m2", "m3"]);
        assert_eq!(state.outbox_delivered(&id(2)).unwrap(), Some(room("general")));
        assert_eq!(state.outbox_delivered(&id(2)).unwrap(), None, "delivered once");
        assert!(!state.outbox_attempt_failed(&id(1), 2, "refused").unwrap());
        assert!(state.outbox_attempt_failed(&id(1), 2, "refused").unwrap());
        let deliverable: Vec<String> =
            state.outbox(true).unwrap().into_iter().map(|e| e.text).collect();
        assert_eq!(deliverable, ["m3"], "a failed message waits for a retry");
        assert!(state.outbox_retry(&id(1)).unwrap());
        assert_eq!(state.outbox(true).unwrap().len(), 2);
    }

    #[test]
    fn seen_ids_dedupe_per_room() {
        let dir = tempfile::tempdir().unwrap();
        let state = LocalState::open(&dir.path().join("s.sqlite3")).unwrap();
        assert!(state.mark_seen(&room("a"), &id(1), 0).unwrap());
        assert!(!state.mark_seen(&room("a"), &id(1), 0).unwrap());
        assert!(state.is_seen(&room("a"), &id(1)).unwrap());
        assert!(!state.is_seen(&room("b"), &id(1)).unwrap());
    }
}
