"""`dd-bridge models get`: fetch a released checkpoint, verify it, convert it into the user's model folder.

The download goes to the cache folder, never to the model folder: ``NAME.ckpt.part`` grows there and an
interrupted transfer continues where it stopped (HTTP Range, with If-Range: the rest of the same version of the
file, whose ETag or date ``NAME.ckpt.part.source`` keeps) the next time the same command runs. Only a file of
the stated length whose SHA-256 matches the published one (where one is published) becomes ``NAME.ckpt``; it is
then loaded as weights only (a pickle that would run code is refused), written to the model folder as
``NAME.safetensors`` + ``NAME.yaml`` (each under a temporary name first, never replacing a file) and deleted.
Every failure is a one-line ``DownloadError`` or ``CheckpointError`` and leaves nothing half-written in the model
folder. Plain ``urllib``: one GET with a Range header is all this needs.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import json
import logging
import re
import shutil
import socket
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Callable

import platformdirs

from bridge import __version__, files
from bridge.engine.catalogue import Release
from bridge.engine.checkpoints import load_model, save_model
from bridge.engine.modelcard import CARD_SUFFIX, WEIGHTS_SUFFIX
from bridge.errors import CheckpointError, ConfigError, DownloadError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; two downloads of one model at once are then the user's doing
    fcntl = None

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
TIMEOUT_S = 30  # per connect and per read: a stalled server fails instead of hanging the command
PART_SUFFIX = ".part"
# Beside a partial download: what it is a part of (the server's ETag or Last-Modified, and its length), so that a
# resume asks for the rest of that same file (If-Range) and a file changed on the server meanwhile starts again
# instead of ending up half old, half new (caught by the checksum where one is published; nowhere else).
VALIDATOR_SUFFIX = ".source"
MB = 1e6

Progress = Callable[[int, "int | None"], None]  # (bytes on disk, total bytes or None)


def download_dir() -> Path:
    """Where downloads are staged, outside the model folder (a partial one waits there to be resumed)."""
    return Path(platformdirs.user_cache_dir("dd-bridge")) / "downloads"


def install(release: Release, models_dir: Path, *, half: bool = False,
            progress: Progress | None = None) -> tuple[Path, Path]:
    """Downloads, verifies and converts ``release`` into ``models_dir``; returns the weights and card paths."""
    for path in (models_dir / f"{release.name}{WEIGHTS_SUFFIX}", models_dir / f"{release.name}{CARD_SUFFIX}"):
        if path.exists():  # found now, not after a download of gigabytes
            raise DownloadError(f"{path}: already exists; {release.name} is installed (or remove that file first)")
    url = release.address()
    ckpt = fetch(url, download_dir() / f"{release.name}.ckpt", size=release.size, sha256=release.sha256,
                 progress=progress)
    try:
        loaded = load_model(ckpt, sample_rate=release.sample_rate, window=release.window)
    except CheckpointError as error:
        ckpt.unlink(missing_ok=True)  # it verified as bytes but is no model: no reason to keep it
        raise CheckpointError(f"{url}: the downloaded file is not a usable model and was deleted: {error}") from None
    except ConfigError as error:  # the catalogue's sample_rate or window, not the file: kept, reused once fixed
        raise ConfigError(f"catalogue entry {release.name!r}: {error}; the verified download is kept in "
                          f"{ckpt.parent}: fix the entry and run again") from None
    loaded.card = replace(
        loaded.card, provenance=f"Harmonai Dance Diffusion release {release.name}, downloaded from {url}, EMA weights",
        licence=release.licence_terms,
        extra={**loaded.card.extra, "trained_on": release.trained_on,
               "download": {"url": url, "sha256": release.sha256 or "not published; checked by size and loading"}})
    models_dir.mkdir(parents=True, exist_ok=True)
    try:
        paths = save_model(loaded, models_dir / release.name, half=half)
    except OSError as error:
        need = loaded.num_parameters * (2 if half else 4) / MB
        if error.errno == errno.ENOSPC:
            raise DownloadError(f"{models_dir}: disk full while writing {release.name} (needs about {need:.0f} MB); "
                                f"the verified download is kept in {ckpt.parent}: free space and run again") from None
        raise DownloadError(f"{models_dir}: cannot write {release.name}: {files.reason(error)}") from None
    ckpt.unlink(missing_ok=True)
    return paths


def fetch(url: str, dest: Path, *, size: int | None = None, sha256: str | None = None,
          progress: Progress | None = None) -> Path:
    """``dest`` complete and verified: downloaded through ``dest.part``, resuming what an earlier run left there."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():  # a verified download from a run whose conversion failed: check it again, then reuse it
        _verify(dest, size, sha256, url)
        return dest
    part = dest.with_name(dest.name + PART_SUFFIX)
    with files.open_append(part) as out:  # a link planted at the name is refused, not written through
        _lock(out, part)
        try:
            total = _transfer(url, out, part, size, progress)
        except KeyboardInterrupt:
            log.warning("stopped at %.1f MB; run the same command again to resume", out.tell() / MB)
            raise
        finally:
            if out.tell() == 0:  # nothing arrived: nothing to resume
                part.unlink(missing_ok=True)
                _validator_path(part).unlink(missing_ok=True)
    try:
        _verify(part, total, sha256, url)
    except DownloadError:  # the part is gone: so is what it was of
        _validator_path(part).unlink(missing_ok=True)
        raise
    with files.Folder(dest.parent) as folder:  # the verified file takes its final name, never replacing one
        folder.link(part.name, dest.name)
        folder.remove(part.name)
    _validator_path(part).unlink(missing_ok=True)
    return dest


def _validator_path(part: Path) -> Path:
    return part.with_name(part.name + VALIDATOR_SUFFIX)


def _validator(part: Path) -> dict:
    """What the partial download ``part`` is of ({} when unknown: one begun before this was kept, or a server that
    names no version)."""
    try:
        data = json.loads(files.read_regular(_validator_path(part), 4096))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _version(response) -> str:
    """The version of the file a response carries: a strong ETag (a weak one cannot ask If-Range), else its
    Last-Modified date; "" when the server names none."""
    etag = (response.headers.get("ETag") or "").strip()
    return etag if etag and not etag.startswith("W/") else (response.headers.get("Last-Modified") or "").strip()


def _remember(part: Path, response, total: int | None) -> None:
    """What a new download is of (``_version``, and its length), kept beside its part."""
    try:
        files.replace_file(_validator_path(part), json.dumps({"version": _version(response), "length": total}).encode(),
                           sync=False)
    except OSError as error:  # only the check of a resume is lost
        log.debug("%s: not kept: %s", _validator_path(part), error)


def _lock(file, path: Path) -> None:
    if fcntl is None:
        return
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise DownloadError(f"{path}: another download of this model is running; wait for it to finish") from None


def _transfer(url: str, out, part: Path, size: int | None, progress: Progress | None) -> int | None:
    """Appends the rest of ``url`` to ``out``; returns the file's total length (None when the server never said)."""
    have = out.tell()
    known = _validator(part) if have else {}
    response = _open(url, have, known.get("version") or None)
    if isinstance(response, int):  # 416: nothing after `have`
        if response == have and known.get("length") in (None, have):
            return have  # complete already: an earlier run stopped between the last byte and the rename
        log.info("%s: the file on the server is shorter than the partial download; starting again", url)
        out.truncate(0)
        out.seek(0)
        have = 0
        response = _open(url, have)
    with contextlib.closing(response):
        total = _total_length(response, have, url)
        if have and response.status == 206 and known.get("length") not in (None, total):
            # Another file under the same address, and a server that ignored If-Range: the part is of no use.
            out.truncate(0)
            out.seek(0)  # nothing kept: fetch removes the part and this note
            raise DownloadError(f"{url}: the file on the server changed since the partial download "
                                f"({known['length']:,} bytes, now {total:,}); discarded what had arrived, run the "
                                "same command again")
        if response.status == 200 and have:
            changed = known.get("version") not in (None, "", _version(response))
            log.info("%s: %s; starting again from the beginning", url, "the file on the server changed since the "
                     "partial download" if changed else "the server cannot resume")
            out.truncate(0)
            out.seek(0)
            have = 0
        if not have:
            _remember(part, response, total)
        if size is not None and total is not None and total != size:
            raise DownloadError(f"{url}: the server offers {total:,} bytes, the catalogue says {size:,}; "
                                "not downloading it")
        total = total if total is not None else size
        if total is not None:
            free = shutil.disk_usage(part.parent).free
            if total - have > free:
                raise DownloadError(f"{part.parent}: not enough disk space for {part.name[:-len(PART_SUFFIX)]}: "
                                    f"needs {(total - have) / MB:,.0f} MB more, {free / MB:,.0f} MB free")
        if have:
            log.info("resuming %s at %.1f of %s MB", url, have / MB, f"{total / MB:,.1f}" if total else "?")
        _copy(response, out, part, have, total, url, progress)
        received = out.tell()
    if total is not None and received < total:
        raise DownloadError(f"{url}: the download was interrupted at {received / MB:,.1f} of {total / MB:,.1f} MB; "
                            "run the same command again to resume it")
    return total


def _open(url: str, have: int, version: str | None = None):
    """The response from byte ``have`` on (of that ``version`` of the file, or the whole file if it changed: If-Range);
    for a 416 (nothing there), the file's length the server states."""
    request = urllib.request.Request(url, headers={"User-Agent": f"dd-bridge/{__version__}"})
    if have:
        request.add_header("Range", f"bytes={have}-")
        if version:
            request.add_header("If-Range", version)
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        found = re.fullmatch(r"bytes \*/(\d+)", (error.headers.get("Content-Range") or "").strip())
        if error.code == 416 and have and found:
            error.close()
            return int(found.group(1))
        error.close()
        raise DownloadError(f"{url}: the server answered {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise DownloadError(f"{url}: cannot reach the server ({_reason(error.reason)}); check the network, "
                            f"or set DD_BRIDGE_MODELS_URL to a mirror") from None
    except (socket.timeout, OSError, http.client.HTTPException) as error:
        raise DownloadError(f"{url}: cannot reach the server ({_reason(error)})") from None


def _reason(reason: object) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "the host name does not resolve: no network?"
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return f"no answer within {TIMEOUT_S} s"
    if isinstance(reason, OSError):
        return files.reason(reason)
    return str(reason) or type(reason).__name__


def _total_length(response, have: int, url: str) -> int | None:
    if response.status == 206:
        found = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", response.headers.get("Content-Range", "").strip())
        if not found or int(found.group(1)) != have:
            raise DownloadError(f"{url}: the server resumed at the wrong place "
                                f"({response.headers.get('Content-Range')!r} for byte {have:,})")
        return int(found.group(3))
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _copy(response, out, part: Path, have: int, total: int | None, url: str, progress: Progress | None) -> None:
    done = have
    while True:
        try:
            chunk = response.read1(CHUNK_BYTES)  # what has arrived: on disk at once, not held back for a full chunk
        except (http.client.HTTPException, OSError) as error:  # reset, timeout, truncated chunked body
            log.debug("%s: read failed: %s", url, error)
            break  # what arrived is on disk; the length check after reports the interruption
        if not chunk:
            break
        try:
            out.write(chunk)
            out.flush()
        except OSError as error:
            if error.errno == errno.ENOSPC:
                raise DownloadError(f"{part.parent}: disk full at {done / MB:,.1f} MB; free space and run the same "
                                    "command again to resume") from None
            raise DownloadError(f"{part}: cannot write: {files.reason(error)}") from None
        done += len(chunk)
        if progress:
            progress(done, total)


def _verify(path: Path, size: int | None, sha256: str | None, url: str) -> None:
    """Size first (cheap), then the published checksum; a file that fails is deleted: it cannot be resumed."""
    actual = path.stat().st_size
    if size is not None and actual != size:
        path.unlink(missing_ok=True)
        raise DownloadError(f"{url}: the download has {actual:,} bytes, expected {size:,}; deleted it, run again")
    if sha256 is None:
        return
    with open(path, "rb") as file:
        actual_sha256 = files.sha256_of(file)
    if actual_sha256 != sha256:
        path.unlink(missing_ok=True)
        raise DownloadError(f"{url}: corrupt download (sha256 {actual_sha256[:16]}..., published "
                            f"{sha256[:16]}...); deleted it, run again")
