"""Training checkpoints: LoRA weights, optimizer and scheduler state, losses and time so far.

A checkpoint is a folder `checkpoints/step-NNNNNN/` in the output folder with the adapter as
PEFT saves it, `optimizer.pt` (optimizer, scheduler and random state) and `trainer_state.json`.
It is written into a staging folder and renamed into place, so an interrupted save leaves the
previous checkpoint intact. Only the newest checkpoint is kept.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scout.errors import ConfigError

logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.pt"


@dataclass
class Checkpoint:
    """Training progress: the step reached, every step's loss, time spent, and what it trained on.

    `config` contains the settings a resumed run must match (`TrainConfig.resume_key()`), and
    `data_hash` the SHA-256 of the training data.
    """

    step: int = 0
    losses: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)
    data_hash: str = ""


@dataclass(frozen=True)
class CheckpointFolder:
    path: Path

    def load(self, model, optimizer, scheduler) -> Checkpoint:
        """Restore the adapter weights, optimizer, scheduler and random state; return the progress."""
        import torch
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(model, load_file(self.path / "adapter_model.safetensors"))
        saved = torch.load(self.path / OPTIMIZER_FILE, weights_only=True)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["rng"])
        return Checkpoint(**json.loads((self.path / STATE_FILE).read_text(encoding="utf-8")))


def latest_checkpoint(output_dir: Path) -> CheckpointFolder | None:
    """Return the checkpoint with the highest step under `output_dir`, or None."""
    folder = output_dir / CHECKPOINTS
    if not folder.is_dir():
        return None
    complete = [p for p in folder.glob("step-*") if (p / STATE_FILE).is_file() and (p / OPTIMIZER_FILE).is_file()]
    if not complete:
        return None
    return CheckpointFolder(max(complete, key=_step_of))


def save_checkpoint(output_dir: Path, model, optimizer, scheduler, state: Checkpoint) -> Path:
    """Write a checkpoint for `state.step`, then delete older ones; return its folder."""
    import torch

    folder = output_dir / CHECKPOINTS
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"step-{state.step:06d}"
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".staging", dir=folder))
    try:
        model.save_pretrained(staging)
        torch.save(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state()},
            staging / OPTIMIZER_FILE,
        )
        (staging / STATE_FILE).write_text(json.dumps(asdict(state), indent=1), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    _remove_older(folder, target)
    logger.info("saved checkpoint %s", target)
    return target


def _remove_older(folder: Path, keep: Path) -> None:
    for path in folder.iterdir():
        if path != keep and path.is_dir() and (path.name.startswith("step-") or path.name.endswith(".staging")):
            shutil.rmtree(path, ignore_errors=True)


def _step_of(path: Path) -> int:
    try:
        return int(path.name.removeprefix("step-"))
    except ValueError as exc:
        raise ConfigError(f"unexpected folder {path} among checkpoints; remove it") from exc
