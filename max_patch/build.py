"""Builds `DD Bridge.amxd`, the frozen Max for Live device, from the sources next to this file.

    python max_patch/build.py            write max_patch/DD Bridge.amxd
    python max_patch/build.py --out P    write it elsewhere

The sources are `DD Bridge.maxpat` (the patcher JSON) and the JavaScript its `js` boxes name. The device is
written the way Max's Freeze Device writes one, so it keeps working when moved away from this folder: the `ptch`
chunk holds an `mx@c` container with the patcher and every file it needs, and a `dlst` directory of them (the
layout Ableton/maxdevtools' frozen-device reader parses). Building twice gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bridge import files  # noqa: E402
from bridge.constants import OSC_HOST, OSC_PORT, OSC_REPLY_PORT  # noqa: E402

SOURCE = HERE / "DD Bridge.maxpat"
DEVICE = HERE / "DD Bridge.amxd"

# A MIDI effect: it sits before an instrument or alone on a MIDI track, so notes (a key, a pad) reach it.
DEVICE_TYPE = b"mmmm"
FROZEN_META = 7  # the `meta` value Max writes for frozen devices
FLAG_DEVICE = 0x11  # the directory entry of the device's own patcher
FLAG_DEPENDENCY = 0x00
# Fixed modification date so the build is reproducible: 2026-01-01 00:00 UTC in HFS+ seconds (since 1904).
MODIFIED_HFS = 1767225600 + 2082844800
FILE_TYPES = {".js": b"TEXT", ".maxpat": b"JSON", ".json": b"JSON"}


class BuildError(Exception):
    """The sources do not make a working device."""


def build(source: Path = SOURCE, out: Path = DEVICE) -> Path:
    patcher = json.loads(source.read_text(encoding="utf-8"))
    check_ports(patcher)
    dependencies = [(path.name, path.read_bytes()) for path in dependency_files(patcher, source.parent)]
    device = frozen_patcher(patcher, [name for name, _ in dependencies], out.stem)
    container = mx_container([(out.name, device, FLAG_DEVICE)] +
                             [(name, data, FLAG_DEPENDENCY) for name, data in dependencies])
    write_atomically(out, amxd_chunks(container))
    return out


def dependency_files(patcher: dict, folder: Path) -> list[Path]:
    """The files the patcher's `js` boxes load, which must lie next to the patcher."""
    files = []
    for box in boxes(patcher):
        words = box.get("text", "").split()
        if box.get("maxclass") == "newobj" and words and words[0] == "js":
            if len(words) < 2:
                raise BuildError(f"{box['id']}: a js box without a file name")
            path = folder / words[1]
            if not path.is_file():
                raise BuildError(f"{box['id']}: {words[1]} is not in {folder}")
            files.append(path)
    return files


def check_ports(patcher: dict) -> None:
    """The device must talk to the service where the service listens by default."""
    texts = [box.get("text", "") for box in boxes(patcher)]
    wanted = {f"udpsend {OSC_HOST} {OSC_PORT}", f"udpreceive {OSC_REPLY_PORT}"}
    missing = wanted - set(texts)
    if missing:
        raise BuildError(f"the patcher lacks {sorted(missing)}: the service's defaults are in bridge/constants.py")


def boxes(patcher: dict):
    for entry in patcher["patcher"]["boxes"]:
        yield entry["box"]
        inner = entry["box"].get("patcher")
        if inner:
            yield from boxes({"patcher": inner})


def frozen_patcher(patcher: dict, dependencies: list[str], device_name: str) -> bytes:
    """The patcher as Max saves it inside a frozen device: with the list of files it carries."""
    frozen = json.loads(json.dumps(patcher))
    inner = frozen["patcher"]
    inner["dependency_cache"] = [
        {"name": name, "bootpath": "~/" + device_name, "type": FILE_TYPES[Path(name).suffix].decode().strip(),
         "implicit": 1}
        for name in sorted(dependencies)
    ]
    inner["project"] = {"version": 1, "amxdtype": int.from_bytes(DEVICE_TYPE, "big"), "readonly": 0,
                        "devpathtype": 0, "devpath": ".", "autolocalize": 0}
    return json.dumps(frozen, indent="\t", ensure_ascii=False).encode("utf-8") + b"\n\x00"


def mx_container(entries: list[tuple[str, bytes, int]]) -> bytes:
    """`mx@c`, header size, offset of the directory; the files back to back; then the `dlst` directory."""
    header_size = 16
    body = b""
    directory = b""
    for name, data, flag in entries:
        offset = header_size + len(body)
        body += data
        file_type = b"JSON" if name.endswith(".amxd") else FILE_TYPES[Path(name).suffix]
        directory += field_list(b"dire", [
            field(b"type", file_type),
            field(b"fnam", padded_name(name)),
            field(b"sz32", struct.pack(">I", len(data))),
            field(b"of32", struct.pack(">I", offset)),
            field(b"vers", struct.pack(">I", 0)),
            field(b"flag", struct.pack(">I", flag)),
            field(b"mdat", struct.pack(">I", MODIFIED_HFS)),
        ])
    footer = field_list(b"dlst", [directory])
    return b"mx@c" + struct.pack(">IQ", header_size, header_size + len(body)) + body + footer


def field(kind: bytes, data: bytes) -> bytes:
    return kind + struct.pack(">I", 8 + len(data)) + data


def field_list(kind: bytes, parts: list[bytes]) -> bytes:
    return field(kind, b"".join(parts))


def padded_name(name: str) -> bytes:
    """NUL-terminated, padded with NULs to a multiple of four bytes."""
    raw = name.encode("utf-8") + b"\x00"
    return raw + b"\x00" * (-len(raw) % 4)


def amxd_chunks(patch: bytes) -> bytes:
    """[4-byte id][uint32 little-endian size][data]: ampf (device type), meta, ptch."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return kind + struct.pack("<I", len(data)) + data
    return chunk(b"ampf", DEVICE_TYPE) + chunk(b"meta", struct.pack("<I", FROZEN_META)) + chunk(b"ptch", patch)


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    files.replace_file(path, data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE, help="the .maxpat to build from")
    parser.add_argument("--out", type=Path, default=DEVICE, help="where to write the .amxd")
    args = parser.parse_args(argv)
    try:
        print(build(args.source, args.out))
    except (BuildError, OSError, ValueError) as error:
        print(f"build.py: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
