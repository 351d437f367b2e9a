"""Core training: the config, the model, CTC, metrics, checkpoints and the training engine."""
