//! A system tray for tests: owns `org.kde.StatusNotifierWatcher` on a private session bus, as a
//! desktop's panel does, so the app's tray icon registers with it. The test then reads the icon
//! (`org.kde.StatusNotifierItem`) and clicks menu items (`com.canonical.dbusmenu`), as a person
//! does on the panel.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result, bail};
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

/// A registered tray item: who owns it on the bus, and where its object is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayItem {
    pub bus_name: String,
    pub path: String,
}

#[derive(Debug, Default)]
struct Watcher {
    items: Arc<Mutex<Vec<TrayItem>>>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    async fn register_status_notifier_item(
        &self,
        service: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) {
        // Items pass either their bus name or (libayatana) their object path.
        let sender = header.sender().map(|s| s.to_string()).unwrap_or_default();
        let item = if service.starts_with('/') {
            TrayItem { bus_name: sender, path: service.clone() }
        } else {
            TrayItem { bus_name: service.clone(), path: "/StatusNotifierItem".into() }
        };
        if let Ok(mut items) = self.items.lock() {
            items.push(item);
        }
        let _ = Self::status_notifier_item_registered(&emitter, &service).await;
    }

    fn register_status_notifier_host(&self, _service: String) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items
            .lock()
            .map(|items| items.iter().map(|i| format!("{}{}", i.bus_name, i.path)).collect())
            .unwrap_or_default()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }

    #[zbus(signal)]
    async fn status_notifier_item_registered(
        emitter: &SignalEmitter<'_>,
        service: &str,
    ) -> zbus::Result<()>;
}

/// The running test tray.
#[derive(Debug)]
pub struct TrayHost {
    connection: zbus::Connection,
    items: Arc<Mutex<Vec<TrayItem>>>,
}

const ITEM: &str = "org.kde.StatusNotifierItem";
const MENU: &str = "com.canonical.dbusmenu";

impl TrayHost {
    /// Serves on the bus at `address` until dropped.
    pub async fn start(address: &str) -> Result<Self> {
        let watcher = Watcher::default();
        let items = Arc::clone(&watcher.items);
        let connection = zbus::connection::Builder::address(address)?
            .name("org.kde.StatusNotifierWatcher")?
            .serve_at("/StatusNotifierWatcher", watcher)?
            .build()
            .await
            .context("owning org.kde.StatusNotifierWatcher on the test bus")?;
        Ok(Self { connection, items })
    }

    /// The process that owns `item` on the bus (the app behind the tray icon).
    pub async fn owner_pid(&self, item: &TrayItem) -> Result<u32> {
        let bus = zbus::fdo::DBusProxy::new(&self.connection).await?;
        let name = zbus::names::BusName::try_from(item.bus_name.as_str())?;
        Ok(bus.get_connection_unix_process_id(name).await?)
    }

    /// Waits for a tray item registered after `old` (the app started again).
    pub async fn item_after(&self, old: &TrayItem) -> Result<TrayItem> {
        let deadline = tokio::time::Instant::now() + crate::UI_TIMEOUT;
        loop {
            let newest = self.items.lock().ok().and_then(|items| items.last().cloned());
            if let Some(item) = newest.filter(|item| item != old) {
                return Ok(item);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("no new tray icon registered with the test tray");
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Waits for the first tray item to register.
    pub async fn item(&self) -> Result<TrayItem> {
        let deadline = tokio::time::Instant::now() + crate::UI_TIMEOUT;
        loop {
            if let Some(item) = self.items.lock().ok().and_then(|items| items.first().cloned()) {
                return Ok(item);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("no tray icon registered with the test tray");
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    async fn proxy(
        &self,
        item: &TrayItem,
        interface: &'static str,
        path: &str,
    ) -> Result<zbus::Proxy<'static>> {
        Ok(zbus::Proxy::new(&self.connection, item.bus_name.clone(), path.to_owned(), interface)
            .await?)
    }

    /// The icon the tray shows now: the image file the item points at, read.
    pub async fn icon(&self, item: &TrayItem) -> Result<Vec<u8>> {
        let proxy = self.proxy(item, ITEM, &item.path).await?;
        // Properties may be cached by the proxy; ask the bus each time.
        let name: String = proxy.get_property("IconName").await.context("the item's IconName")?;
        let theme_path: String = proxy.get_property("IconThemePath").await.unwrap_or_default();
        let mut candidates = vec![PathBuf::from(&name)];
        if !theme_path.is_empty() {
            candidates.push(PathBuf::from(&theme_path).join(&name));
            candidates.push(PathBuf::from(&theme_path).join(format!("{name}.png")));
        }
        for path in &candidates {
            if let Ok(bytes) = std::fs::read(path) {
                return Ok(bytes);
            }
        }
        bail!("the tray icon {name:?} (theme path {theme_path:?}) is not a readable file")
    }

    /// Waits until the tray shows an icon other than `old`, and returns it.
    pub async fn wait_icon_change(&self, item: &TrayItem, old: &[u8]) -> Result<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + crate::UI_TIMEOUT;
        loop {
            let icon = self.icon(item).await?;
            if icon != old {
                return Ok(icon);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("the tray icon did not change");
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// The labels of the item's menu entries, in order (separators left out).
    pub async fn menu_labels(&self, item: &TrayItem) -> Result<Vec<String>> {
        Ok(self.menu_entries(item).await?.into_iter().map(|(_, label)| label).collect())
    }

    /// Clicks the menu entry labelled `label`.
    pub async fn click(&self, item: &TrayItem, label: &str) -> Result<()> {
        let entries = self.menu_entries(item).await?;
        let Some((id, _)) = entries.iter().find(|(_, l)| l == label) else {
            bail!("no tray menu entry {label:?}; the menu has {entries:?}");
        };
        let menu = self.proxy(item, MENU, &self.menu_path(item).await?).await?;
        let timestamp = 0u32;
        menu.call_method("Event", &(*id, "clicked", Value::from(0i32), timestamp))
            .await
            .with_context(|| format!("clicking {label:?} in the tray menu"))?;
        Ok(())
    }

    async fn menu_path(&self, item: &TrayItem) -> Result<String> {
        let proxy = self.proxy(item, ITEM, &item.path).await?;
        let path: OwnedObjectPath = proxy.get_property("Menu").await.context("the item's Menu")?;
        Ok(path.to_string())
    }

    async fn menu_entries(&self, item: &TrayItem) -> Result<Vec<(i32, String)>> {
        let menu = self.proxy(item, MENU, &self.menu_path(item).await?).await?;
        let no_properties: Vec<String> = Vec::new();
        let reply = menu.call_method("GetLayout", &(0i32, -1i32, no_properties)).await?;
        let (_revision, layout): (u32, LayoutNode) =
            reply.body().deserialize().context("the tray menu's layout")?;
        let mut entries = Vec::new();
        for child in layout.2 {
            collect(&child, &mut entries)?;
        }
        Ok(entries)
    }
}

/// A dbusmenu layout node: id, properties, children (each a variant holding a node).
type LayoutNode = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);

/// Menu entries (id, label) in a `(ia{sv}av)` layout node, depth first.
fn collect(node: &Value<'_>, into: &mut Vec<(i32, String)>) -> Result<()> {
    let node = match node {
        Value::Value(inner) => inner.as_ref(),
        other => other,
    };
    let Value::Structure(fields) = node else { bail!("a menu node is not a structure: {node:?}") };
    let fields = fields.fields();
    let (Some(Value::I32(id)), Some(Value::Dict(properties))) = (fields.first(), fields.get(1))
    else {
        bail!("a menu node has no id and properties: {fields:?}");
    };
    let label: Option<String> = properties.get::<&str, String>(&"label").ok().flatten();
    if let Some(label) = label {
        // GTK mnemonics: "_Quit" is shown as "Quit".
        into.push((*id, label.replace('_', "")));
    }
    if let Some(Value::Array(children)) = fields.get(2) {
        for child in children.iter() {
            collect(child, into)?;
        }
    }
    Ok(())
}
