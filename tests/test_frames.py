"""The hand-written ``pbbp2`` codec against lark-oapi's generated ``pbbp2_pb2``: what one
writes the other reads, both ways; unknown fields skipped; the required fields, the
bounds and malformed bytes refused. Hypothesis runs derandomized (a fixed seed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lark_oapi.ws.pb.pbbp2_pb2 import Frame as PbFrame

from feishu_vc_async.events import Frame, FrameError, Header, decode_frame, encode_frame
from feishu_vc_async.events._frames import MAX_FRAME_BYTES, MAX_HEADERS


@pytest.fixture(autouse=True, scope="module")
def _close_the_sdks_loop() -> Iterator[None]:
    # Importing pbbp2_pb2 imports lark_oapi.ws.client, which makes an event loop at import
    # and never closes it (a ResourceWarning at exit); it is not used here.
    yield
    from lark_oapi.ws import client

    if not client.loop.is_running() and not client.loop.is_closed():
        client.loop.close()


_U64 = st.integers(0, 2**64 - 1)
_I32 = st.integers(-(2**31), 2**31 - 1)
_TEXT = st.text(max_size=40)
_MAYBE_TEXT = st.none() | _TEXT

frames = st.builds(
    Frame,
    seq_id=_U64,
    log_id=_U64,
    service=_I32,
    method=_I32,
    headers=st.lists(st.builds(Header, _TEXT, _TEXT), max_size=6).map(tuple),
    payload_encoding=_MAYBE_TEXT,
    payload_type=_MAYBE_TEXT,
    payload=st.none() | st.binary(max_size=200),
    log_id_new=_MAYBE_TEXT,
)


def _to_pb(frame: Frame) -> PbFrame:
    pb = PbFrame()
    pb.SeqID, pb.LogID, pb.service, pb.method = (
        frame.seq_id,
        frame.log_id,
        frame.service,
        frame.method,
    )
    for header in frame.headers:
        added = pb.headers.add()
        added.key, added.value = header.key, header.value
    for name, value in (
        ("payload_encoding", frame.payload_encoding),
        ("payload_type", frame.payload_type),
        ("payload", frame.payload),
        ("LogIDNew", frame.log_id_new),
    ):
        if value is not None:
            setattr(pb, name, value)
    return pb


def _from_pb(pb: PbFrame) -> Frame:
    def optional(name: str) -> object:
        return getattr(pb, name) if pb.HasField(name) else None

    return Frame(
        seq_id=pb.SeqID,
        log_id=pb.LogID,
        service=pb.service,
        method=pb.method,
        headers=tuple(Header(h.key, h.value) for h in pb.headers),
        payload_encoding=optional("payload_encoding"),  # type: ignore[arg-type]
        payload_type=optional("payload_type"),  # type: ignore[arg-type]
        payload=optional("payload"),  # type: ignore[arg-type]
        log_id_new=optional("LogIDNew"),  # type: ignore[arg-type]
    )


@settings(derandomize=True, max_examples=300, deadline=None)
@given(frames)
def test_what_we_write_the_official_codec_reads(frame: Frame) -> None:
    pb = PbFrame()
    pb.ParseFromString(encode_frame(frame))
    assert pb.IsInitialized()
    assert _from_pb(pb) == frame


@settings(derandomize=True, max_examples=300, deadline=None)
@given(frames)
def test_what_the_official_codec_writes_we_read(frame: Frame) -> None:
    wire = _to_pb(frame).SerializeToString()
    assert decode_frame(wire) == frame
    assert encode_frame(frame) == wire  # the same bytes: fields in number order


def test_a_ping_as_the_official_client_writes_it() -> None:
    pb = PbFrame()
    header = pb.headers.add()
    header.key, header.value = "type", "ping"
    pb.service, pb.method, pb.SeqID, pb.LogID = 7, 0, 0, 0
    frame = decode_frame(pb.SerializeToString())
    assert frame.header("type") == "ping"
    assert frame.header("absent") is None
    assert (frame.service, frame.method, frame.payload) == (7, 0, None)


def test_unknown_fields_of_every_wire_type_are_skipped() -> None:
    wire = encode_frame(Frame(seq_id=1, log_id=2, service=3, method=1, payload=b"x"))
    extra = (
        bytes([10 << 3 | 0]) + b"\x96\x01"  # varint
        + bytes([11 << 3 | 1]) + b"\x00" * 8  # fixed64
        + bytes([12 << 3 | 2, 3]) + b"abc"  # length-delimited
        + bytes([13 << 3 | 5]) + b"\x00" * 4  # fixed32
    )  # fmt: skip
    assert decode_frame(extra + wire) == decode_frame(wire)
    header = bytes([10, 1]) + b"k" + bytes([18, 1]) + b"v" + bytes([24, 5])  # field 3 unknown
    with_header = wire + bytes([42, len(header)]) + header
    assert decode_frame(with_header).headers == (Header("k", "v"),)


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"\x08\x01\x10\x02\x18\x03", "required method"),
        (b"", "required seq_id, log_id, service, method"),
        (b"\x08\x01\x10\x02\x18\x03\x20\x01\x2a\x03\x0a\x01k", "required key or value"),
        (b"\x08" + b"\xff" * 11, "over ten bytes"),
        (b"\x08", "cut short"),
        (b"\x42\x05ab", "past the end"),
        (b"\x0a\x01x", "field 1 is not a varint"),
        (b"\x08\x01\x10\x02\x18\x03\x20\x01\x32\x01\xff", "field 6 is not UTF-8"),
        (b"\x0b\x0c", "groups refused"),
        (b"\x00\x01", "field number 0"),
    ],
)
def test_malformed_frames_are_refused_naming_the_rule(wire: bytes, reason: str) -> None:
    with pytest.raises(FrameError, match=reason):
        decode_frame(wire)


def test_the_bounds_are_kept_both_ways() -> None:
    with pytest.raises(FrameError, match="at most"):
        decode_frame(b"\x00" * (MAX_FRAME_BYTES + 1))
    with pytest.raises(FrameError, match="at most"):
        encode_frame(Frame(payload=b"x" * MAX_FRAME_BYTES))
    many = Frame(headers=(Header("k", "v"),) * (MAX_HEADERS + 1))
    with pytest.raises(FrameError, match="headers"):
        encode_frame(many)
    with pytest.raises(FrameError, match="headers"):
        decode_frame(_to_pb(many).SerializeToString())
    with pytest.raises(FrameError, match="not a uint64"):
        encode_frame(Frame(seq_id=-1))
    with pytest.raises(FrameError, match="not an int32"):
        encode_frame(Frame(service=2**31))


def test_a_negative_int32_is_ten_bytes_as_protobuf_writes_it() -> None:
    frame = Frame(service=-1, method=-(2**31))
    wire = encode_frame(frame)
    assert wire == _to_pb(frame).SerializeToString()
    assert decode_frame(wire) == frame
