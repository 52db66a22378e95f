"""The service's sampler when none is set (render.sampler: auto, bridge.constants.sampler_for), over real UDP: a
generate request renders with dpmpp-2m-sde-karras-eta0.5 and its recreate command names it, a variation of a
one-shot with dpmpp-2m-sde, of a loop with v-iplms-sde, the rest with v-iplms, and a sampler the user sets or a
request names always wins."""

from __future__ import annotations

import shlex

import numpy as np
import soundfile

from bridge.cli import main as cli_main
from bridge.daemon.renderer import Renderer
from bridge.engine.audio import read_metadata
from bridge.engine.checkpoints import save_model
from tests.support.service import micro_model, running_service, service_config


def sampler_of(reply) -> set[str]:
    return {read_metadata(path)["sampler"] for path in reply.args[1:]}


def test_generate_defaults_to_the_half_noise_sde_and_a_set_sampler_wins(tmp_path, drum):
    (tmp_path / "models").mkdir()
    weights, _card = save_model(micro_model(seed=3), tmp_path / "models" / "micro")
    served = Renderer.load(str(weights), device="cpu")
    with running_service(service_config(tmp_path, render={"prefetch": 0}), served) as svc:
        assert svc.status()["settings"]["sampler"] == "auto"
        [path] = svc.ask("/dd/generate", 1, 0.25, "seed=3").args[1:]
        meta = read_metadata(path)
        new_sound = "dpmpp-2m-sde-karras-eta0.5"
        assert meta["sampler"] == new_sound and f"--sampler {new_sound} " in meta["command"] + " "
        assert sampler_of(svc.ask("/dd/vary", str(drum), 1, 0.5, "seed=3")) == {"dpmpp-2m-sde"}
        assert sampler_of(svc.ask("/dd/vary", str(drum), 1, 0.5, "loop=on")) == {"v-iplms-sde"}  # a loop's
        assert sampler_of(svc.ask("/dd/interpolate", str(drum), str(drum), 2)) == {"v-iplms"}
        assert sampler_of(svc.ask("/dd/generate", 1, 0.25, "sampler=v-iplms")) == {"v-iplms"}  # the request's
        assert svc.ask("/dd/set", "sampler", "euler").args == ("set", "sampler", "euler")
        assert sampler_of(svc.ask("/dd/generate", 1, 0.25)) == {"euler"}  # the user's setting
        assert sampler_of(svc.ask("/dd/vary", str(drum))) == {"euler"}
        assert svc.ask("/dd/set", "sampler", "auto").args == ("set", "sampler", "auto")
        assert sampler_of(svc.ask("/dd/generate", 1, 0.25)) == {new_sound}
        assert sampler_of(svc.ask("/dd/vary", str(drum))) == {"dpmpp-2m-sde"}
        # the SDE at its full noise keeps its name: a file made with it before is made again
        assert svc.ask("/dd/set", "sampler", "dpmpp-2m-sde-karras").args == ("set", "sampler", "dpmpp-2m-sde-karras")
        assert sampler_of(svc.ask("/dd/generate", 1, 0.25)) == {"dpmpp-2m-sde-karras"}
        assert sampler_of(svc.ask("/dd/vary", str(drum), 1, 0.5, f"sampler={new_sound}")) == {new_sound}
    again = tmp_path / "again"
    again.mkdir()
    assert cli_main(shlex.split(meta["command"])[1:] + ["--out", str(again)]) == 0
    [made] = again.glob("*.wav")
    assert np.array_equal(soundfile.read(made)[0], soundfile.read(path)[0])
