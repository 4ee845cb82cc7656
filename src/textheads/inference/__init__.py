"""Inference: tokenising and length-sorted batching (`batching`), the PyTorch and ONNX
Runtime backends (`backends`), and predictions, decisions and records (`predict`)."""
