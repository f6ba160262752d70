//! The `kiln` command line. Exit status: 0 on success, 1 on a user error (reported as one line
//! `error: <file>: <cause>` on stderr), 2 on a usage error (clap's own report).

mod cli;

use clap::Parser;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = cli::dispatch(cli, &mut out).and_then(|()| Ok(out.flush()?));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`kiln inspect m.kir | head`) is not an error of ours.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", report(&e));
            ExitCode::from(1)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Formats an error and its causes as one line ([`kiln::error_line`], shared with the Python
/// package so both report the same message).
fn report(e: &anyhow::Error) -> String {
    kiln::error_line(e.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[derive(Debug, thiserror::Error)]
    #[error("m.kir: {source}")]
    struct Outer {
        source: Inner,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("3:7: unknown op `frob`")]
    struct Inner;

    #[test]
    fn causes_that_are_already_printed_are_not_repeated() {
        let e = anyhow::Error::new(Outer { source: Inner });
        assert_eq!(report(&e), "m.kir: 3:7: unknown op `frob`");
    }

    #[test]
    fn contexts_are_joined_on_one_line() {
        let r: Result<(), _> = Err(Inner);
        let e = r.context("m.kir").unwrap_err();
        assert_eq!(report(&e), "m.kir: 3:7: unknown op `frob`");
        let e = anyhow::anyhow!("first line\nsecond  line\n");
        assert_eq!(report(&e), "first line second line");
    }

    #[test]
    fn broken_pipes_are_recognised() {
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "closed");
        assert!(is_broken_pipe(&anyhow::Error::new(io).context("writing")));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }

    #[test]
    fn help_lists_every_subcommand() {
        use clap::CommandFactory;
        let help = cli::Cli::command().render_help().to_string();
        for sub in ["inspect", "run", "compile", "bench", "conformance"] {
            assert!(help.contains(sub), "{sub} missing from:\n{help}");
        }
    }

    #[test]
    fn the_contract_arguments_parse() {
        for line in [
            "kiln run m.kir --inputs i.npz --outputs o.npz -O0",
            "kiln run m.kir --inputs i.npz --outputs o.npz --backend cpu",
            "kiln inspect m.kir --stage optimized --format json",
            "kiln compile m.onnx -o m.kiln --target cuda",
            "kiln bench m.kiln --inputs i.npz --iters 5",
            "kiln conformance dir --backend reference",
        ] {
            let args = line.split(' ');
            assert!(cli::Cli::try_parse_from(args).is_ok(), "{line}");
        }
        assert!(cli::Cli::try_parse_from(["kiln", "run", "m.kir"]).is_err());
        assert!(cli::Cli::try_parse_from(["kiln", "inspect", "m.kir", "--format", "xml"]).is_err());
    }
}
