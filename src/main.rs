use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    chipin::cli::Cli::parse().run().await
}
