"""The settings base every process shares (prefix ``GANSERVE_``): where the model store, data,
job records and the broker live, the job timing rules and the webhooks' rules. Each process's
settings extend it with its own fields; a process reads the environment once, with its own
class, and ignores the other processes' variables.

Namesakes, one concept at several layers (settings): ``ganserve.settings``: the base every
process shares; ``ganserve.service.settings``: the API's, which extends it;
``ganserve.worker.settings``: the job worker's, which extends it.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

BROKER_FILE = "broker.sqlite"
DATABASE_FILE = "jobs.sqlite"


class SharedSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GANSERVE_", extra="ignore",
                                      protected_namespaces=())

    # a checkout's working store (git-ignored; `make run` seeds it from the shipped models/),
    # so jobs, defaults and deletions never write into the tracked tree
    models_dir: Path = Field(Path("var/models"), description="the model store")
    data_dir: Path = Field(Path("var/data"), description="job folders, datasets, and in "
                           "embedded mode the broker and job database files")
    broker_url: str | None = Field(None, description="Celery broker, e.g. "
                                   "redis://host:6379/0; unset: embedded mode (a SQLite "
                                   "broker in the data dir, one worker started by serve)")
    database_url: str | None = Field(None, description="job records (SQLAlchemy URL, e.g. "
                                     "postgresql+psycopg://user@host/db); unset: SQLite in "
                                     "the data dir")
    # each secret once: the URLs above name host, user and database; the passwords come alone
    # (a Kubernetes Secret or .env holds each once, and any character works: it is escaped)
    broker_password: SecretStr | None = Field(None, description="the broker's password, "
                                              "put into GANSERVE_BROKER_URL (which then "
                                              "holds none)")
    database_password: SecretStr | None = Field(None, description="the job database's "
                                                "password, put into GANSERVE_DATABASE_URL "
                                                "(which then holds none)")
    job_heartbeat_s: float = Field(2.0, gt=0, le=300, description="a running job's lease "
                                   "heartbeat period")
    job_lease_s: float = Field(30.0, gt=0, le=3600, description="a job whose heartbeat is "
                               "older than this is taken over (its worker died) and resumes "
                               "from its last checkpoint")
    job_max_attempts: int = Field(3, ge=1, le=100, description="a job whose worker died this "
                                  "many times (killed, out of memory) fails instead of "
                                  "being resumed again")
    job_soft_time_limit_s: float = Field(6 * 3600.0, gt=0, description="a job running this "
                                         "long fails with a time-limit error")
    job_time_limit_s: float = Field(6 * 3600.0 + 300, gt=0, description="hard limit: the "
                                    "worker process running the job is killed")
    broker_timeout_s: float = Field(2.0, gt=0, le=60, description="connecting to the broker "
                                    "to submit a job: longer, and the submission gets 503")
    inception_extractor: Path | None = Field(None, description="an Inception feature "
                                             "extractor folder (extractor.json + ONNX, see "
                                             "README) for evaluate jobs that ask for it")
    webhook_allowed_hosts: str = Field("", description="where job webhooks may go, comma-"
                                       "separated: host names (hooks.example.com, "
                                       "*.example.com), IP networks (10.1.0.0/16), or * for "
                                       "any host with only public addresses; empty: "
                                       "webhooks off")
    webhook_secret: SecretStr | None = Field(None, description="the HMAC-SHA256 key that "
                                             "signs webhook bodies (required for webhooks)")
    webhook_timeout_s: float = Field(5.0, gt=0, le=60, description="one delivery attempt")
    webhook_retries: int = Field(3, ge=0, le=10, description="attempts after the first, for "
                                 "timeouts, connection errors, 429 and 5xx")
    webhook_backoff_s: float = Field(1.0, ge=0, le=600, description="wait before the first "
                                     "retry, doubled for each next one")
    webhook_progress_interval_s: float = Field(5.0, ge=0, description="progress events at "
                                               "most this often per job")
    verbose: bool = Field(False, description="the libraries' start-up banners and INFO "
                          "lines too (Alembic, Celery, Uvicorn); --verbose on the CLI")

    @model_validator(mode="after")
    def _limits_ordered(self) -> SharedSettings:
        if self.job_time_limit_s <= self.job_soft_time_limit_s:
            raise ValueError("job_time_limit_s must be above job_soft_time_limit_s")
        if self.job_lease_s <= 2 * self.job_heartbeat_s:
            raise ValueError("job_lease_s must be more than twice job_heartbeat_s")
        for name in ("broker", "database"):
            url, password = getattr(self, f"{name}_url"), getattr(self, f"{name}_password")
            if password is not None and not url:
                raise ValueError(f"{name}_password is set but {name}_url is not")
            if password is not None and urlsplit(url).password is not None:
                raise ValueError(f"{name}_url holds a password and {name}_password is set "
                                 "too: keep the password in one place")
        return self

    @property
    def embedded(self) -> bool:
        """No broker configured: the broker is a SQLite file and serve runs a worker."""
        return not self.broker_url

    def resolved_broker_url(self) -> str:
        if self.broker_url:
            return with_password(self.broker_url, self.broker_password)
        return f"sqla+sqlite:///{(self.data_dir / BROKER_FILE).resolve()}"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return with_password(self.database_url, self.database_password)
        return f"sqlite:///{(self.data_dir / DATABASE_FILE).resolve()}"

    @property
    def visibility_timeout_s(self) -> float:
        """Above the longest job: the broker never redelivers a job that is still running
        (a dead worker's job is taken over through its lease instead, within job_lease_s)."""
        return self.job_time_limit_s + 600

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    @property
    def datasets_dir(self) -> Path:
        return self.data_dir / "datasets"


def with_password(url: str, password: SecretStr | None) -> str:
    """``url`` with ``password`` in its authority, escaped (``redis://host:6379/0`` +
    ``p@ss`` -> ``redis://:p%40ss@host:6379/0``); unchanged without one."""
    if password is None:
        return url
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    secret = quote(password.get_secret_value(), safe="")
    return urlunsplit(parts._replace(netloc=f"{user}:{secret}@{host}"))
