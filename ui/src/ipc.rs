//! Calls into the desktop shell. Every command answers `T` or the shared `{code, message}`.

use iotchat_protocol::{Code, ErrorBody};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    // `app.withGlobalTauri` in tauri.conf.json exposes this; outside the app it throws.
    #[wasm_bindgen(catch, js_namespace = ["window", "__TAURI__", "core"], js_name = invoke)]
    async fn tauri_invoke(cmd: &str, args: JsValue) -> Result<JsValue, JsValue>;
}

/// Arguments of a command that takes none.
#[derive(Debug, Serialize)]
pub(crate) struct NoArgs {}

/// Invokes `cmd` with `args` (serialized as a plain object) and decodes the answer.
pub(crate) async fn invoke<T: DeserializeOwned>(
    cmd: &str,
    args: &impl Serialize,
) -> Result<T, ErrorBody> {
    let serializer = serde_wasm_bindgen::Serializer::json_compatible();
    let args = args.serialize(&serializer).map_err(|e| {
        ErrorBody::new(Code::Internal, format!("Could not encode the {cmd} request: {e}"))
    })?;
    match tauri_invoke(cmd, args).await {
        Ok(value) => serde_wasm_bindgen::from_value(value).map_err(|e| {
            ErrorBody::new(
                Code::Internal,
                format!("The app answered {cmd} in an unexpected shape: {e}"),
            )
        }),
        Err(error) => Err(serde_wasm_bindgen::from_value::<ErrorBody>(error.clone())
            .unwrap_or_else(|_| not_an_error_body(cmd, &error))),
    }
}

fn not_an_error_body(cmd: &str, error: &JsValue) -> ErrorBody {
    let detail = error
        .as_string()
        .or_else(|| js_sys::JSON::stringify(error).ok().and_then(|s| s.as_string()))
        .unwrap_or_else(|| "no details".to_owned());
    if js_sys::Reflect::get(&js_sys::global(), &"__TAURI__".into()).is_ok_and(|v| v.is_undefined())
    {
        return ErrorBody::new(
            Code::Unavailable,
            "This window is not connected to the IoT Chat app. Open it through the app, not a browser.",
        );
    }
    ErrorBody::new(Code::Internal, format!("The app could not run {cmd}: {detail}"))
}
