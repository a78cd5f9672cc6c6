"""Seeds and random-generator states (python, numpy, torch CPU and CUDA), for reproducible and resumable runs."""

from __future__ import annotations

import json
import random
from typing import Any


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global generator and torch (CPU and every CUDA device)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds every CUDA device too


def capture_rng_state() -> dict[str, Any]:
    """The state of every global generator, made of types ``torch.load(weights_only=True)`` accepts."""
    import numpy as np
    import torch

    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),  # (624,)
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put back what :func:`capture_rng_state` returned."""
    import numpy as np
    import torch

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": np_state["bit_generator"],
            "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
            "has_gauss": np_state["has_gauss"],
            "gauss": np_state["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def random_state_to_json(rng: random.Random) -> str:
    """A ``random.Random``'s state as JSON (a checkpoint field that ``weights_only`` loading accepts)."""
    return json.dumps(rng.getstate())


def random_state_from_json(text: str) -> tuple:
    """The state :func:`random_state_to_json` wrote, ready for ``rng.setstate``."""
    version, state, gauss = json.loads(text)
    return version, tuple(state), gauss
