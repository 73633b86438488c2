"""OpenTelemetry traces and metrics for the client, the lease engine and the runtime.

Needs the ``otel`` extra (``pip install 'vault-async[otel]'``, the OpenTelemetry API); the
rest of the package never imports it. Nothing is traced until asked::

    from vault_async.otel import instrument

    instrumentation = instrument(manager, tracer_provider=provider)  # or a client, a runtime
    ...
    instrumentation.uninstrument()

- a CLIENT span per logical Vault request (``GET database/creds/{role}``): method, route
  template, status, retries, the node that answered, the error's class;
- a span per lease event (``vault_async.lease.acquire``, ``renew``, ``rotate``, ``login``,
  ``relogin``, ``revoke``, ``expiring``; failures with an ERROR status);
- for a runtime, its Prometheus metrics as OpenTelemetry instruments of the same names.

No span or instrument holds a token, password, secret id, lease id, header or body.
"""

from ._instrument import Instrumentation, instrument, instrument_metrics

__all__ = ["Instrumentation", "instrument", "instrument_metrics"]
