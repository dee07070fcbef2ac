//! The benchmark activity.
use weft_sdk::{ActivityContext, Error};

fn add_one(_ctx: &ActivityContext, n: u64) -> Result<u64, Error> {
    Ok(n + 1)
}

weft_sdk::activities! {
    "add-one" => add_one,
}
