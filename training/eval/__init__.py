"""Evaluation: feature extractors (ONNX), FID/KID/precision-recall, mode coverage.

Only ``training.eval.classifier`` imports torch (it trains the Fashion-MNIST classifier);
everything else runs from ONNX exports with ONNX Runtime and numpy.
"""
