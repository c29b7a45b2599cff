"""The limits and switches of a serving app: one frozen dataclass, checked when built.

Host and port are not here: they belong to the process that runs the app (``nerforge serve``), not to the app.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from nerforge.errors import ConfigError


@dataclass(frozen=True)
class ServeSettings:
    """What a serving app accepts, how long it waits, and how it batches.

    Attributes:
        max_body_bytes: largest request body (JSON or CSV upload); larger bodies get 413.
        max_text_chars: longest text in ``/v1/entities`` and per CSV row; longer texts get 413. Page text fetched
            for ``/v1/entities/url`` is cut to this length instead, and the answer says so.
        max_texts: most texts in one ``{"texts": [...]}`` request; more get 413.
        max_csv_rows: most data rows in one CSV upload; more get 413.
        request_timeout_s: longest time a request may take, body upload included; slower requests get 504.
        batch_max_texts: most texts the batcher hands the model at once.
        batch_max_chars: most characters the batcher hands the model at once: a request's texts go to the model in
            pieces of about this much work (a long text cut into segments of at most a fifth of it, at a line or
            sentence end), so a small request sent meanwhile waits for one piece, not for the whole request.
        batch_max_wait_ms: how long the batcher waits for more requests after the first one of a batch arrives.
        allow_private_urls: let ``/v1/entities/url`` fetch loopback, private, link-local and other non-public
            addresses (cloud metadata addresses stay refused). Off by default; for tests and trusted networks.
        fetch_timeout_s: longest time to fetch one URL, redirects included; slower fetches get 504.
        fetch_max_bytes: largest page body to read; larger pages are refused with 422.
        fetch_max_redirects: most redirects to follow (each hop is checked again).
        allowed_hosts: host names this server answers to (the ``Host`` header), besides IP addresses and
            ``localhost``, which are always answered; ``"*"`` answers any. A name not listed gets 400: a web page on another site cannot
            reach the server by pointing its own name at this machine (DNS rebinding).
        max_concurrent_per_client: most requests one client address may have in progress at once; more get 429.
        max_csv_jobs: most background CSV jobs queued or running at once; more get 503.
        label_studio_max_body_bytes: largest body of a ``/label-studio`` request: Label Studio sends every task a
            user selects in one ``/predict`` request, so these take any number of tasks of any length (long texts
            tagged in segments) up to this size.
        label_studio_deadline_s: how long a Label Studio ``/predict`` request tags before it answers with what is
            done, the tasks left over each marked with an error to retrieve again (Label Studio gives up waiting
            after its ``ML_TIMEOUT_PREDICT``, 100 s by default; keep this below it).
    """

    max_body_bytes: int = 5 * 1024 * 1024
    max_text_chars: int = 20_000
    max_texts: int = 64
    max_csv_rows: int = 10_000
    request_timeout_s: float = 60.0
    batch_max_texts: int = 32
    batch_max_chars: int = 20_000
    batch_max_wait_ms: float = 1.0  # 1 ms served 5-21% more requests than 5 (docs/benchmarks.md, Serving under load)
    allow_private_urls: bool = False
    fetch_timeout_s: float = 15.0
    fetch_max_bytes: int = 3 * 1024 * 1024
    fetch_max_redirects: int = 5
    allowed_hosts: tuple[str, ...] = ()
    max_concurrent_per_client: int = 64
    max_csv_jobs: int = 4
    label_studio_max_body_bytes: int = 64 * 1024 * 1024
    label_studio_deadline_s: float = 80.0

    def __post_init__(self) -> None:
        positive = (
            "max_body_bytes",
            "max_text_chars",
            "max_texts",
            "max_csv_rows",
            "batch_max_texts",
            "batch_max_chars",
            "request_timeout_s",
            "fetch_timeout_s",
            "fetch_max_bytes",
            "max_concurrent_per_client",
            "max_csv_jobs",
            "label_studio_max_body_bytes",
            "label_studio_deadline_s",
        )
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"serve setting {name} must be a positive number, got {value!r}")
        if self.batch_max_wait_ms < 0:
            raise ConfigError(f"serve setting batch_max_wait_ms must be >= 0, got {self.batch_max_wait_ms!r}")
        if not 0 <= self.fetch_max_redirects <= 20:
            raise ConfigError(f"serve setting fetch_max_redirects must be in 0..20, got {self.fetch_max_redirects!r}")
        hosts = tuple(h.strip().lower().rstrip(".") for h in self.allowed_hosts)
        bad = [h for h in hosts if not h or any(c in h for c in "/@ :")]
        if bad or isinstance(self.allowed_hosts, str):
            raise ConfigError(f"serve setting allowed_hosts must be host names (or '*'), got {self.allowed_hosts!r}")
        object.__setattr__(self, "allowed_hosts", hosts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
