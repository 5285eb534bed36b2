//! `berth-sftp-server`: the SFTP subsystem, run by the agent inside a container as an exec
//! process whose stdin and stdout are the SSH channel. No arguments, no config.

fn main() -> std::process::ExitCode {
    match berth_sftp::run_on_stdio() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-sftp-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
