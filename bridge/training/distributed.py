"""Training on several processes (`torchrun`, one node or several): the process group, each rank's share of a
batch, and what only rank 0 does.

torchrun starts one process per GPU (or per CPU slot) and tells each its place through the environment (RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT); without them training runs as one process and `SINGLE` stands
in, so the loop has one code path. The rules that keep a run the same whatever the number of ranks:

- The global batch stays `--batch-size`. Every rank draws the same seeded global batch and the same random numbers
  for all of it (augmentation, noise levels, noise) from the run's generator, then keeps its own contiguous slice.
  The generator therefore advances identically on every rank and in one process: the data order, and so the loss
  curve, are those of one process, and a checkpoint resumes on any number of ranks.
- DistributedDataParallel averages the gradients of equal slices, which is the gradient of the whole batch's mean
  loss; clipping, the optimiser step and the EMA then run identically on every rank (the EMA is updated on every
  rank, not only rank 0: it costs one lerp per step and leaves no rank with weights that differ from another's).
- Rank 0 alone writes (run.yaml, loss.csv, state.pt, demos, the exported model); the others wait at a barrier.
  The state saved is the plain module's, so a checkpoint has the same layout whatever the world size.
- Every collective has a timeout (`TIMEOUT_S`): a rank that dies or hangs takes the group down with an error
  rather than leaving the others waiting for ever.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from bridge.errors import ConfigError

# Longest wait in one collective. Rank 0's saves and demo renders happen while the others wait at a barrier, so this
# must cover a demo render (seconds on a GPU); a lost node is noticed after it. DD_DDP_TIMEOUT_S overrides it.
TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Group:
    """This process's place among the training processes (rank 0 of 1 when not under torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one that writes files and reports progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def share(self, n: int) -> slice:
        """This rank's contiguous slice of a global batch of n (n divisible by the world size)."""
        if n % self.world:
            raise ConfigError(f"the batch size ({n}) must be a multiple of the number of processes ({self.world})")
        size = n // self.world
        return slice(self.rank * size, (self.rank + 1) * size)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module the training step calls: DDP around the model when distributed, the model itself if not."""
        if not self.distributed:
            return model
        device_ids = [model_device(model)] if model_device(model).type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def mean(self, value: torch.Tensor) -> float:
        """The mean of a scalar over all ranks (the global batch's loss from each rank's share)."""
        if self.distributed:
            value = value.detach().clone()
            dist.all_reduce(value)
            value /= self.world
        return float(value)

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when it is true on one: a decision (stop now) all ranks must take together."""
        if not self.distributed:
            return flag
        value = torch.tensor([float(flag)], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


SINGLE = Group()


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def from_environment(environ=os.environ) -> Group:
    """The group torchrun describes in the environment, or SINGLE outside torchrun."""
    if "WORLD_SIZE" not in environ:
        return SINGLE
    try:
        group = Group(int(environ["RANK"]), int(environ["WORLD_SIZE"]), int(environ.get("LOCAL_RANK", 0)))
    except (KeyError, ValueError):
        raise ConfigError("RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers (as torchrun sets them)") from None
    if not 0 <= group.rank < group.world:
        raise ConfigError(f"RANK {group.rank} is outside WORLD_SIZE {group.world}")
    return group


def timeout() -> datetime.timedelta:
    text = os.environ.get("DD_DDP_TIMEOUT_S", "")
    try:
        seconds = float(text) if text else TIMEOUT_S
    except ValueError:
        raise ConfigError(f"DD_DDP_TIMEOUT_S must be seconds, got {text!r}") from None
    return datetime.timedelta(seconds=seconds)


def join(device: torch.device) -> tuple[Group, torch.device]:
    """Join torchrun's process group (NCCL on CUDA, gloo on the CPU) and the device this rank trains on:
    cuda:LOCAL_RANK on a GPU machine. Outside torchrun: (SINGLE, device) and nothing else happens."""
    group = from_environment()
    if not group.distributed:
        return group, device
    if device.type == "cuda":
        if group.local_rank >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK {group.local_rank} but this node has {torch.cuda.device_count()} GPUs: "
                              "use --nproc-per-node up to the number of GPUs")
        device = torch.device("cuda", group.local_rank)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise ConfigError(f"training on several processes needs CUDA or the CPU, not {device.type}")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timeout(),
                                rank=group.rank, world_size=group.world)
    if not group.main:  # rank 0 reports progress; the others only what goes wrong
        logging.getLogger("bridge").setLevel(logging.WARNING)
    return group, device


def leave() -> None:
    """Leave the process group, if this process joined one (each rank does, when it is done)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
