"""Serving: a trained recogniser, its fast ONNX Runtime path, reading many files, export and timing."""
