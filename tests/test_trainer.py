"""Trainer: learning, accumulation, schedule, bucketing, checkpoints and exact resume, early stopping, divergence,
precision, PEFT hook, prediction order."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from training_helpers import collator, make_data, make_model

from kgreason.core.atomic import atomic_directory
from kgreason.core.errors import ConfigError, KGReasonError
from kgreason.models.peft import PeftConfig
from kgreason.training.checkpoint import (
    STATE_NAME,
    WEIGHTS_NAME,
    CheckpointError,
    load_training_state,
    resolve_checkpoint,
)
from kgreason.training.config import TrainerConfig
from kgreason.training.precision import resolve_precision
from kgreason.training.sampler import LengthBucketSampler, sorted_batches
from kgreason.training.schedule import linear_warmup_decay, linear_warmup_decay_factor, warmup_steps_for
from kgreason.training.seed import capture_rng_state, restore_rng_state, seed_everything
from kgreason.training.trainer import Trainer, TrainerCallback, TrainingDivergedError, parameter_groups


@pytest.fixture(scope="module")
def data():
    return make_data()


def config(**overrides) -> TrainerConfig:
    base = {
        "epochs": 2,
        "batch_size": 16,
        "learning_rate": 1e-3,
        "head_learning_rate": 1e-3,
        "precision": "fp32",
        "device": "cpu",
        "progress": False,
        "tensorboard": False,
        "log_every": 5,
    }
    base.update(overrides)
    return TrainerConfig(**base)


def trainer(data, out: Path, *, model=None, callbacks=(), **overrides) -> Trainer:
    task, train, dev = data
    return Trainer(
        model=model if model is not None else make_model(),
        task=task,
        config=config(**overrides),
        train=train,
        dev=dev,
        collator=collator(),
        output_dir=out,
        callbacks=callbacks,
    )


def weights(model) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


# ------------------------------------------------------------------------------------------------ schedule
def test_warmup_then_linear_decay():
    assert warmup_steps_for(total_steps=100, warmup_ratio=0.1) == 10
    assert warmup_steps_for(total_steps=7, warmup_ratio=0.1) == 1
    assert warmup_steps_for(total_steps=7, warmup_ratio=0.0) == 0
    factors = [linear_warmup_decay_factor(s, total_steps=10, warmup_steps=2) for s in range(10)]
    assert factors == pytest.approx([0.5, 1.0, 1.0, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8])
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([{"params": [param], "lr": 2.0}])
    scheduler = linear_warmup_decay(optimizer, total_steps=10, warmup_steps=2)
    seen = []
    for _ in range(10):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([2 * f for f in factors])
    assert optimizer.param_groups[0]["lr"] == 0.0
    with pytest.raises(ValueError, match="warmup_ratio"):
        warmup_steps_for(total_steps=10, warmup_ratio=1.5)


# ------------------------------------------------------------------------------------------------- sampler
def _padded_tokens(batches, lengths) -> int:
    return sum(max(lengths[i] for i in b) * len(b) for b in batches)


def test_bucketing_cuts_padding_is_deterministic_and_covers_each_example_once():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 200, size=1000).tolist()
    bucketed = LengthBucketSampler(lengths=lengths, batch_size=16, seed=3)
    plain = LengthBucketSampler(lengths=lengths, batch_size=16, seed=3, bucketing=False)
    for epoch in range(2):
        bucketed.set_epoch(epoch)
        plain.set_epoch(epoch)
        batches = list(bucketed)
        assert len(batches) == bucketed.num_batches == len(bucketed) == 63
        assert sorted(i for b in batches for i in b) == list(range(1000))
        assert batches == list(bucketed)  # same (seed, epoch), same order
        real = sum(lengths)
        waste_bucketed = _padded_tokens(batches, lengths) - real
        waste_plain = _padded_tokens(list(plain), lengths) - real
        assert waste_bucketed < 0.25 * waste_plain
    bucketed.set_epoch(0)
    first = list(bucketed)
    bucketed.set_epoch(1)
    assert list(bucketed) != first
    other = LengthBucketSampler(lengths=lengths, batch_size=16, seed=4)
    assert list(other) != first
    # batch order is shuffled: the first batches are not simply the longest ones
    firsts = [max(lengths[i] for i in b) for b in first[:10]]
    assert firsts != sorted(firsts, reverse=True)


def test_sampler_rank_split_and_skip():
    lengths = list(range(1, 104))  # 103 examples: 13 batches of 8, padded to 14 for 2 ranks
    ranks = [
        LengthBucketSampler(lengths=lengths, batch_size=8, seed=1, rank=r, world_size=2) for r in range(2)
    ]
    shares = [list(s) for s in ranks]
    assert len(shares[0]) == len(shares[1]) == ranks[0].num_batches == 7
    assert {i for share in shares for b in share for i in b} == set(range(103))
    full = list(ranks[1])
    ranks[1].set_epoch(0, skip=3)
    assert list(ranks[1]) == full[3:] and len(ranks[1]) == 4
    eval_shares = [sorted_batches(lengths, batch_size=8, rank=r, world_size=2) for r in range(2)]
    flat = [i for share in eval_shares for b in share for i in b]
    assert sorted(flat) == list(range(103)) and len(flat) == 103
    with pytest.raises(ValueError, match="rank"):
        LengthBucketSampler(lengths=lengths, batch_size=8, rank=2, world_size=2)


# ------------------------------------------------------------------------------------------------ training
def test_training_reaches_high_dev_accuracy_and_writes_run_folder(data, tmp_path):
    tr = trainer(data, tmp_path, epochs=4, tensorboard=True)
    result = tr.train(resume=False)
    assert result.best_metric >= 0.9
    assert result.metric == "accuracy"
    assert result.global_steps == 40 and result.epochs == pytest.approx(4.0)
    assert [h.step for h in result.history] == [10, 20, 30, 40]
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert result.train_samples_per_s > 0 and result.train_tokens_per_s > result.train_samples_per_s
    assert (tmp_path / "best" / WEIGHTS_NAME).is_file()
    assert resolve_checkpoint(tmp_path / "checkpoints" / "last") == tmp_path / "checkpoints" / "last"
    # after training the model holds the best weights: evaluating it again gives the best score
    again = tr.evaluate(data[2])
    assert again.metrics.score == pytest.approx(result.best_metric)
    assert again.loss is not None and again.num_examples == len(data[2])

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr_encoder", "train/lr_head", "train/samples_per_s", "dev/accuracy"} <= tags
    assert [e.step for e in events.Scalars("dev/accuracy")] == [10, 20, 30, 40]


def test_predictions_come_back_in_dataset_order(data, tmp_path):
    task, train, dev = data

    class LogitTask(type(task)):
        def decode(self, logits, batch):
            return logits.tolist()  # one distinct prediction per example

    tr = Trainer(
        model=make_model(),
        task=LogitTask(labels=task.labels),
        config=config(eval_batch_size=7),
        train=train,
        collator=collator(),
        output_dir=tmp_path,
    )
    predictions = tr.predict(dev)  # length-sorted batches of 7
    model = tr.model.eval()
    with torch.no_grad():
        expected = [model(collator()([dev[i]])).logits[0].tolist() for i in range(len(dev))]
    np.testing.assert_allclose(np.array(predictions), np.array(expected), rtol=1e-4, atol=1e-5)
    assert len({tuple(np.round(p, 3)) for p in predictions}) > len(dev) // 2


def test_gradient_accumulation_matches_the_large_batch(data, tmp_path):
    class Grabber(TrainerCallback):
        def __init__(self):
            self.grads = None

        def on_before_optimizer_step(self, trainer, *, step):
            if self.grads is None:
                self.grads = {
                    n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None
                }

    grads = []
    for batch_size, accum in ((8, 1), (4, 2)):
        grab = Grabber()
        tr = trainer(
            data,
            tmp_path / f"b{batch_size}",
            model=make_model(dropout=0.0),
            callbacks=[grab],
            batch_size=batch_size,
            grad_accumulation=accum,
            length_bucketing=False,
            max_grad_norm=0.0,
            max_steps=1,
        )
        tr.train(resume=False)
        grads.append(grab.grads)
    big, accumulated = grads
    assert big.keys() == accumulated.keys() and len(big) > 10
    for name in big:
        torch.testing.assert_close(accumulated[name], big[name], rtol=1e-4, atol=1e-6, msg=name)


def test_parameter_groups_split_encoder_head_and_decay():
    model = make_model()
    groups = parameter_groups(model, learning_rate=1e-4, head_learning_rate=1e-2, weight_decay=0.1)
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"encoder", "encoder_no_decay", "head", "head_no_decay"}
    assert by_name["encoder"]["lr"] == 1e-4 and by_name["head"]["lr"] == 1e-2
    assert by_name["head_no_decay"]["weight_decay"] == 0.0 and by_name["head"]["weight_decay"] == 0.1
    ids = {g["name"]: {id(p) for p in g["params"]} for g in groups}
    assert id(model.head.weight) in ids["head"]
    assert {id(model.head.bias), id(model.norm.weight), id(model.norm.bias)} <= ids["head_no_decay"]
    ln = model.encoder.embeddings.LayerNorm.weight
    assert id(ln) in ids["encoder_no_decay"]
    assert id(model.encoder.embeddings.word_embeddings.weight) in ids["encoder"]
    assert sum(len(v) for v in ids.values()) == len(list(model.parameters()))
    same = parameter_groups(model, learning_rate=1e-4, head_learning_rate=None, weight_decay=0.1)
    assert {g["lr"] for g in same} == {1e-4}


# ------------------------------------------------------------------------------------ checkpoints / resume
class Interrupt(TrainerCallback):
    def __init__(self, at_step: int):
        self.at_step = at_step

    def on_step_end(self, trainer, *, step):
        if step == self.at_step:
            raise KeyboardInterrupt


def test_interrupted_and_resumed_run_is_bit_identical(data, tmp_path):
    # dropout on (RNG state matters), bucketing, accumulation, a mid-epoch checkpoint (10 batches -> 5 steps/epoch)
    settings = {"epochs": 3, "grad_accumulation": 2, "save_every": 3, "eval_every": 4, "log_every": 2}
    reference = trainer(data, tmp_path / "ref", **settings)
    expected = reference.train(resume=False)

    broken = trainer(data, tmp_path / "run", callbacks=[Interrupt(7)], **settings)
    with pytest.raises(KeyboardInterrupt):
        broken.train(resume=False)
    state = load_training_state(tmp_path / "run" / "checkpoints" / "last")
    assert state["global_step"] == 6 and state["epoch"] == 1 and state["batches_done"] == 2  # mid-epoch

    resumed = trainer(data, tmp_path / "run", model=make_model(seed=99), **settings)
    result = resumed.train(resume=True)
    assert result.global_steps == expected.global_steps == 15
    assert [h.to_dict() for h in result.history] == [h.to_dict() for h in expected.history]
    assert result.best_metric == expected.best_metric and result.best_step == expected.best_step
    assert result.final_train_loss == expected.final_train_loss
    want, got = weights(reference.model), weights(resumed.model)
    assert want.keys() == got.keys()
    for name in want:
        assert torch.equal(want[name], got[name]), name
    from safetensors.torch import load_file

    last_ref = load_file(tmp_path / "ref" / "checkpoints" / "last" / WEIGHTS_NAME)
    last_run = load_file(tmp_path / "run" / "checkpoints" / "last" / WEIGHTS_NAME)
    assert all(
        torch.equal(last_ref[k], last_run[k]) for k in last_ref
    )  # the final (not only the best) weights
    # a finished run resumes to the same result without training
    done = trainer(data, tmp_path / "run", **settings).train(resume=True)
    assert done.global_steps == 15 and done.train_samples_per_s == 0.0


def test_checkpoint_state_loads_with_weights_only_and_guards_data_order(data, tmp_path):
    trainer(data, tmp_path, max_steps=3, save_every=2).train(resume=False)
    last = tmp_path / "checkpoints" / "last"
    assert sorted(p.name for p in last.iterdir()) == [
        "model.safetensors",
        "trainer_state.json",
        "trainer_state.pt",
    ]
    state = torch.load(last / STATE_NAME, weights_only=True)
    assert state["global_step"] == 3
    assert {"optimizer", "scheduler", "scaler", "rng", "history", "best_metric", "bad_evals", "epoch"} <= set(
        state
    )
    assert isinstance(state["rng"][0]["torch"], torch.Tensor)
    assert not [p for p in last.parent.iterdir() if p.name.startswith(".")]  # no temporary leftovers
    stale = last.parent / ".last.killed.tmp"  # what a killed writer leaves behind
    stale.mkdir()
    with pytest.raises(CheckpointError, match="batch_size 16 -> 8"):
        trainer(data, tmp_path, max_steps=3, batch_size=8).train(resume=True)
    assert not stale.exists()


def test_max_steps_then_continue_extends_the_schedule(data, tmp_path):
    first = trainer(data, tmp_path, max_steps=3).train(resume=False)
    assert first.global_steps == 3
    tr = trainer(data, tmp_path)  # 2 epochs = 20 steps
    result = tr.train(resume=True)
    assert result.global_steps == 20 and result.epochs == pytest.approx(2.0)
    assert tr.scheduler.lr_lambdas[0].total_steps == 20
    assert tr.optimizer.param_groups[0]["lr"] == 0.0  # decayed to zero at the new end


def test_rng_state_round_trip():
    seed_everything(5)
    state = capture_rng_state()
    a = (np.random.rand(), torch.rand(2), __import__("random").random())
    restore_rng_state(state)
    b = (np.random.rand(), torch.rand(2), __import__("random").random())
    assert a[0] == b[0] and torch.equal(a[1], b[1]) and a[2] == b[2]


def test_atomic_directory_keeps_the_previous_checkpoint_on_failure(tmp_path):
    target = tmp_path / "last"
    with atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("one")
    with pytest.raises(RuntimeError), atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("crash while writing")
    assert (target / "a.txt").read_text() == "one"
    assert [p.name for p in tmp_path.iterdir()] == ["last"]
    # a crash between the two renames leaves the previous folder aside; it is still found
    for name in (STATE_NAME, WEIGHTS_NAME):
        (target / name).write_bytes(b"x")
    target.rename(tmp_path / ".last.previous")
    assert resolve_checkpoint(target) == tmp_path / ".last.previous"
    with atomic_directory(target) as tmp:  # the next save puts a whole folder back and drops the old one
        (tmp / "a.txt").write_text("two")
    assert [p.name for p in tmp_path.iterdir()] == ["last"] and (target / "a.txt").read_text() == "two"


# --------------------------------------------------------------------------------- stopping and divergence
def test_early_stopping_stops_after_patience(data, tmp_path):
    tr = trainer(
        data, tmp_path, learning_rate=1e-12, head_learning_rate=1e-12, eval_every=1, early_stopping_patience=2
    )
    result = tr.train(resume=False)
    assert result.stopped_early
    assert result.global_steps == 3  # step 1 sets the best, steps 2 and 3 do not improve
    assert [h.improved for h in result.history] == [True, False, False]
    assert result.best_step == 1
    again = trainer(data, tmp_path, eval_every=1, early_stopping_patience=2).train(resume=True)
    assert again.stopped_early and again.global_steps == 3


def test_nan_loss_raises_with_step_and_indices_and_keeps_the_checkpoint(data, tmp_path):
    model = make_model(nan_at_forward=4)  # the 5th forward pass = optimizer step 5
    tr = trainer(data, tmp_path, model=model, save_every=2, log_every=100)
    with pytest.raises(TrainingDivergedError) as caught:
        tr.train(resume=False)
    err = caught.value
    assert isinstance(err, KGReasonError)
    assert err.step == 5
    assert err.indices == model.seen[4]["index"]
    assert "optimizer step 5" in str(err) and str(err.indices[0]) in str(err)
    last = tmp_path / "checkpoints" / "last"
    assert err.checkpoint == last
    state = load_training_state(last)
    assert state["global_step"] == 4  # the save at step 6 was refused
    from safetensors.torch import load_file

    assert all(torch.isfinite(t).all() for t in load_file(last / WEIGHTS_NAME).values())


# -------------------------------------------------------------------------------------- precision, options
def test_bf16_autocast_on_cpu(data, tmp_path):
    assert resolve_precision("auto", device=torch.device("cpu")).name == "bf16"
    with pytest.raises(ConfigError, match="fp16 needs a CUDA"):
        resolve_precision("fp16", device=torch.device("cpu"))
    with pytest.raises(ConfigError, match="precision"):
        resolve_precision("fp8", device=torch.device("cpu"))
    model = make_model()
    tr = trainer(data, tmp_path, model=model, precision="auto", max_steps=4)
    result = tr.train(resume=False)
    assert tr.precision.name == "bf16"
    assert all(s["autocast"] and s["dtype"] == torch.bfloat16 for s in model.seen)
    assert np.isfinite(result.final_train_loss)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay fp32


def test_fp16_gradient_scaler_path(data, tmp_path):
    # fp16 is refused on CPU by resolve_precision; forcing it exercises the scaler code path without a GPU
    from kgreason.training.precision import Precision

    model = make_model()
    tr = trainer(data, tmp_path, model=model, max_steps=4, save_every=4)
    tr.precision = Precision(name="fp16", device_type="cpu")
    before = weights(model)
    tr.train(resume=False)
    assert tr.scaler.is_enabled() and model.seen[0]["dtype"] == torch.float16
    state = load_training_state(tmp_path / "checkpoints" / "last")
    assert state["scaler"]["scale"] == tr.scaler.get_scale() and state["scaler"]["scale"] <= 2.0**16
    after = weights(model)
    assert all(torch.isfinite(v).all() for v in after.values())
    assert not torch.equal(before["head.weight"], after["head.weight"])


def test_invalid_config_is_rejected(data, tmp_path):
    with pytest.raises(ConfigError, match="grad_accumulation"):
        trainer(data, tmp_path, grad_accumulation=0)
    with pytest.raises(ConfigError, match="nothing to train"):
        trainer(data, tmp_path, epochs=0).train()
    with pytest.raises(ConfigError, match="not among the task's metrics"):
        trainer(data, tmp_path, metric="f1", max_steps=1).train(resume=False)


def test_lora_is_applied_before_the_optimizer(data, tmp_path):
    pytest.importorskip("kgreason.models.peft")
    tr = trainer(data, tmp_path, max_steps=2, peft=PeftConfig(method="lora", r=4))
    base_name = "encoder.embeddings.word_embeddings.weight"
    before = weights(tr.model)
    tr.train(resume=False)
    assert type(tr.model.encoder).__name__.startswith("Peft")
    names = {id(p): n for n, p in tr.model.named_parameters()}
    groups = {g["name"]: [names[id(p)] for p in g["params"]] for g in tr.optimizer.param_groups}
    assert groups["encoder"] and all("lora_" in n for n in groups["encoder"])  # the base encoder is frozen
    assert "head.weight" in groups["head"]
    after = dict(tr.model.named_parameters())
    base = next(n for n in after if n.endswith("word_embeddings.weight"))
    assert torch.equal(before[base_name], after[base].detach())
    assert not torch.equal(before["head.weight"], after["head.weight"].detach())


def test_adalora_gets_the_total_steps_and_a_call_after_each_step(data, tmp_path, monkeypatch):
    peft = pytest.importorskip("kgreason.models.peft")
    calls = []
    real = peft.peft_after_step

    def spy(model, *, global_step):
        calls.append(global_step)
        assert any(p.grad is not None for p in model.parameters())  # before zero_grad
        real(model, global_step=global_step)

    monkeypatch.setattr(peft, "peft_after_step", spy)
    tr = trainer(data, tmp_path, max_steps=3, peft=PeftConfig(method="adalora", r=4))
    tr.train(resume=False)
    assert calls == [0, 1, 2]
    assert tr.model.encoder.peft_config["default"].total_step == 3


def test_no_dev_set_saves_the_final_model_as_best(data, tmp_path):
    task, train, _ = data
    tr = Trainer(
        model=make_model(),
        task=task,
        config=dataclasses.replace(config(), max_steps=3),
        train=train,
        collator=collator(),
        output_dir=tmp_path,
    )
    result = tr.train(resume=False)
    assert result.best_metric is None and result.history == []
    assert result.best_checkpoint == tmp_path / "best" and (tmp_path / "best" / WEIGHTS_NAME).is_file()
