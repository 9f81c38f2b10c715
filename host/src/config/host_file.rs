//! The host config file (`sandcron serve --config FILE`, or `SANDCRON_CONFIG`): TOML whose
//! keys are `serve`'s flags, turned into extra command-line arguments.
//!
//! Every flag is a key under its long name (`workers = 4`, `api = "127.0.0.1:7070"`,
//! `no-pool = true`, `api-host = ["a", "b"]`; `_` may stand for `-`), and a table `[T]`
//! with key `k` is the flag `--T-k` (`[api] idle-timeout = "10s"` is `--api-idle-timeout`).
//! The mapping is read from clap's `Command`, not from a list kept here, so a flag added to
//! `serve` is a config key at once. Tables named in [`RESERVED`] (`[notify]`) are settings
//! of their own, read by their module from the same text.
//!
//! # Design decision
//! A key becomes `--flag=value` appended to the command line, but only for a flag the
//! command line and the environment left alone: the precedence command line > environment
//! > file > default is clap's own. Each value is checked with the flag's own value parser
//! > here, so a bad value is reported at its line and column in the file, not as a flag.

use std::ffi::OsString;
use std::path::Path;

use clap::{Arg, ArgAction};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::HostFileError;

/// Top-level tables that are not flags: each is read by its own module.
pub const RESERVED: &[&str] = &["notify"];

/// Flags that are no config keys: clap's own, and the file itself.
/// `--api-fd` names a descriptor of this process's start (a parent's bound socket), not a
/// setting a file could hold.
const NOT_KEYS: &[&str] = &["help", "version", "config", "api_fd"];

/// Whether a flag of `serve` is a config key (clap's own flags and `--config` are not).
pub fn is_key(arg: &Arg) -> bool {
    arg.get_long().is_some() && !NOT_KEYS.contains(&arg.get_id().as_str())
}

/// The arguments `source` (the file at `path`) adds to `command` (a built `serve`), for
/// every flag `given(id)` says the command line or environment did not set.
pub fn flag_args(
    command: &clap::Command,
    source: &str,
    path: &Path,
    given: &dyn Fn(&str) -> bool,
) -> Result<Vec<OsString>, HostFileError> {
    let table =
        DeTable::parse(source).map_err(|err| HostFileError::from_toml(path, source, &err))?;
    let mut walk = Walk { command, source, path, given, args: Vec::new(), seen: Vec::new() };
    walk.table("", table.get_ref())?;
    Ok(walk.args)
}

struct Walk<'a> {
    command: &'a clap::Command,
    source: &'a str,
    path: &'a Path,
    given: &'a dyn Fn(&str) -> bool,
    args: Vec<OsString>,
    /// Flags set so far: `workers` and `[x]`-less `api_max_connections` vs `[api]
    /// max-connections` must not both set one.
    seen: Vec<String>,
}

impl Walk<'_> {
    fn error(&self, offset: usize, message: String) -> HostFileError {
        HostFileError::at(self.path, self.source, offset, message)
    }

    fn table(&mut self, prefix: &str, table: &DeTable<'_>) -> Result<(), HostFileError> {
        for (key, value) in table {
            let name = format!("{prefix}{}", key.get_ref().replace('_', "-"));
            if prefix.is_empty() && RESERVED.contains(&name.as_str()) {
                continue;
            }
            if let DeValue::Table(inner) = value.get_ref() {
                self.table(&format!("{name}-"), inner)?;
                continue;
            }
            let at = key.span().start;
            let arg = self
                .command
                .get_arguments()
                .find(|arg| is_key(arg) && arg.get_long() == Some(name.as_str()))
                .ok_or_else(|| {
                    self.error(
                        at,
                        format!(
                            "unknown key `{name}`: not a flag of `sandcron serve` (see `sandcron \
                             serve --help`; tables `[T]` hold the flags `--T-...`)"
                        ),
                    )
                })?;
            if self.seen.contains(&name) {
                return Err(self.error(at, format!("`{name}` is set twice")));
            }
            self.seen.push(name.clone());
            if (self.given)(arg.get_id().as_str()) {
                continue; // the command line or the environment wins
            }
            self.value(&name, arg, value)?;
        }
        Ok(())
    }

    fn value(
        &mut self,
        name: &str,
        arg: &Arg,
        value: &Spanned<DeValue<'_>>,
    ) -> Result<(), HostFileError> {
        let at = value.span().start;
        match (arg.get_action(), value.get_ref()) {
            (ArgAction::SetTrue | ArgAction::SetFalse, DeValue::Boolean(on)) => {
                let set = matches!(arg.get_action(), ArgAction::SetTrue) == *on;
                if set {
                    self.args.push(format!("--{name}").into());
                }
                Ok(())
            }
            (ArgAction::SetTrue | ArgAction::SetFalse, other) => Err(self.error(
                at,
                format!("`{name}` is a switch: expected true or false, found {}", other.type_str()),
            )),
            (ArgAction::Append, DeValue::Array(items)) => {
                for item in items.iter() {
                    self.scalar(name, arg, item)?;
                }
                Ok(())
            }
            (_, DeValue::Array(_)) => {
                Err(self.error(at, format!("`{name}` takes one value, found an array")))
            }
            _ => self.scalar(name, arg, value),
        }
    }

    fn scalar(
        &mut self,
        name: &str,
        arg: &Arg,
        value: &Spanned<DeValue<'_>>,
    ) -> Result<(), HostFileError> {
        let at = value.span().start;
        let text = match value.get_ref() {
            DeValue::String(text) => text.to_string(),
            DeValue::Integer(int) => i64::from_str_radix(int.as_str(), int.radix())
                .map_err(|err| self.error(at, format!("`{name}`: {err}")))?
                .to_string(),
            DeValue::Float(float) => float.as_str().to_string(),
            other => {
                return Err(self.error(
                    at,
                    format!("`{name}` expects a string or number, found {}", other.type_str()),
                ));
            }
        };
        check_value(arg, &text)
            .map_err(|message| self.error(at, format!("`{name}`: {message}")))?;
        self.args.push(format!("--{name}={text}").into());
        Ok(())
    }
}

/// Runs the flag's own value parser (a one-flag command: clap's parsers are not public).
fn check_value(arg: &Arg, text: &str) -> Result<(), String> {
    let probe = clap::Command::new("config")
        .no_binary_name(true)
        .disable_help_flag(true)
        .arg(arg.clone().required(false).env(None::<&str>));
    let long = arg.get_long().unwrap_or_default();
    match probe.try_get_matches_from([format!("--{long}={text}")]) {
        Ok(_) => Ok(()),
        Err(err) => {
            let shown = err.to_string();
            let first = shown.lines().next().unwrap_or_default();
            Err(first.trim_start_matches("error: ").to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn serve() -> clap::Command {
        let mut cli = crate::cli::Cli::command();
        cli.build();
        cli.find_subcommand("serve").expect("serve").clone()
    }

    fn args(text: &str, given: &[&str]) -> Result<Vec<String>, String> {
        let given = |id: &str| given.contains(&id);
        flag_args(&serve(), text, Path::new("/etc/sandcron/sandcron.toml"), &given)
            .map(|args| args.into_iter().map(|a| a.into_string().unwrap()).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn keys_are_flags_and_tables_are_prefixes() {
        let args = args(
            "jobs = \"/srv/jobs\"\nworkers = 4\nno_pool = true\nno-cache = false\n\
             api-host = [\"a.example\", \"b.example\"]\n[api]\nidle-timeout = \"5s\"\n\
             max_connections = 64\n[notify]\nanything = \"is the notify module's\"\n",
            &[],
        )
        .unwrap();
        let mut args = args;
        args.sort();
        assert_eq!(
            args,
            [
                "--api-host=a.example",
                "--api-host=b.example",
                "--api-idle-timeout=5s",
                "--api-max-connections=64",
                "--jobs=/srv/jobs",
                "--no-pool",
                "--workers=4",
            ]
        );
    }

    #[test]
    fn flags_given_on_the_command_line_or_env_are_left_alone() {
        let args = args("workers = 4\ngrace = \"3s\"\n", &["workers"]).unwrap();
        assert_eq!(args, ["--grace=3s"]);
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_file_line_column_and_key() {
        let err = args("workers = 4\n\nworkres = 4\n", &[]).unwrap_err();
        assert!(err.starts_with("/etc/sandcron/sandcron.toml:3:1: unknown key `workres`"), "{err}");
        let err = args("[api]\nidle = \"5s\"\n", &[]).unwrap_err();
        assert!(
            err.starts_with("/etc/sandcron/sandcron.toml:2:1: unknown key `api-idle`"),
            "{err}"
        );
        let err = args("workers = \"four\"\n", &[]).unwrap_err();
        assert!(
            err.starts_with("/etc/sandcron/sandcron.toml:1:11: `workers`: invalid value 'four'"),
            "{err}"
        );
        let err = args("no-pool = \"yes\"\n", &[]).unwrap_err();
        assert!(
            err.contains("1:11: `no-pool` is a switch: expected true or false, found string"),
            "{err}"
        );
        let err = args("grace = [\"1s\"]\n", &[]).unwrap_err();
        assert!(err.contains("1:9: `grace` takes one value, found an array"), "{err}");
        let err = args("workers = 4\nworkers = 5\n", &[]).unwrap_err();
        assert!(err.starts_with("/etc/sandcron/sandcron.toml:2:1:"), "{err}");
        let err = args("help = true\n", &[]).unwrap_err();
        assert!(err.contains("unknown key `help`"), "{err}");
        let err = args("api = 2026-01-01T00:00:00Z\n", &[]).unwrap_err();
        assert!(err.contains("`api` expects a string or number, found datetime"), "{err}");
    }
}
