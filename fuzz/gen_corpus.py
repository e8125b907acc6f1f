#!/usr/bin/env python3
"""Writes the seed corpus under fuzz/corpus/<target>/ from the hex vectors of
/work/shared/spec/moq-lite-wire.md §12 and moq-lite-06.md §10.

Input layouts are documented in fuzz/src/harness.rs:
  decode_opener / decode_responder: [cfg, chunk_mode, chunk_param, stream bytes...]
  roundtrip:                        [cfg, kind, message body...]
cfg bits: 0-1 version (0=lite-03 .. 3=lite-06), 2 gomoqt, 3 uni, 4 tight limits, 5-7 responder type.
Run from anywhere: python3 fuzz/gen_corpus.py (existing seed files are overwritten).

media_import seeds ([cfg, chunk, mp4 bytes...], see fuzz/src/media_harness.rs) are cut from the
fragmented-MP4 fixtures of moqt-media/tests/fixtures: whole small files, the init segment alone,
and the init segment plus the first moof+mdat of the larger ones (each cut on a box boundary, so
every seed imports cleanly).
"""
import os

L03, L04, L05, L06 = 0, 1, 2, 3
GOMOQT, UNI, TIGHT = 4, 8, 16
RESP = {"announce": 0, "subscribe": 1, "fetch": 2, "probe": 3, "goaway": 4, "track": 5}
KIND = {n: i for i, n in enumerate([
    "setup", "announce_request", "announce_ok", "announce", "announce_start", "announce_end",
    "announce_restart", "subscribe", "subscribe_update", "subscribe_response", "track", "track_info",
    "fetch", "probe", "goaway", "group", "datagram"])}


def h(s):
    return bytes.fromhex(s.replace("|", " "))


def unframe(b):
    """Drops a one-byte length prefix (every vector used here is shorter than 64 bytes)."""
    assert b[0] == len(b) - 1, b.hex()
    return b[1:]


SUBSCRIBE_05 = "19 01 0a 72 6f 6f 6d 2f 61 6c 69 63 65 05 76 69 64 65 6f 80 00 41 f4 00 40 64"
SUBSCRIBE_06 = "1a 01 0a 72 6f 6f 6d 2f 61 6c 69 63 65 05 76 69 64 65 6f 80 41 f4 00 40 64 00 00"
TRACK = "11 0a 72 6f 6f 6d 2f 61 6c 69 63 65 05 76 69 64 65 6f"
FETCH_05 = "14 0a 72 6f 6f 6d 2f 61 6c 69 63 65 05 76 69 64 65 6f 0a 40 40"
FETCH_06 = "16 0a 72 6f 6f 6d 2f 61 6c 69 63 65 05 76 69 64 65 6f 0a 40 40 00 00"
GOAWAY = "13 12 68 74 74 70 73 3a 2f 2f 62 2e 65 78 61 6d 70 6c 65 2f"
SETUP_PATH = "13 01 02 10 2f 61 6e 6f 6e 2f 72 6f 6f 6d 3f 6a 77 74 3d 78"

# (name, cfg, stream bytes) for the opener's direction; chunking is added below.
OPENER = [
    ("v1_announce_please_l03", L03, "01 05 04 72 6f 6f 6d"),
    ("v2_announce_request_l05", L05, "01 06 04 72 6f 6f 6d 2a"),
    ("v3_root_request_l04", L04, "01 02 00 00"),
    ("v4_gomoqt_interest_l04", L04 | GOMOQT, "01 08 06 2f 72 6f 6f 6d 2f 00"),
    ("v11_subscribe_update_l05", L05, "02 " + SUBSCRIBE_05 + " 06 c8 01 47 d0 01 00"),
    ("v12_subscribe_l04", L04, "02 15 00 08 6c 69 76 65 2f 63 61 6d 05 61 75 64 69 6f 02 01 00 01 00"),
    ("v8_subscribe_update_l06", L06, "02 " + SUBSCRIBE_06 + " 07 c8 47 d0 05 00 00 00"),
    ("v10_subscribe_bounds_l06", L06, "02 13 05 04 72 6f 6f 6d 05 76 69 64 65 6f 03 40 fa 07 0a 04 03"),
    ("v18_track_l05", L05, "06 " + TRACK),
    ("v20_fetch_l04", L04, "03 " + FETCH_05),
    ("v15_fetch_l06", L06, "03 " + FETCH_06),
    ("v21_probe_l03", L03, "04 04 80 0f 42 40"),
    ("v21_probe_l04", L04, "04 05 80 0f 42 40 19 02 00 00"),
    ("v22_goaway_l04", L04, "05 " + GOAWAY),
    ("v23_setup_empty_l05", L05 | UNI, "01 01 00"),
    ("v23_setup_path_l05", L05 | UNI, "01 " + SETUP_PATH),
    ("setup_two_params_l06", L06 | UNI, "01 07 02 05 01 2a 01 01 01"),
    ("setup_role_cost_l06", L06 | UNI | TIGHT, "01 04 01 03 01 02"),
    ("v25_group_l04", L04 | UNI, "00 02 01 00 05 68 65 6c 6c 6f 00"),
    ("v26_group_l05", L05 | UNI, "00 02 01 00 47 d0 05 68 65 6c 6c 6f 40 42 00 19 01 78"),
    ("v19_group_l06", L06 | UNI, "00 03 01 00 00 47 d0 05 68 65 6c 6c 6f 40 42 00 19 01 78"),
    ("v19_group_resumed_l06", L06 | UNI | TIGHT, "00 03 01 00 02 47 f8 01 78"),
    ("v24_group_header_l03", L03 | UNI, "00 05 01 80 00 40 00"),
    # Regression: a 24-byte path at the tight max_path_len, re-encoded as "/…" (25 bytes) in gomoqt.
    ("regress_gomoqt_path_at_path_limit_l04", L04 | GOMOQT | TIGHT,
     "02 20 00 18 " + "61 " * 24 + "00 00 00 00 00 00"),
]

# (name, cfg, responder stream type, stream bytes)
RESPONDER = [
    ("v5_announce_l03", L03, "announce", "08 01 05 61 6c 69 63 65 02 08 00 05 61 6c 69 63 65 00"),
    ("v6_announce_l04", L04, "announce", "0b 01 05 61 6c 69 63 65 02 07 41 2c"),
    ("v8_gomoqt_announce_l04", L04 | GOMOQT, "announce", "08 01 05 61 6c 69 63 65 00"),
    ("v9_announce_ok_l05", L05, "announce", "03 43 e8 02 0b 01 05 61 6c 69 63 65 02 07 41 2c"),
    ("v3_announce_l06", L06, "announce",
     "02 01 00 00 0c 05 61 6c 69 63 65 02 07 41 2c 05 09 01 01 03 02 07 03 02 07 41 2c 00 00"),
    ("v5_announce_max_cost_l06", L06, "announce",
     "03 43 e8 02 00 14 01 61 01 01 ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff"),
    ("v14_subscribe_ok_l03", L03, "subscribe", "00 05 80 00 00 00 00 01 03 05 07 00"),
    ("v15_gomoqt_subscribe_ok_l04", L04 | GOMOQT, "subscribe", "00 05 00 00 00 02 00 01 03 06 08 00"),
    ("v17_subscribe_start_end_l05", L05, "subscribe", "00 02 44 d2 01 02 44 d3 02 03 05 07 00"),
    ("v12_subscribe_end_l06", L06 | TIGHT, "subscribe", "00 02 44 d2 01 01 00"),
    ("v20_fetch_frames_l04", L04, "fetch", "02 61 62 01 63"),
    ("v20_fetch_frames_l05", L05, "fetch", "80 02 bf 20 02 61 62 57 70 01 63"),
    ("v21_probe_reports_l05", L05, "probe", "05 80 0f 42 40 19 02 00 28"),
    ("v19_track_info_l05", L05, "track", "08 01 01 67 10 80 01 5f 90"),
    ("v14_track_info_l06", L06, "track", "05 7f 53 88 43 e8"),
    ("goaway_nothing_l04", L04, "goaway", ""),
]

# (name, cfg, kind, framed message bytes or body) for single messages.
ROUNDTRIP = [
    ("setup_empty_l05", L05, "setup", unframe(h("01 00"))),
    ("setup_probe_l06", L06, "setup", unframe(h("04 01 01 01 01"))),
    ("setup_path_l05", L05, "setup", unframe(h(SETUP_PATH))),
    ("setup_hop_l06", L06 | TIGHT, "setup", unframe(h("05 01 05 02 52 34"))),
    ("setup_two_l06", L06, "setup", unframe(h("07 02 05 01 2a 01 01 01"))),
    ("announce_request_l03", L03, "announce_request", unframe(h("05 04 72 6f 6f 6d"))),
    ("announce_request_l05", L05, "announce_request", unframe(h("06 04 72 6f 6f 6d 2a"))),
    ("announce_interest_gomoqt_l04", L04 | GOMOQT, "announce_request", unframe(h("08 06 2f 72 6f 6f 6d 2f 00"))),
    ("announce_ok_l05", L05, "announce_ok", unframe(h("03 43 e8 02"))),
    ("announce_l03", L03, "announce", unframe(h("08 01 05 61 6c 69 63 65 02"))),
    ("announce_l04", L04, "announce", unframe(h("0b 01 05 61 6c 69 63 65 02 07 41 2c"))),
    ("announce_start_l06", L06, "announce_start", h("05 61 6c 69 63 65 02 07 41 2c 05 09")),
    ("announce_start_root_l06", L06, "announce_start", h("08 72 6f 6f 6d 2f 63 61 6d 00 00 00")),
    ("announce_end_l06", L06, "announce_end", h("41 2c")),
    ("announce_restart_l06", L06, "announce_restart", h("03 02 07 41 2c 00 00")),
    ("subscribe_l05", L05, "subscribe", unframe(h(SUBSCRIBE_05))),
    ("subscribe_l06", L06, "subscribe", unframe(h(SUBSCRIBE_06))),
    ("subscribe_gomoqt_l04", L04 | GOMOQT, "subscribe",
     unframe(h("15 00 08 6c 69 76 65 2f 63 61 6d 05 61 75 64 69 6f 02 01 00 01 00"))),
    ("subscribe_update_l05", L05, "subscribe_update", unframe(h("06 c8 01 47 d0 01 00"))),
    ("subscribe_update_l06", L06, "subscribe_update", unframe(h("06 01 00 00 15 00 01"))),
    ("subscribe_ok_l03", L03, "subscribe_response", b"\x00" + h("80 00 00 00 00")),
    ("subscribe_drop_gomoqt_l04", L04 | GOMOQT, "subscribe_response", b"\x01" + h("06 08 00")),
    ("subscribe_start_l05", L05, "subscribe_response", b"\x00" + h("44 d2")),
    ("subscribe_end_l06", L06, "subscribe_response", b"\x01" + h("44 d3")),
    ("subscribe_drop_l06", L06, "subscribe_response", b"\x02" + h("05 07 00")),
    ("track_l05", L05, "track", unframe(h(TRACK))),
    ("track_info_l05", L05, "track_info", unframe(h("08 01 01 67 10 80 01 5f 90"))),
    ("track_info_l06", L06, "track_info", unframe(h("07 01 67 10 80 01 5f 90"))),
    ("fetch_l05", L05, "fetch", unframe(h(FETCH_05))),
    ("fetch_bounds_l06", L06, "fetch", unframe(h("0f 04 72 6f 6f 6d 05 76 69 64 65 6f 03 07 02 07"))),
    ("probe_l03", L03, "probe", unframe(h("04 80 0f 42 40"))),
    ("probe_l04", L04, "probe", unframe(h("05 80 0f 42 40 19"))),
    ("goaway_l04", L04, "goaway", unframe(h(GOAWAY))),
    ("group_l05", L05, "group", unframe(h("05 01 80 00 40 00"))),
    ("group_l06", L06, "group", unframe(h("03 01 07 04"))),
    ("datagram_l05", L05, "datagram", h("07 2a 43 e8 68 65 6c 6c 6f")),
    ("datagram_l06", L06, "datagram", h("01 02 03 68 69")),
    # Regression (found by this target): a 24-byte prefix at the tight max_path_len, re-encoded in
    # the gomoqt spelling "/…/" as 26 bytes.
    ("regress_gomoqt_prefix_at_path_limit_l04", L04 | GOMOQT | TIGHT, "announce_request",
     b"\x18" + b"a" * 24 + b"\x00"),
    ("regress_gomoqt_prefix_at_path_limit_l06", L06 | GOMOQT | UNI | TIGHT, "announce_request", b"\x18" + b"a" * 24),
]

# Chunking patterns per stream seed: whole buffer, single bytes, and 3-byte chunks.
CHUNKINGS = [("whole", 0, 0), ("bytes", 1, 0), ("by3", 2, 2)]


def write(target, name, data):
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", target, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def top_level_boxes(data):
    """(type, start, end) of each top-level box of an MP4 file."""
    out, pos = [], 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        out.append((data[pos + 4:pos + 8], pos, pos + size))
        pos += size
    return out


def media_seeds():
    fixtures = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "moqt-media", "tests", "fixtures")
    CMAF, GROUPS100MS, SMALL_BOXES = 1, 2, 4
    for name, cfgs in [("aac", [(0, 0), (CMAF | GROUPS100MS, 97)]), ("av1", [(CMAF, 0)]),
                       ("h265", [(0, 200)]), ("vp9", [(SMALL_BOXES, 0)]), ("h264_opus", [(0, 0), (CMAF, 255)])]:
        with open(os.path.join(fixtures, name + ".mp4"), "rb") as f:
            data = f.read()
        boxes = top_level_boxes(data)
        init_end = next(end for kind, _, end in boxes if kind == b"moov")
        first_mdat_end = next(end for kind, _, end in boxes if kind == b"mdat")
        whole = data if len(data) < 16000 else data[:first_mdat_end]
        for cfg, chunk in cfgs:
            write("media_import", f"fixture_{name}_cfg{cfg}_chunk{chunk}", bytes([cfg, chunk]) + whole)
        write("media_import", f"fixture_{name}_init_only", bytes([0, 0]) + data[:init_end])


def main():
    for i, (name, cfg, data) in enumerate(OPENER):
        label, mode, param = CHUNKINGS[i % len(CHUNKINGS)]
        write("decode_opener", f"{name}_{label}", bytes([cfg, mode, param]) + h(data))
    for i, (name, cfg, ty, data) in enumerate(RESPONDER):
        label, mode, param = CHUNKINGS[i % len(CHUNKINGS)]
        write("decode_responder", f"{name}_{label}", bytes([cfg | RESP[ty] << 5, mode, param]) + h(data))
    for name, cfg, kind, body in ROUNDTRIP:
        write("roundtrip", name, bytes([cfg, KIND[kind]]) + body)
    media_seeds()


if __name__ == "__main__":
    main()
