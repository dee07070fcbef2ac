//! `simcloud [ADDR]`: serve the simulated cloud (default 127.0.0.1:7412)
//! with a few cells in two regions, until interrupted.

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7412".into());
    let (local, cloud) = match simcloud::start(&addr).await {
        Ok(started) => started,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    for (name, region, load) in [
        ("eu-1", "eu", 40),
        ("eu-2", "eu", 10),
        ("eu-3", "eu", 25),
        ("us-1", "us", 5),
        ("us-2", "us", 30),
        ("ap-1", "ap", 0),
    ] {
        cloud.add_cell(name, region, 100, load);
    }
    println!("simcloud listening on http://{local}");
    let _ = tokio::signal::ctrl_c().await;
}
