"""Training both stages of the model: the motion VQ-VAE (`vq`), then the T5 language model
over text and motion tokens (`lm`). Runs in one process or under `torchrun` (DDP)."""
