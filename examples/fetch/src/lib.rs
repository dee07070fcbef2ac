//! Fetches each URL through the `fetcher` activity; reports each outcome.
use serde_json::{Value, json};
use weft_sdk::{Context, Error, RetryPolicy, Workflow};

struct Fetch;

impl Workflow for Fetch {
    type Input = Vec<String>;
    type Output = Vec<Value>;

    fn run(ctx: &Context, urls: Vec<String>) -> Result<Vec<Value>, Error> {
        Ok(urls
            .iter()
            .map(|url| {
                match ctx
                    .activity("fetcher/get")
                    .input(url)
                    .retry(RetryPolicy::default().max_attempts(2))
                    .call::<Value>()
                {
                    Ok(v) => v,
                    Err(e) => {
                        let e = e.root_cause();
                        json!({ "err": e.kind, "message": e.message })
                    }
                }
            })
            .collect())
    }
}

weft_sdk::workflow!(Fetch);
