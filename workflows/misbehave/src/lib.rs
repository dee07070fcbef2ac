//! Test workflow that misbehaves on request: spins, eats memory, panics.
use serde::Deserialize;
use weft_sdk::{Context, Error, Workflow};

#[derive(Deserialize)]
struct Input {
    r#do: String,
}

struct Misbehave;

impl Workflow for Misbehave {
    type Input = Input;
    type Output = u64;

    fn run(_ctx: &Context, input: Input) -> Result<u64, Error> {
        match input.r#do.as_str() {
            "spin" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
            }
            "hog" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("the workflow panicked on purpose"),
            "fail" => Err(Error::new("refused", "the workflow failed on purpose")),
            other => Err(Error::new(
                "bad-input",
                format!("unknown behaviour {other}"),
            )),
        }
    }
}

weft_sdk::workflow!(Misbehave);
