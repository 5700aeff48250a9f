//! A server that dies while a chunk streams in dies holding that upload's one-writer claim, which would
//! keep the upload busy until the claim lapsed (20 s). These tests kill a server mid-chunk, start it again
//! on the same data, and send the chunk again: it must go in at once, through kiln's upload API and
//! through the OCI endpoint.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use kiln_core::Sha256Digest;
use kiln_tests::{ADMIN_TOKEN, Backend, Server};
use serde_json::json;

const MIB: usize = 1024 * 1024;

/// Sends the headers of a PATCH of `length` bytes to `path` (with `headers`, each ending in CRLF) and half
/// its body, then nothing: the server holds the upload's claim while it waits for the rest.
fn stalled_chunk(server: &Server, path: &str, headers: &str, length: usize) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n{headers}\
         Content-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&vec![7u8; length / 2]).unwrap();
    stream
}

/// Opens an upload session of 12 MiB and stalls a chunk in it (see [`stalled_chunk`]) once the server
/// holds the session for that chunk, proven by a rival chunk answered `upload_busy`: the bytes, the
/// session's id, its part size and the stalled connection.
fn session_held_by_a_stalled_chunk(server: &Server) -> (Vec<u8>, String, usize, TcpStream) {
    for attempt in 0..3 {
        let data: Vec<u8> = (0..12 * MIB)
            .map(|i| ((i * 31 + attempt) % 251) as u8)
            .collect();
        let (status, session) = server.post_json(
            "/api/v1/uploads",
            &json!({ "digest": Sha256Digest::of(&data), "size": data.len() }),
        );
        assert_eq!(status, 201, "{session}");
        let id = session["id"].as_str().unwrap().to_owned();
        let part = session["part_size"].as_u64().unwrap() as usize;
        assert!(part < data.len(), "two parts at least: {session}");
        let range = format!("Content-Range: bytes 0-{}/{}\r\n", part - 1, data.len());
        let stalled = stalled_chunk(server, &format!("/api/v1/uploads/{id}"), &range, part);
        // The server claims the session when the headers arrive; a rival sent before that takes it.
        std::thread::sleep(Duration::from_millis(500));
        let (status, body) = server.patch_chunk(&id, 0, data[..part].to_vec(), data.len());
        if status == 409 && body["error"]["code"] == "upload_busy" {
            return (data, id, part, stalled);
        }
        // The rival went in first (a slow machine): again, with other bytes.
        assert_eq!(status, 200, "the rival either waits or goes in: {body}");
    }
    panic!("a stalled chunk never held its session before a rival did, in 3 tries");
}

/// A server killed while a chunk streams in dies holding the session's one-writer claim, which would
/// keep the session `upload_busy` until it lapsed (20 s). The server started next on the same data
/// directory knows that run ended (it holds the directory's lock, which the kernel let go of when the
/// run died) and lets go of its claims as it starts: the chunk sent again goes in at once.
fn a_restarted_server_lets_go_of_the_claims_it_died_holding(backend: Backend) {
    let mut server = Server::start(backend);
    let (data, id, part, stalled) = session_held_by_a_stalled_chunk(&server);
    server.kill();
    drop(stalled);
    server.restart();
    let (status, body) = server.patch_chunk(&id, 0, data[..part].to_vec(), data.len());
    // The server's log on failure: a 500 names only its request id (one run of 878 under the whole
    // suite's load answered 500 here on PostgreSQL and Garage, and the log went with the test's folder).
    assert_eq!(
        status,
        200,
        "the first chunk goes in at once: {body}\n{}",
        server.log()
    );
    assert!(
        server.log().contains("let go of the upload claims"),
        "{}",
        server.log()
    );
    let (status, body) = server.patch_chunk(&id, part, data[part..].to_vec(), data.len());
    assert_eq!(status, 200, "{body}");
    let (status, blob) = server.post_json(&format!("/api/v1/uploads/{id}/commit"), &json!({}));
    assert_eq!(status, 200, "{blob}");
    assert_eq!(blob["digest"], json!(Sha256Digest::of(&data)), "{blob}");
}

#[test]
fn a_restarted_server_lets_go_of_its_claims_on_the_embedded_default() {
    a_restarted_server_lets_go_of_the_claims_it_died_holding(Backend::Embedded);
}

#[test]
fn a_restarted_server_lets_go_of_its_claims_on_postgres_and_garage() {
    a_restarted_server_lets_go_of_the_claims_it_died_holding(Backend::PostgresS3);
}

/// Starts an OCI blob upload of 12 MiB in `acme/claims` and stalls a first chunk of 6 MiB in it once the
/// server holds the upload for it, proven by a rival chunk refused as out of order (416, as the
/// distribution spec has it): the bytes, the upload's location and the stalled connection.
fn oci_upload_held_by_a_stalled_chunk(server: &Server) -> (Vec<u8>, String, TcpStream) {
    for attempt in 0..3 {
        let data: Vec<u8> = (0..12 * MIB)
            .map(|i| ((i * 17 + attempt) % 241) as u8)
            .collect();
        let (status, headers, body) =
            server.send("POST", "/v2/acme/claims/blobs/uploads/", &[], vec![]);
        assert_eq!(status, 202, "{body}");
        let location = headers["location"].to_str().unwrap().to_owned();
        let half = data.len() / 2;
        let stalled = stalled_chunk(server, &location, "", half);
        std::thread::sleep(Duration::from_millis(500));
        let (status, _, body) = server.send("PATCH", &location, &[], data[..half].to_vec());
        if status == 416 && body.contains("BLOB_UPLOAD_INVALID") {
            return (data, location, stalled);
        }
        assert_eq!(
            status, 202,
            "the rival either is refused or goes in: {body}"
        );
    }
    panic!("a stalled chunk never held its OCI upload before a rival did, in 3 tries");
}

/// The same through `/v2/`, as a registry client (oras, skopeo, containerd) pushes a blob in chunks.
fn a_restarted_server_lets_go_of_the_oci_uploads_it_died_writing(backend: Backend) {
    let mut server = Server::start(backend);
    let (data, location, stalled) = oci_upload_held_by_a_stalled_chunk(&server);
    server.kill();
    drop(stalled);
    server.restart();
    let half = data.len() / 2;
    let (status, headers, body) = server.send("PATCH", &location, &[], data[..half].to_vec());
    assert_eq!(status, 202, "the first chunk goes in at once: {body}");
    assert_eq!(headers["range"], format!("0-{}", half - 1).as_str());
    let digest = Sha256Digest::of(&data);
    let (status, _, body) = server.send(
        "PUT",
        &format!("{location}?digest={digest}"),
        &[],
        data[half..].to_vec(),
    );
    assert_eq!(status, 201, "{body}");
    let (status, _, body) = server.send(
        "HEAD",
        &format!("/v2/acme/claims/blobs/{digest}"),
        &[],
        vec![],
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_restarted_server_lets_go_of_its_oci_uploads_on_the_embedded_default() {
    a_restarted_server_lets_go_of_the_oci_uploads_it_died_writing(Backend::Embedded);
}

#[test]
fn a_restarted_server_lets_go_of_its_oci_uploads_on_postgres_and_garage() {
    a_restarted_server_lets_go_of_the_oci_uploads_it_died_writing(Backend::PostgresS3);
}
