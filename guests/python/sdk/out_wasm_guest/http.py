"""HTTP requests over the host's outbound client (``wasi:http/outgoing-handler``)::

    from out_wasm_guest import http

    response = http.request("POST", "https://logs.example:8443/ingest",
                            {"content-type": "application/json"}, body)
    if response.status >= 500: ...

``request(method, url, headers=None, body=b"", timeout=None)`` sends one request and returns
its ``Response`` (``status``, ``headers``, ``body``), whatever the status. The host judges each
request by the instance's ``wasm_allow_net`` before any connection is made, keeps connections
alive, and speaks TLS for ``https`` with its roots and ``wasm_tls_ca_file``.

Time: a request waits at most ``timeout`` seconds, and never past the call it is made in: in
``flush``, the flush's time left less a margin (a tenth of it, at least 50 ms: the time kept to
answer the host), likewise in ``idle`` (its budget) and ``exit``. A slow endpoint is then a
``Timeout`` the guest answers with a retry, not a deadline fault that discards the instance.

Failures are exceptions, all ``HttpError``:
- ``RequestDenied``: the host refused the request (no grant in ``wasm_allow_net``); retrying
  will not help.
- ``Timeout``: no complete answer in time (also a ``TimeoutError``).
- ``TransportError``: the exchange failed (refused connection, TLS, protocol...); ``code`` is
  the WIT ``error-code`` (``wit_world.imports.wasi_http_types.ErrorCode_*``) and the text names it.
Arguments the request cannot be made of (a method, url or header the host refuses) raise
``ValueError``.

Waiting is done with ``wasi:io/poll``: the response, the body streams and a monotonic-clock
timer for the deadline, polled together; the generated bindings' resources are dropped
children first, as WASI requires.
"""

import dataclasses
import time
from urllib.parse import urlsplit

from componentize_py_types import Err, Ok
from wit_world.imports import monotonic_clock, outgoing_handler, poll, streams
from wit_world.imports import wasi_http_types as wit

from . import output as _output

# What bounded a request, by the call it was made in (as the timeout's text says it).
_BOUNDS = {
    "flush": "the flush's time left less a margin",
    "idle": "the idle budget less a margin",
    "exit": "exit's time left less a margin",
}

__all__ = ["HttpError", "RequestDenied", "Response", "Timeout", "TransportError", "request", "request_budget"]

# What one read or write moves at most.
_PIECE = 64 * 1024

_METHODS = {
    "GET": wit.Method_Get,
    "HEAD": wit.Method_Head,
    "POST": wit.Method_Post,
    "PUT": wit.Method_Put,
    "DELETE": wit.Method_Delete,
    "CONNECT": wit.Method_Connect,
    "OPTIONS": wit.Method_Options,
    "TRACE": wit.Method_Trace,
    "PATCH": wit.Method_Patch,
}

# Error codes that mean the host's own timeouts (the request options) ran out.
_TIMEOUTS = (
    wit.ErrorCode_DnsTimeout,
    wit.ErrorCode_ConnectionTimeout,
    wit.ErrorCode_ConnectionReadTimeout,
    wit.ErrorCode_ConnectionWriteTimeout,
    wit.ErrorCode_HttpResponseTimeout,
)


class HttpError(Exception):
    """A request that got no answer; the text says why."""


class RequestDenied(HttpError):
    """The host refused to send the request: the instance's ``wasm_allow_net`` does not grant
    the endpoint. Sending it again will not help."""

    def __init__(self):
        super().__init__("the host denied the request: grant the endpoint with wasm_allow_net")


class TransportError(HttpError):
    """The exchange failed: ``code`` is the WIT ``error-code`` the host gave (``None`` when the
    failure was seen on the guest's side), and the text starts with ``request failed``."""

    def __init__(self, reason, code=None):
        super().__init__(f"request failed: {reason}")
        self.code = code


class Timeout(TransportError, TimeoutError):
    """No complete answer within the request's time (``timeout``, or the call's time left less
    a margin)."""


class Response:
    """An endpoint's answer: ``status`` (an ``int``), ``headers`` (``(name, value)`` pairs in
    order, names in lowercase, values decoded as ISO-8859-1 as ``http.client`` does) and
    ``body`` (``bytes``)."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        """The first value of the header ``name`` (any case), or ``None``."""
        name = name.lower()
        return next((value for key, value in self.headers if key == name), None)

    def __repr__(self):
        return f"Response({self.status}, {len(self.headers)} headers, {len(self.body)} bytes)"


def request_budget(time_left):
    """The time a request may take out of ``time_left`` seconds: the rest is kept back for
    answering the host, a tenth of it and at least 50 ms (as ``guests/rust/http``)."""
    return max(0.0, time_left - max(time_left / 10, 0.05))


def _code_text(code):
    """A WIT ``error-code`` as the WIT spells it: ``connection-refused``,
    ``internal-error("...")``."""
    name = type(code).__name__.removeprefix("ErrorCode_")
    text = "".join("-" + c.lower() if c.isupper() else c for c in name).lstrip("-")
    value = getattr(code, "value", None)
    if value is None:
        return text
    if dataclasses.is_dataclass(value):
        # A payload record (dns-error-payload, field-size-payload, ...): its fields as the WIT
        # names them.
        value = ", ".join(f"{f.name.replace('_', '-')}={getattr(value, f.name)!r}" for f in dataclasses.fields(value))
        return f"{text}({value})"
    return f"{text}({value!r})"


def _failure(code):
    if isinstance(code, wit.ErrorCode_HttpRequestDenied):
        return RequestDenied()
    if isinstance(code, _TIMEOUTS):
        return Timeout(_code_text(code), code)
    return TransportError(_code_text(code), code)


def _stream_failure(err, what):
    """The exception for a failed body stream (``err``: the bindings' ``Err``)."""
    if isinstance(err.value, streams.StreamError_LastOperationFailed):
        with err.value.value as io_error:
            code = wit.http_error_code(io_error)
            detail = io_error.to_debug_string()
        if code is not None:
            return _failure(code)
        return TransportError(f"failed to {what}: {detail}")
    return TransportError(f"failed to {what}: the stream closed")


class _Clock:
    """The request's deadline on the WASI monotonic clock, and waiting on a pollable until
    then."""

    def __init__(self, limit, bound):
        self.limit = limit
        self.bound = bound
        self.at = None if limit is None else monotonic_clock.now() + int(limit * 1e9)

    def timeout(self):
        why = f" ({self.bound})" if self.bound else ""
        return Timeout(f"no answer within {round(self.limit * 1000)} ms{why}")

    def wait(self, pollable):
        """Waits for ``pollable`` (which it drops) until the deadline; raises ``Timeout``."""
        with pollable:
            if self.at is None:
                pollable.block()
                return
            with monotonic_clock.subscribe_instant(self.at) as timer:
                ready = poll.poll([pollable, timer])
            if 0 not in ready:
                raise self.timeout()


def _limit(timeout):
    """The request's time: ``timeout`` bounded by the running call's time left less a margin;
    and what bounded it, if the call did."""
    deadline = _output.current_deadline()
    if deadline is None:
        return timeout, None
    budget = request_budget(max(0.0, deadline - time.monotonic()))
    if timeout is None or budget < timeout:
        return budget, _BOUNDS.get(_output._call, "the call's time left less a margin")
    return timeout, None


def _pairs(headers):
    return list(headers.items() if hasattr(headers, "items") else headers)


def _fields(pairs):
    entries = []
    for name, value in pairs:
        if isinstance(value, str):
            try:
                value = value.encode("latin-1")
            except UnicodeEncodeError:
                raise ValueError(f"header {name!r}: a value must be ISO-8859-1 text or bytes") from None
        entries.append((name.lower(), bytes(value)))
    try:
        return wit.Fields.from_list(entries)
    except Err as err:
        raise ValueError(f"invalid headers ({type(err.value).__name__.removeprefix('HeaderError_')})") from None


def _outgoing(method, url, headers, body):
    parts = urlsplit(url)
    scheme = {"http": wit.Scheme_Http, "https": wit.Scheme_Https}.get(parts.scheme.lower())
    if scheme is None:
        raise ValueError(f"invalid url {url!r}: expected http:// or https://")
    if not parts.hostname:
        raise ValueError(f"invalid url {url!r}: no host")
    if "@" in parts.netloc:
        raise ValueError(f"invalid url {url!r}: credentials are not sent from a url; use an authorization header")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    pairs = _pairs(headers)
    if all(name.lower() != "content-length" for name, _ in pairs) and (
        body or method.upper() in ("POST", "PUT", "PATCH")
    ):
        pairs.append(("content-length", str(len(body))))
    outgoing = wit.OutgoingRequest(_fields(pairs))
    known = _METHODS.get(method.upper())
    try:
        outgoing.set_method(known() if known else wit.Method_Other(method))
        outgoing.set_scheme(scheme())
        outgoing.set_authority(parts.netloc)
        outgoing.set_path_with_query(path)
    except Err:
        outgoing.__exit__(None, None, None)
        raise ValueError(f"the host refused the request {method} {url}") from None
    return outgoing


def _options(limit):
    """The host's own timeouts, so that its client gives up by itself in time too."""
    options = wit.RequestOptions()
    if limit is not None:
        nanos = int(limit * 1e9)
        try:
            options.set_connect_timeout(nanos)
            options.set_first_byte_timeout(nanos)
            options.set_between_bytes_timeout(nanos)
        except Err:
            # A host without them: the guest's own deadline still bounds the request.
            pass
    return options


def _send_body(outgoing_body, body, clock):
    """Writes ``body`` and finishes the request; returns the failure, or ``None``. Raises
    ``Timeout``."""
    failure = None
    try:
        with outgoing_body.write() as stream:
            view = memoryview(body)
            try:
                while view:
                    room = stream.check_write()
                    if room == 0:
                        clock.wait(stream.subscribe())
                        continue
                    piece = min(room, _PIECE, len(view))
                    stream.write(bytes(view[:piece]))
                    view = view[piece:]
                stream.flush()
                # A flush is done when the stream takes writes again.
                while stream.check_write() == 0:
                    clock.wait(stream.subscribe())
            except Err as err:
                # Closed once the whole body is written: the host's client took all the
                # content-length announced and let go of the stream (the endpoint may have
                # answered already). Before that, the request failed.
                if view or not isinstance(err.value, streams.StreamError_Closed):
                    failure = _stream_failure(err, "send the request body")
    except BaseException:
        # Dropped unfinished: the host fails the request.
        outgoing_body.__exit__(None, None, None)
        raise
    if failure is not None:
        outgoing_body.__exit__(None, None, None)
        return failure
    try:
        wit.OutgoingBody.finish(outgoing_body, None)
    except Err as err:
        return _failure(err.value)
    return None


def _read_body(incoming, clock):
    chunks = []
    stream = incoming.stream()
    with stream:
        while True:
            try:
                data = stream.read(_PIECE)
            except Err as err:
                if isinstance(err.value, streams.StreamError_Closed):
                    break
                raise _stream_failure(err, "read the response body") from None
            if data:
                chunks.append(data)
            else:
                clock.wait(stream.subscribe())
    # The trailers are not read: dropping them is all a guest owes the host.
    wit.IncomingBody.finish(incoming).__exit__(None, None, None)
    return b"".join(chunks)


def _response(answer, clock):
    with answer:
        status = answer.status()
        with answer.headers() as fields:
            headers = [(name, value.decode("latin-1")) for name, value in fields.entries()]
        incoming = answer.consume()
        try:
            body = _read_body(incoming, clock)
        except BaseException:
            incoming.__exit__(None, None, None)
            raise
    return Response(status, headers, body)


def request(method, url, headers=None, body=b"", timeout=None):
    """Sends ``method url`` with ``headers`` (a mapping or ``(name, value)`` pairs; values
    ``str`` or ``bytes``) and ``body``, and waits for the whole answer, ``timeout`` seconds at
    most and never past the running call's time left less a margin. Returns the ``Response``
    for any status; raises ``RequestDenied``, ``Timeout`` or ``TransportError`` (all
    ``HttpError``) when there is no answer, ``ValueError`` for arguments the request cannot be
    made of. A ``content-length`` is added for a body (and for POST, PUT, PATCH)."""
    body = bytes(body)
    limit, bound = _limit(timeout)
    clock = _Clock(limit, bound)
    if limit is not None and limit <= 0:
        raise clock.timeout()
    outgoing = _outgoing(method, url, headers or [], body)
    outgoing_body = outgoing.body()
    try:
        future = outgoing_handler.handle(outgoing, _options(limit))
    except Err as err:
        outgoing_body.__exit__(None, None, None)
        raise _failure(err.value) from None
    with future:
        # A request the host refuses fails its body too; the response says why, so it is
        # awaited even when sending failed.
        sent = _send_body(outgoing_body, body, clock)
        clock.wait(future.subscribe())
        answer = future.get()
    if isinstance(answer, Ok) and isinstance(answer.value, Ok):
        if sent is not None:
            answer.value.value.__exit__(None, None, None)
            raise sent
        return _response(answer.value.value, clock)
    if isinstance(answer, Ok):
        raise _failure(answer.value.value)
    raise sent or TransportError("no response")
