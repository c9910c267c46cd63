//! The domain's reachability check for pushes, answered by the backends.

use async_trait::async_trait;
use backends::{ConsoleOptions, ConsoleUri};
use console::{ConsoleProbe, Instance};

/// Probes an instance's console with [`backends::probe`].
#[derive(Debug, Clone, Default)]
pub struct BackendProbe {
    pub options: ConsoleOptions,
}

#[async_trait]
impl ConsoleProbe for BackendProbe {
    async fn probe(&self, instance: &Instance) -> Result<(), String> {
        let uri: ConsoleUri = instance
            .console
            .parse()
            .map_err(|e: backends::UriError| e.to_string())?;
        backends::probe(&uri, &self.options)
            .await
            .map_err(|e| e.to_string())
    }
}
