"""The shared emulator kit on its own: dice, counters, guard, server, routing, errors, auth, waiting, and a toy
REST cloud built from them. Execute and simulated mode (``ProcessRunner``, ``RunDefaults``): test_kit_runs.py."""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest

from tests.emulators.kit import (
    ACCEPT_THEN_FAIL,
    LOST_RESPONSE,
    SERVER_ERROR,
    THROTTLE,
    CallLog,
    CloudError,
    Emulator,
    FaultDice,
    Faults,
    HttpServer,
    Issue,
    RateLimit,
    Request,
    Response,
    ResponseGuard,
    WireErrors,
    bearer_token,
    match_route,
    poll_until,
)

# -- a toy cloud: REST items under /items, built the way the README tells ------------------------


class ToyError(CloudError):
    def __init__(self, status: int, code: str, headers: dict[str, str] | None = None):
        super().__init__(status, code, code.lower(), headers=headers)

    def body(self) -> dict[str, Any]:
        return {"error": {"status": self.code}}


@dataclass(frozen=True)
class ToyRoute:
    op: str
    method: str
    pattern: re.Pattern[str]


ITEM = re.compile(r"/items/(?P<name>[^/]+)")
ROUTES = (ToyRoute("CreateItem", "POST", re.compile("/items")), ToyRoute("GetItem", "GET", ITEM),
          ToyRoute("Crash", "PATCH", ITEM))


TOY_WIRE = WireErrors(
    throttle=lambda: ToyError(429, "RESOURCE_EXHAUSTED", {"Retry-After": "7"}),
    server_error=lambda: ToyError(500, "INTERNAL"),
    accept_then_fail=lambda: ToyError(503, "UNAVAILABLE"),
)
ITEM_SCHEMA = {"name": str}


def check_fields(schema: dict[str, type], value: dict[str, Any]) -> list[Issue]:
    """The toy cloud's checker: every field known and of its type."""
    return [Issue("type", key, f"{key} must be {schema[key].__name__}") if key in schema else
            Issue("constraint", key, f"unknown field {key}")
            for key, item in value.items() if key not in schema or not isinstance(item, schema[key])]


class ToyProtocol:
    def __init__(self, emulator: ToyEmulator):
        self.emu = emulator
        self.guard = ResponseGuard(check_fields, emulator.errors)

    def handle(self, request: Request) -> Response:
        found = match_route(ROUTES, request.method, request.path)
        if found.route is None:
            return ToyError(405 if found.path_known else 404, "NO_ROUTE").response()
        op = found.route.op
        self.emu.call_log.record(op)
        try:
            if bearer_token(request.headers) == "":  # optional, but a bad one is refused
                raise ToyError(401, "UNAUTHENTICATED")
            return self._serve(request, op, found.params)
        except ToyError as exc:
            return exc.response({"X-Request-Id": "toy"})

    def _serve(self, request: Request, op: str, params: dict[str, str]) -> Response:
        self.emu.call_log.record_permission(f"toy.items.{op[:-4].lower()}")
        self.emu.dice.before_call(op, TOY_WIRE)
        if op == "Crash":
            raise RuntimeError("a bug in the toy")
        if op == "CreateItem":
            name = json.loads(request.body)["name"]
            self.emu.items[name] = {"name": name, **({"colour": "red"} if name == "bad" else {})}
            status, body = 201, self.emu.items[name]
        else:
            status, body = 200, self.emu.items[params["name"]]
        self.emu.dice.after_call(op, TOY_WIRE, mutating=request.method != "GET")
        if self.guard.broken(op, ITEM_SCHEMA, body):
            raise ToyError(500, "EMULATOR_BUG")
        return Response.json(status, body, headers={"Location": f"/items/{body['name']}",
                                                    "X-Echo": request.headers.get("x-echo", "")})


class ToyEmulator(Emulator):
    def __init__(self, faults: Faults | None = None, tick_s: float = 0.01):
        super().__init__(FaultDice(faults or Faults()), tick_s=tick_s)
        self.items: dict[str, dict] = {}
        self.ticks = 0
        self.protocol = ToyProtocol(self)

    def tick(self) -> None:
        self.ticks += 1


def call(emu: Emulator | str, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any, dict]:
    """One request on a fresh connection to an emulator (or an endpoint URL): status, JSON or bytes, headers."""
    url = emu if isinstance(emu, str) else emu.endpoint_url
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        data = None if body is None else json.dumps(body).encode()
        connection.request(method, path, body=data, headers={k.replace("_", "-"): v for k, v in headers.items()})
        response = connection.getresponse()
        raw = response.read()
        payload = json.loads(raw) if response.getheader("Content-Type", "").startswith("application/json") else raw
        return response.status, payload, dict(response.getheaders())
    finally:
        connection.close()


@pytest.fixture
def toy():
    with ToyEmulator() as emulator:
        yield emulator
    assert emulator.errors == []


# -- server --------------------------------------------------------------------------------------


def test_server_passes_headers_both_ways_and_stops(toy):
    status, body, headers = call(toy, "POST", "/items?validate=true", {"name": "a"}, X_Echo="hello")
    assert (status, body) == (201, {"name": "a"})
    assert headers["Location"] == "/items/a" and headers["X-Echo"] == "hello"
    assert headers["Content-Type"] == "application/json" and headers["Content-Length"] == str(len(b'{"name": "a"}'))
    url = toy.endpoint_url
    toy.stop()
    with pytest.raises(RuntimeError, match="ToyEmulator is not started"):
        toy.endpoint_url  # noqa: B018
    with pytest.raises(OSError):
        call(url, "GET", "/items/a")
    assert toy.start().endpoint_url != url and call(toy, "GET", "/items/a")[0] == 200  # restartable


def test_request_parts():
    request = Request("GET", "/v1/x", "api-version=2023-05-01&tag=a&tag=b&empty=", {}, b"")
    assert request.arg("api-version") == "2023-05-01" and request.arg("missing", "d") == "d"
    assert request.query_params["tag"] == ["a", "b"] and request.arg("empty") == ""
    assert request.target == "/v1/x?api-version=2023-05-01&tag=a&tag=b&empty="


def test_protocol_crash_is_recorded_and_answered_500(toy):
    status, body, _ = call(toy, "PATCH", "/items/a", {})
    assert (status, body) == (500, b"Emulator internal error")
    assert len(toy.errors) == 1 and "PATCH /items/a" in toy.errors[0] and "a bug in the toy" in toy.errors[0]
    toy.errors.clear()


def test_ticker_ticks_and_records_its_exceptions():
    errors: list[str] = []
    ticked = threading.Event()

    def failing_tick() -> None:
        ticked.set()
        raise ValueError("tick bug")

    with HttpServer(ToyProtocol(ToyEmulator()), errors=errors, ticker=failing_tick, tick_s=0.005):
        assert ticked.wait(2)
    assert errors and errors[0] == "ticker: ValueError('tick bug')"  # stop() joined the ticker
    with ToyEmulator(tick_s=0.005) as emu:
        assert poll_until(lambda: emu.ticks or None, timeout=5)


def test_poll_until_answers_the_first_value_or_none_after_a_last_look():
    answers = iter([None, None, "done"])
    assert poll_until(lambda: next(answers), timeout=5, interval=0) == "done"
    looks: list[int] = []
    assert poll_until(lambda: looks.append(1), timeout=0) is None and looks == [1]
    late = iter([None, "seen after the deadline"])
    slow_first = lambda: time.sleep(0.1) or next(late)  # noqa: E731 - the first look outlasts the timeout
    assert poll_until(slow_first, timeout=0.05) == "seen after the deadline"


# -- routing, errors, auth -------------------------------------------------------------------------


def test_routes_match_in_order_and_tell_405_from_404(toy):
    found = match_route(ROUTES, "GET", "/items/a")
    assert found.route is ROUTES[1] and found.params == {"name": "a"} and found.path_known
    assert match_route(ROUTES, "GET", "/items/a/b").route is None  # the whole path must match
    unknown_method, unknown_path = match_route(ROUTES, "DELETE", "/items/a"), match_route(ROUTES, "GET", "/x")
    assert (unknown_method.route, unknown_method.params, unknown_method.path_known) == (None, {}, True)
    assert not unknown_path.path_known
    assert call(toy, "DELETE", "/items/a")[:2] == (405, {"error": {"status": "NO_ROUTE"}})
    assert call(toy, "GET", "/nothing/here")[0] == 404 and toy.calls == {}


def test_cloud_error_answers_its_body_and_headers_over_the_requests():
    response = ToyError(429, "SLOW", {"Retry-After": "3", "X-Request-Id": "own"}).response(
        {"X-Request-Id": "base", "X-Other": "kept"})
    assert (response.status, json.loads(response.body)) == (429, {"error": {"status": "SLOW"}})
    assert response.headers == {"Content-Type": "application/json", "Retry-After": "3", "X-Request-Id": "own",
                                "X-Other": "kept"}
    assert str(ToyError(404, "GONE")) == "404 GONE: gone"
    with pytest.raises(NotImplementedError):
        CloudError(400, "BAD", "bad").response()


def test_bearer_token_tells_missing_from_unusable(toy):
    assert bearer_token({}) is None and bearer_token({"Authorization": ""}) is None
    assert bearer_token({"Authorization": "Basic dXNlcg=="}) == "" and bearer_token({"Authorization": "Bearer"}) == ""
    assert bearer_token({"Authorization": "Bearer  tok "}) == "tok"
    call(toy, "POST", "/items", {"name": "a"})
    assert call(toy, "GET", "/items/a", Authorization="Bearer t")[0] == 200
    status, body, headers = call(toy, "GET", "/items/a", Authorization="Basic x")
    assert (status, body, headers["X-Request-Id"]) == (401, {"error": {"status": "UNAUTHENTICATED"}}, "toy")


# -- faults --------------------------------------------------------------------------------------


def rolls(faults: Faults, n: int = 32) -> list[str | None]:
    dice = FaultDice(faults)
    return [dice.request_fault("Op") for _ in range(n)]


def test_dice_are_repeatable_with_a_seed():
    faults = dict(throttle_rate=0.3, server_error_rate=0.3)
    first = rolls(Faults(**faults, seed=7))
    assert first == rolls(Faults(**faults, seed=7)) != rolls(Faults(**faults, seed=8))
    assert {THROTTLE, SERVER_ERROR, None} == set(first)


def test_setting_faults_reseeds(toy):
    toy.faults = Faults(throttle_rate=0.5, seed=3)
    first = [toy.dice.request_fault("Op") for _ in range(16)]
    toy.faults = Faults(throttle_rate=0.5, seed=3)
    assert [toy.dice.request_fault("Op") for _ in range(16)] == first


def test_op_filter_limits_rates_and_countdowns():
    dice = FaultDice(Faults(throttle_rate=1.0, lost_responses=1, ops={"RunJob"}))
    assert dice.request_fault("GetJob") is None and dice.request_fault("RunJob") == THROTTLE
    assert dice.response_fault("GetJob") is None and dice.faults.lost_responses == 1
    assert dice.response_fault("RunJob") == LOST_RESPONSE and dice.faults.lost_responses == 0


def test_countdown_knobs_count_down_on_the_faults_object():
    faults = Faults(lost_responses=2)
    dice = FaultDice(faults)
    assert [dice.take("lost_responses") for _ in range(3)] == [True, True, False]
    assert faults.lost_responses == 0


def test_accept_then_fail_only_spends_on_mutating_calls():
    dice = FaultDice(Faults(accept_then_fail=1))
    assert dice.response_fault("GetJob") is None
    assert dice.response_fault("RunJob", mutating=True) == ACCEPT_THEN_FAIL
    assert dice.response_fault("RunJob", mutating=True) is None


def test_rate_limit_is_a_token_bucket_per_operation():
    now = [100.0]
    dice = FaultDice(Faults(rate_limit=RateLimit(per_s=2, burst=3), rate_limits={"Slow": RateLimit(per_s=1)}),
                     clock=lambda: now[0])
    assert [dice.request_fault("Fast") for _ in range(4)] == [None, None, None, THROTTLE]
    assert [dice.request_fault("Slow") for _ in range(2)] == [None, THROTTLE]  # its own bucket
    now[0] += 0.5  # refills one Fast token (2/s) and half a Slow one
    assert [dice.request_fault("Fast") for _ in range(2)] == [None, THROTTLE]
    assert dice.request_fault("Slow") == THROTTLE
    launches = RateLimit(per_s=1, burst=1)  # a backend's own bucket, say a task launch rate
    assert [dice.admit("launch", launches) for _ in range(2)] == [True, False] and dice.admit("x", None)


def test_admit_all_takes_from_every_bucket_or_none():
    now = [0.0]
    dice = FaultDice(Faults(), clock=lambda: now[0])
    quota = {"5min": RateLimit(per_s=1 / 150, burst=2), "1h": RateLimit(per_s=1 / 1200, burst=3)}
    assert [dice.admit_all(quota) for _ in range(3)] == [None, None, "5min"]
    assert dice.tokens("1h", quota["1h"]) == 1  # the refused call charged no bucket
    now[0] += 300  # two 5-minute tokens back, a quarter of an hourly one
    assert dice.admit_all(quota) is None and dice.admit_all(quota) == "1h"
    assert dice.tokens("5min", quota["5min"]) == 1


def test_tokens_and_wait_s_read_a_bucket_without_charging_it():
    now = [0.0]
    dice = FaultDice(Faults(), clock=lambda: now[0])
    writes = RateLimit(per_s=10, burst=2)
    assert dice.tokens("writes", writes) == 2 and dice.wait_s("writes", writes) == 0
    assert dice.admit("writes", writes) and dice.admit("writes", writes) and not dice.admit("writes", writes)
    assert dice.tokens("writes", writes) == 0 and dice.wait_s("writes", writes) == pytest.approx(0.1)
    now[0] += 0.05
    assert dice.wait_s("writes", writes) == pytest.approx(0.05)


def test_latency_sleeps_through_the_injected_sleep():
    slept: list[float] = []
    dice = FaultDice(Faults(latency_s=0.2, latency_jitter_s=0.1, seed=1), sleep=slept.append)
    dice.before_call("Op", TOY_WIRE)
    assert len(slept) == 1 and 0.2 <= slept[0] <= 0.3


def test_wire_errors_default_to_the_server_error():
    wire = WireErrors(throttle=lambda: ToyError(429, "T"), server_error=lambda: ToyError(500, "S"))
    assert [wire.error_for(f).code for f in (THROTTLE, SERVER_ERROR, LOST_RESPONSE, ACCEPT_THEN_FAIL)] == [
        "T", "S", "S", "S"]


def test_faults_on_the_wire(toy):
    toy.faults = Faults(throttle_rate=1.0)
    status, body, headers = call(toy, "POST", "/items", {"name": "a"})
    assert (status, body["error"]["status"], headers["Retry-After"]) == (429, "RESOURCE_EXHAUSTED", "7")
    assert toy.items == {}  # a throttled call is not carried out
    toy.faults = Faults(accept_then_fail=1)
    assert call(toy, "POST", "/items", {"name": "a"})[:2] == (503, {"error": {"status": "UNAVAILABLE"}})
    assert toy.items == {"a": {"name": "a"}} and toy.faults.accept_then_fail == 0  # carried out all the same
    toy.faults = Faults(lost_responses=1)
    assert call(toy, "GET", "/items/a")[0] == 500 and call(toy, "GET", "/items/a")[0] == 200


# -- counters and the response guard --------------------------------------------------------------


def test_call_log_counts_permissions_and_resets(toy):
    call(toy, "POST", "/items", {"name": "a"})
    call(toy, "GET", "/items/a")
    call(toy, "GET", "/items/a")
    assert toy.calls == {"CreateItem": 1, "GetItem": 2}
    assert toy.permissions == {"toy.items.create": 1, "toy.items.get": 2}
    toy.reset_calls()
    assert toy.calls == {} and toy.permissions == {}


def test_call_log_is_thread_safe():
    log = CallLog()
    threads = [threading.Thread(target=lambda: [log.record("Op") for _ in range(1000)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert log.counts == {"Op": 8000}


def test_response_guard_records_emulator_bugs(toy):
    status, body, _ = call(toy, "POST", "/items", {"name": "bad"})
    assert (status, body["error"]["status"]) == (500, "EMULATOR_BUG")
    assert toy.errors == ["CreateItem response breaks its output shape: unknown field colour"]
    toy.errors.clear()
    quiet = ResponseGuard(check_fields, errors := [], enabled=False)
    assert not quiet.broken("Op", ITEM_SCHEMA, {"name": 1}) and errors == []
