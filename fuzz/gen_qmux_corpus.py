#!/usr/bin/env python3
"""Writes the seed corpus of the `qmux_records` target under fuzz/corpus/qmux_records/.

The script layout is documented in fuzz/src/qmux_harness.rs: [cfg, op, args..]. cfg bits:
0-1 version (0 qmux-00, 1 qmux-01, 2 qmux-02, 3 legacy), 2 A is the server, 3 byte stream,
4 tight limits, 5 exchange parameters first. Op byte: kind | arg << 4 | side << 7.
Raw records use the frame vectors of moqt-qmux/tests/frames.rs (from @moq/qmux 0.3.3).
Run from anywhere: python3 fuzz/gen_qmux_corpus.py (existing seed files are overwritten).
"""
import os

Q00, Q01, Q02, LEGACY = 0, 1, 2, 3
SERVER, BYTES, TIGHT, EXCHANGE = 4, 8, 16, 32
A, B = 0, 1


def op(kind, arg=0, side=A):
    return bytes([kind | (arg << 4) | (side << 7)])


PUMP = op(1)


def open_(side, uni):
    return op(2, 1 if uni else 0, side)


def write(side, stream, len64):
    return op(3, 0, side) + bytes([stream, len64])


def finish(side, stream):
    return op(4, 0, side) + bytes([stream, 0])


def reset(side, stream, code):
    return op(5, 0, side) + bytes([stream, code])


def read(side, stream, max16):
    return op(6, 0, side) + bytes([stream, max16])


def stop(side, stream, code):
    return op(7, 0, side) + bytes([stream, code])


def prio(side, stream, p):
    return op(8, 0, side) + bytes([stream, p])


def dgram(side, len64):
    return op(9, 0, side) + bytes([len64])


def recv_dgram(side):
    return op(10, 0, side)


def tick(quarters):
    return op(11) + bytes([quarters])


def close(side):
    return op(12, 1, side)


def ping(side):
    return op(13, 0, side)


def raw(data):
    assert len(data) < 2048
    return op(0, len(data) % 8) + bytes([len(data) // 8]) + data


def inject(kind, *args):
    return op(14) + bytes([kind]) + bytes(args)


def h(s):
    return bytes.fromhex(s.replace(" ", ""))


PARAMS = h("ff5153300d0a0d0a35010480007530040480100000050480040000060480040000070480040000080240640902406420027ffec571c59429cd0845027ffe")
VECTORS = [
    "0e0400026869", "0f028001117003627965", "0f030500", "04042a43e8", "0507412c", "1c0a0003626164",
    "1d0003627965", "1080100000", "110480040000", "124064", "136710", "1480100000", "150810", "164064",
    "1707", "f48c67529ef8c7bd00", "f48c67529ef8c7be412c", "3105646772616d", "24042a406405",
    "0a0402686900", "0c040568656c6c6f", "306869", "1080100000124064",
]
LEGACY_VECTORS = ["08046869", "0908627965", "04042a", "050407", "1c0a626164", "1d01627965"]


def uni_flow(side=A, other=B):
    s = open_(side, True) + write(side, 0, 64) + write(side, 0, 255) + PUMP
    s += read(other, 0, 255) + read(other, 0, 255) + PUMP + write(side, 0, 200) + finish(side, 0) + PUMP
    s += (read(other, 0, 255) + PUMP) * 4
    return s


def bidi_echo():
    s = open_(B, False) + write(B, 0, 40) + finish(B, 0) + PUMP
    s += read(A, 0, 255) + read(A, 0, 255) + write(A, 0, 40) + finish(A, 0) + PUMP
    s += read(B, 0, 255) + read(B, 0, 255) + PUMP
    return s


def many_streams():
    s = b""
    for i in range(6):
        s += open_(A, True) + write(A, i, 150) + prio(A, i, i) + finish(A, i)
    for _ in range(12):
        s += PUMP + b"".join(read(B, i, 64) for i in range(6))
    return s


def seeds():
    out = {}
    for v, name in [(Q00, "q00"), (Q01, "q01"), (Q02, "q02"), (LEGACY, "legacy")]:
        out[f"honest_uni_{name}"] = bytes([v | EXCHANGE]) + uni_flow()
        out[f"honest_uni_server_{name}"] = bytes([v | EXCHANGE | SERVER]) + uni_flow(B, A)
        out[f"honest_bidi_{name}"] = bytes([v | EXCHANGE]) + bidi_echo()
        out[f"tight_many_streams_{name}"] = bytes([v | EXCHANGE | TIGHT]) + many_streams()
        out[f"reset_stop_{name}"] = bytes([v | EXCHANGE]) + open_(A, False) + write(A, 0, 30) + PUMP + \
            stop(B, 0, 9) + PUMP + open_(A, True) + write(A, 1, 30) + reset(A, 1, 4) + PUMP + read(B, 1, 3)
        out[f"close_{name}"] = bytes([v | EXCHANGE]) + open_(A, True) + PUMP + close(B) + PUMP + write(A, 0, 1)
    for v, name in [(Q01, "q01"), (Q02, "q02")]:
        out[f"byte_stream_{name}"] = bytes([v | EXCHANGE | BYTES]) + uni_flow() + bidi_echo()
        out[f"datagrams_{name}"] = bytes([v | EXCHANGE | TIGHT]) + dgram(A, 1) + dgram(A, 200) + dgram(B, 3) + \
            PUMP + recv_dgram(B) + recv_dgram(A) + dgram(A, 255) + PUMP
        out[f"timers_{name}"] = bytes([v | EXCHANGE | TIGHT]) + ping(A) + PUMP + PUMP + tick(8) + PUMP + \
            tick(12) + PUMP + tick(40) + tick(40)
        out[f"handshake_timeout_{name}"] = bytes([v]) + tick(60)
    # Raw records into A: its peer's parameters, then each frame vector.
    for v, name in [(Q00, "q00"), (Q01, "q01"), (Q02, "q02")]:
        out[f"raw_vectors_{name}"] = bytes([v | SERVER]) + raw(PARAMS) + b"".join(raw(h(x)) for x in VECTORS)
        out[f"raw_garbage_{name}"] = bytes([v | SERVER]) + raw(PARAMS) + raw(bytes(range(40)))
        out[f"raw_padding_{name}"] = bytes([v | SERVER]) + raw(PARAMS) + raw(bytes(1500))
    out["raw_vectors_legacy"] = bytes([LEGACY | SERVER]) + b"".join(raw(h(x)) for x in LEGACY_VECTORS)
    out["raw_byte_stream_q01"] = bytes([Q01 | BYTES]) + raw(bytes([0x40, len(PARAMS)]) + PARAMS) + \
        raw(h("06") + h("0e0400026869"))
    # Injected frames of every kind.
    inj = b""
    for kind in range(10):
        inj += inject(kind, kind % 2, kind, 5, 9, 1, 2, 3, 4)
    out["inject_all_q01"] = bytes([Q01 | EXCHANGE]) + inj + PUMP
    out["inject_all_q02_tight"] = bytes([Q02 | EXCHANGE | TIGHT]) + inj + PUMP
    return out


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "qmux_records")
    os.makedirs(root, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
    print(f"{len(seeds())} seeds in {root}")


if __name__ == "__main__":
    main()
