"""Writes reaper_scripts/index.xml, the ReaPack index of the DD Bridge actions, from the scripts' own headers.

    python reaper_scripts/make_index.py [--url RAW_URL]

One package, "DD Bridge", installs every action (each registered in the Action List) and the shared library
they load (not an action). RAW_URL is where the files can be downloaded, the folder that holds this script in
the published repository.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

HERE = Path(__file__).resolve().parent
INDEX = HERE / "index.xml"
LIBRARY = "DD Bridge - lib.lua"
PACKAGE = "DD Bridge"
DEFAULT_URL = "https://raw.githubusercontent.com/dd-bridge/dd-bridge/main/reaper_scripts/"
TIME = "2026-11-24T00:00:00Z"  # fixed, so the index only changes when a script's version does


def headers(path: Path) -> dict[str, str]:
    """The ReaPack tags at the top of a script; @about runs over the indented comment lines after it."""
    tags, about = {}, None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("--"):
            break
        match = re.match(r"--\s*@(\w+)\s*(.*)$", line)
        if match:
            about = [] if match[1] == "about" else None
            tags[match[1]] = match[2].strip()
        elif about is not None and line.startswith("--   "):
            about.append(line[5:])
            tags["about"] = "\n".join(about)
    return tags


def actions() -> list[Path]:
    return sorted(path for path in HERE.glob("DD Bridge - *.lua") if path.name != LIBRARY)


def index(url: str) -> str:
    scripts = actions()
    versions = {headers(path)["version"] for path in scripts}
    if len(versions) != 1:
        raise ValueError(f"the actions disagree on @version: {sorted(versions)}")
    authors = {headers(path)["author"] for path in scripts}
    about = "\n\n".join(f"{headers(path)['description']}:\n{headers(path)['about']}" for path in scripts)
    sources = [f'        <source main="main" file={quoteattr(path.name)}>{escape(url + quote(path.name))}</source>'
               for path in scripts]
    sources.append(f"        <source file={quoteattr(LIBRARY)}>{escape(url + quote(LIBRARY))}</source>")
    return "\n".join([
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<index version="1" name={quoteattr(PACKAGE)}>',
        '  <category name="Items Editing">',
        f'    <reapack name={quoteattr(PACKAGE)} type="script" desc="Dance Diffusion variations of the selected items">',
        "      <metadata>",
        f"        <description><![CDATA[{about}]]></description>",
        "      </metadata>",
        f'      <version name={quoteattr(versions.pop())} author={quoteattr(", ".join(sorted(authors)))} time="{TIME}">',
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
    parser.add_argument("--out", type=Path, default=INDEX)
    args = parser.parse_args(argv)
    url = args.url if args.url.endswith("/") else args.url + "/"
    try:
        text = index(url)
    except (KeyError, ValueError) as error:
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
