"""Returns the exit code of ``trainguard train`` re-launched on N processes through ``accelerate launch``.

Distributed training is accelerate's job (an existing engine, never our own):
this module only builds its command line and runs it. Each child runs the same
``trainguard train`` with ``TRAINGUARD_LAUNCHED=1`` so it trains instead of
launching again; the HF Trainer picks the process group up from the
environment accelerate sets.

Traps avoided (STACK.md): ``accelerate launch --cpu --num_processes 2``
silently runs *one* process, so CPU runs use ``--multi_gpu`` with
``use_cpu=True`` and ``ddp_backend=gloo`` in the TrainingArguments; and
``--mixed_precision``/``--dynamo_backend`` are given so accelerate never
stops to ask for a config.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError

LAUNCHED_ENV = "TRAINGUARD_LAUNCHED"


def is_launched_child() -> bool:
    return os.environ.get(LAUNCHED_ENV) == "1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch_command(config_path: str, overrides: Sequence[str], *, gpus: int, cpu: bool = False,
                   deepspeed: str | None = None, fsdp: bool = False, mixed_precision: str = "no") -> list[str]:
    """The ``accelerate launch`` argv that runs ``trainguard train`` on ``gpus`` processes."""
    if gpus < 2:
        raise ConfigError("--gpus: give 2 or more to launch several processes (1 trains in-process)", key="gpus")
    if deepspeed and fsdp:
        raise ConfigError("--deepspeed and --fsdp are exclusive: pick one engine", key="deepspeed")
    if deepspeed and not Path(deepspeed).is_file():
        raise ConfigError(f"--deepspeed: file not found: {deepspeed}", key="deepspeed")
    if cpu and (deepspeed or fsdp):
        raise ConfigError("--cpu runs plain DDP over gloo; DeepSpeed and FSDP need GPUs", key="cpu")
    exe = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or shutil.which("accelerate")
    cmd = [exe] if exe else [sys.executable, "-m", "accelerate.commands.launch"]
    if exe:
        cmd.append("launch")
    cmd += ["--num_processes", str(gpus), "--num_machines", "1", "--mixed_precision", mixed_precision,
            "--dynamo_backend", "no", "--main_process_port", str(_free_port())]
    if deepspeed:
        cmd += ["--use_deepspeed", "--deepspeed_config_file", str(deepspeed)]
    elif fsdp:
        cmd += ["--use_fsdp"]
    else:
        cmd += ["--multi_gpu"]
    cmd += ["-m", "trainguard.cli", "train", str(config_path)]
    for o in overrides:
        cmd += ["--set", o]
    if cpu:
        cmd += ["--set", "use_cpu=true", "--set", "ddp_backend=gloo"]
    return cmd


def relaunch(config_path: str, overrides: Sequence[str], *, gpus: int, cpu: bool = False,
             deepspeed: str | None = None, fsdp: bool = False, mixed_precision: str = "no") -> int:
    """Run the launch command, children inheriting stdout/stderr; returns its exit code."""
    cmd = launch_command(config_path, overrides, gpus=gpus, cpu=cpu, deepspeed=deepspeed, fsdp=fsdp,
                         mixed_precision=mixed_precision)
    env = dict(os.environ, **{LAUNCHED_ENV: "1"})
    if cpu:
        env.setdefault("CUDA_VISIBLE_DEVICES", "")
        env.setdefault("OMP_NUM_THREADS", "1")  # N processes x all cores each would thrash
    return subprocess.call(cmd, env=env)


__all__ = ["LAUNCHED_ENV", "is_launched_child", "launch_command", "relaunch"]
