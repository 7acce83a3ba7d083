//! An SMTP server on loopback that keeps every message it accepts, for tests that read the
//! email a customer would get. It speaks enough SMTP for lettre (EHLO, AUTH PLAIN, MAIL, RCPT,
//! DATA with dot-unstuffing, RSET, QUIT) and can refuse or defer the next messages on request, as a real
//! server does with 550 and 451.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One accepted message: its envelope recipients and raw RFC 5322 text.
#[derive(Debug, Clone)]
pub struct Received {
    pub recipients: Vec<String>,
    pub data: Vec<u8>,
}

/// What the server answers the next messages' RCPT with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `550`: the mailbox does not exist (permanent).
    Refuse,
    /// `451`: try again later (passing).
    Defer,
}

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    answers: VecDeque<Answer>,
    /// How long the server takes to accept each message.
    delay: Duration,
    /// The `AUTH` commands clients sent.
    auth: Vec<String>,
}

#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    shared: Arc<Mutex<Shared>>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let state = shared.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(session(socket, state.clone()));
            }
        });
        Self { port, shared }
    }

    /// The address to put in the host's `smtp_server`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Answers the next messages so, one answer each, before accepting again.
    pub fn answer_next(&self, answers: &[Answer]) {
        self.shared.lock().unwrap().answers.extend(answers);
    }

    /// Takes `delay` to accept each message, as a busy server does.
    pub fn slow(&self, delay: Duration) {
        self.shared.lock().unwrap().delay = delay;
    }

    /// The `AUTH` commands clients sent, such as `AUTH PLAIN <base64>`.
    pub fn auth(&self) -> Vec<String> {
        self.shared.lock().unwrap().auth.clone()
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().unwrap().received.clone()
    }

    /// Waits until `count` messages arrived (up to 30 s) and returns them.
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        for _ in 0..300 {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "expected {count} messages, the SMTP server got {}",
            self.received().len()
        );
    }
}

async fn session(socket: tokio::net::TcpStream, shared: Arc<Mutex<Shared>>) {
    // Replies are small writes; without this, delayed ACKs add 40 ms to every message.
    let _ = socket.set_nodelay(true);
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    if write.write_all(b"220 sink ESMTP\r\n").await.is_err() {
        return;
    }
    let mut recipients = Vec::new();
    let mut data: Option<Vec<u8>> = None;
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(body) = data.as_mut() {
            if line == "." {
                let delay = shared.lock().unwrap().delay;
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let message = Received {
                    recipients: std::mem::take(&mut recipients),
                    data: data.take().unwrap_or_default(),
                };
                shared.lock().unwrap().received.push(message);
                let _ = write.write_all(b"250 queued\r\n").await;
            } else {
                let line = line.strip_prefix('.').unwrap_or(&line);
                body.extend_from_slice(line.as_bytes());
                body.extend_from_slice(b"\r\n");
            }
            continue;
        }
        let verb = line
            .split([' ', ':'])
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink\r\n250 AUTH PLAIN\r\n",
            "HELO" => b"250 sink\r\n",
            "AUTH" => {
                shared.lock().unwrap().auth.push(line.clone());
                b"235 2.7.0 accepted\r\n"
            }
            "RCPT" => match shared.lock().unwrap().answers.pop_front() {
                Some(Answer::Refuse) => b"550 5.1.1 no such mailbox\r\n",
                Some(Answer::Defer) => b"451 4.3.0 try again later\r\n",
                None => {
                    let address = line.split_once(':').map(|(_, a)| a).unwrap_or_default();
                    recipients.push(address.trim().trim_matches(['<', '>']).to_string());
                    b"250 ok\r\n"
                }
            },
            "DATA" => {
                data = Some(Vec::new());
                b"354 go ahead\r\n"
            }
            "RSET" => {
                recipients.clear();
                b"250 ok\r\n"
            }
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => b"250 ok\r\n",
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}
