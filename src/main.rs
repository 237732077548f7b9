//! ferry's entry point: parse the command line, set up logging, hand over to the
//! library, and exit with the code it decides.

use clap::Parser;

fn main() {
    let cli = match ferry::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() && json_logs_asked() => {
            // Logging is not set up yet, and a log shipper expects JSON on every line.
            let line = serde_json::json!({
                "timestamp": chrono::Utc::now().to_rfc3339(),
                "level": "ERROR",
                "event": "fatal",
                "exit_code": ferry::exit::Exit::NothingSent.code(),
                "message": e.render().to_string().trim_end(),
            });
            eprintln!("{line}");
            std::process::exit(ferry::exit::Exit::NothingSent.code());
        }
        Err(e) => e.exit(),
    };
    ferry::logging::init(cli.verbose, cli.quiet, cli.log_format);
    if ferry::logging::json() {
        // Even a bug's last words are one JSON line, so a log shipper keeps them.
        std::panic::set_hook(Box::new(|info| {
            let line = serde_json::json!({
                "timestamp": chrono::Utc::now().to_rfc3339(),
                "level": "ERROR",
                "event": "panic",
                "message": format!("internal error (please report it): {info}"),
            });
            eprintln!("{line}");
        }));
    }
    std::process::exit(ferry::commands::execute(cli));
}

/// `--log-format json` among the arguments, for errors found before they are parsed.
fn json_logs_asked() -> bool {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    args.iter().any(|a| a == "--log-format=json")
        || args
            .windows(2)
            .any(|w| w[0] == "--log-format" && w[1] == "json")
}
