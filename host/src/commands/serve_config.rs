//! Parsing the command line with the host config file (`serve --config FILE`, or
//! `SANDCRON_CONFIG`): the file's keys become flags that neither the command line nor the
//! environment set (see `config/host_file.rs`), so clap applies one precedence everywhere:
//! command line > environment > file > default.
//!
//! Two passes: a lenient one (serve's required flags may come from the file) to find the
//! file and what is already set, then the real one with the file's flags appended.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{CommandFactory, Parser};

use crate::cli::Cli;
use crate::config::host_file;

use super::Exit;

/// The command line, completed by the host config file when `serve` names one. Exits the
/// process, as clap does, on a bad command line or config file.
pub fn parse(argv: Vec<OsString>) -> Cli {
    let lenient =
        Cli::command().mut_subcommand("serve", |serve| serve.mut_args(|a| a.required(false)));
    let Ok(matches) = lenient.try_get_matches_from(&argv) else {
        return Cli::parse_from(argv);
    };
    let Some(("serve", serve)) = matches.subcommand() else {
        return Cli::parse_from(argv);
    };
    let Some(path) = serve.get_one::<PathBuf>("config").cloned() else {
        return Cli::parse_from(argv);
    };
    let given = |id: &str| {
        matches!(serve.value_source(id), Some(ValueSource::CommandLine | ValueSource::EnvVariable))
    };
    match file_args(&path, &given) {
        Ok(extra) => Cli::parse_from(argv.into_iter().chain(extra)),
        Err(err) => {
            eprintln!("error: {err}");
            std::process::exit(Exit::InvalidInput as i32);
        }
    }
}

/// The flags the file at `path` adds.
fn file_args(
    path: &std::path::Path,
    given: &dyn Fn(&str) -> bool,
) -> Result<Vec<OsString>, crate::config::HostFileError> {
    let source = read(path)?;
    let mut cli = Cli::command();
    cli.build();
    let serve = cli.find_subcommand("serve").expect("serve is a subcommand");
    host_file::flag_args(serve, &source, path, given)
}

/// The host config file's text.
pub(crate) fn read(path: &std::path::Path) -> Result<String, crate::config::HostFileError> {
    std::fs::read_to_string(path).map_err(|source| crate::config::HostFileError::Read {
        what: "host config",
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;

    const EXAMPLE: &str = include_str!("../../../docs/sandcron.example.toml");

    fn serve_args(argv: &[&str]) -> crate::cli::ServeArgs {
        match parse(argv.iter().map(OsString::from).collect()).command {
            Command::Serve(args) => args,
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn command_line_beats_the_file_which_beats_the_default() {
        let dir =
            std::env::temp_dir().join(format!("sandcron-serve-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("sandcron.toml");
        std::fs::write(
            &file,
            "jobs = \"/srv/jobs\"\nworkers = 4\ngrace = \"3s\"\nno-pool = true\n",
        )
        .unwrap();
        let file = file.to_str().unwrap();
        let args = serve_args(&["sandcron", "serve", "--config", file, "--workers", "8"]);
        assert_eq!(args.workers, Some(8), "the command line wins");
        assert_eq!(args.grace.0, std::time::Duration::from_secs(3), "the file beats the default");
        assert_eq!(args.jobs, PathBuf::from("/srv/jobs"), "a required flag may come from the file");
        assert!(args.runtime.no_pool);
        assert_eq!(args.claim_ahead.0, std::time::Duration::from_millis(250), "default");
        let args = serve_args(&["sandcron", "serve", "--jobs", "/other"]);
        assert_eq!((args.workers, args.jobs), (None, PathBuf::from("/other")), "no file, no keys");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn the_example_file_is_valid_and_documents_every_flag() {
        let never = |_: &str| false;
        let mut cli = Cli::command();
        cli.build();
        let serve = cli.find_subcommand("serve").unwrap();
        let args = host_file::flag_args(serve, EXAMPLE, "sandcron.example.toml".as_ref(), &never)
            .unwrap_or_else(|err| panic!("{err}"));
        assert!(args.contains(&OsString::from("--jobs=/var/lib/sandcron/jobs")), "{args:?}");
        for arg in serve.get_arguments().filter(|arg| host_file::is_key(arg)) {
            let name = arg.get_long().unwrap();
            let documented = |key: &str| {
                EXAMPLE.contains(&format!("\n{key} =")) || EXAMPLE.contains(&format!("# {key} ="))
            };
            // `--T-k` may be documented as key `k` of a table `[T]`.
            let in_table = name.split_once('-').is_some_and(|(table, key)| {
                EXAMPLE.contains(&format!("\n[{table}]\n")) && documented(key)
            });
            assert!(
                documented(name) || in_table,
                "docs/sandcron.example.toml does not document `{name}`"
            );
        }
    }
}
