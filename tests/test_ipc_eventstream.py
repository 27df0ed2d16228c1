"""nucleus.ipc.eventstream with plain bytes: known answers, round trips, every split, every kind of bad frame.

The three known-answer frames are the ones aws-c-event-stream's own tests decode
(tests/message_deserializer_test.c): an empty message, a payload only, and one string header.
"""

from __future__ import annotations

import struct
import uuid
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nucleus.ipc.eventstream import (
    MAX_HEADER_VALUE_LENGTH,
    MAX_HEADERS,
    MAX_MESSAGE_SIZE,
    Decoder,
    FramingError,
    Header,
    HeaderType,
    Message,
    decode_message,
    encode_message,
)

EMPTY = bytes.fromhex("00000010 00000000 05c248eb 7d98c8ff")
PAYLOAD_ONLY = bytes.fromhex("0000001d 00000000 fd528c5a") + b"{'foo':'bar'}" + bytes.fromhex("c3653936")
ONE_HEADER = (
    bytes.fromhex("0000003d 00000020 07fd8396")
    + b"\x0ccontent-type\x07\x00\x10application/json"
    + b"{'foo':'bar'}"
    + bytes.fromhex("8d9c08b1")
)

UUID = uuid.UUID("12345678-1234-5678-9abc-def012345678")

# one header of each type, with the value at an edge where there is one
EVERY_TYPE = (
    Header("t", HeaderType.BOOL_TRUE, True),
    Header("f", HeaderType.BOOL_FALSE, False),
    Header("byte", HeaderType.BYTE, -128),
    Header("int16", HeaderType.INT16, 32767),
    Header("int32", HeaderType.INT32, -(2**31)),
    Header("int64", HeaderType.INT64, 2**63 - 1),
    Header("buf", HeaderType.BYTE_BUF, b"\x00\xff" * 3),
    Header("str", HeaderType.STRING, "héllo ☃"),
    Header("ts", HeaderType.TIMESTAMP, 1_700_000_000_123),
    Header("id", HeaderType.UUID, UUID),
)


def frame(total: int, headers_length: int, body: bytes = b"", *, prelude_crc: int | None = None) -> bytes:
    """A frame built by hand, to say exactly what is wrong with it."""
    prelude = struct.pack(">II", total, headers_length)
    prelude += struct.pack(">I", zlib.crc32(prelude) if prelude_crc is None else prelude_crc)
    data = prelude + body
    return data + struct.pack(">I", zlib.crc32(data))


def frame_with_headers(raw_headers: bytes, payload: bytes = b"") -> bytes:
    return frame(16 + len(raw_headers) + len(payload), len(raw_headers), raw_headers + payload)


# ------------------------------------------------------------------------------------------ known answers


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (EMPTY, Message((), b"")),
        (PAYLOAD_ONLY, Message((), b"{'foo':'bar'}")),
        (ONE_HEADER, Message((Header.string("content-type", "application/json"),), b"{'foo':'bar'}")),
    ],
)
def test_known_frames_decode_and_encode_byte_for_byte(data: bytes, message: Message) -> None:
    assert decode_message(data) == message
    assert Decoder().feed(data) == [message]
    assert encode_message(message.headers, message.payload) == data


def test_each_header_type_has_its_wire_encoding() -> None:
    raw = encode_message(EVERY_TYPE)[12:-4]
    expected = (
        b"\x01t\x00"
        + b"\x01f\x01"
        + b"\x04byte\x02\x80"
        + b"\x05int16\x03\x7f\xff"
        + b"\x05int32\x04\x80\x00\x00\x00"
        + b"\x05int64\x05\x7f\xff\xff\xff\xff\xff\xff\xff"
        + b"\x03buf\x06\x00\x06\x00\xff\x00\xff\x00\xff"
        + b"\x03str\x07\x00\x0a" + "héllo ☃".encode()
        + b"\x02ts\x08" + (1_700_000_000_123).to_bytes(8, "big")
        + b"\x02id\x09" + UUID.bytes
    )
    assert raw == expected


# ---------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("header", EVERY_TYPE, ids=lambda h: h.type.name)
def test_every_header_type_round_trips(header: Header) -> None:
    message = Message((header,), b"payload")
    assert decode_message(encode_message(message.headers, message.payload)) == message


def test_header_lookup_ignores_case_and_checks_type() -> None:
    message = Message((Header.string(":Content-Type", "application/json"), Header.int32("n", 1)), b"")
    assert message.header(":content-type", HeaderType.STRING) == "application/json"
    assert message.header("n", HeaderType.STRING) is None
    assert message.header("missing", HeaderType.INT32) is None


def _header_strategy() -> st.SearchStrategy[Header]:
    name = st.text(max_size=20).filter(lambda n: len(n.encode()) <= 255)
    ints = {
        HeaderType.BYTE: st.integers(-(2**7), 2**7 - 1),
        HeaderType.INT16: st.integers(-(2**15), 2**15 - 1),
        HeaderType.INT32: st.integers(-(2**31), 2**31 - 1),
        HeaderType.INT64: st.integers(-(2**63), 2**63 - 1),
        HeaderType.TIMESTAMP: st.integers(-(2**63), 2**63 - 1),
    }
    values = [
        st.builds(Header.boolean, name, st.booleans()),
        *(st.builds(Header, name, st.just(kind), strategy) for kind, strategy in ints.items()),
        st.builds(Header, name, st.just(HeaderType.BYTE_BUF), st.binary(max_size=64)),
        st.builds(Header, name, st.just(HeaderType.STRING), st.text(max_size=64)),
        st.builds(Header, name, st.just(HeaderType.UUID), st.uuids()),
    ]
    return st.one_of(values)


MESSAGES = st.builds(Message, st.lists(_header_strategy(), max_size=8).map(tuple), st.binary(max_size=256))


@given(MESSAGES)
def test_any_message_round_trips(message: Message) -> None:
    assert decode_message(encode_message(message.headers, message.payload)) == message


@given(st.lists(MESSAGES, min_size=1, max_size=4), st.lists(st.integers(min_value=1, max_value=64), max_size=40))
def test_messages_come_out_whole_whatever_the_chunking(messages: list[Message], cuts: list[int]) -> None:
    data = b"".join(encode_message(m.headers, m.payload) for m in messages)
    decoder, out, pos = Decoder(), [], 0
    for size in cuts:
        out += decoder.feed(data[pos : pos + size])
        pos += size
    out += decoder.feed(data[pos:])
    assert out == messages
    assert decoder.buffered == 0


def test_every_split_point_of_two_messages_gives_both() -> None:
    first, second = Message(EVERY_TYPE, b"first payload"), Message((), b"second")
    data = encode_message(first.headers, first.payload) + encode_message(second.headers, second.payload)
    for split in range(len(data) + 1):
        decoder = Decoder()
        assert decoder.feed(data[:split]) + decoder.feed(data[split:]) == [first, second], split


def test_byte_by_byte_feeding_gives_the_message_on_its_last_byte() -> None:
    data = encode_message(EVERY_TYPE, b"x" * 100)
    decoder = Decoder()
    for i, byte in enumerate(data[:-1]):
        assert decoder.feed(bytes([byte])) == []
        assert decoder.buffered == i + 1
    assert decoder.feed(data[-1:]) == [Message(EVERY_TYPE, b"x" * 100)]


def test_every_prefix_of_a_message_waits_for_more_and_is_refused_as_whole() -> None:
    data = encode_message(EVERY_TYPE, b"payload")
    for cut in range(len(data)):
        decoder = Decoder()
        assert decoder.feed(data[:cut]) == []
        assert decoder.buffered == cut
        with pytest.raises(FramingError):
            decode_message(data[:cut])


def test_a_message_of_exactly_24_mib_passes() -> None:
    payload = b"\x00" * (MAX_MESSAGE_SIZE - 16)
    data = encode_message((), payload)
    assert len(data) == MAX_MESSAGE_SIZE
    assert Decoder().feed(data) == [Message((), payload)]


# ------------------------------------------------------------------------------------------------ bad frames


def _refused(data: bytes) -> str:
    with pytest.raises(FramingError) as caught:
        Decoder().feed(data)
    with pytest.raises(FramingError):
        decode_message(data)
    return caught.value.reason


def test_bad_prelude_crc() -> None:
    assert _refused(frame(16, 0, prelude_crc=0)) == "prelude CRC mismatch"


def test_bad_message_crc() -> None:
    data = bytearray(PAYLOAD_ONLY)
    data[14] ^= 0x01
    assert _refused(bytes(data)) == "message CRC mismatch"


def test_total_length_shorter_than_prelude_and_trailer() -> None:
    assert "shorter than prelude and trailer" in _refused(frame(15, 0)[:15])


def test_headers_length_past_the_message() -> None:
    assert "does not fit" in _refused(frame(20, 5, b"abcd"))


def test_a_prelude_over_24_mib_is_refused_before_anything_is_buffered() -> None:
    prelude = frame(MAX_MESSAGE_SIZE + 1, 0)[:12]
    with pytest.raises(FramingError, match="over the 25165824-byte limit"):
        Decoder().feed(prelude)


def test_unknown_header_type() -> None:
    assert _refused(frame_with_headers(b"\x01x\x0a")) == "unknown header type 10"


@pytest.mark.parametrize(
    "raw",
    [
        b"\x05ab",  # name runs past the headers
        b"\x01a",  # no type byte
        b"\x01a\x04\x00\x00",  # int32 cut short
        b"\x01a\x07\x00",  # string length cut short
        b"\x01a\x07\x00\x05abc",  # string value cut short
        b"\x01a\x09" + b"\x00" * 15,  # uuid cut short
    ],
)
def test_truncated_header(raw: bytes) -> None:
    assert _refused(frame_with_headers(raw, b"payload")) == "truncated header"


def test_string_value_over_32767_bytes() -> None:
    length = MAX_HEADER_VALUE_LENGTH + 1
    raw = b"\x01a\x07" + struct.pack(">H", length) + b"x" * length
    assert "over 32767" in _refused(frame_with_headers(raw))


def test_more_than_1024_headers() -> None:
    raw = b"\x00\x00" * (MAX_HEADERS + 1)  # empty name, type true: two bytes each
    assert _refused(frame_with_headers(raw)) == "more than 1024 headers"
    assert len(decode_message(frame_with_headers(raw[:-2])).headers) == MAX_HEADERS


def test_a_string_that_is_not_utf8() -> None:
    assert _refused(frame_with_headers(b"\x01a\x07\x00\x01\xff")) == "string header is not UTF-8"
    assert _refused(frame_with_headers(b"\x01\xff\x00")) == "header name is not UTF-8"


def test_trailing_bytes_after_a_whole_message() -> None:
    with pytest.raises(FramingError, match="given for a 16-byte message"):
        decode_message(EMPTY + b"\x00")


def test_the_decoder_stays_broken_after_an_error() -> None:
    decoder = Decoder()
    with pytest.raises(FramingError):
        decoder.feed(frame(16, 0, prelude_crc=1))
    with pytest.raises(FramingError, match="prelude CRC"):
        decoder.feed(EMPTY)


def test_framing_error_is_a_one_line_nucleus_error() -> None:
    error = FramingError("prelude CRC mismatch")
    assert str(error) == "event-stream: prelude CRC mismatch"


# ------------------------------------------------------------------------------------------------- fuzzing


def _only_messages_or_framing_error(chunks: list[bytes]) -> None:
    decoder = Decoder()
    try:
        for chunk in chunks:
            for message in decoder.feed(chunk):
                assert isinstance(message, Message)
    except FramingError as error:
        assert error.reason


@settings(max_examples=400)
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_random_bytes_give_messages_or_a_framing_error_only(chunks: list[bytes]) -> None:
    _only_messages_or_framing_error(chunks)


@settings(max_examples=400)
@given(MESSAGES, st.data())
def test_damaged_frames_give_messages_or_a_framing_error_only(message: Message, data: st.DataObject) -> None:
    raw = bytearray(encode_message(message.headers, message.payload))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    _only_messages_or_framing_error([bytes(raw[:cut]), bytes(raw[cut:])])


@settings(max_examples=300)
@given(st.binary(max_size=200), st.data())
def test_valid_crcs_around_random_headers_give_messages_or_a_framing_error_only(
    raw_headers: bytes, data: st.DataObject
) -> None:
    # random header bytes behind correct CRCs reach the header parser itself
    payload = data.draw(st.binary(max_size=16))
    _only_messages_or_framing_error([frame_with_headers(raw_headers, payload)])


# ------------------------------------------------------------------------------------------------- encoding


@pytest.mark.parametrize(
    "header",
    [
        Header("b", HeaderType.BYTE, 128),
        Header("s", HeaderType.INT16, -32769),
        Header("i", HeaderType.INT32, 2**31),
        Header("l", HeaderType.INT64, 2**63),
        Header("t", HeaderType.TIMESTAMP, -(2**63) - 1),
        Header("i", HeaderType.INT32, True),
        Header("t", HeaderType.BOOL_TRUE, False),
        Header("s", HeaderType.STRING, b"bytes"),
        Header("b", HeaderType.BYTE_BUF, "text"),
        Header("s", HeaderType.STRING, "x" * (MAX_HEADER_VALUE_LENGTH + 1)),
        Header("n" * 256, HeaderType.BOOL_TRUE, True),
        Header("u", HeaderType.UUID, "not a uuid"),
    ],
)
def test_the_encoder_refuses_values_the_wire_cannot_carry(header: Header) -> None:
    with pytest.raises(ValueError):
        encode_message((header,))


def test_the_encoder_refuses_more_headers_than_a_peer_takes() -> None:
    assert len(decode_message(encode_message([Header.boolean("", True)] * MAX_HEADERS)).headers) == MAX_HEADERS
    with pytest.raises(ValueError, match="refuses more than 1024"):
        encode_message([Header.boolean("", True)] * (MAX_HEADERS + 1))


def test_the_encoder_refuses_a_message_over_24_mib() -> None:
    with pytest.raises(ValueError, match="over the 25165824-byte limit"):
        encode_message((), b"\x00" * (MAX_MESSAGE_SIZE - 15))
