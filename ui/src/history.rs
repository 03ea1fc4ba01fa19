//! The open room's messages as the timeline shows them: history pages, live messages and our
//! outbox merged into one list, oldest first, each message once.

use std::collections::HashSet;

use iotchat_protocol::chat::{Delivery, HistoryPage, TimelineMessage};
use iotchat_protocol::{MessageId, RoomName};

use crate::time;

/// Messages per history page.
pub(crate) const PAGE_SIZE: u32 = 50;

/// Messages further apart than this start a new group even from the same author.
const GROUP_GAP_MS: u64 = 5 * 60 * 1000;

/// How far the first page has got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Load {
    Loading,
    Ready,
    Failed(String),
}

/// One room's timeline.
#[derive(Debug, Clone)]
pub(crate) struct Timeline {
    pub(crate) room: RoomName,
    /// Oldest first. History order is the server's; live messages follow in arrival order.
    messages: Vec<TimelineMessage>,
    ids: HashSet<MessageId>,
    pub(crate) load: Load,
    /// Cursor for the next older page.
    pub(crate) older: Option<String>,
    /// The first message of the room is loaded.
    pub(crate) at_start: bool,
    pub(crate) loading_older: bool,
    pub(crate) older_error: Option<String>,
}

/// A message with what the timeline draws around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) message: TimelineMessage,
    /// A day separator above this message, with its label.
    pub(crate) day: Option<String>,
    /// First of a run by the same author: draw the avatar and the name.
    pub(crate) header: bool,
    /// The first message that arrived while the room was not on screen.
    pub(crate) unread_marker: bool,
}

impl Row {
    /// Changes whenever the row must be drawn again, so a keyed list rebuilds exactly those.
    pub(crate) fn key(&self) -> String {
        let m = &self.message;
        format!(
            "{}|{}|{}|{}|{}|{}",
            m.id,
            delivery_tag(&m.delivery),
            self.header,
            self.day.as_deref().unwrap_or(""),
            self.unread_marker,
            m.author
        )
    }
}

/// `delivered`, `pending` or `failed`: the `data-state` of a message.
pub(crate) fn delivery_tag(delivery: &Delivery) -> &'static str {
    match delivery {
        Delivery::Delivered => "delivered",
        Delivery::Pending => "pending",
        Delivery::Failed { .. } => "failed",
    }
}

impl Timeline {
    pub(crate) fn new(room: RoomName) -> Self {
        Self {
            room,
            messages: Vec::new(),
            ids: HashSet::new(),
            load: Load::Loading,
            older: None,
            at_start: false,
            loading_older: false,
            older_error: None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.messages.len()
    }

    fn position(&self, id: &MessageId) -> Option<usize> {
        if !self.ids.contains(id) {
            return None;
        }
        // Changes nearly always concern recent messages.
        self.messages.iter().rposition(|m| &m.id == id)
    }

    /// The newest page and our outbox, merged with whatever arrived live while they loaded.
    pub(crate) fn first_page(&mut self, page: HistoryPage, outbox: Vec<TimelineMessage>) {
        let live = std::mem::take(&mut self.messages);
        self.ids.clear();
        self.at_start = page.next_before.is_none();
        self.older = page.next_before;
        for message in page.messages.into_iter().rev() {
            if self.ids.insert(message.id.clone()) {
                self.messages.push(message);
            }
        }
        for message in live.into_iter().chain(outbox) {
            self.receive(message, false);
        }
        self.load = Load::Ready;
    }

    /// Puts an older page in front; answers how many messages it added.
    pub(crate) fn prepend(&mut self, page: HistoryPage) -> usize {
        self.at_start = page.next_before.is_none();
        self.older = page.next_before;
        let mut older: Vec<TimelineMessage> = Vec::with_capacity(page.messages.len());
        for message in page.messages.into_iter().rev() {
            if self.ids.insert(message.id.clone()) {
                older.push(message);
            }
        }
        let added = older.len();
        older.append(&mut self.messages);
        self.messages = older;
        added
    }

    /// A message from an event, a send or the outbox. Answers whether it is new.
    pub(crate) fn receive(&mut self, message: TimelineMessage, missed: bool) -> bool {
        if let Some(at) = self.position(&message.id) {
            let current = &mut self.messages[at];
            // A late echo of a message must not undo a delivery we already know of.
            let delivery = if current.delivery == Delivery::Delivered {
                Delivery::Delivered
            } else {
                message.delivery.clone()
            };
            *current = TimelineMessage { delivery, ..message };
            return false;
        }
        self.ids.insert(message.id.clone());
        if missed {
            // Caught up after a reconnect: slot in by the sender's clock among the newest.
            let at = self
                .messages
                .iter()
                .rposition(|m| m.sent_at_ms <= message.sent_at_ms)
                .map_or(0, |i| i + 1);
            self.messages.insert(at, message);
        } else {
            self.messages.push(message);
        }
        true
    }

    pub(crate) fn set_delivery(&mut self, id: &MessageId, delivery: Delivery) -> bool {
        match self.position(id) {
            Some(at) if self.messages[at].delivery != delivery => {
                self.messages[at].delivery = delivery;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn remove(&mut self, id: &MessageId) -> bool {
        match self.position(id) {
            Some(at) => {
                self.messages.remove(at);
                self.ids.remove(id);
                true
            }
            None => false,
        }
    }

    /// The id of the first of the last `unread` messages from others.
    pub(crate) fn first_unread(&self, unread: u32) -> Option<MessageId> {
        if unread == 0 {
            return None;
        }
        let mut left = unread;
        for message in self.messages.iter().rev() {
            if !message.own {
                left -= 1;
                if left == 0 {
                    return Some(message.id.clone());
                }
            }
        }
        // Fewer loaded than unread: the marker goes above the first loaded message.
        self.messages.iter().find(|m| !m.own).map(|m| m.id.clone())
    }

    /// Rows `start..end`, with the grouping decided against the message before each.
    pub(crate) fn rows(
        &self,
        start: usize,
        end: usize,
        unread_from: Option<&MessageId>,
    ) -> Vec<Row> {
        let end = end.min(self.messages.len());
        let start = start.min(end);
        let mut previous = start.checked_sub(1).and_then(|i| self.messages.get(i));
        let mut previous_day = previous.map(|m| time::local_day(m.sent_at_ms));
        let mut rows = Vec::with_capacity(end - start);
        for message in &self.messages[start..end] {
            let day = time::local_day(message.sent_at_ms);
            let new_day = previous_day != Some(day);
            let unread_marker = unread_from == Some(&message.id);
            let header = new_day
                || unread_marker
                || previous.is_none_or(|p| {
                    p.sender != message.sender
                        || message.sent_at_ms.saturating_sub(p.sent_at_ms) > GROUP_GAP_MS
                });
            rows.push(Row {
                message: message.clone(),
                day: new_day.then(|| time::day_label(message.sent_at_ms)),
                header,
                unread_marker,
            });
            previous = Some(message);
            previous_day = Some(day);
        }
        rows
    }
}
