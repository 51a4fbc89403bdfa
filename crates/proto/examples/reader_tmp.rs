use drupe_proto::xml::{Limits, StreamReader};
use std::time::Instant;
fn main() {
    let header = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";
    let msg = b"<message xmlns='jabber:client' to='user123@localhost' type='chat' id='a1b2c3d4'><body>drupe-bench 8f3a2c1d 1700000000000000 123</body><request xmlns='urn:xmpp:receipts'/></message>";
    for release in [false, true, false, true] {
        let mut r = StreamReader::new(Limits::default());
        let mut d: &[u8] = header;
        while let Some(_) = r.next(&mut d).unwrap() {}
        let n = 200_000;
        let t = Instant::now();
        for _ in 0..n {
            let mut d: &[u8] = msg;
            while let Some(e) = r.next(&mut d).unwrap() {
                std::hint::black_box(e);
            }
            if release {
                r.release_buffers();
            }
        }
        println!("release={release}: {:.2} us/stanza", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
}
