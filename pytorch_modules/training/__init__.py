"""Training: the trainer, checkpoints and multi-process (torchrun) support."""
