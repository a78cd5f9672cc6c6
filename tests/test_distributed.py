"""Data parallelism: two CPU processes on gloo under torchrun train the tiny model to identical weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kgreason.training.distributed import DistributedContext, all_gather_objects, init_distributed

TESTS = Path(__file__).resolve().parent


def test_single_process_is_not_distributed(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    ctx = init_distributed(device_type="cpu")
    assert ctx == DistributedContext() and not ctx.enabled and ctx.is_main
    assert all_gather_objects({"a": 1}, ctx=ctx) == [{"a": 1}]
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE"):
        init_distributed(device_type="cpu")


def test_torchrun_two_cpu_processes_train_identical_weights(tmp_path):
    env = {
        k: v for k, v in os.environ.items() if k not in {"WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR"}
    }
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS.parent), env.get("PYTHONPATH", "")])
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--standalone",
        str(TESTS / "distributed_train_script.py"),
        str(tmp_path),
    ]
    done = subprocess.run(command, cwd=TESTS, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]

    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["world_size"] for r in reports] == [2, 2] and reports[0]["backend"] == "gloo"
    for report in reports:
        assert report["loss_after"] < 0.8 * report["loss_before"]
    # gathered evaluation: both ranks see the same predictions and the same history
    assert reports[0]["predictions"] == reports[1]["predictions"] and len(reports[0]["predictions"]) == 40
    assert reports[0]["history"] == reports[1]["history"] and reports[0]["global_steps"] == 9

    from safetensors.torch import load_file

    first, second = (load_file(tmp_path / f"rank{r}.safetensors") for r in range(2))
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)

    # rank 0 alone wrote the checkpoint and the logs; it holds every rank's RNG state
    run = tmp_path / "run"
    state = torch.load(run / "checkpoints" / "last" / "trainer_state.pt", weights_only=True)
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    assert not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])  # dropout differs per rank
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1
