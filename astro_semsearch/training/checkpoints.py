"""Checkpoints of a training run: ``out/checkpoints/epoch-XXX/`` (weights, optimiser state, progress)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from torch import nn

from .._io import atomic_directory

__all__ = ["Checkpoints"]


class Checkpoints:
    """``out/checkpoints/epoch-XXX/`` directories with weights + optimiser state + progress."""

    def __init__(self, out: Path):
        self.root = out / "checkpoints"

    def latest(self) -> Path | None:
        if not self.root.is_dir():
            return None
        done = sorted(p for p in self.root.glob("epoch-*") if (p / "state.json").is_file())
        return done[-1] if done else None

    def save(self, epoch: int, modules: dict[str, nn.Module], optim: torch.optim.Optimizer | None,
             state: dict) -> Path:
        from safetensors.torch import save_file

        final = self.root / f"epoch-{epoch:03d}"
        with atomic_directory(final, overwrite=True) as tmp:
            for name, mod in modules.items():
                sd = {k: v.detach().cpu().contiguous() for k, v in mod.state_dict().items()}
                save_file(sd, str(tmp / f"{name}.safetensors"))
            if optim is not None:
                torch.save(optim.state_dict(), tmp / "optimizer.pt")
            (tmp / "state.json").write_text(json.dumps(state, indent=2, default=str))
        # Keep only the two newest checkpoints (a few MB each).
        for old in sorted(self.root.glob("epoch-*"))[:-2]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    @staticmethod
    def load(path: Path, modules: dict[str, nn.Module], device) -> dict:
        from safetensors.torch import load_file

        for name, mod in modules.items():
            f = path / f"{name}.safetensors"
            if f.is_file():
                mod.load_state_dict(load_file(str(f), device=str(device)))
        return json.loads((path / "state.json").read_text())

    @staticmethod
    def load_optimizer(path: Path, optim: torch.optim.Optimizer, device) -> bool:
        f = path / "optimizer.pt"
        if not f.is_file():
            return False
        optim.load_state_dict(torch.load(f, map_location=device, weights_only=True))
        return True
