//! Builds one reference guest and prints where it is:
//! `cargo run -p rivet-images --example build_guest -- nested`.

fn main() {
    let scenario = std::env::args().nth(1).unwrap_or_else(|| "boot".into());
    let scenario: rivet_images::Scenario = match scenario.parse() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let opts = rivet_images::BuildOptions {
        progress: true,
        ..Default::default()
    };
    let t = std::time::Instant::now();
    match rivet_images::build(scenario, &opts) {
        Ok(g) => println!("{g:#?}\nbuilt in {:.1?}", t.elapsed()),
        Err(e) => {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            eprintln!("Error: {msg}");
            std::process::exit(1);
        }
    }
}
