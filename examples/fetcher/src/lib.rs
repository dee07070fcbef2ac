//! An activity that fetches a URL over wasi:http (allow-listed hosts only).
use serde_json::{Value, json};
use weft_sdk::{ActivityContext, Error};

fn get(_ctx: &ActivityContext, url: String) -> Result<Value, Error> {
    let response = weft_sdk::http::get(&url)?;
    Ok(json!({ "status": response.status, "body": response.text() }))
}

weft_sdk::activities! {
    "get" => get,
}
