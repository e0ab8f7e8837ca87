//! The settings of one command, resolved once (ripgrep's low/high args): a flag wins over the same
//! `-o` option, which wins over the profile. The profile, the token store and the async runtime
//! are made on first use, so commands that need none of them (unmount, generate-docs) never load
//! a profile, and doctor can report a broken one as a check.

use std::cell::OnceCell;
use std::path::PathBuf;

use ssofs::config::{self, ConfigError, Overrides, Profile, Sources};
use ssofs::identity::{IdentityError, TokenStore};
use ssofs::mount::MountOptions;

use super::CliError;
use super::args::Cli;

pub struct Context {
    /// The `-o` options with the flags that name the same setting folded in: the resolved values.
    pub options: MountOptions,
    overrides: Overrides,
    profile: OnceCell<Profile>,
    store: OnceCell<TokenStore>,
    runtime: OnceCell<tokio::runtime::Runtime>,
}

impl Context {
    /// Resolves the flags of `cli` against the `-o` options the command was given.
    pub fn new(cli: &Cli, mut options: MountOptions) -> Self {
        let flags = &cli.overrides;
        // `--config` (or $SSOFS_CONFIG) over `-o config=` (fstab: mount's environment has neither).
        options.config = cli.config.clone().or(options.config);
        // `--profile` over `-o profile=` (fstab).
        options.profile = cli.profile.clone().or(options.profile);
        options.duration_seconds = flags.duration_seconds.or(options.duration_seconds);
        Context {
            options,
            overrides: flags.overrides(),
            profile: OnceCell::new(),
            store: OnceCell::new(),
            runtime: OnceCell::new(),
        }
    }

    /// The profile values given as flags (`ssofs init` writes them).
    pub fn overrides(&self) -> &Overrides {
        &self.overrides
    }

    /// Where configuration is read from.
    pub fn sources(&self) -> Sources {
        Sources::standard(self.options.config.clone())
    }

    /// The profile, with the command line's values and the `-o` options that override profile keys
    /// applied.
    pub fn profile(&self) -> Result<&Profile, ConfigError> {
        if let Some(profile) = self.profile.get() {
            return Ok(profile);
        }
        let mut profile = config::load_profile_with(&self.sources(), self.options.profile.as_deref(), &self.overrides)?;
        self.options.apply_to(&mut profile);
        Ok(self.profile.get_or_init(|| profile))
    }

    /// The token store's directory: `-o state_dir=` (fstab: root's mount may have no HOME), else
    /// `$SSOFS_STATE_DIR`, else the XDG state directory.
    pub fn state_dir(&self) -> Result<PathBuf, IdentityError> {
        match &self.options.state_dir {
            Some(dir) => Ok(dir.clone()),
            None => TokenStore::default_dir(),
        }
    }

    /// The token store, created (0700) when missing.
    pub fn store(&self) -> Result<&TokenStore, IdentityError> {
        if let Some(store) = self.store.get() {
            return Ok(store);
        }
        let store = TokenStore::open(&self.state_dir()?)?;
        Ok(self.store.get_or_init(|| store))
    }

    /// The command's async runtime (one per command).
    pub fn runtime(&self) -> Result<&tokio::runtime::Runtime, CliError> {
        if let Some(rt) = self.runtime.get() {
            return Ok(rt);
        }
        let rt = tokio::runtime::Runtime::new().map_err(CliError::Runtime)?;
        Ok(self.runtime.get_or_init(|| rt))
    }
}
