use diesel::prelude::*;
use serde::Serialize;

use super::schema::device_instances;
use super::{Store, StoreError};

/// One device instance of a multi-device license.
#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = device_instances)]
pub struct DeviceInstance {
    #[serde(skip)]
    pub id: i64,
    pub serial_no: String,
    pub sequence_no: i32,
    pub device_type: i32,
    pub device_id: Option<String>,
    pub description: Option<String>,
    pub status: String,
    pub created_at: i64,
    pub activated_at: Option<i64>,
}

impl Store {
    pub fn list_device_instances(&self, serial: &str) -> Result<Vec<DeviceInstance>, StoreError> {
        let mut conn = self.conn()?;
        Ok(device_instances::table
            .filter(device_instances::serial_no.eq(serial))
            .order(device_instances::sequence_no)
            .select(DeviceInstance::as_select())
            .load(&mut conn)?)
    }
}
