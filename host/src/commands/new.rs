//! `sandcron new NAME --lang rust|js|python|c|go`: scaffold a buildable job (F5).
//!
//! A scaffold is a folder with the job's source, its manifest, `build.sh`, a README and,
//! for the component languages, `wit/job.wit`. The design decision: **the examples are the
//! templates**. Each language's source, manifest and build script are the files of an
//! example (`examples/http-rust`, `http-js`, `http-python`, `hello-c`, `hello-go`), embedded
//! with `include_str!` and renamed (the example's name becomes NAME), so a template cannot
//! drift from code the test suite builds and runs. Only what an example inside the workspace
//! does not need lives in `host/templates/`: the README and the Rust crate's standalone
//! `Cargo.toml` and `build.sh`.
//!
//! The Rust, JavaScript and Python templates call an HTTP endpoint, `[config] url`, which
//! their manifest grants in `[capabilities] allowed_hosts`. C and Go keep their hello
//! templates: neither has a wasi:http client here (`docs/languages.md` says what is missing).
//!
//! The Rust scaffold depends on the `sandcron-guest` SDK by path (it is not on crates.io):
//! `--sdk-path`, or by default the `guest-sdk/` of the source tree this binary was built
//! from, when it still exists.

use std::path::{Path, PathBuf};

use crate::cli::{Lang, NewArgs};

use super::Exit;

/// The WIT package a component scaffold builds against: the repo's own.
const JOB_WIT: &str = include_str!("../../../wit/job.wit");
/// The README every scaffold gets, filled from [`Template`].
const README: &str = include_str!("../../templates/README.md");

/// One language's files and words.
struct Template {
    /// The example whose files are copied: every `example` in a path or text becomes NAME.
    example: &'static str,
    /// Relative path (with `example` in it) and contents.
    files: &'static [(&'static str, &'static str)],
    /// Whether the scaffold needs `wit/job.wit` beside its build script.
    needs_wit: bool,
    language: &'static str,
    shape: &'static str,
    tools: &'static str,
}

macro_rules! example {
    ($path:literal) => {
        ($path, include_str!(concat!("../../../examples/", $path)))
    };
}

fn template(lang: Lang) -> Template {
    const TOOLCHAINS: &str = "`scripts/lang-toolchains.sh` in the sandcron repository installs \
                              them; then `source target/toolchains/env.sh`.";
    match lang {
        Lang::Rust => Template {
            example: "http-rust",
            files: &[
                example!("http-rust/src/lib.rs"),
                example!("http-rust/http-rust.toml"),
                ("http-rust/Cargo.toml", include_str!("../../templates/rust/Cargo.toml")),
                ("http-rust/build.sh", include_str!("../../templates/rust/build.sh")),
            ],
            needs_wit: false,
            language: "Rust",
            shape: "It implements the `sandcron:job/job` world through the `sandcron-guest` SDK \
                    and calls `[config] url` with `sandcron_guest::http::get`.",
            tools: "cargo and the `wasm32-wasip2` target (`rustup target add wasm32-wasip2`).",
        },
        Lang::Js => Template {
            example: "http-js",
            files: &[
                example!("http-js/http-js.js"),
                example!("http-js/http-js.toml"),
                example!("http-js/build.sh"),
                example!("http-js/componentize-starlingmonkey.mjs"),
            ],
            needs_wit: true,
            language: "JavaScript",
            shape: "It implements the `sandcron:job/job` world on the StarlingMonkey engine \
                    (componentize-js), whose `fetch` calls `[config] url` over wasi:http.",
            tools: TOOLCHAINS,
        },
        Lang::Python => Template {
            example: "http-python",
            files: &[
                example!("http-python/app.py"),
                example!("http-python/blocking_http.py"),
                example!("http-python/http-python.toml"),
                example!("http-python/build.sh"),
                example!("http-python/wit/job-http.wit"),
                example!("http-python/wit/deps/cli.wit"),
                example!("http-python/wit/deps/clocks.wit"),
                example!("http-python/wit/deps/filesystem.wit"),
                example!("http-python/wit/deps/http.wit"),
                example!("http-python/wit/deps/io.wit"),
                example!("http-python/wit/deps/random.wit"),
                example!("http-python/wit/deps/sockets.wit"),
            ],
            needs_wit: true,
            language: "Python",
            shape: "It implements the `job-http` world (`wit/job-http.wit`: the `sandcron:job` \
                    world plus wasi:http/outgoing-handler) through componentize-py and calls \
                    `[config] url` over wasi:http.",
            tools: TOOLCHAINS,
        },
        Lang::C => Template {
            example: "hello-c",
            files: &[
                example!("hello-c/hello-c.c"),
                example!("hello-c/hello-c.toml"),
                example!("hello-c/build.sh"),
            ],
            needs_wit: true,
            language: "C",
            shape: "It implements the `sandcron:job/job` world through bindings that \
                    `wit-bindgen c` generates at build time.",
            tools: TOOLCHAINS,
        },
        Lang::Go => Template {
            example: "hello-go",
            files: &[
                example!("hello-go/main.go"),
                example!("hello-go/go.mod"),
                example!("hello-go/hello-go.toml"),
                example!("hello-go/build.sh"),
            ],
            needs_wit: false,
            language: "Go",
            shape: "It is a WASI command (exit code 0 is success): it gets `[config]` as \
                    `SANDCRON_CONFIG_<KEY>` variables and the payload on stdin; per-job state is \
                    not available to commands.",
            tools: TOOLCHAINS,
        },
    }
}

/// Why a scaffold was not made.
#[derive(Debug, thiserror::Error)]
pub enum NewError {
    /// The name is not a job name.
    #[error(
        "invalid job name {0:?}: use lowercase letters, digits, `-` and `_`, starting with a \
         letter (at most 64 characters)"
    )]
    InvalidName(String),
    /// The target folder exists: nothing is overwritten.
    #[error("{0} already exists; choose another name or --dir (nothing was written)")]
    Exists(PathBuf),
    /// No SDK folder for a Rust scaffold.
    #[error(
        "the Rust scaffold needs the sandcron-guest SDK: pass --sdk-path DIR (the guest-sdk \
         folder of a sandcron checkout); {0} does not exist"
    )]
    SdkNotFound(PathBuf),
    /// Writing the files failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder being written.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// Scaffolds the job; returns the process exit code.
pub fn main(args: NewArgs) -> Exit {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    match scaffold(&args, &dir) {
        Ok(files) => {
            println!("created {} ({} job) with:", dir.display(), args.lang.name());
            for file in files {
                println!("  {file}");
            }
            println!(
                "next: cd {} && bash build.sh && sandcron run {}.wasm",
                dir.display(),
                args.name
            );
            Exit::Success
        }
        Err(err @ NewError::Io { .. }) => {
            eprintln!("error: {err}");
            Exit::HostError
        }
        Err(err) => {
            eprintln!("error: {err}");
            Exit::InvalidInput
        }
    }
}

/// Writes the scaffold into `dir` (which must not exist); returns the files written.
pub fn scaffold(args: &NewArgs, dir: &Path) -> Result<Vec<String>, NewError> {
    let name = args.name.as_str();
    if !is_job_name(name) {
        return Err(NewError::InvalidName(name.to_string()));
    }
    let template = template(args.lang);
    let sdk = match args.lang {
        Lang::Rust => Some(sdk_path(args.sdk_path.as_deref())?),
        _ => None,
    };
    let mut files: Vec<(String, String)> = template
        .files
        .iter()
        .map(|(path, text)| {
            let text = text
                .replace(template.example, name)
                .replace("{{name}}", name)
                .replace("{{crate}}", &name.replace('-', "_"))
                .replace(
                    "{{sdk}}",
                    &sdk.as_ref().map_or(String::new(), |p| p.display().to_string()),
                );
            let relative = path.split_once('/').map_or(*path, |(_, rest)| rest);
            (relative.replace(template.example, name), text)
        })
        .collect();
    if template.needs_wit {
        files.push(("wit/job.wit".to_string(), JOB_WIT.to_string()));
    }
    let readme = README
        .replace("{{name}}", name)
        .replace("{{lang}}", args.lang.name())
        .replace("{{language}}", template.language)
        .replace("{{shape}}", template.shape)
        .replace("{{tools}}", template.tools);
    files.push(("README.md".to_string(), readme));

    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| NewError::Io { path, source }
    };
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    // `create_dir`, not `create_dir_all`: an existing folder is refused, never merged into.
    match std::fs::create_dir(dir) {
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(NewError::Exists(dir.to_path_buf()));
        }
        result => result.map_err(io(dir))?,
    }
    let mut written = Vec::new();
    for (relative, text) in files {
        let target = dir.join(&relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&target, text).map_err(io(&target))?;
        if relative.ends_with(".sh") {
            make_executable(&target).map_err(io(&target))?;
        }
        written.push(relative);
    }
    Ok(written)
}

/// A job name: what the manifest stem, a crate and a Go module can all be.
fn is_job_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// The SDK folder for a Rust scaffold, absolute so the scaffold can live anywhere.
fn sdk_path(given: Option<&Path>) -> Result<PathBuf, NewError> {
    let path = given.map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk"),
        Path::to_path_buf,
    );
    std::fs::canonicalize(&path)
        .ok()
        .filter(|p| p.join("Cargo.toml").is_file())
        .ok_or(NewError::SdkNotFound(path))
}

fn make_executable(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_are_lowercase_words() {
        for good in ["backup", "db-vacuum", "report_2", "a"] {
            assert!(is_job_name(good), "{good}");
        }
        for bad in ["", "Backup", "2fast", "-x", "a b", "../x", "x.y", &"a".repeat(65)] {
            assert!(!is_job_name(bad), "{bad}");
        }
    }

    #[test]
    fn every_template_renames_its_example_everywhere() {
        for lang in [Lang::Rust, Lang::Js, Lang::Python, Lang::C, Lang::Go] {
            let template = template(lang);
            assert!(template.files.iter().any(|(path, _)| path.ends_with(".toml")), "{lang:?}");
            assert!(template.files.iter().all(|(path, _)| path.starts_with(template.example)));
        }
    }

    #[test]
    fn http_templates_grant_the_url_they_call() {
        for lang in [Lang::Rust, Lang::Js, Lang::Python] {
            let template = template(lang);
            let (_, text) =
                template.files.iter().find(|(path, _)| path.ends_with(".toml")).unwrap();
            let manifest: toml::Table = text.parse().expect("the template's manifest is TOML");
            let url = manifest["config"]["url"].as_str().expect("[config] url");
            let granted = manifest["capabilities"]["allowed_hosts"].as_array().expect("a grant");
            assert!(
                granted
                    .iter()
                    .filter_map(|h| h.as_str())
                    .any(|h| url.starts_with(&format!("{h}/"))),
                "{lang:?}: {url} is not in allowed_hosts {granted:?}"
            );
        }
    }

    /// The Python scaffold builds against its own `wit/` (the job-http world and the WASI
    /// packages): every file of the example's folder must be in the template.
    #[test]
    fn python_template_carries_every_wit_file_of_its_example() {
        let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/http-python/wit");
        let mut on_disk = Vec::new();
        for dir in [wit.clone(), wit.join("deps")] {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_file() && path.file_name() != Some("job.wit".as_ref()) {
                    let relative = path.strip_prefix(&wit).unwrap().to_str().unwrap();
                    on_disk.push(format!("http-python/wit/{relative}"));
                }
            }
        }
        on_disk.sort();
        let mut templated: Vec<String> = template(Lang::Python)
            .files
            .iter()
            .map(|(path, _)| path.to_string())
            .filter(|path| path.starts_with("http-python/wit/"))
            .collect();
        templated.sort();
        assert_eq!(templated, on_disk);
    }
}
