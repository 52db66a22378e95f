"""The running service under hostile OSC: the issue 11 repro through `dd-bridge send`, a seeded fuzz of malformed
packets and bundles, the token rule at start-up and the log that a flood cannot fill."""

from __future__ import annotations

import gc
import json
import logging
import os
import random
import re
import socket
import struct
import time

from bridge.cli import main
from bridge.logs import RepeatedLines
from bridge.transports.osc.server import build_message
from tests.cli.test_serve_cli import model_file, serving  # noqa: F401
from tests.support.service import _one_torch_thread, drum, renderer  # noqa: F401
from tests.support.service import Listener, running_service, service_config
from tests.transports.osc.datagrams import bundle

FUZZ_SEED = int(os.environ.get("OSC_FUZZ_SEED", "1130"))  # set it to replay a failure
FUZZ_PACKETS = 1000
FUZZ_SECONDS = 60.0  # a bound on a very busy machine; it takes a few seconds
PING_WITHIN = 0.1


def test_the_issue_repro_leaves_the_service_answering(tmp_path, renderer, capsys):
    """20 bytes to the port, then `dd-bridge send --timeout 3 /dd/ping`: exit 3 before, 0 now."""
    with running_service(service_config(tmp_path), renderer) as svc:
        listener = Listener()
        try:
            listener.send_raw(svc.port, b"#bundle\x00" + bytes(8) + struct.pack(">i", -8))
            listener.wait_for(lambda m: m[0] == "/dd/error", timeout=3)
        finally:
            listener.close()
        assert main(["send", "--port", str(svc.port), "--timeout", "3", "/dd/ping"]) == 0
        assert svc.status()["osc"]["malformed"] == 1
    capsys.readouterr()



def test_serve_under_a_flood_of_that_packet_answers_and_logs_a_few_lines(tmp_path, model_file, capsys):
    """`dd-bridge serve` itself: 2000 of those datagrams (4 MiB/s of log before), then `dd-bridge send`."""
    config = tmp_path / "config.yaml"
    config.write_text("osc: {reply_port: null}\n")
    with serving("--config", config, "--model", model_file, "--folder", tmp_path / "samples") as (process, lines):
        port = int(re.search(r"listening for OSC on 127\.0\.0\.1:(\d+)", "".join(lines)).group(1))
        before = len(lines)
        flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for _ in range(2000):
                flood.sendto(b"#bundle\x00" + bytes(8) + struct.pack(">i", -8), ("127.0.0.1", port))
        finally:
            flood.close()
        assert main(["send", "--port", str(port), "--timeout", "3", "/dd/ping"]) == 0
        assert main(["send", "--port", str(port), "--timeout", "3", "/dd/status"]) == 0
        malformed = json.loads(capsys.readouterr().out.splitlines()[-1])["osc"]["malformed"]
        assert malformed > 100  # UDP may drop some of a flood; those that arrived were each answered
        time.sleep(0.3)
        flood_lines = lines[before:]
        assert len(flood_lines) <= 10, "".join(flood_lines)  # 5 of each of its two kinds per 10 s


def fuzz_packet(rng: random.Random) -> bytes:
    """One malformed (or barely valid) datagram: random bytes, or a structure with a lie in it."""
    def message() -> bytes:
        address = rng.choice(["/dd/ping", "/dd/status", "/dd/hello", "/dd/set", "/dd/nope", "/x"])
        args = rng.choice([[], ["#f"], ["seed", "x" * rng.randint(0, 300)], [rng.randint(-2**31, 2**31 - 1)],
                           [rng.random(), "token=wrong"], ["#f", "steps", float("nan")]])
        return build_message(address, args)

    kind = rng.randrange(11)
    if kind == 0:  # random bytes, any length up to a full datagram
        return rng.randbytes(rng.choice([0, 1, 4, 16, 200, rng.randint(0, 65000)]))
    if kind == 1:  # bundle element of negative size
        return bundle(message()) + struct.pack(">i", rng.randint(-2**31, -1))
    if kind == 2:  # bundle element of a huge or unaligned size
        return b"#bundle\x00" + bytes(8) + struct.pack(">i", rng.choice([2**31 - 1, 65536, 5, 7])) + message()
    if kind == 3:  # truncated time tag
        return b"#bundle\x00" + bytes(rng.randint(0, 7))
    if kind == 4:  # deep nesting
        packet = message()
        for _ in range(rng.randint(1, 60)):
            packet = bundle(packet)
        return packet
    if kind == 5:  # many messages in one bundle
        return bundle(*[message() for _ in range(rng.randint(1, 200))])[:65000]
    if kind == 6:  # blob of negative or overlong size
        return b"/dd/ping\x00\x00\x00\x00,b\x00\x00" + struct.pack(">i", rng.choice([-8, -2**31, 2**31 - 1, 999]))
    if kind == 7:  # unknown and exotic type tags
        tags = "".join(rng.choice("ifsbhdtTFNrmc[]Sx?") for _ in range(rng.randint(1, 100)))
        raw = b"/dd/set\x00," + tags.encode()
        return raw + bytes(4 - len(raw) % 4) + rng.randbytes(rng.randint(0, 400))
    if kind == 8:  # a valid message with bytes flipped
        raw = bytearray(message())
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        return bytes(raw)
    if kind == 9:  # a valid message cut short
        raw = message()
        return raw[:rng.randrange(len(raw))]
    return bundle(message(), timetag=rng.randbytes(8))  # valid, with any time tag


def test_fuzz_the_service_answers_ping_at_once_after_every_packet(tmp_path, renderer):
    """After every fuzzed packet /dd/ping must be answered. What the 100 ms bound is checked on: the OSC thread's
    own CPU time for the packet, which a machine shared by many processes cannot inflate; the round trip of the
    ping, which it can, is printed (p50, p99, max) as the benchmark figure."""
    rng = random.Random(FUZZ_SEED)
    began, round_trips, handling = time.monotonic(), [], []
    with running_service(service_config(tmp_path), renderer) as svc:
        receive = svc.server.on_datagram

        def timed(datagram, sender):  # runs on the OSC thread: thread_time is that thread's CPU time
            start = time.thread_time()
            receive(datagram, sender)
            handling.append((time.thread_time() - start, datagram))
        svc.server.on_datagram = timed
        fuzzer = Listener()  # a sender that also hears (and so drains) whatever comes back
        gc.freeze()  # as `dd-bridge serve` does once its model is loaded: a full collection of this torch-laden
        # process (100+ ms) would otherwise land on whichever packet is being handled
        try:
            for number in range(FUZZ_PACKETS):
                if time.monotonic() - began > FUZZ_SECONDS:
                    break
                datagram = fuzz_packet(rng)
                fuzzer.send_raw(svc.port, datagram)
                sent = time.monotonic()
                reply = svc.client.request("/dd/ping", timeout=2)
                round_trips.append(time.monotonic() - sent)
                context = f"packet {number} of seed {FUZZ_SEED}: {datagram[:80]!r}"
                assert reply is not None and reply.address == "/dd/pong", f"no answer after {context}"
            status = svc.status()
        finally:
            gc.unfreeze()
            fuzzer.close()
    cpu, worst = max(handling, key=lambda pair: pair[0])
    assert cpu < PING_WITHIN, f"the OSC thread spent {1000 * cpu:.0f} ms on {worst[:80]!r} (seed {FUZZ_SEED})"
    round_trips.sort()
    print(f"{len(round_trips)} packets (seed {FUZZ_SEED}) in {time.monotonic() - began:.1f} s; ping after each: "
          f"p50 {1000 * round_trips[len(round_trips) // 2]:.1f} ms, p99 {1000 * round_trips[-len(round_trips) // 100]:.1f}"
          f" ms, max {1000 * round_trips[-1]:.1f} ms; most CPU on one packet {1000 * cpu:.2f} ms; "
          f"malformed {status['osc']['malformed']}")
    assert len(round_trips) >= 100 and status["osc"]["malformed"] > len(round_trips) / 4


def test_a_number_too_large_for_a_float_and_a_huge_path_leave_the_service_answering(tmp_path, renderer, drum):
    """The hostile-input review (s39): noise= with 310 digits ended the OSC thread (deaf until restarted); an error
    quoting a 65 kB path, kept whole as the last error, made every /dd/status too large to send."""
    with running_service(service_config(tmp_path), renderer) as svc:
        reply = svc.client.request("/dd/vary", [str(drum), "noise=1" + "0" * 309], timeout=5)
        assert reply.address == "/dd/error" and reply.args[1].startswith("noise must be in 0..1, not '1000")
        assert svc.client.request("/dd/ping", timeout=3).address == "/dd/pong"
        reply = svc.client.request("/dd/vary", ["/" + "a" * 65000 + ".wav"], timeout=5)
        assert reply.address == "/dd/error"
        status = svc.status()
        assert status["last_error"].startswith("/dd/vary: ") and len(status["last_error"]) <= 300


def test_hello_naming_the_services_own_port_starts_no_loop(tmp_path, renderer):
    """/dd/hello <own port>: every reply came back as a request, answered to itself and every client, forever."""
    watcher = Listener()  # a client that only listens, as the Live device's reply port does
    try:
        with running_service(service_config(tmp_path), renderer) as svc:
            watcher.send(svc.port, "/dd/hello")
            watcher.wait_for(lambda m: m[0] == "/dd/hello")
            reply = svc.client.request("/dd/hello", [svc.port], timeout=3)
            assert reply.address == "/dd/error" and "is the service's own" in reply.args[1]
            svc.ask("/dd/ping")
            time.sleep(0.5)
            heard = len(watcher.messages)
            time.sleep(0.5)
            status = svc.status()
            assert len(watcher.messages) - heard <= 1 and status["osc"]["received"] <= 5  # the status poll's own reply
    finally:
        watcher.close()


def test_serve_beyond_loopback_needs_a_token(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("osc: {host: 0.0.0.0, port: 0}\n")
    assert main(["serve", "--config", str(config), "--midi-port", "none"]) == 1
    err = capsys.readouterr().err
    assert "set osc.token" in err and len(err.strip().splitlines()) == 1
    config.write_text("osc: {token: short}\n")
    assert main(["serve", "--config", str(config), "--midi-port", "none"]) == 1
    assert "osc.token must be at least 12 characters" in capsys.readouterr().err


def test_a_flood_of_one_warning_is_held_to_a_few_lines(caplog):
    clock = [0.0]
    logger = logging.getLogger("bridge.test.flood")
    logger.addFilter(RepeatedLines(burst=3, interval=10, clock=lambda: clock[0]))
    with caplog.at_level(logging.WARNING, logger="bridge.test.flood"):
        for number in range(10000):
            logger.warning("malformed packet %d", number)
        logger.warning("another kind")
        clock[0] = 11.0
        logger.warning("malformed packet %d", 10000)
    lines = [record.getMessage() for record in caplog.records]
    assert lines == ["malformed packet 0", "malformed packet 1", "malformed packet 2", "another kind",
                     "malformed packet 10000 (9997 more like it held back)"]
