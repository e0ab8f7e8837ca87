//! A QR code of the sign-in URL, drawn with Unicode half blocks, so a phone can open it.

use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;

/// The QR code of `text` as terminal lines (dark modules drawn light-on-dark so it scans on both
/// terminal themes), or `None` when the text does not fit a QR code.
pub fn render(text: &str) -> Option<String> {
    let code = QrCode::new(text.as_bytes()).ok()?;
    Some(code.render::<Dense1x2>().dark_color(Dense1x2::Light).light_color(Dense1x2::Dark).quiet_zone(true).build())
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_a_url_as_block_characters() {
        let qr = super::render("https://microsoft.com/devicelogin").unwrap();
        assert!(qr.lines().count() > 10);
        assert!(qr.chars().any(|c| matches!(c, '█' | '▀' | '▄')));
    }
}
