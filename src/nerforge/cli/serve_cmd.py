"""``nerforge serve MODEL``: a REST API and a web page for one model, on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

from pathlib import Path

import typer

from nerforge.cli.checks import check_model
from nerforge.errors import MissingDependencyError, UsageError


def serve_cli(
    model: Path = typer.Argument(..., help="Model directory written by 'nerforge train'."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (default: this machine only)."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    backend: str | None = typer.Option(
        None, "--backend", help="Inference backend: torch or onnx (default: the model's own)."
    ),
    allow_private_urls: bool = typer.Option(
        False, "--allow-private-urls", help="Let the URL endpoint fetch loopback and private addresses (testing only)."
    ),
    batch_size: int = typer.Option(32, "--batch-size", help="Most texts per model call (requests are batched)."),
    batch_wait_ms: float = typer.Option(1.0, "--batch-wait-ms", help="How long to gather requests into a batch."),
    max_text_chars: int = typer.Option(20_000, "--max-text-chars", help="Longest text accepted."),
    max_texts: int = typer.Option(64, "--max-texts", help="Most texts in one request."),
    max_csv_rows: int = typer.Option(10_000, "--max-csv-rows", help="Most rows in one CSV upload."),
    max_body_mb: float = typer.Option(5.0, "--max-body-mb", help="Largest request body, in MiB."),
    timeout: float = typer.Option(60.0, "--timeout", help="Longest time a request may take, in seconds."),
    threads: int | None = typer.Option(
        None,
        "--threads",
        min=1,
        help="CPU threads for torch (default: all cores; with --workers, the cores shared out between the workers).",
    ),
    learn: bool = typer.Option(
        False,
        "--learn",
        help="Learn from Label Studio: its Start training trains a new "
        "version in the background, served if it scores at least as well on held-out tasks "
        "(needs --label-studio-url and LABEL_STUDIO_API_KEY).",
    ),
    label_studio_url: str | None = typer.Option(
        None, "--label-studio-url", metavar="URL", help="Label Studio's address, for --learn (http://127.0.0.1:8080)."
    ),
    learn_every: int = typer.Option(
        0,
        "--learn-every",
        min=0,
        metavar="N",
        help="With --learn: also train a new "
        "version after every N new or updated annotations (Label Studio's annotation "
        "webhooks); 0: only on Start training.",
    ),
    versions_dir: Path | None = typer.Option(
        None, "--versions-dir", help="Where --learn keeps the versions (default: MODEL.versions beside the model)."
    ),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        help="Processes serving the port, each with its own copy of "
        "the model (more requests at once; the memory of the model times N).",
    ),
    allowed_host: list[str] = typer.Option(
        [],
        "--allowed-host",
        help="A host name the server answers to, besides IP addresses, localhost and --host "
        "(repeatable; '*' for any). Other names get 400, which stops DNS-rebinding attacks.",
    ),
    max_per_client: int = typer.Option(
        64, "--max-per-client", min=1, help="Most requests one client address may have in progress (then 429)."
    ),
    max_csv_jobs: int = typer.Option(
        4, "--max-csv-jobs", min=1, help="Most background CSV jobs queued or running at once (then 503)."
    ),
    on_ray: bool = typer.Option(
        False,
        "--ray",
        help="Serve as replicas behind Ray Serve's HTTP proxy (at --host "
        "and --port), on the cluster at --address or a local Ray instance.",
    ),
    address: str | None = typer.Option(
        None,
        "--address",
        metavar="ADDR",
        help="With --ray: the Ray cluster to deploy on (auto, host:6379 or ray://host:10001).",
    ),
    replicas: int = typer.Option(
        1,
        "--replicas",
        min=1,
        metavar="N",
        help="With --ray: replicas of the model, each "
        "with --threads CPUs (default 1), placed by Ray on the cluster's nodes.",
    ),
) -> None:
    """Serve a model: REST API (/v1/...), OpenAPI spec (/openapi.json) and a web page (/)."""
    try:
        from nerforge.serving.settings import ServeSettings
    except ImportError as exc:  # pragma: no cover - settings has no third-party imports
        raise MissingDependencyError(exc.name or "fastapi", "serve") from None
    settings = ServeSettings(
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        max_text_chars=max_text_chars,
        max_texts=max_texts,
        max_csv_rows=max_csv_rows,
        request_timeout_s=timeout,
        batch_max_texts=batch_size,
        batch_max_wait_ms=batch_wait_ms,
        allow_private_urls=allow_private_urls,
        allowed_hosts=tuple(allowed_host),
        max_concurrent_per_client=max_per_client,
        max_csv_jobs=max_csv_jobs,
    )
    from nerforge.serving.predictor import BACKENDS

    if backend is not None and backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    check_model(model)  # before the model's libraries load: a wrong path is one line at once
    options = None
    if learn or label_studio_url:
        if not (learn and label_studio_url):
            raise UsageError("--learn and --label-studio-url go together: the server learns from that Label Studio")
        from nerforge.serving.learning import options_from_env

        options = options_from_env(
            label_studio_url, versions_dir or model.with_name(model.name + ".versions"), learn_every=learn_every
        )
    elif learn_every:
        raise UsageError("--learn-every needs --learn and --label-studio-url")
    if not on_ray and (address is not None or replicas > 1):
        raise UsageError("--address and --replicas deploy on Ray Serve: add --ray")
    if on_ray:
        if options is not None or workers > 1:
            raise UsageError("--ray serves replicas on Ray Serve; --learn and --workers are for one machine's server")
        from nerforge.serving.ray_serve import serve_on_ray

        serve_on_ray(model, address=address, replicas=replicas, host=host, port=port, backend=backend,
                     batch_size=batch_size, threads=threads, settings=settings)  # fmt: skip
        return
    from nerforge.serving.server import serve

    trainer = None
    if options is not None:
        from nerforge.training.run import train

        def trainer(config: object) -> object:
            return train(config, progress=False)  # type: ignore[arg-type]

    serve(
        model,
        host=host,
        port=port,
        backend=backend,
        batch_size=batch_size,
        threads=threads,
        settings=settings,
        workers=workers,
        learn=options,
        trainer=trainer,
    )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cli)
