//! Steady-state data transfer allocates nothing per packet.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rand_chacha::rand_core::SeedableRng;
use ssh_proto::*;

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn rng(seed: u64) -> Box<rand_chacha::ChaCha20Rng> {
    Box::new(rand_chacha::ChaCha20Rng::seed_from_u64(seed))
}

/// Moves everything `from` has to send into `to` through a fixed buffer.
fn pump(from: &mut Connection, to: &mut Connection, now: Instant, buf: &mut [u8]) {
    while let Some(out) = from.transmit() {
        let n = out.len().min(buf.len());
        buf[..n].copy_from_slice(&out[..n]);
        let taken = to.recv(now, &buf[..n]).unwrap();
        from.advance_transmit(taken);
        if taken == 0 {
            break;
        }
    }
}

#[test]
fn data_packets_do_not_allocate_in_steady_state() {
    // Once without a tracing subscriber, once with one that records the
    // core's debug events and spans (as an application logging at debug
    // level would): the per-connection and per-channel spans and the debug
    // events cost no allocation per data packet either.
    for with_subscriber in [false, true] {
        let _guard = with_subscriber.then(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_writer(std::io::sink)
                .finish();
            tracing::subscriber::set_default(subscriber)
        });
        transfer_all_ciphers(if with_subscriber {
            "debug subscriber"
        } else {
            "no subscriber"
        });
    }
}

fn transfer_all_ciphers(label: &str) {
    for cipher in [
        "aes128-gcm@openssh.com",
        "chacha20-poly1305@openssh.com",
        "aes128-ctr",
    ] {
        let now = Instant::now();
        let mut cc = Config::default();
        cc.transport.algorithms.cipher = vec![cipher.into()];
        let mut sc = Config::default();
        sc.transport.algorithms = Algorithms::all();
        sc.transport.host_keys = vec![Arc::new(PrivateKey::generate_ed25519(&mut *rng(1)))];
        let mut c = Connection::client(Arc::new(cc), rng(2), now).unwrap();
        let mut s = Connection::server(Arc::new(sc), rng(3), now).unwrap();
        let mut wire = vec![0u8; 256 * 1024];
        let mut ch = None;
        let mut sch = None;
        // Handshake, auth, open, exec.
        for _ in 0..200 {
            pump(&mut c, &mut s, now, &mut wire);
            pump(&mut s, &mut c, now, &mut wire);
            while let Some(e) = c.poll_event() {
                match e {
                    Event::HostKey(_) => c.accept_host_key().unwrap(),
                    Event::KexDone(_) if !c.is_authenticated() => {
                        c.auth_password("u", "p").unwrap()
                    }
                    Event::AuthSuccess => {
                        let id = c.open_session().unwrap();
                        c.exec(id, "sink").unwrap();
                        ch = Some(id);
                    }
                    _ => {}
                }
            }
            while let Some(e) = s.poll_event() {
                match e {
                    Event::AuthRequest { .. } => s.auth_accept().unwrap(),
                    Event::ChannelOpenRequest { channel, .. } => {
                        s.accept_channel(channel).unwrap();
                        sch = Some(channel);
                    }
                    Event::ChannelRequest { channel, .. } => {
                        s.channel_request_reply(channel, true).unwrap()
                    }
                    _ => {}
                }
            }
        }
        let (ch, sch) = (ch.expect("client channel"), sch.expect("server channel"));
        let payload = vec![0x5au8; 32 * 1024];
        let mut sink = vec![0u8; 64 * 1024];
        let mut transfer = |packets: usize, c: &mut Connection, s: &mut Connection| {
            let mut sent = 0;
            while sent < packets {
                let n = c.send_data(ch, &payload).unwrap();
                if n > 0 {
                    sent += 1;
                }
                pump(c, s, now, &mut wire);
                while let Some(_e) = s.poll_event() {}
                while s.channel_read(sch, Stream::Stdout, &mut sink).unwrap() > 0 {}
                pump(s, c, now, &mut wire);
                while let Some(_e) = c.poll_event() {}
            }
        };
        // Warm up: buffers grow to their working size.
        transfer(500, &mut c, &mut s);
        let before = ALLOCS.load(Ordering::Relaxed);
        transfer(2000, &mut c, &mut s);
        let allocs = ALLOCS.load(Ordering::Relaxed) - before;
        eprintln!("{cipher} ({label}): {allocs} allocations for 2000 packets");
        assert!(
            allocs <= 20,
            "{cipher} ({label}): {allocs} allocations for 2000 data packets in steady state"
        );
    }
}
