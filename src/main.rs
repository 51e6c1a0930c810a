use std::error::Error;
use std::process::ExitCode;

use clap::Parser;
use rivet::cli::{self, Cli, Command};
use rivet_devices::power::PowerEvent;

/// Exit status for bad host input (QEMU and clap use 2 too).
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    if let Some(t) = cli::translate_qemu(&args) {
        match t {
            Ok(a) => args = a,
            Err(msg) => return fail(&msg),
        }
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                let _ = e.print();
                return ExitCode::from(EXIT_USAGE);
            }
            // A value an option's parser refused: "--cpu rv64,zzz=on: Unknown CPU ...".
            if e.kind() == ErrorKind::ValueValidation {
                use clap::error::{ContextKind, ContextValue};
                let context = |k| match e.get(k) {
                    Some(ContextValue::String(s)) => Some(s.as_str()),
                    _ => None,
                };
                let arg = context(ContextKind::InvalidArg);
                let value = context(ContextKind::InvalidValue);
                if let (Some(arg), Some(value), Some(why)) = (arg, value, e.source()) {
                    let option = arg.split(' ').next().unwrap_or(arg);
                    return fail(&format!("{option} {value}: {why}"));
                }
            }
            // One line: clap's first line names the option at fault.
            let text = e.render().to_string();
            let line = text.lines().next().unwrap_or("invalid arguments");
            return fail(line.trim_start_matches("error: "));
        }
    };
    match cli.command {
        Command::Run(a) => match rivet::launch::run(*a) {
            Ok(event) => exit_for(event),
            Err(e) => fail(&e),
        },
        Command::Boot(a) => match rivet::launch::boot(a) {
            Ok(event) => exit_for(event),
            Err(e) => fail(&e),
        },
        Command::Image { command } => match rivet::launch::image(command) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("rivet: {msg}");
    ExitCode::from(EXIT_USAGE)
}

fn exit_for(event: PowerEvent) -> ExitCode {
    match event {
        PowerEvent::PowerOff | PowerEvent::Reboot => ExitCode::SUCCESS,
        PowerEvent::Fail(code) => ExitCode::from(code.clamp(1, 255) as u8),
    }
}
