"""The OSC address space parsed from recorded datagrams: no sockets, no model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pythonosc.osc_message import OscMessage

from bridge.daemon import requests as rq
from bridge.engine.regions import Region
from bridge.transports.osc.protocol import (ADDRESSES, ProtocolError, fitting, is_reply, parse, reply_args,
                                           split_token)

OSC_DOC = (Path(__file__).resolve().parents[3] / "docs" / "osc.md").read_text()

# What Max's udpsend and python-osc put on the wire.
PING = b"/dd/ping\x00\x00\x00\x00,\x00\x00\x00"
VARY_WITH_ID_FLOAT_COUNT_OPTION = (b"/dd/vary\x00\x00\x00\x00,ssfs\x00\x00\x00#r1\x00/tmp/a b.wav\x00\x00\x00\x00"
                                   b"@\x80\x00\x00noise=0.3\x00\x00\x00")
SET_NOISE_FLOAT32 = b"/dd/set\x00,sf\x00noise\x00\x00\x00>\x99\x99\x9a"  # 0.3 as a 32-bit float


def parse_datagram(datagram: bytes) -> rq.Request:
    message = OscMessage(datagram)
    return parse(message.address, list(message.params))


def test_recorded_datagrams():
    assert parse_datagram(PING) == rq.Ping()
    vary = parse_datagram(VARY_WITH_ID_FLOAT_COUNT_OPTION)
    assert vary == rq.Vary(request_id="#r1", path="/tmp/a b.wav", count=4, options=rq.Options(noise=0.3))
    assert isinstance(vary.count, int)
    assert parse_datagram(SET_NOISE_FLOAT32) == rq.Set(key="noise", value=0.3)  # not 0.30000001192092896


@pytest.mark.parametrize("address, args, expected", [
    ("/dd/vary", [], rq.Vary()),
    ("/dd/vary", [""], rq.Vary()),
    ("/dd/vary", [3], rq.Vary(count=3)),  # a leading number is the count: the selected clip
    ("/dd/vary", ["/a.wav", 2, 0.25, "seed=9", "folder=/x"],
     rq.Vary(path="/a.wav", count=2, noise=0.25, options=rq.Options(seed=9, folder="/x"))),
    ("/dd/generate", [2.0, 1.5], rq.Generate(count=2, seconds=1.5)),
    ("/dd/interpolate", ["/a.wav", "/b.wav", 7], rq.Interpolate(a="/a.wav", b="/b.wav", count=7)),
    ("/dd/set", ["seed", "random"], rq.Set(key="seed", value=None)),
    ("/dd/set", ["prefetch", 0], rq.Set(key="prefetch", value=0)),
    ("/dd/set", ["sampler", "DPMPP-2M"], rq.Set(key="sampler", value="dpmpp-2m")),
    ("/dd/hello", [9005], rq.Hello(port=9005)),
    ("/dd/hello", [], rq.Hello()),
    ("/dd/select", ["#7", "/a.wav"], rq.Select(request_id="#7", path="/a.wav")),
    # Regions: seconds in the source file, as text options (Max sends "start=1.25" built from floats).
    ("/dd/select", ["/a.wav", "start=1.0", "end=1.2"], rq.Select(path="/a.wav", region=Region(1.0, 1.2))),
    ("/dd/select", ["/a.wav", "end=0.5", "tail=0.25"], rq.Select(path="/a.wav", region=Region(0.0, 0.5, 0.25))),
    ("/dd/vary", ["/a.wav", 4, 0.3, "start=1.0", "end=1.2"],
     rq.Vary(path="/a.wav", count=4, noise=0.3, options=rq.Options(start=1.0, end=1.2))),
    ("/dd/interpolate", ["/a.wav", "/b.wav", "start=0.5", "b_start=1", "b_end=1.5"],
     rq.Interpolate(a="/a.wav", b="/b.wav", options=rq.Options(start=0.5, b_start=1.0, b_end=1.5))),
    ("/dd/status", [], rq.Status()),
    ("/dd/cancel", [], rq.Cancel()),
    ("/dd/cancel", ["#c", "request=#r17"], rq.Cancel(request_id="#c", only="#r17")),  # one request of the sender's
    # Audition's level, as a MIDI note's velocity (Max sends numbers in options as text).
    ("/dd/vary", ["velocity=64"], rq.Vary(velocity=64, options=rq.Options(velocity=64))),
    ("/dd/play", ["/a.wav", "velocity=100.0"], rq.Play(path="/a.wav", velocity=100)),
    ("/dd/play", ["/a.wav"], rq.Play(path="/a.wav", velocity=127)),
])
def test_requests(address, args, expected):
    assert parse(address, args) == expected


@pytest.mark.parametrize("address, args, message", [
    ("/dd/vary", ["/a.wav", 4.5], "count must be a whole number in 1..64, not 4.5"),
    ("/dd/vary", ["/a.wav", 65], "count must be in 1..64, not 65"),
    ("/dd/vary", ["/a.wav", 1, -0.1], "noise must be in 0..1"),
    ("/dd/vary", ["/a.wav", 1, float("nan")], "finite"),
    ("/dd/vary", ["/a.wav", "four"], "count must be a number, not 'four'"),
    ("/dd/vary", ["/a.wav", "steps=5000"], "steps must be in 1..1000"),
    ("/dd/vary", ["/a.wav", "format=mp3"], "format must be one of pcm16, pcm24, float"),
    ("/dd/vary", ["/a.wav", "seed=1", 3], "after options"),
    ("/dd/vary", ["/a.wav", 1, 0.5, 7], "takes 0..2 arguments"),
    ("/dd/select", [], "usage: /dd/select <path>"),
    ("/dd/select", [1.0], "must be a file path"),
    ("/dd/ping", ["extra"], "takes 0 arguments"),
    ("/dd/cancel", ["#r17"], "request=#ID, the id of a request of yours"),
    ("/dd/set", ["noise"], "takes 2 arguments"),
    ("/dd/set", ["loudness", 1], "unknown key 'loudness'"),
    ("/dd/set", ["folder", 3], "must be a name or path"),
    ("/dd/hello", [70000], "port must be in 1..65535"),
    ("/dd/status", ["seed=1"], "takes no key=value options"),
    ("/dd/select", ["/a.wav", "start=1.2", "end=1.0"], "start (1.2 s) must be before end (1 s)"),
    ("/dd/select", ["/a.wav", "start=-1"], "start must be in 0..86400, not -1"),
    ("/dd/vary", ["/a.wav", "start=1", "end=1"], "must be before end"),
    ("/dd/vary", ["/a.wav", "end=soon"], "end must be a number, not 'soon'"),
    ("/dd/select", ["/a.wav", "seed=1"], "unknown option 'seed'; known: start, end, tail"),
    ("/dd/generate", ["start=1"], "unknown option 'start'"),
    ("/dd/interpolate", ["/a.wav", "/b.wav", "b_start=2", "b_end=1"], "must be before end"),
    ("/dd/vary", ["velocity=0"], "velocity must be in 1..127, not 0"),
    ("/dd/play", ["/a.wav", "velocity=128"], "velocity must be in 1..127, not 128"),
    ("/dd/play", ["/a.wav", "velocity=loud"], "velocity must be a number, not 'loud'"),
    ("/dd/play", ["/a.wav", "seed=1"], "unknown option 'seed'; known: velocity"),
    ("/dd/generate", ["velocity=64"], "unknown option 'velocity'"),
    ("/dd/nope", [], "unknown address; known: /dd/ping"),
    ("/other", [], "unknown address"),
])
def test_errors_name_the_allowed_values(address, args, message):
    with pytest.raises(ProtocolError) as caught:
        parse(address, ["#id"] + args)
    assert message in str(caught.value)
    assert caught.value.address == address and caught.value.request_id == "#id"


@pytest.mark.parametrize("address", list(ADDRESSES))
def test_every_address_quotes_its_usage_and_is_documented(address):
    """Too many arguments: the error ends with the address's usage line, which docs/osc.md shows too."""
    with pytest.raises(ProtocolError) as caught:
        parse(address, ["/a.wav"] * 4)
    usage = ADDRESSES[address].usage
    assert str(caught.value).endswith(f"; usage: {usage}") and caught.value.address == address
    assert address in OSC_DOC


def test_seeds_given_as_text_keep_every_digit():
    """9007199254740993 (2**53 + 1) went through float and became ...992: another seed, other audio."""
    assert parse("/dd/vary", ["seed=9007199254740993"]).options.seed == 9007199254740993
    assert parse("/dd/set", ["seed", " 9007199254740993 "]).value == 9007199254740993
    assert parse("/dd/set", ["seed", 9007199254740993]).value == 9007199254740993  # as OSC int64
    assert parse("/dd/vary", ["count=4.0"]).options.count == 4  # whole numbers written as floats still work


def test_an_error_about_a_huge_argument_fits_in_a_reply():
    for args in (["/a.wav", "x" * 60000], ["/a.wav", "seed=" + "9" * 60000], ["/a.wav", "steps=" + "1" * 5000]):
        with pytest.raises(ProtocolError) as caught:
            parse("/dd/vary", args)
        assert len(str(caught.value)) <= 300 and str(caught.value).endswith(" ...")


# The hostile-input review's fuzz list (s39, fuzz_parse.py): one value of each odd kind. "1" + 400 zeros is a whole
# number with no float: it raised OverflowError out of parse, which killed the OSC thread.
ODD_VALUES = [0, 1, -1, 2**31 - 1, -2**31, 2**63 - 1, -2**63, 0.0, -0.0, 1.5, float("nan"), float("inf"),
              float("-inf"), 1e38, -1e38, True, False, None, b"", b"\x00" * 10, "", " ", "x", "1" + "0" * 400,
              "-" + "1" * 400, "1e400", "nan", "inf", "0x10", "1_000", "\u0661\u0662", "\u00a0", "1e-400", "/tmp/x.wav",
              "..", "#id", "=", "a=b", "9" * 5000, " 4 ", "+inf", "4.0", "1e308", "-1e308", "on", "off", "\x00",
              "\u00e9" * 300, "1" * 4300]


def test_nothing_but_a_protocol_error_escapes_parse():
    """Every address with every odd value, positional and as every option and /dd/set key (about 30,000 calls)."""
    keys = sorted({key for known in rq.ADDRESS_OPTIONS.values() for key in known})
    calls = [("/dd/set", [key, value]) for key in rq.SET_KEYS for value in ODD_VALUES]
    for address in ADDRESSES:
        for value in ODD_VALUES:
            calls += [(address, args) for args in ([value], ["#r1", value], [value, value], ["/tmp/a.wav", value],
                                                   ["/tmp/a.wav", "/tmp/b.wav", value])]
            calls += [(address, args) for key in keys
                      for args in (["/tmp/a.wav", f"{key}={value}"], [f"{key}={value}"])]
    for address, args in calls:
        try:
            parse(address, args)
        except ProtocolError as error:
            assert "\n" not in str(error) and len(str(error)) <= 300, (address, args)


@pytest.mark.parametrize("key", ["noise", "start", "end", "tail", "bars", "bpm"])
def test_a_whole_number_too_large_for_a_float_is_out_of_range(key):
    with pytest.raises(ProtocolError, match=rf"^{key} must be in [\d.e+]+\.\.[\d.e+]+, not '10000"):
        parse("/dd/vary", ["/a.wav", f"{key}=1" + "0" * 309])
    with pytest.raises(ProtocolError, match="^noise must be in 0..1"):
        parse("/dd/set", ["noise", "1" + "0" * 309])


def test_replies_are_told_from_requests():
    for address in ("/dd/pong", "/dd/error", "/dd/done", "/dd/ack", "/dd/progress"):
        assert is_reply(address, []) and is_reply(address, ["x", 1])
    assert is_reply("/dd/status", ['{"model": "x"}']) and not is_reply("/dd/status", [])
    assert is_reply("/dd/hello", ["0.1.0", "ab12cd34"]) and not is_reply("/dd/hello", [9001])
    assert not is_reply("/dd/hello", []) and not is_reply("/dd/hello", ["#a bad id", 9001])  # a usage error instead
    assert not is_reply("/dd/recipes", ["dark-kick"])  # answered once by a usage error, never answered itself
    assert not any(is_reply(address, []) for address in ADDRESSES)  # every request as the DAWs send it


def test_a_reply_too_large_for_a_datagram_still_says_how_the_request_ended():
    paths = [f"/music/{'f' * 600}/{'k' * 200}/{'k' * 200} var {n:03}.wav" for n in range(1, 65)]
    assert fitting("/dd/done", ["#r1", "vary", *paths], 67420) == (
        "/dd/error", ["#r1", "/dd/vary", f"64 files written in /music/{'f' * 600}/{'k' * 200}; the list of their names "
                      "is too long for one reply"])
    address, args = fitting("/dd/error", ["/" + "x" * 70000, "unknown address"], 70040)
    assert address == "/dd/error" and len(args[0]) <= 300 and args[1] == "unknown address"
    assert fitting("/dd/status", ["#s", "{...}"], 77672) == (
        "/dd/error", ["#s", "/dd/status", "the reply /dd/status is 77672 bytes, more than one datagram holds"])
    assert fitting("/dd/ack", ["select", "/x"], 70000) == (
        "/dd/error", ["/dd/select", "done, but the reply /dd/ack is 70000 bytes, more than one datagram holds"])


def test_the_token_is_taken_out_wherever_it_is():
    assert split_token(["#r1", "steps", "token=s3cret/+=x", 4]) == ("s3cret/+=x", ["#r1", "steps", 4])
    assert split_token(["/a.wav"]) == (None, ["/a.wav"])


def test_replies_carry_the_request_id_first():
    assert reply_args("#r1", ["vary", "/a.wav"]) == ["#r1", "vary", "/a.wav"]
    assert reply_args(None, ["vary", "/a.wav"]) == ["vary", "/a.wav"]


def test_transport_modules_never_import_torch():
    import subprocess
    code = ("import sys; import bridge.transports.osc.server, bridge.transports.osc.client, bridge.transports.midi; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
