"""Training: the loop, checkpoints (safetensors) and TensorBoard logging (``convlab train``)."""

__all__ = []
