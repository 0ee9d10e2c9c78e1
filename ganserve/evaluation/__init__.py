"""Scoring exported models (no torch): samples from the ONNX graphs, features from an ONNX
extractor, FID/KID/precision-recall against real data, class coverage, memorization and the
StyleGAN checks; results are stored as evaluation records beside the version."""
