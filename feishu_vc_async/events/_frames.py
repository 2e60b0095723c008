"""The long connection's two protobuf messages, ``pbbp2.Frame`` and ``pbbp2.Header``
(``../shared/spec/events.md`` section 3), read and written by hand.

Why not the ``protobuf`` runtime: it is two flat proto2 messages of nine and two fields.
A generated ``_pb2`` module would need ``protoc`` in the build and the runtime as a
dependency of everyone who installs the library (lark-oapi vendors a whole copy of it
for this); the codec below is ~150 lines with no dependency and no generated code, and
``tests/test_frames.py`` checks it against lark-oapi's generated ``pbbp2_pb2`` both ways.

The wire rules kept: varints (int32 ``service``/``method`` as proto2 writes them, a
negative one in ten bytes), length-delimited strings, bytes and sub-messages; fields of
unknown numbers skipped (varint, fixed64, length-delimited and fixed32 wire types; the
deprecated groups refused); the last value of a repeated scalar field wins; the required
fields checked (``SeqID``, ``LogID``, ``service``, ``method``; a header's ``key`` and
``value``). Bounded: a frame of at most ``MAX_FRAME_BYTES``, ``MAX_HEADERS`` headers,
varints of at most ten bytes. Strings must be UTF-8. Anything else is a
:class:`FrameError`.
"""

from __future__ import annotations

from typing import Final

import msgspec

from ..errors import FeishuError

__all__ = [
    "CONTROL",
    "DATA",
    "MAX_FRAME_BYTES",
    "MAX_HEADERS",
    "Frame",
    "FrameError",
    "Header",
    "decode_frame",
    "encode_frame",
]

CONTROL: Final = 0  # Frame.method of a ping or pong
DATA: Final = 1  # Frame.method of an event (or card)
MAX_FRAME_BYTES: Final = 4 * 1024 * 1024
MAX_HEADERS: Final = 1024

_U64: Final = (1 << 64) - 1
_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5


class FrameError(FeishuError, ValueError):
    """Bytes that are not a ``pbbp2.Frame`` (``reason`` says which rule), or a frame
    that cannot be written (a value out of its field's range)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Header(msgspec.Struct, frozen=True):
    key: str
    value: str


class Frame(msgspec.Struct, frozen=True, kw_only=True):
    """A ``pbbp2.Frame``: field names in snake case (``SeqID`` is ``seq_id``, ``LogIDNew``
    ``log_id_new``); an optional field not present is ``None``."""

    seq_id: int = 0
    log_id: int = 0
    service: int = 0
    method: int = CONTROL
    headers: tuple[Header, ...] = ()
    payload_encoding: str | None = None
    payload_type: str | None = None
    payload: bytes | None = None
    log_id_new: str | None = None

    def header(self, key: str) -> str | None:
        """The value of the first header named ``key``, or ``None``."""
        for header in self.headers:
            if header.key == key:
                return header.value
        return None

    def with_header(self, key: str, value: str) -> tuple[Header, ...]:
        """The headers with ``key`` set to ``value`` (replaced, else appended)."""
        kept = tuple(h for h in self.headers if h.key != key)
        return (*kept, Header(key, value))


# --- writing ---------------------------------------------------------------------------


def _varint(value: int, out: bytearray) -> None:
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _tag(number: int, wire: int, out: bytearray) -> None:
    _varint(number << 3 | wire, out)


def _uint64(name: str, value: int) -> int:
    if not 0 <= value <= _U64:
        raise FrameError(f"{name}={value} is not a uint64")
    return value


def _int32(name: str, value: int) -> int:
    if not -(1 << 31) <= value < 1 << 31:
        raise FrameError(f"{name}={value} is not an int32")
    return value & _U64  # a negative int32 is written sign-extended, in ten bytes


def _chunk(number: int, data: bytes, out: bytearray) -> None:
    _tag(number, _LEN, out)
    _varint(len(data), out)
    out += data


def encode_frame(frame: Frame) -> bytes:
    """The wire bytes of ``frame`` (fields in number order, as protoc's writers do)."""
    out = bytearray()
    for number, value in (
        (1, _uint64("seq_id", frame.seq_id)),
        (2, _uint64("log_id", frame.log_id)),
        (3, _int32("service", frame.service)),
        (4, _int32("method", frame.method)),
    ):
        _tag(number, _VARINT, out)
        _varint(value, out)
    if len(frame.headers) > MAX_HEADERS:
        raise FrameError(f"{len(frame.headers)} headers (at most {MAX_HEADERS})")
    for header in frame.headers:
        inner = bytearray()
        _chunk(1, header.key.encode(), inner)
        _chunk(2, header.value.encode(), inner)
        _chunk(5, bytes(inner), out)
    for number, text in ((6, frame.payload_encoding), (7, frame.payload_type)):
        if text is not None:
            _chunk(number, text.encode(), out)
    if frame.payload is not None:
        _chunk(8, frame.payload, out)
    if frame.log_id_new is not None:
        _chunk(9, frame.log_id_new.encode(), out)
    if len(out) > MAX_FRAME_BYTES:
        raise FrameError(f"a frame of {len(out)} bytes (at most {MAX_FRAME_BYTES})")
    return bytes(out)


# --- reading ---------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def more(self) -> bool:
        return self.pos < len(self.data)

    def varint(self) -> int:
        value = shift = 0
        for _ in range(10):
            if self.pos >= len(self.data):
                raise FrameError(f"{self.what}: a varint cut short")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value & _U64
            shift += 7
        raise FrameError(f"{self.what}: a varint over ten bytes")

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise FrameError(f"{self.what}: a field of {size} bytes past the end")
        chunk, self.pos = self.data[self.pos : end], end
        return chunk

    def field(self) -> tuple[int, int, int | bytes]:
        """(number, wire type, value) of the next field."""
        key = self.varint()
        number, wire = key >> 3, key & 7
        if number == 0:
            raise FrameError(f"{self.what}: field number 0")
        if wire == _VARINT:
            return number, wire, self.varint()
        if wire == _LEN:
            return number, wire, self.take(self.varint())
        if wire == _FIXED64:
            return number, wire, self.take(8)
        if wire == _FIXED32:
            return number, wire, self.take(4)
        raise FrameError(f"{self.what}: field {number} of wire type {wire} (groups refused)")


def _text(what: str, value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise FrameError(f"{what} is not UTF-8") from None


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF  # protobuf reads an int32 as the low 32 bits of the varint
    return value - (1 << 32) if value >= 1 << 31 else value


def _decode_header(data: bytes) -> Header:
    reader = _Reader(data, "a header")
    found: dict[int, str] = {}
    while reader.more():
        number, wire, value = reader.field()
        if number in (1, 2):
            if wire != _LEN or not isinstance(value, bytes):
                raise FrameError(f"header field {number} is not length-delimited")
            found[number] = _text(f"header field {number}", value)
    if 1 not in found or 2 not in found:
        raise FrameError("a header without its required key or value")
    return Header(found[1], found[2])


_VARINT_FIELDS: Final = {1: "seq_id", 2: "log_id", 3: "service", 4: "method"}


def decode_frame(data: bytes) -> Frame:
    """The frame ``data`` holds; :class:`FrameError` naming the rule it breaks."""
    if len(data) > MAX_FRAME_BYTES:
        raise FrameError(f"a frame of {len(data)} bytes (at most {MAX_FRAME_BYTES})")
    reader = _Reader(bytes(data), "a frame")
    numbers: dict[int, int] = {}
    texts: dict[int, str] = {}
    headers: list[Header] = []
    payload: bytes | None = None
    while reader.more():
        number, wire, value = reader.field()
        if number in _VARINT_FIELDS:
            if wire != _VARINT or not isinstance(value, int):
                raise FrameError(f"frame field {number} is not a varint")
            numbers[number] = value
        elif 5 <= number <= 9:
            if wire != _LEN or not isinstance(value, bytes):
                raise FrameError(f"frame field {number} is not length-delimited")
            if number == 5:
                if len(headers) >= MAX_HEADERS:
                    raise FrameError(f"over {MAX_HEADERS} headers")
                headers.append(_decode_header(value))
            elif number == 8:
                payload = value
            else:
                texts[number] = _text(f"frame field {number}", value)
    missing = [name for number, name in _VARINT_FIELDS.items() if number not in numbers]
    if missing:
        raise FrameError(f"a frame without its required {', '.join(missing)}")
    return Frame(
        seq_id=numbers[1],
        log_id=numbers[2],
        service=_signed32(numbers[3]),
        method=_signed32(numbers[4]),
        headers=tuple(headers),
        payload_encoding=texts.get(6),
        payload_type=texts.get(7),
        payload=payload,
        log_id_new=texts.get(9),
    )
