//! A fault-injecting TCP proxy on plain threads (no async runtime needed by tests).
//!
//! Each connection has one pipe per direction: a reader thread stamps every
//! chunk with `read time + latency` and queues it; a writer thread sleeps until
//! that time (so delays overlap instead of adding up), waits while the proxy is
//! frozen, then writes it on.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle, sleep};
use std::time::{Duration, Instant};

use nix::sys::socket::{setsockopt, sockopt};

use super::wait_until;

/// Chunks queued per direction before the reader blocks (x 64 KiB).
const QUEUE_CHUNKS: usize = 1024;
const CHUNK_SIZE: usize = 64 * 1024;
/// SO_LINGER with a zero timeout: closing the socket sends a RST.
const RST_ON_CLOSE: nix::libc::linger = nix::libc::linger {
    l_onoff: 1,
    l_linger: 0,
};

/// A TCP proxy from 127.0.0.1:`port()` to 127.0.0.1:`target_port` that can add
/// latency, freeze and cut connections. Dropping it closes everything.
pub struct FaultProxy {
    port: u16,
    shared: Arc<Shared>,
    listener: Option<JoinHandle<()>>,
}

/// State shared by the proxy handle and all its threads.
struct Shared {
    target_port: AtomicU16,
    latency_us: AtomicU64,
    frozen: Mutex<bool>,
    thawed: Condvar,
    stopped: AtomicBool,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Conn>>,
}

/// What `cut()` needs of an open connection: both sockets and a flag for its threads.
struct Conn {
    sockets: [TcpStream; 2],
    cut: Arc<AtomicBool>,
}

/// Held by each thread of a connection; the last one to finish unregisters it.
struct ConnGuard {
    id: u64,
    cut: Arc<AtomicBool>,
    shared: Arc<Shared>,
}

type Chunk = (Instant, Vec<u8>);

impl FaultProxy {
    /// Listens on a free 127.0.0.1 port and forwards to 127.0.0.1:`target_port`.
    pub fn start(target_port: u16) -> FaultProxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind proxy listener");
        let port = listener
            .local_addr()
            .expect("proxy listener address")
            .port();
        let shared = Arc::new(Shared {
            target_port: AtomicU16::new(target_port),
            latency_us: AtomicU64::new(0),
            frozen: Mutex::new(false),
            thawed: Condvar::new(),
            stopped: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            conns: Mutex::new(HashMap::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let listener = thread::Builder::new()
            .name(format!("proxy-accept-{port}"))
            .spawn(move || accept_loop(&listener, &accept_shared))
            .expect("spawn proxy accept thread");
        FaultProxy {
            port,
            shared,
            listener: Some(listener),
        }
    }

    /// The port clients should connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Delay added to every chunk in each direction (the round trip grows by
    /// twice this). Applies to bytes read from now on; throughput is kept.
    pub fn set_latency(&self, one_way: Duration) {
        let micros = u64::try_from(one_way.as_micros()).unwrap_or(u64::MAX);
        self.shared.latency_us.store(micros, Ordering::SeqCst);
    }

    /// Sends new connections to 127.0.0.1:`port` from now on (another server, as after a
    /// reinstall or a DNS change); current ones are left alone.
    pub fn retarget(&self, port: u16) {
        self.shared.target_port.store(port, Ordering::SeqCst);
    }

    /// Holds all bytes in both directions, on current and new connections,
    /// until [`resume`](Self::resume). Connections stay open.
    pub fn freeze(&self) {
        *self.shared.lock_frozen() = true;
    }

    /// Forwards held and new bytes again.
    pub fn resume(&self) {
        *self.shared.lock_frozen() = false;
        self.shared.thawed.notify_all();
    }

    /// Closes all current connections abruptly, both sides: each peer sees
    /// EOF and then a RST, and queued bytes are dropped. New connections are
    /// still accepted.
    pub fn cut(&self) {
        let conns: Vec<Conn> = self.shared.lock_conns().drain().map(|(_, c)| c).collect();
        for conn in &conns {
            conn.cut.store(true, Ordering::SeqCst);
            for socket in &conn.sockets {
                // Linger 0 turns the final close into a RST; shutdown wakes blocked threads.
                let _ = setsockopt(socket, sockopt::Linger, &RST_ON_CLOSE);
                let _ = socket.shutdown(Shutdown::Both);
            }
        }
        // Wake writers held by freeze() so they notice the cut and exit.
        let _frozen = self.shared.lock_frozen();
        self.shared.thawed.notify_all();
    }

    /// Number of connections currently open (cut ones count as closed at once).
    pub fn connections(&self) -> usize {
        self.shared.lock_conns().len()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so it sees `stopped`.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
        if let Some(listener) = self.listener.take() {
            let _ = listener.join();
        }
        self.cut();
        // Connection threads hold a reference to `shared`; wait (bounded) for them to finish.
        wait_until(Duration::from_secs(5), || {
            Arc::strong_count(&self.shared) == 1
        });
    }
}

impl Shared {
    fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_us.load(Ordering::SeqCst))
    }

    fn lock_frozen(&self) -> MutexGuard<'_, bool> {
        self.frozen.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_conns(&self) -> MutexGuard<'_, HashMap<u64, Conn>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ConnGuard {
    fn is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst) || self.shared.stopped.load(Ordering::SeqCst)
    }

    /// Blocks while the proxy is frozen; false if the connection was cut meanwhile.
    fn wait_while_frozen(&self) -> bool {
        let mut frozen = self.shared.lock_frozen();
        while *frozen && !self.is_cut() {
            frozen = self
                .shared
                .thawed
                .wait(frozen)
                .unwrap_or_else(|e| e.into_inner());
        }
        !self.is_cut()
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.shared.lock_conns().remove(&self.id);
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        // If the target refuses, dropping `client` closes it: like a refused connection.
        let target = shared.target_port.load(Ordering::SeqCst);
        if let Ok(server) = TcpStream::connect((Ipv4Addr::LOCALHOST, target)) {
            start_connection(shared, client, server);
        }
    }
}

fn start_connection(shared: &Arc<Shared>, client: TcpStream, server: TcpStream) {
    let (Ok(client2), Ok(server2), Ok(client3), Ok(server3)) = (
        client.try_clone(),
        server.try_clone(),
        client.try_clone(),
        server.try_clone(),
    ) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    let cut = Arc::new(AtomicBool::new(false));
    shared.lock_conns().insert(
        id,
        Conn {
            sockets: [client3, server3],
            cut: Arc::clone(&cut),
        },
    );
    let guard = Arc::new(ConnGuard {
        id,
        cut,
        shared: Arc::clone(shared),
    });
    spawn_pipe(client, server2, &guard, "up");
    spawn_pipe(server, client2, &guard, "down");
}

/// Starts the reader and writer threads forwarding `src` to `dst`.
fn spawn_pipe(src: TcpStream, dst: TcpStream, guard: &Arc<ConnGuard>, direction: &str) {
    let (tx, rx) = sync_channel::<Chunk>(QUEUE_CHUNKS);
    let (reader_guard, writer_guard) = (Arc::clone(guard), Arc::clone(guard));
    let name = format!("proxy-{}-{direction}", guard.id);
    // If a spawn fails the thread's sockets drop with it and the peer sees the connection close.
    let _ = thread::Builder::new()
        .name(name.clone())
        .spawn(move || read_side(src, &tx, &reader_guard));
    let _ = thread::Builder::new()
        .name(name)
        .spawn(move || write_side(&rx, dst, &writer_guard));
}

/// Reads chunks from `src` and queues them stamped with their delivery time.
fn read_side(mut src: TcpStream, tx: &SyncSender<Chunk>, guard: &ConnGuard) {
    let mut buf = vec![0u8; CHUNK_SIZE];
    loop {
        match src.read(&mut buf) {
            Ok(0) | Err(_) => return, // dropping `tx` lets the writer flush and send FIN
            Ok(n) => {
                let due = Instant::now() + guard.shared.latency();
                if guard.is_cut() || tx.send((due, buf[..n].to_vec())).is_err() {
                    return;
                }
            }
        }
    }
}

/// Writes queued chunks to `dst` at their delivery time, holding them while frozen.
fn write_side(rx: &Receiver<Chunk>, mut dst: TcpStream, guard: &ConnGuard) {
    for (due, data) in rx {
        sleep(due.saturating_duration_since(Instant::now()));
        if !guard.wait_while_frozen() || dst.write_all(&data).is_err() {
            // The peer is gone or the connection was cut: tear down both directions.
            let _ = dst.shutdown(Shutdown::Both);
            return;
        }
    }
    let _ = dst.shutdown(Shutdown::Write);
}
