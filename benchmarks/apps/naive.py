"""The server the seed scripts teach: FastAPI + PyTorch eager, one forward per request.

MODEL_DIR points at an exported version; the G-EMA safetensors are loaded into the torch
module and every request runs its own batch-1 forward pass. No batching.
"""

import json
import os
from pathlib import Path

import torch
from fastapi import FastAPI
from fastapi.responses import Response
from safetensors.torch import load_file

from ganserve.images import encode_png, to_uint8
from ganserve.latents import z_from_seed
from ganserve.training.networks import build, config_from_dict

VDIR = Path(os.environ["MODEL_DIR"])
MANIFEST = json.loads((VDIR / "manifest.json").read_text())
G, _ = build(MANIFEST["family"], config_from_dict(MANIFEST["family"], MANIFEST["model_args"]))
G.load_state_dict(load_file(str(VDIR / "G_ema.safetensors")))
G.eval().requires_grad_(False)
app = FastAPI()


@app.post("/sample")
def sample(body: dict) -> Response:
    seed = int(body.get("seeds", [0])[0])
    z = torch.from_numpy(z_from_seed(seed, MANIFEST["z_dim"]))[None]
    c = torch.tensor([seed % max(MANIFEST["num_classes"], 1)])
    with torch.no_grad():
        img = G(z, c).clamp(-1, 1).numpy()
    return Response(encode_png(to_uint8(img)[0]), media_type="image/png")
