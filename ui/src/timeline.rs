//! The open room's timeline, virtualized: only a window of about a hundred messages is in the
//! DOM; spacers above and below stand in for the rest at an estimated row height, so a room
//! with ten thousand messages scrolls like one with fifty.
//!
//! Whenever the window moves, the first message on screen is the anchor: after the DOM has
//! changed, the scroll position is corrected so that message stays exactly where it was. That
//! one rule keeps the view still when older pages load above, when the window slides, and when
//! the estimate was wrong.
//!
//! A view at the bottom stays there: after new messages, and after the viewport changes size
//! (the window is resized, the composer grows).

use iotchat_protocol::chat::{ConnectionState, Delivery, TimelineMessage};
use iotchat_protocol::{MessageId, RoomName};
use leptos::html::Div;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos::wasm_bindgen::JsCast;
use leptos::web_sys::HtmlElement;
use wasm_bindgen::closure::Closure;
use web_sys::ResizeObserver;

use crate::history::{Load, PAGE_SIZE, Row, Timeline, delivery_tag};
use crate::icons::{Icon, Svg};
use crate::ipc;
use crate::people::Avatar;
use crate::state::{AppState, use_state};
use crate::time;

/// Messages in the DOM at most.
const WINDOW: usize = 100;
/// Messages the window slides by.
const STEP: usize = 40;
/// Row height before anything was measured, in pixels.
const FIRST_ESTIMATE: f64 = 44.0;
/// Closer than this to the bottom counts as "at the bottom" (follow new messages).
const BOTTOM_SLACK: f64 = 48.0;

/// Loads the newest page and our outbox into the shared timeline.
pub(crate) async fn load_first_page(state: AppState, room: RoomName) {
    state.timeline.maybe_update(|t| match t {
        Some(t) if t.room == room => {
            t.load = Load::Loading;
            true
        }
        _ => false,
    });
    let page = ipc::history_page(&room, None, PAGE_SIZE).await;
    let outbox = match ipc::outbox_list(&room).await {
        Ok(outbox) => outbox,
        Err(e) => {
            state.report("Your unsent messages could not be listed", &e);
            Vec::new()
        }
    };
    state.timeline.maybe_update(|t| match t {
        Some(t) if t.room == room => {
            match page {
                Ok(page) => t.first_page(page, outbox),
                Err(e) => {
                    for message in outbox {
                        t.receive(message, false);
                    }
                    t.load = Load::Failed(e.message);
                }
            }
            true
        }
        _ => false,
    });
}

/// Puts a message we sent (or an outbox entry) into the open timeline.
pub(crate) fn add_own(state: AppState, message: TimelineMessage) {
    state.timeline.maybe_update(|t| match t {
        Some(t) if t.room == message.room => {
            t.receive(message, false);
            true
        }
        _ => false,
    });
}

/// The window's moving parts. All handles, so it is `Copy` and methods can schedule themselves.
#[derive(Debug, Clone, Copy)]
struct Window {
    state: AppState,
    room: StoredValue<RoomName>,
    scroller: NodeRef<Div>,
    rows_box: NodeRef<Div>,
    top_spacer: NodeRef<Div>,
    bottom_spacer: NodeRef<Div>,
    /// Indices of the rendered messages, `start..end`.
    range: RwSignal<(usize, usize)>,
    estimate: StoredValue<f64>,
    /// At the bottom: new messages scroll into view.
    stick: StoredValue<bool>,
    /// A window change waits for the DOM; scroll events meanwhile are ours, not the user's.
    adjusting: StoredValue<bool>,
    /// The message count the window last accounted for.
    seen: StoredValue<usize>,
    /// The viewport size (client width, height) the last resize was handled at; `None` until
    /// the resize observer first reports.
    viewport: StoredValue<Option<(i32, i32)>>,
    /// New messages arrived below while the user read older ones.
    unseen: RwSignal<bool>,
}

impl Window {
    /// The view was closed while a frame or a page was pending: touch nothing of it.
    fn gone(self) -> bool {
        self.range.is_disposed()
    }

    fn len(self) -> usize {
        self.state.timeline.with_untracked(|t| t.as_ref().map_or(0, Timeline::len))
    }

    fn element(self) -> Option<HtmlElement> {
        self.scroller.get_untracked().map(|el| el.unchecked_into::<HtmlElement>())
    }

    /// The viewport changed size: a view at the bottom stays at the bottom, one the user has
    /// scrolled up keeps its place.
    fn on_resize(self) {
        if self.gone() {
            return;
        }
        let Some(scroller) = self.element() else { return };
        self.viewport.set_value(Some(viewport_of(&scroller)));
        if self.stick.get_value() {
            scroller.set_scroll_top(scroller.scroll_height());
        }
        // A taller viewport may need more rows, or the older page.
        self.check();
    }

    /// The first row at least partly on screen, and how far below the viewport's top it is.
    fn anchor(self) -> Option<(String, i32)> {
        let scroller = self.element()?;
        let rows = self.rows_box.get_untracked()?;
        let top = scroller.scroll_top();
        let children = rows.children();
        (0..children.length())
            .filter_map(|i| children.item(i))
            .filter_map(|el| el.dyn_into::<HtmlElement>().ok())
            .find(|el| el.offset_top() + el.offset_height() > top)
            .and_then(|el| el.get_attribute("data-row").map(|id| (id, el.offset_top() - top)))
    }

    /// Moves the window, then (once the DOM has it) puts `anchor` back where it was.
    fn set_range(self, range: (usize, usize), anchor: Option<(String, i32)>) {
        self.adjusting.set_value(true);
        self.range.set(range);
        request_animation_frame(move || {
            if self.gone() {
                return;
            }
            if let (Some(scroller), Some((id, offset))) = (self.element(), anchor) {
                let selector = format!("[data-row=\"{id}\"]");
                if let Ok(Some(row)) = scroller.query_selector(&selector)
                    && let Ok(row) = row.dyn_into::<HtmlElement>()
                {
                    scroller.set_scroll_top(row.offset_top() - offset);
                }
            }
            self.measure();
            self.adjusting.set_value(false);
            self.check();
        });
    }

    /// Learns the average row height from what is rendered, for the spacers.
    fn measure(self) {
        let (start, end) = self.range.get_untracked();
        let (Some(top), Some(bottom)) =
            (self.top_spacer.get_untracked(), self.bottom_spacer.get_untracked())
        else {
            return;
        };
        let rendered = f64::from(bottom.offset_top() - top.offset_top() - top.offset_height());
        let count = end.saturating_sub(start);
        if count > 0 && rendered > 0.0 {
            self.estimate.set_value((rendered / count as f64).clamp(20.0, 400.0));
        }
    }

    fn scroll_to_bottom(self) {
        self.stick.set_value(true);
        self.unseen.set(false);
        let len = self.len();
        self.adjusting.set_value(true);
        self.range.set((len.saturating_sub(WINDOW), len));
        request_animation_frame(move || {
            if self.gone() {
                return;
            }
            if let Some(scroller) = self.element() {
                scroller.set_scroll_top(scroller.scroll_height());
            }
            self.measure();
            self.adjusting.set_value(false);
            self.check();
        });
    }

    /// The message count changed: follow the bottom, or keep the view and note what is new.
    fn on_length(self, len: usize) {
        let before = self.seen.get_value();
        if len == before {
            return;
        }
        self.seen.set_value(len);
        if self.stick.get_value() {
            self.scroll_to_bottom();
            return;
        }
        let (start, end) = self.range.get_untracked();
        let (start, end) = if len > before && end == before {
            if len > before {
                self.unseen.set(true);
            }
            (start, len.min(start + WINDOW))
        } else {
            (start.min(len), end.min(len))
        };
        if (start, end) != self.range.get_untracked() {
            let anchor = self.anchor();
            self.set_range((start, end), anchor);
        }
    }

    /// After every scroll: slide the window near its edges, load older history at the top.
    fn check(self) {
        if self.adjusting.get_value() {
            return;
        }
        let (Some(scroller), Some(top_spacer), Some(bottom_spacer)) =
            (self.element(), self.top_spacer.get_untracked(), self.bottom_spacer.get_untracked())
        else {
            return;
        };
        // A resize can scroll (the browser clamps or anchors) before the observer reports it:
        // that scroll is not the user leaving the bottom.
        if self.viewport.get_value().is_some_and(|seen| seen != viewport_of(&scroller)) {
            self.on_resize();
            return;
        }
        let len = self.len();
        let (start, end) = self.range.get_untracked();
        let top = f64::from(scroller.scroll_top());
        let height = f64::from(scroller.client_height());
        let bottom = top + height;
        let at_bottom = f64::from(scroller.scroll_height()) - bottom < BOTTOM_SLACK;
        self.stick.set_value(at_bottom && end >= len);
        if self.stick.get_value() {
            self.unseen.set(false);
        }
        let rows_top = f64::from(top_spacer.offset_top() + top_spacer.offset_height());
        let rows_bottom = f64::from(bottom_spacer.offset_top());
        let margin = height.max(240.0);

        if bottom < rows_top || top > rows_bottom {
            // Dragged the scrollbar into a spacer: render where it points, no anchor to keep.
            let index = ((top - f64::from(top_spacer.offset_top())) / self.estimate.get_value())
                .max(0.0) as usize;
            let start = index.saturating_sub(STEP / 2).min(len.saturating_sub(WINDOW));
            self.set_range((start, (start + WINDOW).min(len)), None);
        } else if start > 0 && top < rows_top + margin {
            let new_start = start.saturating_sub(STEP);
            self.set_range((new_start, end.min(new_start + WINDOW)), self.anchor());
        } else if end < len && bottom > rows_bottom - margin {
            let new_end = (end + STEP).min(len);
            self.set_range((start.max(new_end.saturating_sub(WINDOW)), new_end), self.anchor());
        } else if start == 0 && top < margin {
            self.load_older();
        }
    }

    fn load_older(self) {
        let room = self.room.get_value();
        let cursor = self.state.timeline.with_untracked(|t| match t {
            Some(t)
                if t.room == room
                    && t.load == Load::Ready
                    && !t.at_start
                    && !t.loading_older
                    && t.older_error.is_none() =>
            {
                t.older.clone()
            }
            _ => None,
        });
        let Some(cursor) = cursor else { return };
        self.set_loading_older(&room, true, None);
        spawn_local(async move {
            let result = ipc::history_page(&room, Some(&cursor), PAGE_SIZE).await;
            if self.gone() {
                // The room was closed meanwhile; its timeline is gone too.
                return;
            }
            match result {
                Ok(page) => {
                    let anchor = self.anchor();
                    let mut added = 0;
                    self.state.timeline.maybe_update(|t| match t {
                        Some(t) if t.room == room => {
                            added = t.prepend(page);
                            t.loading_older = false;
                            true
                        }
                        _ => false,
                    });
                    if added > 0 {
                        // Same messages, new indices: the spacer above grows by `added` rows.
                        self.seen.set_value(self.len());
                        let (start, end) = self.range.get_untracked();
                        self.set_range((start + added, end + added), anchor);
                    }
                }
                Err(e) => self.set_loading_older(&room, false, Some(e.message)),
            }
        });
    }

    fn set_loading_older(self, room: &RoomName, loading: bool, error: Option<String>) {
        self.state.timeline.maybe_update(|t| match t {
            Some(t) if &t.room == room => {
                t.loading_older = loading;
                t.older_error = error;
                true
            }
            _ => false,
        });
    }
}

fn viewport_of(scroller: &HtmlElement) -> (i32, i32) {
    (scroller.client_width(), scroller.client_height())
}

/// Calls [`Window::on_resize`] whenever the scroller changes size, until the view is cleaned up.
fn observe_resizes(window: Window) {
    let on_resize = Closure::<dyn FnMut()>::new(move || window.on_resize());
    // Without ResizeObserver the timeline still works; it just does not re-stick on resize.
    let Ok(observer) = ResizeObserver::new(on_resize.as_ref().unchecked_ref()) else { return };
    let observer = StoredValue::new_local((observer, on_resize));
    window.scroller.on_load(move |scroller| observer.with_value(|(o, _)| o.observe(&scroller)));
    // Cleanups run before the owner drops its stored values: the observer is disconnected
    // before the closure it calls is freed.
    on_cleanup(move || observer.with_value(|(o, _)| o.disconnect()));
}

/// The scrolling list of messages. `to_bottom` is bumped by the composer after a send.
#[allow(unreachable_pub)] // see lib.rs
#[component]
pub(crate) fn TimelineView(
    room: RoomName,
    /// The room's display name, for the labels.
    display: Memo<String>,
    /// Unread messages when the room was opened: the "new" marker goes above the first.
    unread_at_open: u32,
    to_bottom: RwSignal<u64>,
) -> impl IntoView {
    let state = use_state();
    let tl = state.timeline;
    let window = Window {
        state,
        room: StoredValue::new(room.clone()),
        scroller: NodeRef::new(),
        rows_box: NodeRef::new(),
        top_spacer: NodeRef::new(),
        bottom_spacer: NodeRef::new(),
        range: RwSignal::new((0, 0)),
        estimate: StoredValue::new(FIRST_ESTIMATE),
        stick: StoredValue::new(true),
        adjusting: StoredValue::new(false),
        seen: StoredValue::new(0),
        viewport: StoredValue::new(None),
        unseen: RwSignal::new(false),
    };
    observe_resizes(window);
    let unread_from = RwSignal::new(None::<MessageId>);

    let len = Memo::new(move |_| tl.with(|t| t.as_ref().map_or(0, Timeline::len)));
    let load = Memo::new(move |_| tl.with(|t| t.as_ref().map(|t| t.load.clone())));
    let older = Memo::new(move |_| {
        tl.with(|t| t.as_ref().map(|t| (t.loading_older, t.older_error.clone(), t.at_start)))
    });

    // The marker goes where unread began, once, when the first page is in.
    Effect::new(move |done: Option<bool>| {
        if done == Some(true) {
            return true;
        }
        if load.get() != Some(Load::Ready) {
            return false;
        }
        unread_from
            .set(tl.with_untracked(|t| t.as_ref().and_then(|t| t.first_unread(unread_at_open))));
        true
    });
    Effect::new(move |_| window.on_length(len.get()));
    // History failed while the connection was down: try again as soon as it is back.
    {
        let room = room.clone();
        Effect::new(move |_| {
            if state.connection.get() != ConnectionState::Online {
                return;
            }
            let (first_failed, older_failed) = tl.with_untracked(|t| {
                t.as_ref().map_or((false, false), |t| {
                    (matches!(t.load, Load::Failed(_)), t.older_error.is_some())
                })
            });
            if first_failed {
                spawn_local(load_first_page(state, room.clone()));
            } else if older_failed {
                window.set_loading_older(&room, false, None);
                window.check();
            }
        });
    }
    Effect::new(move |previous: Option<u64>| {
        let bumped = to_bottom.get();
        if previous.is_some_and(|p| p != bumped) {
            window.scroll_to_bottom();
        }
        bumped
    });

    let rows = Memo::new(move |_| {
        let (start, end) = window.range.get();
        unread_from.with(|marker| {
            tl.with(|t| t.as_ref().map(|t| t.rows(start, end, marker.as_ref())).unwrap_or_default())
        })
    });
    let top_px = Memo::new(move |_| window.range.get().0 as f64 * window.estimate.get_value());
    let bottom_px = Memo::new(move |_| {
        len.get().saturating_sub(window.range.get().1) as f64 * window.estimate.get_value()
    });

    let retry_first = {
        let room = room.clone();
        move |_| spawn_local(load_first_page(state, room.clone()))
    };
    let retry_older = {
        let room = room.clone();
        move |_| {
            window.set_loading_older(&room, false, None);
            window.load_older();
        }
    };

    view! {
        <div class="timeline-wrap">
            <div
                class="timeline"
                data-testid="timeline"
                role="log"
                aria-label=move || format!("Messages in {}", display.get())
                tabindex="0"
                node_ref=window.scroller
                on:scroll=move |_| window.check()
            >
                <div class="timeline-inner">
                    {move || match older.get() {
                        Some((true, _, _)) => Some(view! {
                            <div class="timeline-note" data-testid="load-older" role="status">
                                <span class="spinner" aria-hidden="true"></span>
                                "Loading older messages…"
                            </div>
                        }.into_any()),
                        Some((false, Some(error), _)) => Some(view! {
                            <div class="timeline-note error" role="alert">
                                {format!("Older messages could not be loaded: {error}")}
                                <button class="button small" type="button" on:click=retry_older.clone()>
                                    "Try again"
                                </button>
                            </div>
                        }.into_any()),
                        Some((false, None, true)) if load.get() == Some(Load::Ready) && len.get() > 0 => Some(view! {
                            <div class="timeline-start" data-testid="timeline-start">
                                <div class="empty-icon" aria-hidden="true"><Svg icon=Icon::Hash /></div>
                                <h2>{move || display.get()}</h2>
                                <p class="muted">"This is the very beginning of the room."</p>
                            </div>
                        }.into_any()),
                        _ => None,
                    }}
                    <div class="spacer" node_ref=window.top_spacer style:height=move || format!("{}px", top_px.get())></div>
                    <div class="rows" node_ref=window.rows_box>
                        <For
                            each=move || rows.get()
                            key=Row::key
                            children=move |row| message_row(state, row)
                        />
                    </div>
                    <div class="spacer" node_ref=window.bottom_spacer style:height=move || format!("{}px", bottom_px.get())></div>
                    {move || match load.get() {
                        Some(Load::Loading) if len.get() == 0 => Some(view! {
                            <div class="timeline-note" role="status" data-testid="timeline-loading">
                                <span class="spinner" aria-hidden="true"></span>
                                "Loading messages…"
                            </div>
                        }.into_any()),
                        Some(Load::Failed(error)) => Some(view! {
                            <div class="timeline-note error" role="alert" data-testid="timeline-error">
                                {format!("Messages could not be loaded: {error}")}
                                <button class="button small" type="button" on:click=retry_first.clone()>
                                    "Try again"
                                </button>
                            </div>
                        }.into_any()),
                        Some(Load::Ready) if len.get() == 0 => Some(view! {
                            <div class="timeline-empty" data-testid="timeline-empty">
                                <div class="empty-icon" aria-hidden="true"><Svg icon=Icon::Hash /></div>
                                <h2>{move || format!("No messages in {} yet", display.get())}</h2>
                                <p class="muted">"Say hello — everyone who follows the room will see it."</p>
                            </div>
                        }.into_any()),
                        _ => None,
                    }}
                </div>
            </div>
            {move || window.unseen.get().then(|| view! {
                <button
                    class="jump"
                    type="button"
                    data-testid="jump-to-latest"
                    on:click=move |_| window.scroll_to_bottom()
                >
                    "New messages below"
                </button>
            })}
        </div>
    }
}

fn message_row(state: AppState, row: Row) -> impl IntoView {
    let Row { message, day, header, unread_marker } = row;
    let state_tag = delivery_tag(&message.delivery);
    let TimelineMessage { id, sender, author, text, sent_at_ms, own, delivery, .. } = message;
    let clock = time::clock(sent_at_ms);
    let exact = time::exact(sent_at_ms);
    let id_text = id.to_string();
    let status = match delivery {
        Delivery::Delivered => None,
        Delivery::Pending => Some(
            view! {
                <div class="status pending" role="status">
                    <Svg icon=Icon::Clock />
                    "Sending…"
                </div>
            }
            .into_any(),
        ),
        Delivery::Failed { reason } => Some(
            view! {
                <div class="status failed" role="alert">
                    <Svg icon=Icon::Alert />
                    <span>{format!("Not sent: {reason}")}</span>
                    <button
                        class="button small"
                        type="button"
                        data-testid=format!("retry-{id_text}")
                        on:click={
                            let id = id.clone();
                            move |_| retry(state, id.clone())
                        }
                    >
                        "Retry"
                    </button>
                    <button
                        class="button small quiet"
                        type="button"
                        data-testid=format!("discard-{id_text}")
                        on:click={
                            let id = id.clone();
                            move |_| discard(state, id.clone())
                        }
                    >
                        "Discard"
                    </button>
                </div>
            }
            .into_any(),
        ),
    };
    let gutter = if header {
        view! { <Avatar name=author.clone() identity=sender /> }.into_any()
    } else {
        view! { <span class="gutter-time" aria-hidden="true" title=exact.clone()>{clock.clone()}</span> }
            .into_any()
    };

    view! {
        <div class="row" data-row=id_text.clone()>
            {day.map(|day| view! {
                <div class="day-separator" role="separator" aria-label=day.clone()>
                    <span>{day.clone()}</span>
                </div>
            })}
            {unread_marker.then(|| view! {
                <div class="new-marker" role="separator" aria-label="New messages" data-testid="new-marker">
                    <span>"New"</span>
                </div>
            })}
            <div
                class="message"
                class:own=own
                class:first=header
                data-testid="message"
                data-id=id_text.clone()
                data-own=own.to_string()
                data-state=state_tag
            >
                <div class="gutter">{gutter}</div>
                <div class="body">
                    <div class="meta" class:sr-only=!header>
                        <span class="author" data-testid="message-author">{author}</span>
                        {own.then(|| view! { <span class="you">"you"</span> })}
                        <time class="time" data-testid="message-time" title=exact>{clock}</time>
                    </div>
                    <div class="text" data-testid="message-text">{text}</div>
                    {status}
                </div>
            </div>
        </div>
    }
}

fn retry(state: AppState, id: MessageId) {
    spawn_local(async move {
        match ipc::message_retry(&id).await {
            Ok(()) => state.timeline.maybe_update(|t| {
                t.as_mut().is_some_and(|t| t.set_delivery(&id, Delivery::Pending))
            }),
            Err(e) => state.report("Could not retry the message", &e),
        }
    });
}

fn discard(state: AppState, id: MessageId) {
    spawn_local(async move {
        match ipc::message_discard(&id).await {
            Ok(()) => state.timeline.maybe_update(|t| t.as_mut().is_some_and(|t| t.remove(&id))),
            Err(e) => state.report("Could not discard the message", &e),
        }
    });
}
