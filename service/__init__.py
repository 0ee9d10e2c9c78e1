"""The inference service (FastAPI + ONNX Runtime). Imports no torch; built in issue 4."""
