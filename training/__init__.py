"""Offline half of ganserve: data, models, training loop, ONNX export, evaluation.

Importing this package does not import torch; only the modules that train or export do.
The evaluation path (``training.eval``) runs from ONNX exports with ONNX Runtime alone.
"""
