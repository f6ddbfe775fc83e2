//! Wire fidelity over HTTP (SQLite and PostgreSQL): request encodings (UTF-8 with and without
//! BOM, UTF-16 with BOM, ISO-8859-1 / Windows-1252 declared in the XML declaration or the
//! Content-Type charset), masked secret attributes and typed empty structural elements.

use crate::common::{backends, cli, element, seeded, TestServer};

const USER: &str = "jürgen";
const PASSWORD: &str = "Pässwort.1€";

fn register(user: &str, password: &str, decl: &str) -> String {
    format!(
        r#"{decl}<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:PROV-TYPES="http://www.vasco.com/IdentikeyServer/IdentikeyTypes/Provisioning"><SOAP-ENV:Body><PROV-TYPES:provisioningExecute><cmd>PROVISIONCMD_REGISTER</cmd><attributeSet><attributes><value xsi:type="xsd:string">{user}</value><attributeID>PROVFLD_USERID</attributeID></attributes><attributes><value xsi:type="xsd:string">{password}</value><attributeID>PROVFLD_STATIC_PASSWORD</attributeID></attributes></attributeSet></PROV-TYPES:provisioningExecute></SOAP-ENV:Body></SOAP-ENV:Envelope>"#
    )
}

fn post_bytes(server: &TestServer, body: &[u8], content_type: &str) -> (u16, String) {
    let (status, resp) = match ureq::post(&server.base)
        .set("Content-Type", content_type)
        .send_bytes(body)
    {
        Ok(r) => (r.status(), r),
        Err(ureq::Error::Status(code, r)) => (code, r),
        Err(e) => panic!("POST: {e}"),
    };
    (status, resp.into_string().unwrap())
}

/// Windows-1252 bytes of `s` (every character here is in that code page).
fn cp1252(s: &str) -> Vec<u8> {
    let (bytes, _, bad) = encoding_rs::WINDOWS_1252.encode(s);
    assert!(!bad);
    bytes.into_owned()
}

fn assert_registered(backend: &impl std::fmt::Debug, what: &str, (status, body): (u16, String)) {
    assert_eq!(status, 200, "{backend:?} {what}: {body}");
    assert_eq!(
        element(&body, "statusCodeEnum"),
        Some("STAT_SUCCESS"),
        "{backend:?} {what}: {body}"
    );
    // The response is UTF-8 and carries the user id as decoded.
    assert!(body.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?>"#));
    assert!(
        body.contains(&format!(r#"<value xsi:type="xsd:string">{USER}</value>"#)),
        "{backend:?} {what}: {body}"
    );
    // The activation code is masked, the serial number is not; the empty errorStack is typed.
    assert!(body.contains(
        "<attributeOptions><masked>true</masked></attributeOptions><value xsi:type=\"xsd:string\">"
    ));
    assert_eq!(body.matches("<masked>true</masked>").count(), 2, "{body}");
    assert!(body.contains(r#"<errorStack xsi:type="BASIC-TYPES:ErrorStack"/>"#));
}

#[test]
fn requests_in_every_accepted_encoding_register_the_same_user() {
    for backend in backends() {
        let db = seeded(backend, 2);
        cli(
            &db,
            &["user", "add", "--user", USER, "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        );
        let server = TestServer::start(db);

        let utf8 = register(USER, PASSWORD, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        assert_registered(
            &backend,
            "UTF-8",
            post_bytes(&server, utf8.as_bytes(), "text/xml"),
        );

        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice(utf8.as_bytes());
        assert_registered(&backend, "UTF-8 BOM", post_bytes(&server, &bom, "text/xml"));

        let utf16 = register(USER, PASSWORD, r#"<?xml version="1.0" encoding="UTF-16"?>"#);
        let mut le = vec![0xFF, 0xFE];
        for u in utf16.encode_utf16() {
            le.extend_from_slice(&u.to_le_bytes());
        }
        assert_registered(
            &backend,
            "UTF-16LE BOM",
            post_bytes(&server, &le, "text/xml"),
        );

        let latin1 = cp1252(&register(
            USER,
            PASSWORD,
            r#"<?xml version="1.0" encoding="ISO-8859-1"?>"#,
        ));
        assert!(std::str::from_utf8(&latin1).is_err());
        assert_registered(
            &backend,
            "ISO-8859-1 declared",
            post_bytes(&server, &latin1, "text/xml"),
        );

        let bare = cp1252(&register(USER, PASSWORD, ""));
        assert_registered(
            &backend,
            "Windows-1252 by Content-Type",
            post_bytes(&server, &bare, "text/xml; charset=windows-1252"),
        );

        // The same bytes with nothing declared: a clear Fault, nothing registered.
        let (status, body) = post_bytes(&server, &bare, "text/xml");
        assert_eq!(status, 500, "{backend:?}: {body}");
        assert!(
            body.contains("<faultcode>SOAP-ENV:Client</faultcode>"),
            "{body}"
        );
        assert!(
            body.contains("not UTF-8") && body.contains("declares no encoding"),
            "{body}"
        );

        // A failure: typed empty resultAttribute, errorStack with the published status.
        let wrong = register(USER, "wrong", "");
        let (_, body) = post_bytes(&server, wrong.as_bytes(), "text/xml; charset=utf-8");
        assert_eq!(
            element(&body, "statusCodeEnum"),
            Some("STAT_INVCREDENTIALS")
        );
        assert_eq!(element(&body, "statusCode"), Some("1000"));
        assert!(body.contains(
            r#"<resultAttribute xsi:type="PROVISIONING-TYPES:ProvisioningAttributeSet"/>"#
        ));
        let (_, body) = post_bytes(&server, register("nobody", "x", "").as_bytes(), "text/xml");
        assert_eq!(element(&body, "statusCodeEnum"), Some("STAT_USER_UNKNOWN"));
        assert_eq!(element(&body, "statusCode"), Some("1010"));
    }
}
