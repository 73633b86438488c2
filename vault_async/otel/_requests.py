"""Spans of Vault requests: one CLIENT span per logical request, retries included.

A span is named ``<METHOD> <route template>`` (``GET database/creds/{role}``) and carries
the method, the template, the last status, the retries, the node that answered and, on a
failure, the error's class. It never holds the path itself, a token, a header, a body or
an error message: all the attributes come from :class:`~vault_async._observe.RequestRecord`
and the template.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from .._observe import RequestObserver, RequestRecord
from .._routes import route_template

__all__ = ["RequestSpans"]


class RequestSpans:
    """A :class:`~vault_async._observe.RequestObserver` that opens a span per request."""

    __slots__ = ("_tracer", "detached", "previous")

    def __init__(self, tracer: Tracer, previous: RequestObserver | None = None) -> None:
        self._tracer = tracer
        self.previous = previous  # the client's observer before this one
        self.detached = False  # taken off while behind another: skipped when restoring

    @contextmanager
    def request(self, method: str, path: str) -> Iterator[RequestRecord]:
        template = route_template(path)
        record = RequestRecord()
        with self._tracer.start_as_current_span(
            f"{method} {template}",
            kind=SpanKind.CLIENT,
            attributes={"http.request.method": method, "url.template": template},
            # An exception's message and traceback are not copied: only its class is.
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield record
            except BaseException as exc:
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR))
                raise
            finally:
                if record.status is not None:
                    span.set_attribute("http.response.status_code", record.status)
                if record.node is not None:
                    span.set_attribute("vault.node", record.node)
                if record.retries:
                    span.set_attribute("http.request.resend_count", record.retries)
