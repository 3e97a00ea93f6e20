//! What the sources of the default chain share: where variables come from, the home
//! directory, and the endpoints.

use std::path::PathBuf;

use super::Lookup;
use super::imds::EcsRamRole;

/// What the chain's sources share: where variables come from, the home directory, and the
/// endpoints (overridable, so that tests run offline).
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) lookup: Lookup,
    pub(crate) home: Option<PathBuf>,
    pub(crate) sts_endpoint: Option<String>,
    pub(crate) metadata_endpoint: Option<String>,
}

impl Settings {
    pub(crate) fn lookup(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    /// The home directory: set explicitly, else `HOME` (`USERPROFILE` on Windows).
    pub(crate) fn home(&self) -> Result<PathBuf, String> {
        self.home
            .clone()
            .or_else(|| self.lookup("HOME").map(PathBuf::from))
            .or_else(|| self.lookup("USERPROFILE").map(PathBuf::from))
            .ok_or_else(|| "no home directory (HOME is not set)".to_owned())
    }

    pub(crate) fn ecs(&self) -> EcsRamRole {
        let ecs = EcsRamRole::from_lookup(&self.lookup);
        match &self.metadata_endpoint {
            Some(url) => ecs.metadata_endpoint(url.clone()),
            None => ecs,
        }
    }
}
