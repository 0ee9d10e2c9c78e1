"""Inference engine: dynamic batching over ONNX Runtime sessions, run off the event loop."""
