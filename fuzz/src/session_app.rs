//! The application's side of the `session` fuzz target (ops 11-37 of
//! [`session`](super::session)): every call the application can make on its session, with
//! handles the harness learnt from earlier calls and events.

use std::time::Duration;

use bytes::Bytes;
use moqt_proto::message::{Probe, TrackInfo};
use moqt_proto::session::{PublishParams, SubscribeParams};
use moqt_proto::testing::{Net, A};
use moqt_proto::Path;

use super::{pick, Input, State, PATHS};

/// Our session.
fn us(net: &mut Net) -> &mut moqt_proto::Session {
    net.session(A)
}

/// Ops 11-37: the application's calls.
pub(super) fn application(st: &mut State, inp: &mut Input<'_>, op: u8) {
    let net = &mut st.net;
    match op {
        11 => {
            let _ = us(net).announce(Path::new(PATHS[usize::from(inp.byte() % 4)]));
        }
        12 => {
            let _ = us(net).unannounce(&Path::new(PATHS[usize::from(inp.byte() % 4)]));
        }
        13 => {
            if let Ok(id) = us(net).announce_interest(Path::new(PATHS[usize::from(inp.byte() % 4)])) {
                st.interests.push(id);
            }
        }
        14 => {
            let params = SubscribeParams {
                priority: inp.byte(),
                ordered: inp.byte() & 1 == 1,
                max_latency: inp.u64(),
                ..Default::default()
            };
            if let Ok(id) = us(net).subscribe(Path::new("a"), "t0", params) {
                st.subscriptions.push(id);
                st.check.subscribed(id);
            }
        }
        15 => {
            if let Some(id) = pick(&st.subscriptions, inp.byte()) {
                let _ = us(net).unsubscribe(id);
            }
        }
        16 => {
            if let Some(id) = pick(&st.subscriptions, inp.byte()) {
                let params = SubscribeParams { priority: inp.byte(), max_latency: inp.u64(), ..Default::default() };
                let _ = us(net).update_subscription(id, params);
            }
        }
        17 => {
            if let Some(p) = pick(&st.publications, inp.byte()) {
                let _ = us(net).subscription_params(p);
                let _ = us(net).accept_subscription(p, PublishParams::default());
            }
        }
        18 => {
            if let Some(p) = pick(&st.publications, inp.byte()) {
                let code = inp.u64();
                let _ = us(net).reject_subscription(p, code);
            }
        }
        19 => {
            if let Some(p) = pick(&st.publications, inp.byte()) {
                let seq = inp.u64();
                if let Ok(g) = us(net).open_group(p, seq) {
                    st.groups_out.push(g);
                }
            }
        }
        20 => {
            if let Some(g) = pick(&st.groups_out, inp.byte()) {
                let len = usize::from(inp.byte()) * 8;
                let ts = inp.u64();
                let _ = us(net).write_frame(g, ts, Bytes::from(vec![0xAB; len]));
            }
        }
        21 => {
            if let Some(g) = pick(&st.groups_out, inp.byte()) {
                let _ = us(net).finish_group(g);
            }
        }
        22 => {
            if let Some(g) = pick(&st.groups_out, inp.byte()) {
                let code = inp.u64();
                let _ = us(net).reset_group(g, code);
            }
        }
        23 => {
            if let Some(p) = pick(&st.publications, inp.byte()) {
                let end = match inp.byte() {
                    0 => None,
                    b => Some(u64::from(b)),
                };
                let _ = us(net).end_subscription(p, end);
            }
        }
        24 => {
            let group = inp.u64();
            let start_frame = inp.u64();
            let end_frame = match inp.byte() {
                0 => None,
                b => Some(u64::from(b)),
            };
            if let Ok(f) = us(net).fetch_frames(Path::new("a"), "t0", 1, group, start_frame, end_frame) {
                st.fetches_out.push(f);
            }
        }
        25 => {
            if let Some(f) = pick(&st.fetches_in, inp.byte()) {
                match inp.byte() % 3 {
                    0 => {
                        let ts = inp.u64();
                        let _ = us(net).fetch_frame(f, ts, Bytes::from_static(b"fetched"));
                    }
                    1 => {
                        let _ = us(net).fetch_finish(f);
                    }
                    _ => {
                        let code = inp.u64();
                        let _ = us(net).fetch_reject(f, code);
                    }
                }
            }
        }
        26 => {
            let target = match inp.byte() {
                0 => None,
                b => Some(u64::from(b) * 1000),
            };
            if let Ok(p) = us(net).probe(target) {
                st.probes.push(p);
            }
        }
        27 => {
            if let Some(p) = pick(&st.probes, inp.byte()) {
                let bitrate = inp.u64();
                let _ = match inp.byte() % 3 {
                    0 => us(net).probe_report(p, Probe { bitrate, rtt_ms: 5 }),
                    1 => us(net).probe_target(p, bitrate),
                    _ => us(net).probe_close(p),
                };
            }
        }
        28 => {
            let n = usize::from(inp.byte() % 32);
            let uri = String::from_utf8_lossy(inp.bytes(n)).into_owned();
            let _ = us(net).goaway(&uri);
        }
        29 => {
            let code = inp.u64();
            us(net).close(code, "fuzz");
        }
        30 => {
            let ms = u64::from(inp.byte()) * u64::from(inp.byte() % 16 + 1);
            net.advance(Duration::from_millis(ms));
        }
        31 => {
            if let Some(g) = pick(&st.groups_in, inp.byte()) {
                let code = inp.u64();
                let _ = us(net).stop_group(g, code);
            }
        }
        32 => {
            if let Some(p) = pick(&st.publications, inp.byte()) {
                let len = usize::from(inp.byte()) * 8;
                let seq = inp.u64();
                let _ = us(net).send_datagram(p, seq, 0, Bytes::from(vec![1; len]));
            }
        }
        33 => {
            if let Some(p) = pick(&st.publications, inp.byte()) {
                let (a, b) = (inp.u64(), inp.u64());
                let _ = us(net).drop_groups(p, a, b, 5);
            }
        }
        34 => {
            if let Some(f) = pick(&st.fetches_out, inp.byte()) {
                let _ = us(net).cancel_fetch(f);
            }
        }
        35 => {
            if let Some(i) = pick(&st.interests, inp.byte()) {
                let _ = us(net).cancel_announce_interest(i);
            }
        }
        36 => {
            let _ = us(net).track_info(Path::new("a"), "t0");
        }
        37 => {
            // Answer or refuse a TRACK request.
            if let Some(r) = pick(&st.track_requests, inp.byte()) {
                let _ = if inp.byte() & 1 == 0 {
                    us(net).track_reply(r, TrackInfo { timescale: 1000, ..Default::default() })
                } else {
                    us(net).track_reject(r, 3)
                };
            }
        }
        _ => {}
    }
}
