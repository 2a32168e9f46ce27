pub mod error;
pub mod fs;
mod handler;
pub mod rawsession;
pub(crate) mod runtime;
mod session;

pub use handler::Handler;
pub use rawsession::RawSftpSession;
pub use session::SftpSession;

use bytes::Bytes;
use tokio::{
    io::{self, AsyncRead, AsyncWrite, AsyncWriteExt},
    select,
    sync::mpsc,
};
use tokio_util::sync::CancellationToken;

// sshfs-rs patch: Status, StatusCode (a malformed reply fails its request).
use crate::{
    error::Error,
    protocol::{Packet, Status, StatusCode},
    utils::read_packet,
};

macro_rules! into_wrap {
    ($handler:expr) => {
        match $handler.await {
            Err(error) => Err(error.into()),
            Ok(()) => Ok(()),
        }
    };
}

#[derive(Clone, Debug)]
pub struct Config {
    /// Maximum size of a single packet in bytes. Default: 256 KiB.
    pub max_packet_len: u32,
    /// Maximum number of concurrent in-flight read requests. Default: 16.
    pub max_concurrent_reads: usize,
    /// Maximum number of concurrent in-flight write requests. Default: 16.
    pub max_concurrent_writes: usize,
    /// Preferred maximum size of a framed write packet. Default: 32 KiB.
    pub max_write_packet_len: u32,
    /// Timeout in seconds for each request. Default: 10.
    pub request_timeout_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_packet_len: 262144,
            max_concurrent_reads: 16,
            max_concurrent_writes: 16,
            max_write_packet_len: 32768,
            request_timeout_secs: 10,
        }
    }
}

// sshfs-rs patch: takes the decoded packet (its decoding moved to the caller).
async fn execute_handler<H>(packet: Packet, handler: &mut H) -> Result<(), error::Error>
where
    H: Handler + Send,
{
    match packet {
        Packet::Version(p) => into_wrap!(handler.version(p)),
        Packet::Status(p) => into_wrap!(handler.status(p)),
        Packet::Handle(p) => into_wrap!(handler.handle(p)),
        Packet::Data(p) => into_wrap!(handler.data(p)),
        Packet::Name(p) => into_wrap!(handler.name(p)),
        Packet::Attrs(p) => into_wrap!(handler.attrs(p)),
        Packet::ExtendedReply(p) => into_wrap!(handler.extended_reply(p)),
        _ => Err(error::Error::UnexpectedBehavior(
            "A packet was received that could not be processed.".to_owned(),
        )),
    }
}

async fn process_handler<S, H>(stream: &mut S, handler: &mut H, cfg: &Config) -> Result<(), Error>
where
    S: AsyncRead + Unpin,
    H: Handler + Send,
{
    let mut bytes = read_packet(stream, cfg.max_packet_len).await?;
    // sshfs-rs patch: a reply that does not decode fails its own request (below).
    let whole = bytes.clone();
    match Packet::try_from(&mut bytes) {
        Ok(packet) => Ok(execute_handler(packet, handler).await?),
        // The packet was framed (its length read in full), so the stream is still in step: a
        // reply that does not decode fails its own request, not the session.
        Err(err) => match malformed_reply_id(&whole) {
            Some(id) => {
                warn!("malformed reply to request {}: {}", id, err);
                let status = Status {
                    id,
                    status_code: StatusCode::Failure,
                    error_message: format!("malformed reply from the server: {}", err),
                    language_tag: "en-US".to_owned(),
                };
                Ok(into_wrap!(handler.status(status))?)
            }
            None => Err(err),
        },
    }
}

/// sshfs-rs patch: the request id of a reply packet (type byte, then id), if it is a reply that carries one.
fn malformed_reply_id(bytes: &Bytes) -> Option<u32> {
    let r#type = *bytes.first()?;
    // SSH_FXP_STATUS (101) ..= SSH_FXP_EXTENDED_REPLY (201) replies carry an id; VERSION has none.
    if !(101..=201).contains(&r#type) {
        return None;
    }
    let id = bytes.get(1..5)?;
    Some(u32::from_be_bytes([id[0], id[1], id[2], id[3]]))
}

/// Run processing stream as SFTP client. Is a simple handler of incoming
/// and outgoing packets. Can be used for non-standard implementations
pub fn run<S, H>(stream: S, handler: H) -> mpsc::UnboundedSender<Bytes>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Handler + Send + 'static,
{
    run_with_config(stream, handler, Config::default())
}

/// Run processing stream as SFTP client with custom configuration
pub fn run_with_config<S, H>(stream: S, mut handler: H, cfg: Config) -> mpsc::UnboundedSender<Bytes>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Handler + Send + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    let (mut rd, mut wr) = io::split(stream);

    let rc = CancellationToken::new();
    let wc = rc.clone();
    {
        runtime::spawn(async move {
            loop {
                select! {
                    result = process_handler(&mut rd, &mut handler, &cfg) => {
                        match result {
                            Err(Error::UnexpectedEof) => break,
                            Err(err) => {
                                warn!("{}", err);
                                break;
                            },
                            Ok(_) => (),
                        }
                    },
                    _ = rc.cancelled() => break,
                }
            }

            rc.cancel();
            debug!("read half of sftp stream ended");
        });
    }

    runtime::spawn(async move {
        loop {
            select! {
                data = rx.recv() => {
                    let Some(data) = data else { break; };
                    if data.is_empty() {
                        let _ = wr.shutdown().await;
                        break;
                    }

                    if let Err(error) = wr.write_all(&data[..]).await {
                        warn!("{}", error);
                        break;
                    }
                },
                _ = wc.cancelled() => break,
            }
        }

        wc.cancel();
        debug!("write half of sftp stream ended");
    });

    tx
}
