"""All service settings, from the environment (prefix ``GANSERVE_``), validated at start.

Namesakes, one concept at several layers (settings): ``ganserve.settings``: the base every
process shares; ``ganserve.service.settings``: the API's, which extends it;
``ganserve.worker.settings``: the job worker's, which extends it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ganserve.service.uploads.archive import ArchiveLimits
from ganserve.service.uploads.ingest import UploadLimits
from ganserve.settings import SharedSettings


class Batching(BaseModel):
    """One model's dynamic batching, as Triton's ``dynamic_batching`` and BentoML's
    ``max_batch_size`` / ``max_latency_ms`` give it per model; unset fields keep the
    device's default."""
    model_config = ConfigDict(extra="forbid")
    max_batch_rows: int | None = Field(None, ge=1, le=4096, description="rows per run")
    max_batch_delay_ms: float | None = Field(None, ge=0, le=1000, description="longest a "
                                             "row waits for others to join its batch")


class Settings(SharedSettings):
    """The API's settings: the shared base (store, data dir, broker, database, job timing,
    webhooks) and the serving ones."""
    max_fine_tune_steps: int = Field(100_000, ge=1, description="largest steps a fine-tune "
                                     "job may ask for")
    max_queued_jobs: int = Field(100, ge=1, description="jobs waiting in the queues at most; "
                                 "beyond it submissions get 429")
    max_eval_samples: int = Field(50_000, ge=2, description="largest n of an evaluate job")
    max_project_steps: int = Field(2_000, ge=1, description="largest steps a project job "
                                   "may ask for (300 take about 5 s of CPU for StyleGAN)")
    device: Literal["auto", "cuda", "cpu"] = Field(
        "auto", description="auto: CUDA execution provider when available, else CPU")
    max_batch_rows: int = Field(64, ge=1, le=4096, description="rows per ONNX Runtime run "
                                "on the CPU")
    max_batch_delay_ms: float = Field(
        2.0, ge=0, le=1000, description="longest a row waits for others to join its batch "
        "on the CPU")
    gpu_max_batch_rows: int = Field(256, ge=1, le=4096, description="rows per run on a GPU "
                                    "(CUDA): it is underused by small batches")
    gpu_max_batch_delay_ms: float = Field(1.0, ge=0, le=1000, description="a GPU run takes "
                                          "a fraction of a CPU's, so rows wait less for it")
    cpu_mem_arena: bool = Field(True, description="ONNX Runtime's CPU memory arena: keeps "
                                "the largest batch's activations for the next run (measured, "
                                "StyleGAN: 67 MB more per worker, batch-64 runs 17% faster)")
    io_binding: Literal["auto", "on", "off"] = Field(
        "auto", description="run graphs through ONNX Runtime's IO binding (output allocated "
        "on the device, copied to the host once); auto: on a GPU only")
    fp16: Literal["auto", "on", "off"] = Field(
        "auto", description="run a version's float16 graphs where it has them (ganserve "
        "export --fp16): auto: on a GPU only (a CPU runs them slower); on: on the CPU too; "
        "off: never. Versions without them run float32")
    model_batching: dict[str, Batching] = Field(
        {}, description='per model name, over the device\'s defaults, e.g. '
        '{"fashion-stylegan": {"max_batch_rows": 32, "max_batch_delay_ms": 4}}')
    max_queue_rows: int = Field(2048, ge=1, description="rows waiting per model version; "
                                "beyond it requests get 503 with Retry-After")
    request_deadline_s: float = Field(30.0, gt=0, le=3600,
                                      description="a request not answered by then gets 504")
    max_images: int = Field(256, ge=1, le=4096, description="images per request (n, seeds)")
    max_interpolation_steps: int = Field(64, ge=2, le=1024)
    max_grid_cells: int = Field(256, ge=1, le=4096, description="style-mix rows x cols")
    max_scale: int = Field(16, ge=1, le=64, description="largest nearest-neighbour upscale")
    max_output_pixels: int = Field(1 << 24, ge=1024, description="pixels one response may "
                                   "hold: images x (resolution x scale)^2; larger: 422")
    max_body_bytes: int = Field(1 << 20, ge=1024, description="larger request bodies: 413")
    header_timeout_s: float = Field(10.0, gt=0, le=3600, description="a connection that has "
                                    "not sent a request's headers this long is closed")
    body_timeout_s: float = Field(10.0, gt=0, le=3600, description="a request body not "
                                  "fully received this long after the request began: 408")
    max_connections: int = Field(2000, ge=8, description="open connections and requests per "
                                 "worker; beyond it uvicorn answers 503 at once")
    intra_op_threads: int = Field(0, ge=0, description="ONNX Runtime threads per worker "
                                  "(0 = the cores shared out between the workers)")
    ort_spinning: bool = Field(False, description="let idle ONNX Runtime threads busy-wait "
                               "(faster runs, but steals CPU from HTTP work)")
    identical_across_cpus: bool = Field(False, description="the same image bits on AVX2 and "
                                        "AVX-512 CPUs (ONNX Runtime's NCHWc rewrite off; "
                                        "StyleGAN about 22% slower); off: identical on one "
                                        "CPU family, one grey level on a few pixels across")
    allow_empty_store: bool = Field(False, description="ready (/v2/health/ready 200) even "
                                    "when the store holds no servable model")
    poll_interval_s: float = Field(5.0, ge=0, description="model store poll period (0 = off)")
    grpc_port: int = Field(0, ge=0, le=65535, description="the Open Inference Protocol over "
                           "gRPC on this port too (0 = off; serve --grpc-port)")
    grpc_host: str = Field("127.0.0.1", min_length=1, description="the address gRPC listens "
                           "on (serve sets it to --host)")
    drain_timeout_s: float = Field(30.0, ge=0, description="SIGTERM: longest wait for "
                                   "requests in flight (0: none; they are cancelled)")
    embedded_worker: bool = Field(True, description="embedded mode (no broker): serve "
                                  "starts one job worker at low CPU priority")
    api_keys_file: Path | None = Field(None, description="hashed API keys (JSON; see "
                                       "service/auth.py): when set, jobs and model "
                                       "management need Authorization: Bearer <key>")
    inference_needs_key: bool = Field(False, description="generation and model listing "
                                      "need a key too (read-only keys suffice)")
    max_job_list: int = Field(200, ge=1, le=10_000, description="largest page of GET /v1/jobs")
    upload_max_bytes: int = Field(256 << 20, ge=1024, description="largest dataset upload "
                                  "(the request body): larger gets 413")
    upload_timeout_s: float = Field(600.0, gt=0, le=86400, description="a dataset upload's "
                                    "body must arrive within this (408)")
    upload_max_files: int = Field(100_000, ge=1, description="images in one dataset")
    upload_max_uncompressed_bytes: int = Field(1 << 30, ge=1024, description="an archive's "
                                               "members together, uncompressed")
    upload_max_ratio: float = Field(100.0, ge=2, description="largest compression ratio of "
                                    "an archive member (zip bombs compress 1000:1)")
    upload_max_image_side: int = Field(4096, ge=8, le=65535, description="pixels per side "
                                       "of one image (a decompression bomb is refused from "
                                       "its header)")
    upload_max_total_pixels: int = Field(1 << 30, ge=1024, description="decoded pixels of "
                                         "all a dataset's images together")
    upload_max_classes: int = Field(100, ge=1, le=10_000, description="classes in a dataset")
    upload_max_image_bytes: int = Field(64 << 20, ge=1024, description="one image file in "
                                        "an archive, uncompressed (it is read whole)")
    upload_max_concurrent: int = Field(2, ge=1, le=64, description="uploads received at "
                                       "once per API process; more get 429")
    dataset_max_bytes: int = Field(4 << 30, ge=1024, description="one dataset's converted "
                                   "arrays (uint8 images x channels x side^2)")
    datasets_max_total_bytes: int = Field(50 << 30, ge=1024, description="all uploaded "
                                          "datasets together; beyond it uploads get 413")
    dataset_side: int = Field(128, ge=8, le=1024, description="largest side a dataset is "
                              "stored at (images are cropped square and resized to the "
                              "smallest image's side, capped here)")
    max_dataset_list: int = Field(200, ge=1, le=10_000, description="largest page of "
                                  "GET /v1/datasets")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, v: object) -> object:
        return v.upper() if isinstance(v, str) else v

    @field_validator("api_keys_file")
    @classmethod
    def _keys_file_exists(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_file():
            raise ValueError(f"api_keys_file {v} is not a file (GANSERVE_API_KEYS_FILE)")
        if v is not None:
            from ganserve.service.auth import parse_keys  # one line at start, not a traceback
            parse_keys(v)
        return v

    @field_validator("models_dir")
    @classmethod
    def _models_dir_exists(cls, v: Path) -> Path:
        if not v.is_dir():
            raise ValueError(f"models_dir {v} is not a folder (--models-dir or "
                             "GANSERVE_MODELS_DIR); in a checkout, `make run` seeds the "
                             "working store from the shipped models/, or run `ganserve "
                             "seed-store --from models`")
        return v


    def uses_io_binding(self, on_gpu: bool) -> bool:
        return self.io_binding == "on" or (self.io_binding == "auto" and on_gpu)

    def uses_fp16(self, on_gpu: bool) -> bool:
        return self.fp16 == "on" or (self.fp16 == "auto" and on_gpu)

    def batching(self, model: str, on_gpu: bool) -> tuple[int, float]:
        """(rows per run, longest wait in ms) of ``model`` on the CPU or a GPU."""
        rows, delay = ((self.gpu_max_batch_rows, self.gpu_max_batch_delay_ms) if on_gpu
                       else (self.max_batch_rows, self.max_batch_delay_ms))
        own = self.model_batching.get(model, Batching())
        return (own.max_batch_rows if own.max_batch_rows is not None else rows,
                own.max_batch_delay_ms if own.max_batch_delay_ms is not None else delay)

    def request_limits(self) -> dict[str, int]:
        """Request field -> its configured limit (a number's maximum, a list's length): what
        the served OpenAPI document states and what validation messages cite."""
        return {"scale": self.max_scale, "n": self.max_images, "seeds": self.max_images,
                "steps": self.max_interpolation_steps, "row_seeds": self.max_grid_cells,
                "col_seeds": self.max_grid_cells}


    def resource_limits(self, resource: str) -> dict[str, int]:
        """The configured limits of a resource's query parameters and generation bodies, by
        the resource's name (its routes' OpenAPI tag): a page's ``limit`` for jobs and
        datasets, the generation limits for the rest."""
        pages = {"jobs": {"limit": self.max_job_list},
                 "datasets": {"limit": self.max_dataset_list}}
        return pages.get(resource, self.request_limits())

    def upload_limits(self) -> UploadLimits:
        return UploadLimits(
            archive=ArchiveLimits(self.upload_max_files, self.upload_max_uncompressed_bytes,
                                  self.upload_max_ratio, self.upload_max_image_bytes),
            max_image_side=self.upload_max_image_side,
            max_total_pixels=self.upload_max_total_pixels,
            max_classes=self.upload_max_classes, side=self.dataset_side,
            max_dataset_bytes=self.dataset_max_bytes)

    def job_limits(self) -> dict[str, dict[str, int]]:
        """Per job body schema: field -> its configured limit."""
        return {"FineTuneSpec": {"steps": self.max_fine_tune_steps},
                "EvaluateSpec": {"n": self.max_eval_samples},
                "ProjectSpec": {"steps": self.max_project_steps}}


@lru_cache
def get_settings() -> Settings:
    return Settings()
