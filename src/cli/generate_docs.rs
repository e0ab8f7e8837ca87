//! `ssofs generate-docs DIR` (hidden, for packaging): man pages and shell completions, rendered
//! from the same clap command as `--help`, so they never drift from it.

use std::path::Path;

use super::CliError;
use super::args::GenerateDocsArgs;

/// Man pages for `ssofs` and each visible subcommand, and bash/zsh/fish completions.
pub fn run(args: &GenerateDocsArgs) -> Result<(), CliError> {
    let man = args.dir.join("man1");
    let completions = args.dir.join("completions");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CliError::Write { path, source }
    };
    std::fs::create_dir_all(&man).map_err(io(&man))?;
    std::fs::create_dir_all(&completions).map_err(io(&completions))?;
    let cmd = super::command();
    let mut pages = vec![("ssofs".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("ssofs-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().display_name(name.clone()).bin_name(name)));
    }
    for (name, page) in pages {
        let path = man.join(format!("{name}.1"));
        let mut out = Vec::new();
        clap_mangen::Man::new(page).render(&mut out).map_err(io(&path))?;
        std::fs::write(&path, out).map_err(io(&path))?;
    }
    for (shell, file) in [
        (clap_complete::Shell::Bash, "ssofs.bash"),
        (clap_complete::Shell::Zsh, "_ssofs"),
        (clap_complete::Shell::Fish, "ssofs.fish"),
    ] {
        let path = completions.join(file);
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut super::command(), "ssofs", &mut out);
        std::fs::write(&path, out).map_err(io(&path))?;
    }
    Ok(())
}
