//! The floor for provd's hot path: a bare actix-web handler that reads a POSTed body and
//! answers a fixed PROVISIONCMD_SERVER_TIME response of the same size, with nothing else
//! (no parsing, no routing beyond one path, no logging, no metrics). `benches/hotpath.sh`
//! counts its instructions per request under callgrind beside provd's.
//!
//!   cargo run --release --example bare_actix   # prints `bare listening on http://ADDR`

use actix_web::{web, App, HttpResponse, HttpServer};

const BODY: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    "\n",
    r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:BASIC-TYPES="http://www.vasco.com/IdentikeyServer/IdentikeyTypes/BasicTypes.xsd" xmlns:PROVISIONING-TYPES="http://www.vasco.com/IdentikeyServer/IdentikeyTypes/ProvisioningTypes.xsd" xmlns:PROV-TYPES="http://www.vasco.com/IdentikeyServer/IdentikeyTypes/Provisioning">"#,
    "\n<SOAP-ENV:Body>\n<PROV-TYPES:provisioningExecuteResponse>\n<results>\n<resultCodes>\n",
    "<returnCodeEnum>RET_SUCCESS</returnCodeEnum>\n<statusCodeEnum>STAT_SUCCESS</statusCodeEnum>\n",
    "<returnCode>0</returnCode>\n<statusCode>0</statusCode>\n</resultCodes>\n<resultAttribute>\n",
    "<attributes>\n<value xsi:type=\"xsd:int\">1764000000</value>\n",
    "<attributeID>PROVFLD_SERVER_TIME</attributeID>\n</attributes>\n</resultAttribute>\n",
    "<errorStack/>\n</results>\n</PROV-TYPES:provisioningExecuteResponse>\n</SOAP-ENV:Body>\n",
    "</SOAP-ENV:Envelope>\n"
);

async fn answer(body: web::Bytes) -> HttpResponse {
    std::hint::black_box(&body);
    HttpResponse::Ok()
        .content_type("text/xml; charset=utf-8")
        .body(BODY)
}

fn main() -> std::io::Result<()> {
    actix_web::rt::System::new().block_on(async {
        let server = HttpServer::new(|| App::new().route("/", web::post().to(answer)))
            .bind("127.0.0.1:0")?;
        let addr = server.addrs()[0];
        println!("bare listening on http://{addr}");
        server.run().await
    })
}
