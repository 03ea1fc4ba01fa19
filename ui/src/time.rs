//! Clock and calendar helpers in the viewer's local time zone (the webview knows it; Rust's std
//! on wasm does not).

use js_sys::Date;
use wasm_bindgen::JsValue;

const WEEKDAYS: [&str; 7] =
    ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn date(ms: u64) -> Date {
    // Millisecond timestamps stay below 2^53 for the next 285,000 years: exact in an f64.
    Date::new(&JsValue::from_f64(ms as f64))
}

/// Milliseconds since 1970, now.
pub(crate) fn now_ms() -> f64 {
    Date::now()
}

/// A number that is the same for two instants on the same local calendar day.
pub(crate) fn local_day(ms: u64) -> u32 {
    let d = date(ms);
    d.get_full_year() * 10_000 + d.get_month() * 100 + d.get_date()
}

fn name(names: &[&'static str], index: u32) -> &'static str {
    names.get(index as usize).copied().unwrap_or("")
}

/// `14:05`, as chat timelines show it.
pub(crate) fn clock(ms: u64) -> String {
    let d = date(ms);
    format!("{:02}:{:02}", d.get_hours(), d.get_minutes())
}

/// `Monday 3 March 2025 at 14:05:09`, for the tooltip over a message's time.
pub(crate) fn exact(ms: u64) -> String {
    let d = date(ms);
    format!(
        "{} {} {} {} at {:02}:{:02}:{:02}",
        name(&WEEKDAYS, d.get_day()),
        d.get_date(),
        name(&MONTHS, d.get_month()),
        d.get_full_year(),
        d.get_hours(),
        d.get_minutes(),
        d.get_seconds()
    )
}

/// `Today`, `Yesterday`, `Monday 3 March`, or with the year when it is not this one.
pub(crate) fn day_label(ms: u64) -> String {
    let now = now_ms();
    let today = local_day(now as u64);
    let day = local_day(ms);
    if day == today {
        return "Today".to_owned();
    }
    // A day is not always 24 hours (daylight saving), so step back from noon.
    let noon_yesterday = {
        let d = Date::new(&JsValue::from_f64(now));
        d.set_hours(12);
        d.get_time() - 86_400_000.0
    };
    if day == local_day(noon_yesterday as u64) {
        return "Yesterday".to_owned();
    }
    let d = date(ms);
    let this_year = Date::new(&JsValue::from_f64(now)).get_full_year();
    let base = format!(
        "{} {} {}",
        name(&WEEKDAYS, d.get_day()),
        d.get_date(),
        name(&MONTHS, d.get_month())
    );
    if d.get_full_year() == this_year { base } else { format!("{base} {}", d.get_full_year()) }
}
