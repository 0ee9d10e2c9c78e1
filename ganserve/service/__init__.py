"""The inference service (FastAPI + ONNX Runtime). Imports no torch."""
