//! QR codes of provisioning links (spec section 3.4): SVG for the API, Unicode half blocks
//! for `provd hermod qr`. Error correction M, quiet zone 4 modules.

use qrcode::render::{svg, unicode};
use qrcode::{EcLevel, QrCode};

use super::error::ApiError;

fn code(uri: &str) -> Result<QrCode, ApiError> {
    QrCode::with_error_correction_level(uri.as_bytes(), EcLevel::M)
        .map_err(|e| ApiError::new(500, "internal_error", format!("QR code: {e}")))
}

pub fn svg(uri: &str) -> Result<String, ApiError> {
    Ok(code(uri)?
        .render::<svg::Color>()
        .quiet_zone(true)
        .min_dimensions(200, 200)
        .build())
}

pub fn terminal(uri: &str) -> Result<String, ApiError> {
    Ok(code(uri)?
        .render::<unicode::Dense1x2>()
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    #[test]
    fn links_render() {
        let uri =
            "com.nexusgroup.pluginout:///url=https%3A%2F%2Fa%2Fhermod%2Frest%2Fms%2Fb&token=c";
        let s = super::svg(uri).unwrap();
        assert!(s.starts_with("<?xml") && s.contains("<svg"), "{s}");
        assert!(super::terminal(uri).unwrap().contains('█'));
    }
}
