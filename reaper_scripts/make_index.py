"""Writes reaper_scripts/index.xml, the ReaPack index of the DD Bridge actions, from the scripts' own headers.

    python reaper_scripts/make_index.py [--url RAW_URL] [--commit SHA]

One package, "DD Bridge", as ReaTeam lays packages out: `DD Bridge - lib.lua` carries the package's header and
`@provides` the actions (`[main]`, each registered in the Action List) and itself (`[nomain]`, loaded by them).
The description is RTF, which is what ReaPack shows. Every file is downloaded from one commit, so an installed
version never changes under the producer: by default the last commit that changed a script (`git log`), in the
repository published at RAW_URL (`{commit}` in it is replaced). The version's time is that commit's date, so the
index changes only with the scripts it names, and each version is dated when its scripts were.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

HERE = Path(__file__).resolve().parent
INDEX = HERE / "index.xml"
LIBRARY = "DD Bridge - lib.lua"
DEFAULT_URL = "https://raw.githubusercontent.com/dd-bridge/dd-bridge/{commit}/reaper_scripts/"
MULTI_LINE_TAGS = ("about", "provides")


def headers(path: Path) -> dict[str, str]:
    """The ReaPack tags at the top of a script; @about and @provides run over the indented lines after them."""
    tags, collecting = {}, None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("--"):
            break
        match = re.match(r"--\s*@(\w+)\s*(.*)$", line)
        if match:
            collecting = match[1] if match[1] in MULTI_LINE_TAGS else None
            tags[match[1]] = match[2].strip()
        elif collecting and line.startswith("--   "):
            tags[collecting] = "\n".join(filter(None, [tags[collecting], line[5:]]))
        else:
            collecting = None
    return tags


def actions() -> list[Path]:
    return sorted(path for path in HERE.glob("DD Bridge - *.lua") if path.name != LIBRARY)


def provided(package: dict[str, str]) -> list[tuple[str, bool]]:
    """(file, is an action) for each `@provides` line: `[main] FILE` or `[nomain] .` (the package file)."""
    files = []
    for line in package.get("provides", "").splitlines():
        match = re.fullmatch(r"\[(main|nomain)\]\s+(.+)", line.strip())
        if not match:
            raise ValueError(f"{LIBRARY}: @provides line '{line}' is not '[main] FILE' or '[nomain] .'")
        files.append((LIBRARY if match[2] == "." else match[2], match[1] == "main"))
    return files


def rtf(paragraphs: list[tuple[str, str]]) -> str:
    """RTF for ReaPack's about box: (title, text) paragraphs; the text's lines are joined as one paragraph."""
    def text(value: str) -> str:
        out = []
        for char in value:
            if char in "\\{}":
                out.append("\\" + char)
            elif ord(char) > 127:
                code = ord(char)
                out.append(f"\\u{code if code < 32768 else code - 65536}?")
            else:
                out.append(char)
        return "".join(out)
    body = "\n".join((f"{{\\b {text(title)}}}\\line\n" if title else "") + text(" ".join(value.split("\n"))) + "\\par"
                     for title, value in paragraphs)
    return "{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 \\fswiss Helvetica;}}\\f0\\fs20\n" + body + "\n}"


def last_script_commit() -> str:
    """The last commit that changed a script: the one whose files the index names."""
    result = subprocess.run(["git", "log", "-1", "--format=%H", "--", "*.lua"], cwd=HERE, capture_output=True,
                            text=True, check=True)
    commit = result.stdout.strip()
    if not re.fullmatch(r"[0-9a-f]{40}", commit):
        raise ValueError("no commit has the scripts: commit them first, then write the index")
    return commit


def commit_time(commit: str) -> str:
    """When ``commit`` was made (its committer date), in UTC as ReaPack's `time` takes it: 2026-12-06T03:36:16Z."""
    result = subprocess.run(["git", "show", "-s", "--format=%ct", commit, "--"], cwd=HERE, capture_output=True,
                            text=True)
    if result.returncode != 0 or not result.stdout.strip().isdigit():
        raise ValueError(f"commit {commit} is not in this repository: its date cannot be read")
    return datetime.fromtimestamp(int(result.stdout.strip()), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def index(url: str, time: str) -> str:
    package = headers(HERE / LIBRARY)
    files = provided(package)
    names = sorted(name for name, _ in files)
    expected = sorted([LIBRARY] + [path.name for path in actions()])
    if names != expected:
        raise ValueError(f"{LIBRARY}: @provides lists {names}, the folder holds {expected}")
    versions = {headers(HERE / name)["version"] for name in names}
    if len(versions) != 1:
        raise ValueError(f"the scripts disagree on @version: {sorted(versions)}")
    authors = {headers(HERE / name)["author"] for name in names}
    about = [("", package["about"])] + [(headers(path)["description"], headers(path)["about"]) for path in actions()]
    sources = [f'        <source{" main=" + quoteattr("main") if main else ""} file={quoteattr(name)}>'
               f'{escape(url + quote(name))}</source>' for name, main in files]
    return "\n".join([
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<index version="1" name={quoteattr(package["description"])}>',
        '  <category name="Items Editing">',
        f'    <reapack name={quoteattr(package["description"])} type="script" '
        'desc="Dance Diffusion variations of the selected items">',
        "      <metadata>",
        f"        <description><![CDATA[{rtf(about)}]]></description>",
        "      </metadata>",
        f'      <version name={quoteattr(versions.pop())} author={quoteattr(", ".join(sorted(authors)))} '
        f'time={quoteattr(time)}>',
        *sources,
        "      </version>",
        "    </reapack>",
        "  </category>",
        "</index>",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="where the published scripts can be downloaded")
    parser.add_argument("--commit", help="the commit whose scripts the index names (default: the last that "
                        "changed one)")
    parser.add_argument("--out", type=Path, default=INDEX)
    args = parser.parse_args(argv)
    try:
        commit = args.commit or last_script_commit()
        url = args.url.replace("{commit}", commit)
        text = index(url if url.endswith("/") else url + "/", commit_time(commit))
    except (KeyError, ValueError, OSError, subprocess.CalledProcessError) as error:
        print(f"make_index.py: error: {error}", file=sys.stderr)
        return 1
    handle, temporary = tempfile.mkstemp(dir=args.out.parent, prefix=".index-")
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
