//! A plain-socket HTTP receiver that keeps every request it gets and answers each with an empty success:
//! what a webhook target or an OTLP collector sees of kiln, with nothing of kiln's own code in between.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// Lowercased names, trimmed values.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

pub type Inbox = Arc<Mutex<Vec<Received>>>;

/// Listens on a free loopback port; returns its base URL (`http://127.0.0.1:PORT`) and what it got.
pub fn start() -> (String, Inbox) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let inbox: Inbox = Arc::default();
    let kept = inbox.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let kept = kept.clone();
            // A client keeping its connection open must not hold up the next one.
            std::thread::spawn(move || serve(stream, &kept));
        }
    });
    (url, inbox)
}

fn serve(mut stream: std::net::TcpStream, inbox: &Inbox) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.trim_end().split_once(':') {
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    inbox.lock().unwrap().push(Received {
        path,
        headers,
        body,
    });
    stream
        .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .ok();
}
