"""The framework's ceiling: a FastAPI endpoint that returns a fixed PNG, no model work."""

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response

from ganserve.images import encode_png

app = FastAPI()
PNG = encode_png(np.zeros((32, 32, 1), np.uint8))


@app.post("/sample")
async def sample(request: Request) -> Response:
    await request.body()
    return Response(PNG, media_type="image/png")
