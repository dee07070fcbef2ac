//! Activities for the `hello` workflow.
use weft_sdk::{ActivityContext, Error};

fn greet(_ctx: &ActivityContext, name: String) -> Result<String, Error> {
    if name.is_empty() {
        return Err(Error::new("invalid", "a greeting needs a name"));
    }
    Ok(format!("Hello, {name}!"))
}

weft_sdk::activities! {
    "greet" => greet,
}
