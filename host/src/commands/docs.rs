//! `sandcron completions SHELL` and `sandcron man [--dir DIR]`: shell completions and man
//! pages generated from the clap definitions at run time, so they can never drift from the
//! flags the binary really takes. `scripts/install.sh` writes them where shells and `man`
//! look.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};

use super::Exit;

/// Prints the completion script for a shell.
pub fn completions(args: CompletionsArgs) -> Exit {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "sandcron", &mut std::io::stdout());
    Exit::Success
}

/// Prints the main page, or writes `sandcron.1` and one `sandcron-VERB.1` per subcommand.
pub fn man(args: ManArgs) -> Exit {
    let command = Cli::command();
    let written = match &args.dir {
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(command, dir))
            .map(|()| println!("wrote the man pages to {}", dir.display())),
        None => clap_mangen::Man::new(command).render(&mut std::io::stdout()),
    };
    match written {
        Ok(()) => Exit::Success,
        Err(err) => {
            let place = args.dir.as_ref().map_or("stdout".into(), |d| d.display().to_string());
            eprintln!("error: cannot write the man pages to {place}: {err}");
            Exit::HostError
        }
    }
}
