//! The arguments of the helper verbs that need no store and no host: `next`, `new`,
//! `completions` and `man`.

use std::path::PathBuf;

use clap::Args;

/// `sandcron next`.
#[derive(Debug, Args)]
pub struct NextArgs {
    /// Cron expression (5 fields, 6 with leading seconds, 7 with trailing year), an
    /// `@descriptor` (`@daily`, `@hourly`, ...) or `@every 30s`.
    #[arg(value_name = "SPEC")]
    pub spec: String,
    /// IANA time zone the expression is read in [default: UTC].
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// Start after this instant (RFC 3339) [default: now].
    #[arg(long, value_name = "TIME")]
    pub after: Option<String>,
    /// How many fire times to print.
    #[arg(short = 'n', value_name = "N", default_value_t = 5)]
    pub count: usize,
    /// A local time skipped by a spring-forward change: `shift` (fire after the gap) or `skip`.
    #[arg(long, value_name = "RULE", default_value = "shift")]
    pub dst_gap: crate::schedule::DstGap,
    /// A local time repeated by a fall-back change: `first`, `last` or `both`.
    #[arg(long, value_name = "RULE", default_value = "first")]
    pub dst_fold: crate::schedule::DstFold,
}

/// `sandcron new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The job's name: lowercase letters, digits, `-` and `_`, starting with a letter.
    pub name: String,
    /// The job's language.
    #[arg(long, value_enum)]
    pub lang: Lang,
    /// The folder to create (it must not exist) [default: ./NAME].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Rust: the sandcron-guest SDK folder [default: guest-sdk/ of the source tree this
    /// binary was built from].
    #[arg(long, value_name = "DIR")]
    pub sdk_path: Option<PathBuf>,
}

/// The languages `sandcron new` scaffolds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust with the sandcron-guest SDK (a component).
    Rust,
    /// JavaScript via componentize-js, StarlingMonkey (a component; `fetch` for HTTP).
    Js,
    /// Python via componentize-py (a component).
    Python,
    /// C via clang, wit-bindgen c and the preview1 adapter (a component).
    C,
    /// Go as a WASI preview1 command.
    Go,
}

impl Lang {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Js => "js",
            Lang::Python => "python",
            Lang::C => "c",
            Lang::Go => "go",
        }
    }
}

/// `sandcron completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `sandcron man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `sandcron.1` and a `sandcron-VERB.1` per subcommand into this folder.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}
