use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = provd::cli::Cli::parse();
    match provd::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("provd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
