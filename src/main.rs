//! ferry's entry point: parse the command line, set up logging, hand over to the
//! library, and exit with the code it decides.

use clap::Parser;

fn main() {
    let cli = ferry::cli::Cli::parse();
    ferry::logging::init(cli.verbose, cli.quiet, cli.log_format);
    std::process::exit(ferry::commands::run(cli));
}
