"""OIP, the Open Inference Protocol (KServe predict v2, Triton HTTP/REST and gRPC): the
tensors on the wire (``tensors``) and what a protocol request means for a GAN
(``inference``: metadata, Triton's model configuration, infer). The HTTP routes are
``ganserve.service.api.routes.inference``; both run the same generation code and batchers as
the REST endpoints.
"""
