"""The AWS event-stream binary framing, as aws-c-event-stream reads and writes it: a pure codec.

Why our own: the component's SDK (awsiotsdk → awscrt → aws-c-event-stream) speaks this framing over the
IPC socket, and a few hundred lines of stdlib code spare the nucleus a native dependency.

A message on the wire (all integers big-endian; CRC32 is zlib's)::

    total_length u32 | headers_length u32 | prelude CRC32 (of the 8 bytes before it)
    | headers (headers_length bytes) | payload | message CRC32 (of every byte before it)

A header is ``name_length u8 | name (UTF-8) | type u8 | value``; the value by type:

    0 true, 1 false      no bytes
    2 byte               int8
    3 int16, 4 int32, 5 int64     signed, big-endian
    6 byte_buf, 7 string          u16 length | bytes (string: UTF-8)
    8 timestamp          int64 milliseconds since the epoch (kept as that int here)
    9 uuid               16 bytes

Limits, as aws-c-event-stream's ``event_stream.h`` sets them: a whole message is at most 24 MiB, a header
name at most 255 bytes, a byte_buf or string value at most 32767 bytes (INT16_MAX, not 65535: the C
decoder refuses longer ones), and at most 1024 headers a message. The last bounds memory: 24 MiB of
two-byte headers would otherwise become millions of Python objects.

`Decoder` takes bytes split anywhere and returns whole `Message`s; anything malformed raises
`FramingError` — never another exception — and the decoder stays broken (the stream has lost its
framing; the connection must end). The prelude is checked as soon as its 12 bytes arrive, so a bad length
is refused before anything is buffered for it.
"""

from __future__ import annotations

import enum
import struct
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Union

from nucleus.errors import NucleusError

MAX_MESSAGE_SIZE = 24 * 1024 * 1024
MAX_HEADER_NAME_LENGTH = 255
MAX_HEADER_VALUE_LENGTH = 32767
MAX_HEADERS = 1024
PRELUDE_SIZE = 12
TRAILER_SIZE = 4
MIN_MESSAGE_SIZE = PRELUDE_SIZE + TRAILER_SIZE

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_LENGTHS = struct.Struct(">II")
_PRELUDE = struct.Struct(">III")
_FIXED = {2: struct.Struct(">b"), 3: struct.Struct(">h"), 4: struct.Struct(">i"), 5: struct.Struct(">q"), 8: struct.Struct(">q")}


class HeaderType(enum.IntEnum):
    """The wire code of a header's value type."""

    BOOL_TRUE = 0
    BOOL_FALSE = 1
    BYTE = 2
    INT16 = 3
    INT32 = 4
    INT64 = 5
    BYTE_BUF = 6
    STRING = 7
    TIMESTAMP = 8
    UUID = 9


HeaderValue = Union[bool, int, bytes, str, uuid.UUID]
_TYPES = tuple(HeaderType)  # wire code → type, without an enum call per header

_INT_RANGES = {
    HeaderType.BYTE: (-(2**7), 2**7 - 1),
    HeaderType.INT16: (-(2**15), 2**15 - 1),
    HeaderType.INT32: (-(2**31), 2**31 - 1),
    HeaderType.INT64: (-(2**63), 2**63 - 1),
    HeaderType.TIMESTAMP: (-(2**63), 2**63 - 1),
}


class FramingError(NucleusError):
    """The peer's bytes are not valid event-stream framing; `reason` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, where="event-stream")
        self.reason = reason


@dataclass(frozen=True)
class Header:
    """One typed header. Booleans carry their value (the type follows it); timestamps are int milliseconds."""

    name: str
    type: HeaderType
    value: HeaderValue

    @classmethod
    def string(cls, name: str, value: str) -> Header:
        return cls(name, HeaderType.STRING, value)

    @classmethod
    def int32(cls, name: str, value: int) -> Header:
        return cls(name, HeaderType.INT32, value)

    @classmethod
    def boolean(cls, name: str, value: bool) -> Header:
        return cls(name, HeaderType.BOOL_TRUE if value else HeaderType.BOOL_FALSE, value)


@dataclass(frozen=True)
class Message:
    """A decoded (or to-be-encoded) message: its headers in wire order, and its payload."""

    headers: tuple[Header, ...]
    payload: bytes

    def header(self, name: str, type: HeaderType) -> HeaderValue | None:
        """The first header of that name (any case, as the C library and the SDK match) and type, or None."""
        wanted = name.lower()
        for header in self.headers:
            if header.type == type and header.name.lower() == wanted:
                return header.value
        return None


# ---------------------------------------------------------------------------------------------- encoding


def _encode_header(header: Header) -> bytes:
    name = header.name.encode("utf-8")
    if len(name) > MAX_HEADER_NAME_LENGTH:
        raise ValueError(f"header name {header.name!r} is longer than {MAX_HEADER_NAME_LENGTH} bytes")
    kind, value = header.type, header.value
    head = bytes([len(name)]) + name
    if kind in (HeaderType.BOOL_TRUE, HeaderType.BOOL_FALSE):
        if value is not (kind == HeaderType.BOOL_TRUE):
            raise ValueError(f"header {header.name!r}: type {kind.name} does not match value {value!r}")
        return head + bytes([kind])
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ValueError(f"header {header.name!r}: {value!r} is not a {kind.name} ({low}..{high})")
        return head + bytes([kind]) + _FIXED[kind].pack(value)
    if kind in (HeaderType.BYTE_BUF, HeaderType.STRING):
        if kind == HeaderType.STRING and isinstance(value, str):
            raw = value.encode("utf-8")
        elif kind == HeaderType.BYTE_BUF and isinstance(value, (bytes, bytearray)):
            raw = bytes(value)
        else:
            raise ValueError(f"header {header.name!r}: {value!r} is not a {kind.name} value")
        if len(raw) > MAX_HEADER_VALUE_LENGTH:
            raise ValueError(f"header {header.name!r}: value is longer than {MAX_HEADER_VALUE_LENGTH} bytes")
        return head + bytes([kind]) + _U16.pack(len(raw)) + raw
    if kind == HeaderType.UUID:
        if not isinstance(value, uuid.UUID):
            raise ValueError(f"header {header.name!r}: {value!r} is not a uuid.UUID")
        return head + bytes([kind]) + value.bytes
    raise ValueError(f"header {header.name!r}: unknown type {kind!r}")


def encode_headers(headers: Iterable[Header]) -> bytes:
    """The headers section: each header's bytes, in order."""
    encoded = [_encode_header(header) for header in headers]
    if len(encoded) > MAX_HEADERS:
        raise ValueError(f"{len(encoded)} headers: a peer refuses more than {MAX_HEADERS}")
    return b"".join(encoded)


def encode_message(headers: Iterable[Header], payload: bytes = b"") -> bytes:
    """One whole framed message. Raises ValueError for a value out of range or a message over 24 MiB."""
    encoded = encode_headers(headers)
    total = PRELUDE_SIZE + len(encoded) + len(payload) + TRAILER_SIZE
    if total > MAX_MESSAGE_SIZE:
        raise ValueError(f"a message of {total} bytes is over the {MAX_MESSAGE_SIZE}-byte limit")
    lengths = _LENGTHS.pack(total, len(encoded))
    prelude = lengths + _U32.pack(zlib.crc32(lengths))
    body = prelude + encoded + payload
    return body + _U32.pack(zlib.crc32(body))


# ---------------------------------------------------------------------------------------------- decoding


def decode_headers(data: bytes | memoryview) -> tuple[Header, ...]:
    """Parse a headers section that must be consumed exactly; raises FramingError otherwise."""
    view = memoryview(data)
    end = len(view)
    headers: list[Header] = []
    pos = 0
    while pos < end:
        if len(headers) == MAX_HEADERS:
            raise FramingError(f"more than {MAX_HEADERS} headers")
        name_length = view[pos]
        pos += 1
        if pos + name_length + 1 > end:
            raise FramingError("truncated header")
        name = _text(view[pos : pos + name_length], "header name")
        pos += name_length
        code = view[pos]
        pos += 1
        if code >= len(_TYPES):
            raise FramingError(f"unknown header type {code}")
        kind = _TYPES[code]
        value: HeaderValue
        if kind == HeaderType.BOOL_TRUE or kind == HeaderType.BOOL_FALSE:
            value = kind == HeaderType.BOOL_TRUE
        elif kind in _FIXED:
            size = _FIXED[kind].size
            if pos + size > end:
                raise FramingError("truncated header")
            value = _FIXED[kind].unpack_from(view, pos)[0]
            pos += size
        elif kind == HeaderType.UUID:
            if pos + 16 > end:
                raise FramingError("truncated header")
            value = uuid.UUID(bytes=bytes(view[pos : pos + 16]))
            pos += 16
        else:  # BYTE_BUF or STRING
            if pos + 2 > end:
                raise FramingError("truncated header")
            length = _U16.unpack_from(view, pos)[0]
            pos += 2
            if length > MAX_HEADER_VALUE_LENGTH:
                raise FramingError(f"header value of {length} bytes is over {MAX_HEADER_VALUE_LENGTH}")
            if pos + length > end:
                raise FramingError("truncated header")
            raw = view[pos : pos + length]
            value = _text(raw, "string header") if kind == HeaderType.STRING else bytes(raw)
            pos += length
        headers.append(Header(name, kind, value))
    return tuple(headers)


def _text(raw: memoryview, what: str) -> str:
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise FramingError(f"{what} is not UTF-8") from None


def _check_prelude(data: bytes | bytearray | memoryview) -> tuple[int, int]:
    """(total_length, headers_length) of a prelude, after its CRC and every length rule."""
    total, headers_length, crc = _PRELUDE.unpack_from(data, 0)
    if zlib.crc32(bytes(data[:8])) != crc:
        raise FramingError("prelude CRC mismatch")
    if total < MIN_MESSAGE_SIZE:
        raise FramingError(f"total length {total} is shorter than prelude and trailer")
    if total > MAX_MESSAGE_SIZE:
        raise FramingError(f"total length {total} is over the {MAX_MESSAGE_SIZE}-byte limit")
    if headers_length > total - MIN_MESSAGE_SIZE:
        raise FramingError(f"headers length {headers_length} does not fit in a {total}-byte message")
    return total, headers_length


def _decode_frame(frame: bytes | bytearray | memoryview, headers_length: int) -> Message:
    """A whole frame whose prelude is already checked: verify the message CRC, then parse."""
    view = memoryview(frame)
    (crc,) = _U32.unpack_from(view, len(view) - TRAILER_SIZE)
    if zlib.crc32(view[:-TRAILER_SIZE]) != crc:
        raise FramingError("message CRC mismatch")
    headers_end = PRELUDE_SIZE + headers_length
    headers = decode_headers(view[PRELUDE_SIZE:headers_end])
    return Message(headers, bytes(view[headers_end:-TRAILER_SIZE]))


def decode_message(data: bytes) -> Message:
    """Exactly one whole message; raises FramingError if it is malformed, short or followed by more bytes."""
    if len(data) < PRELUDE_SIZE:
        raise FramingError("truncated prelude")
    total, headers_length = _check_prelude(data)
    if len(data) != total:
        raise FramingError(f"{len(data)} bytes given for a {total}-byte message")
    return _decode_frame(data, headers_length)


class Decoder:
    """Incremental decoding: `feed` bytes split anywhere, get back the messages they complete."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._frame: tuple[int, int] | None = None  # (total, headers_length) once the prelude checked out
        self._broken: FramingError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held towards a message not yet complete (non-zero at end of input means a cut message)."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Message]:
        if self._broken is not None:
            raise self._broken
        self._buffer += data
        messages: list[Message] = []
        try:
            while True:
                if self._frame is None:
                    if len(self._buffer) < PRELUDE_SIZE:
                        break
                    self._frame = _check_prelude(self._buffer)
                total, headers_length = self._frame
                if len(self._buffer) < total:
                    break
                with memoryview(self._buffer) as view:
                    frame = bytes(view[:total])
                del self._buffer[:total]
                self._frame = None
                messages.append(_decode_frame(frame, headers_length))
        except FramingError as error:
            self._broken = error
            self._buffer.clear()
            raise
        return messages

