"""Property-based API testing with schemathesis over the app's own OpenAPI spec, against a real server.

Every operation gets a bounded number of generated requests (valid and invalid); no answer may be a 5xx, and
answers must match the spec. The URL endpoint runs with a resolver that maps every host name to 127.0.0.1 and the
default "no private addresses" rule, so generated URLs are all refused before any connection: nothing leaves the
machine and no port other than the test server's is touched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from serving_helpers import GazetteerPredictor, running_server

from nerforge.prediction.urlfetch import FetchPolicy, UrlFetcher
from nerforge.serving import ServeSettings, create_app

MAX_EXAMPLES = int(os.environ.get("NERFORGE_SCHEMATHESIS_EXAMPLES", "40"))  # per operation


def _loopback_only(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


def _make_app():
    fetcher = UrlFetcher(FetchPolicy(allow_private=False, timeout_s=2), resolver=_loopback_only)
    settings_ = ServeSettings(max_texts=16, max_text_chars=500, max_csv_rows=50)
    return create_app(GazetteerPredictor(), settings_, fetcher=fetcher)


APP = _make_app()
# The spec comes from the app object (no server needed at import time); requests go to a real server below.
# (schemathesis.pytest.from_fixture would load it from the server, but it breaks on pytest 9: no Node._nodeid.)
schema = schemathesis.openapi.from_dict(APP.openapi())


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    with running_server(APP) as url:
        yield url


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_schemathesis_api_conforms_and_never_5xx(case: schemathesis.Case, served: str) -> None:
    # All default checks (no 5xx, documented status codes and content types, bodies matching their schemas, invalid
    # data rejected) except "schema-valid request accepted": a refused URL, a CSV without a `text` column or a text
    # over the server's limits fits the static schema but is rightly answered 413/422.
    case.call_and_validate(base_url=served, timeout=20, excluded_checks=[positive_data_acceptance])
