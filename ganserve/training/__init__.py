"""Offline half of ganserve: models, training loop, ONNX export, the evaluation classifier.

Importing this package does not import torch; only the modules that train or export do.
Scoring an exported model is the torch-free ``evaluation`` package.
"""
