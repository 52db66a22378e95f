"""The Max device's script talking to a real `dd-bridge serve` over UDP, as udpsend/udpreceive would."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

NODE_SESSION = Path(__file__).resolve().parent / "node" / "service_session.js"


def test_device_gets_variations_from_the_service(service, drum_samples, long_take):
    node = shutil.which("node")
    assert node, "node is missing: ./bootstrap.sh test installs it (Debian package nodejs)"
    clip = service["root"] / "Live set" / "Samples" / "Kick ü 'one'.wav"
    clip.parent.mkdir(parents=True)
    shutil.copy(drum_samples["wav"], clip)
    result = subprocess.run([node, str(NODE_SESSION), str(service["port"]), str(clip), str(long_take)],
                            capture_output=True, text=True, timeout=600)
    log = (service["root"] / "service.log").read_text()
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n--- service log ---\n{log}"
    outcome = json.loads(result.stdout)
    assert len(outcome["files"]) == 2
    assert all(Path(file).parent.name == clip.stem for file in outcome["files"])
    # Issue 12: clips playing 1.0-1.2 s of a 3.1 s recording (Session and Arrangement, unwarped and warped) got
    # variations of exactly that 0.2 s (lengths and placement are checked in service_session.js).
    assert sorted(outcome["regions"]) == ["arrangement", "arrangement, warped", "session", "session, warped"]
    for files in outcome["regions"].values():
        assert [Path(file).parent.name for file in files] == [long_take.stem] * 2
    # Issues 15 and 16: a looping clip's loops (1 bar at 120 BPM, exactly 2 s: checked in service_session.js),
    # Repaint's (the whole recording, placed with its source's markers and brace), Extend's files (the kick, then
    # as long again), and the one variation Keep wrote after an audition press.
    assert len(outcome["loops"]) == 2 and len(outcome["extended"]) == 2 and len(outcome["kept"]) == 1
    assert len(outcome["repainted"]) == 2
    assert all(Path(file).is_file() for file in outcome["loops"] + outcome["extended"] + outcome["kept"] +
               outcome["repainted"])
    assert [Path(file).parent.name for file in outcome["kept"]] == [clip.stem]


def test_character_dials_set_the_services_guides(service):
    """The service accepts the device's `/dd/set guide` text as it is (separator, weights) and its `off`."""
    node = shutil.which("node")
    assert node, "node is missing: ./bootstrap.sh test installs it (Debian package nodejs)"
    result = subprocess.run([node, str(NODE_SESSION.with_name("service_character.js")), str(service["port"])],
                            capture_output=True, text=True, timeout=120)
    log = (service["root"] / "service.log").read_text()
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n--- service log ---\n{log}"
    assert json.loads(result.stdout) == ["off", "brightness=0.5;decay=-1;punch=0.12", "off"]
