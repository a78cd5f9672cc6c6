"""Training: batches with dynamic padding, the trainer, checkpoints, distributed and parameter-efficient runs."""
