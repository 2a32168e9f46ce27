//! [`DirPages`] over the in-memory server: pages in order with a window, the end answered while
//! later READDIRs are in flight, servers with short pages, servers read one at a time, a
//! connection cut in the middle of a listing, and a caller that gives up waiting.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::remote::sftp::server::{ServerOverrides, ServerProfile};
use crate::remote::testing::faults::{Delay, Faulty, Pick};
use crate::remote::testing::memory::{MemoryServer, Personality};
use crate::remote::testing::{StreamConnector, quick_reconnect, wire};

/// The directory listed.
const DIR: &str = "/d";

/// A memory server behaving as `personality` with `n` files in [`DIR`].
fn server_with(personality: Personality, n: usize) -> MemoryServer {
    let server = MemoryServer::with_personality(personality);
    server.mkdir(DIR).unwrap();
    for i in 0..n {
        server.put_file(&format!("{DIR}/f{i:06}"), b"").unwrap();
    }
    server
}

/// The client over `server` (through `faulty` if given), knowing the server as a mount does.
async fn client(server: &MemoryServer, faulty: Option<Arc<Faulty>>) -> Arc<Sftp> {
    let personality = server.personality();
    let sftp = match faulty {
        Some(f) => StreamConnector::new(f),
        None => StreamConnector::new(Arc::new(server.clone())),
    }
    .connect_sftp(quick_reconnect())
    .await;
    sftp.set_server(ServerProfile::decide(
        personality.banner.as_deref(),
        sftp.extensions(),
        ServerOverrides::default(),
    ));
    sftp
}

/// Every name of [`DIR`] through [`DirPages`], as the fs layer takes them: after a restart the
/// names already taken are skipped. Also the widest window reached, and how many restarts.
async fn list_counting(sftp: &Arc<Sftp>) -> (Vec<String>, usize, usize) {
    let handle = sftp.opendir(DIR).await.unwrap();
    let mut pages = DirPages::new(sftp, &handle);
    let (mut names, mut skip, mut restarts) = (Vec::new(), 0, 0);
    loop {
        match pages.next_page().await.unwrap() {
            Page::Names(page) => {
                let n = skip.min(page.len());
                skip -= n;
                names.extend(page.into_iter().skip(n).map(|e| e.name));
            }
            Page::Restarted => {
                skip = names.len();
                restarts += 1;
            }
            Page::End => break,
        }
    }
    // Asked again after the end: the end, and nothing sent.
    assert!(matches!(pages.next_page().await.unwrap(), Page::End));
    let widest = pages.widest();
    drop(pages);
    sftp.close(&handle).await.unwrap();
    (names, widest, restarts)
}

/// [`list_counting`] where no restart is expected.
async fn list(sftp: &Arc<Sftp>) -> (Vec<String>, usize) {
    let (names, widest, restarts) = list_counting(sftp).await;
    assert_eq!(restarts, 0);
    (names, widest)
}

/// The names the server holds in [`DIR`], with `.` and `..`, in its order.
fn expected(n: usize) -> Vec<String> {
    let mut names = vec![".".to_owned(), "..".to_owned()];
    names.extend((0..n).map(|i| format!("f{i:06}")));
    names
}

#[tokio::test]
async fn pages_come_in_order_with_several_in_flight() {
    let server = server_with(Personality::openssh(), 5_000);
    let sftp = client(&server, None).await;
    let (names, widest) = list(&sftp).await;
    assert_eq!(names, expected(5_000));
    assert!(widest > 8, "the window grew: {widest}");
    // 51 pages and one end; at most a window's worth more READDIRs answered the end again.
    let readdirs = server.requests("readdir");
    assert!(
        (52..52 + MAX_IN_FLIGHT as u64).contains(&readdirs),
        "{readdirs}"
    );
    assert_eq!(server.open_handles(), 0);
}

#[tokio::test]
async fn the_end_answered_while_later_readdirs_are_in_flight() {
    // 250 names and the dots: pages of 100, 100, 52, then the end; the window is 4 by then.
    let server = server_with(Personality::openssh(), 250);
    let sftp = client(&server, None).await;
    let (names, _) = list(&sftp).await;
    assert_eq!(names, expected(250));
    // The READDIRs sent after the one that answered the end were answered and dropped: the
    // handle closed cleanly.
    assert_eq!(server.open_handles(), 0);
}

#[tokio::test]
async fn a_small_directory_costs_two_readdirs() {
    let server = server_with(Personality::openssh(), 10);
    let sftp = client(&server, None).await;
    let (names, widest) = list(&sftp).await;
    assert_eq!(names, expected(10));
    assert_eq!(widest, 1);
    assert_eq!(server.requests("readdir"), 2);
}

#[tokio::test]
async fn a_server_with_short_pages_is_listed_whole() {
    let server = server_with(
        Personality {
            names_per_page: 7,
            ..Personality::openssh()
        },
        1_000,
    );
    let sftp = client(&server, None).await;
    let (names, widest) = list(&sftp).await;
    assert_eq!(names, expected(1_000));
    assert!(
        widest > 1,
        "short pages are pipelined too once they keep coming"
    );
}

#[tokio::test]
async fn servers_other_than_openssh_are_read_one_readdir_at_a_time() {
    for personality in [
        Personality::rclone(),
        Personality::asyncssh(),
        Personality::unknown(),
    ] {
        let server = server_with(personality, 1_000);
        let sftp = client(&server, None).await;
        let (names, widest) = list(&sftp).await;
        assert_eq!(names, expected(1_000));
        assert_eq!(widest, 1);
    }
}

#[tokio::test]
async fn a_listing_cut_in_the_middle_restarts_without_duplicates_or_holes() {
    for nth in [2, 5, 9, 13] {
        let server = server_with(Personality::openssh(), 3_000);
        let faulty = Faulty::new(Arc::new(server.clone()));
        // The connection dies before the server sees the nth READDIR: those after it in
        // flight die with it.
        faulty.plan().cut_before(Pick::kind(wire::READDIR).nth(nth));
        let sftp = client(&server, Some(Arc::clone(&faulty))).await;
        let (names, _, restarts) = list_counting(&sftp).await;
        assert_eq!(restarts, 1, "cut at {nth}");
        let unique: BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "no duplicates (cut at {nth})");
        assert_eq!(names, expected(3_000), "cut at READDIR {nth}");
        assert_eq!(faulty.plan().cuts().len(), 1);
    }
}

#[tokio::test]
async fn a_listing_cut_after_answers_restarts_without_duplicates_or_holes() {
    let server = server_with(Personality::openssh(), 3_000);
    let faulty = Faulty::new(Arc::new(server.clone()));
    // The server answered the 6th READDIR (its page advanced the handle), the answer is lost.
    faulty.plan().cut_after(Pick::kind(wire::READDIR).nth(6));
    let sftp = client(&server, Some(Arc::clone(&faulty))).await;
    let (names, _, restarts) = list_counting(&sftp).await;
    assert_eq!(restarts, 1);
    assert_eq!(names, expected(3_000));
}

#[tokio::test]
async fn a_caller_that_gives_up_waiting_loses_no_page() {
    let server = server_with(Personality::openssh(), 2_000);
    let faulty = Faulty::new(Arc::new(server.clone()));
    faulty
        .plan()
        .delay_replies(Delay::Fixed(Duration::from_millis(5)));
    let sftp = client(&server, Some(faulty)).await;
    let handle = sftp.opendir(DIR).await.unwrap();
    let mut pages = DirPages::new(&sftp, &handle);
    let mut names = Vec::new();
    let mut interrupted = 0;
    loop {
        // As the kernel interrupting a READDIR: the wait is dropped half-way.
        let page = if interrupted < 20 {
            match tokio::time::timeout(Duration::from_millis(1), pages.next_page()).await {
                Ok(page) => page.unwrap(),
                Err(_) => {
                    interrupted += 1;
                    continue;
                }
            }
        } else {
            pages.next_page().await.unwrap()
        };
        match page {
            Page::Names(page) => names.extend(page.into_iter().map(|e| e.name)),
            Page::Restarted => panic!("no reconnect here"),
            Page::End => break,
        }
    }
    assert!(interrupted > 0);
    assert_eq!(names, expected(2_000));
    drop(pages);
    sftp.close(&handle).await.unwrap();
}
