//! `e2b`: the command line for the Monitron → Advanced Event Mesh → S/4HANA integration.

fn main() -> std::process::ExitCode {
    e2b::cli::main()
}
