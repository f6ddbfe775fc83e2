//! SIGINT drains like SIGTERM: a request in flight when the signal comes is answered, new
//! connections are refused, and the server exits 0.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{backends, envelope, seeded, TestServer};

const SERVER_TIME: &str = "<PROV-TYPES:provisioningExecute><cmd>PROVISIONCMD_SERVER_TIME</cmd><attributeSet/></PROV-TYPES:provisioningExecute>";

/// One HTTP/1.1 response with a `content-length`, read off `conn`.
fn read_response(conn: &mut TcpStream) -> String {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        conn.read_exact(&mut byte).unwrap();
        raw.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .expect("a content-length")
        .trim()
        .parse()
        .unwrap();
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).unwrap();
    raw.extend_from_slice(&body);
    String::from_utf8_lossy(&raw).into_owned()
}

fn drains_on(signal: &str) {
    for backend in backends() {
        let mut server = TestServer::start(seeded(backend, 0));
        let addr = server
            .base
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let body = envelope(SERVER_TIME);
        let (first, rest) = body.split_at(body.len() / 2);
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/xml; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        // The call to be in flight: headers and half its body.
        let mut conn = TcpStream::connect(&addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        write!(conn, "{head}{first}").unwrap();
        conn.flush().unwrap();
        // Whole calls on later connections, two per worker (actix hands accepted connections
        // to its workers in turn, one per core): each worker answering one shows it has taken
        // the connections queued before it, ours included. A connection still queued for a
        // worker, or still in the listen backlog, would be dropped at shutdown.
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        for _ in 0..2 * workers {
            let mut other = TcpStream::connect(&addr).unwrap();
            other
                .set_read_timeout(Some(Duration::from_secs(60)))
                .unwrap();
            write!(other, "{head}{body}").unwrap();
            let answer = read_response(&mut other);
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        }
        // The request is in flight (headers and half its body read) when the signal comes.
        // Wait until the server stops accepting: then it has taken the signal.
        server.signal(signal);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&addr).is_ok() {
            assert!(
                Instant::now() < deadline,
                "{backend:?}: still accepting 30 s after SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        conn.write_all(rest.as_bytes()).unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "{backend:?} SIG{signal}: {answer}"
        );
        assert!(answer.contains("PROVFLD_SERVER_TIME"), "{answer}");
        assert_eq!(server.wait_exit(), Some(0), "{backend:?} SIG{signal}");
    }
}

#[test]
fn sigint_lets_the_request_in_flight_finish() {
    drains_on("INT");
}

#[test]
fn sigterm_lets_the_request_in_flight_finish() {
    drains_on("TERM");
}
