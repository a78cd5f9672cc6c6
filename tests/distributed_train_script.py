"""Worker of tests/test_distributed.py: ``torchrun --nproc_per_node 2 --standalone <this> OUT``.

Trains the tiny model with data parallelism on gloo and writes, per rank, the final weights and the dev loss
before and after training under ``OUT``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from training_helpers import collator, make_data, make_model

from kgreason.training.config import TrainerConfig
from kgreason.training.distributed import shutdown_distributed
from kgreason.training.trainer import Trainer


def main() -> None:
    out = Path(sys.argv[1])
    task, train, dev = make_data(n_train=96, n_dev=40)
    config = TrainerConfig(
        epochs=3,
        batch_size=8,
        grad_accumulation=2,
        learning_rate=1e-3,
        head_learning_rate=1e-3,
        precision="fp32",
        device="cpu",
        eval_every=3,
        save_every=4,
        log_every=2,
        progress=False,
        tensorboard=True,
    )
    trainer = Trainer(
        model=make_model(seed=0),
        task=task,
        config=config,
        train=train,
        dev=dev,
        collator=collator(),
        output_dir=out / "run",
    )
    rank = trainer.dist.rank
    before = trainer.evaluate(dev)
    result = trainer.train(resume=False)
    after = trainer.evaluate(dev)

    from safetensors.torch import save_model

    save_model(trainer.model, str(out / f"rank{rank}.safetensors"))
    report = {
        "rank": rank,
        "world_size": trainer.dist.world_size,
        "backend": trainer.dist.backend,
        "loss_before": before.loss,
        "loss_after": after.loss,
        "accuracy_after": after.metrics.score,
        "predictions": after.predictions,
        "global_steps": result.global_steps,
        "best_metric": result.best_metric,
        "history": [h.to_dict() for h in result.history],
    }
    (out / f"rank{rank}.json").write_text(json.dumps(report), encoding="utf-8")
    shutdown_distributed()


if __name__ == "__main__":
    main()
