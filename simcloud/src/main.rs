//! `simcloud [ADDR] [--failure-rate R] [--latency-ms MS] [--cert-delay-ms MS]
//! [--dns-delay-ms MS]`: serve the simulated cloud (default 127.0.0.1:7412)
//! with a few cells in three regions, until interrupted. Faults can also be
//! changed at run time: `PUT /admin/faults`.

use simcloud::Faults;

fn parse(args: &[String]) -> Result<(String, Faults), String> {
    let mut addr = "127.0.0.1:7412".to_string();
    let mut faults = Faults::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{arg} needs a value"))
                .cloned()
        };
        let number = |v: String| {
            v.parse::<f64>()
                .map_err(|_| format!("{arg}: not a number: {v}"))
        };
        match arg.as_str() {
            "--failure-rate" => faults.failure_rate = number(value()?)?,
            "--latency-ms" => faults.latency_ms = number(value()?)? as u64,
            "--cert-delay-ms" => faults.cert_delay_ms = number(value()?)? as u64,
            "--dns-delay-ms" => faults.dns_delay_ms = number(value()?)? as u64,
            other if !other.starts_with('-') => addr = other.to_string(),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok((addr, faults))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (addr, faults) = parse(&args).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2);
    });
    let (local, cloud) = simcloud::start(&addr).await.unwrap_or_else(|e| {
        eprintln!("error: cannot listen on {addr}: {e}");
        std::process::exit(1);
    });
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
    cloud.set_faults(faults);
    println!("simcloud listening on http://{local}");
    let _ = tokio::signal::ctrl_c().await;
}
