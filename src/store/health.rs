//! The health check's write probe: one tiny write transaction, which fails while the store
//! cannot write (disk full, file system read-only, database gone).

use diesel::connection::SimpleConnection;

use super::{Store, StoreError};

impl Store {
    /// Rewrites the one row of `health_probe` in a write transaction of its own.
    pub fn write_probe(&self) -> Result<(), StoreError> {
        self.write_tx(|c| {
            c.batch_execute("UPDATE health_probe SET probes = probes + 1 WHERE id = 1")?;
            Ok(())
        })
    }
}
