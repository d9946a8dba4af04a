//! A real (if small) SMTP server for the email tests: it speaks enough
//! ESMTP for any client (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), keeps
//! every accepted message, and can be switched "down" (it then greets with
//! `421` and hangs up, like a server in maintenance).

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent (headers and body, dot-unstuffed).
    pub data: String,
}

impl Mail {
    /// The Subject, with RFC 2047 encoded words decoded.
    pub fn subject(&self) -> String {
        let mut header = String::new();
        let mut inside = false;
        for line in self.data.lines() {
            if inside && (line.starts_with(' ') || line.starts_with('\t')) {
                header.push_str(line.trim_start());
                continue;
            }
            if inside {
                break;
            }
            if let Some(rest) = line.strip_prefix("Subject:") {
                header.push_str(rest.trim());
                inside = true;
            }
        }
        // Adjacent encoded words join without a space, and one character
        // may be split between them: collect their bytes, then decode.
        let header = header.replace("?==?", "?= =?");
        let mut out = String::new();
        let mut pending: Vec<u8> = Vec::new();
        for word in header.split_whitespace() {
            let decoded = word
                .strip_prefix("=?utf-8?b?")
                .or_else(|| word.strip_prefix("=?UTF-8?B?"))
                .and_then(|w| w.strip_suffix("?="))
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
            match decoded {
                Some(d) => pending.extend(d),
                None => {
                    out.push_str(&String::from_utf8_lossy(&std::mem::take(&mut pending)));
                    if !out.is_empty() {
                        out.push(' ');
                    }
                    out.push_str(word);
                }
            }
        }
        out.push_str(&String::from_utf8_lossy(&pending));
        out
    }

    /// Every base64 body part, decoded and joined.
    pub fn text(&self) -> String {
        crate::common::mail_text(&self.data)
    }
}

#[derive(Default)]
struct State {
    mails: Vec<Mail>,
    down: bool,
    /// How long the sink takes to accept a mail it has read (a slow
    /// server: the sender's job is in flight meanwhile).
    hold: std::time::Duration,
}

pub struct SmtpSink {
    port: u16,
    state: Arc<Mutex<State>>,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the SMTP sink");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = session(socket, state).await;
                });
            }
        });
        SmtpSink { port, state }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn set_down(&self, down: bool) {
        lock(&self.state).down = down;
    }

    /// Answer each mail's data only after `hold` (it is counted as
    /// received at once).
    pub fn set_hold(&self, hold: std::time::Duration) {
        lock(&self.state).hold = hold;
    }

    /// Every email received, verification links excluded (sign-up mails
    /// one; whether it is sent before the test's helper verifies the
    /// address is a race).
    pub fn mails(&self) -> Vec<Mail> {
        lock(&self.state)
            .mails
            .iter()
            .filter(|m| m.subject() != VERIFY_SUBJECT)
            .cloned()
            .collect()
    }

    /// The verification emails received.
    pub fn verification_mails(&self) -> Vec<Mail> {
        lock(&self.state)
            .mails
            .iter()
            .filter(|m| m.subject() == VERIFY_SUBJECT)
            .cloned()
            .collect()
    }
}

pub const VERIFY_SUBJECT: &str = "[장터] 이메일 주소를 인증해 주세요";

async fn session(socket: tokio::net::TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    if lock(&state).down {
        write
            .write_all(b"421 4.3.2 sink down for maintenance\r\n")
            .await?;
        return Ok(());
    }
    write.write_all(b"220 sink.test ESMTP ready\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            write
                .write_all(b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                .await?;
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("MAIL FROM:") {
            from = line
                .get(10..)
                .unwrap_or("")
                .trim()
                .trim_matches(|c| c == '<' || c == '>')
                .to_string();
            if let Some(end) = from.find('>') {
                from.truncate(end);
            }
            to.clear();
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            let addr = line.get(8..).unwrap_or("").trim();
            let addr = addr.trim_start_matches('<');
            let addr = addr.split('>').next().unwrap_or("").to_string();
            to.push(addr);
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("DATA") {
            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = String::new();
            while let Some(l) = lines.next_line().await? {
                if l == "." {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                data.push('\n');
            }
            let hold = {
                let mut state = lock(&state);
                state.mails.push(Mail {
                    from: from.clone(),
                    to: std::mem::take(&mut to),
                    data,
                });
                state.hold
            };
            tokio::time::sleep(hold).await;
            write.write_all(b"250 OK queued\r\n").await?;
        } else if upper.starts_with("RSET") {
            to.clear();
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            write.write_all(b"502 5.5.2 not implemented\r\n").await?;
        }
    }
    Ok(())
}
