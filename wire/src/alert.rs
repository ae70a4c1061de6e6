//! Alerts (RFC 8446 §6, RFC 5246 §7.2).

use crate::codepoints::{AlertDescription, AlertLevel};
use crate::error::DecodeError;
use crate::reader::Reader;

/// A cleartext alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Alert {
    pub level: AlertLevel,
    pub description: AlertDescription,
}

impl Alert {
    pub fn fatal(description: AlertDescription) -> Self {
        Self {
            level: AlertLevel::FATAL,
            description,
        }
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let level = AlertLevel(r.u8("alert.level")?);
        let description = AlertDescription(r.u8("alert.description")?);
        Ok(Self { level, description })
    }

    pub fn to_bytes(self) -> [u8; 2] {
        [self.level.0, self.description.0]
    }
}

impl std::fmt::Display for Alert {
    /// `handshake_failure(40)`, the form failure details use.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.description.name() {
            Some(n) => write!(f, "{n}({})", self.description.0),
            None => write!(f, "unknown({})", self.description.0),
        }
    }
}
