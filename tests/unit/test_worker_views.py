"""The supervisor's one view of its workers' monitoring answers (pyistiod.worker_views).

The metrics texts come from real prometheus_client registries written by
``monitoring.istiod_text``, as each process's ``/metrics`` writes them; the views are
asked over HTTP of real ``Monitoring`` servers on loopback.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from pyistiod.local_mesh import http_get
from pyistiod.monitoring import Monitoring, istiod_text
from pyistiod.worker_views import (
    WorkerViews,
    first_found,
    merge_adsz,
    merge_metrics,
    merge_syncz,
)

TRICKY = 'bad "one", {x} \\ end'
"""A label value with a quote, a comma, braces and a backslash (escaped when written)."""


class _Runtime:
    """The ``process_*`` and ``python_*`` families, as prometheus_client's Process and
    Platform/GC collectors write them, with chosen values."""

    def __init__(self, cpu: float, rss: float, start: float, fds: float, max_fds: float) -> None:
        self.cpu, self.rss, self.start, self.fds, self.max_fds = cpu, rss, start, fds, max_fds

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily("process_virtual_memory_bytes", "VM.", value=self.rss * 10)
        yield GaugeMetricFamily("process_resident_memory_bytes", "RSS.", value=self.rss)
        yield GaugeMetricFamily("process_start_time_seconds", "Start.", value=self.start)
        yield CounterMetricFamily("process_cpu_seconds_total", "CPU.", value=self.cpu)
        yield GaugeMetricFamily("process_open_fds", "Open fds.", value=self.fds)
        yield GaugeMetricFamily("process_max_fds", "Max fds.", value=self.max_fds)
        info = GaugeMetricFamily("python_info", "Python.", labels=["version"])
        info.add_metric([f"3.11.{int(self.start)}"], 1.0)
        yield info
        gc = CounterMetricFamily("python_gc_collections", "GC.", labels=["generation"])
        gc.add_metric(["0"], self.cpu * 100)
        yield gc


def _registry(runtime: _Runtime) -> tuple[CollectorRegistry, dict[str, Any]]:
    """A process's registry with istiod's kinds of metrics (none set yet)."""
    registry = CollectorRegistry()
    registry.register(runtime)
    metrics: dict[str, Any] = {
        "services": Gauge("pilot_services", "Services.", registry=registry),
        "rejected": Counter(
            "pilot_total_rejected_configs", "Rejected.", ["type", "name"], registry=registry
        ),
        "xds": Gauge("pilot_xds", "Connections.", registry=registry),
        "pushes": Counter("pilot_xds_pushes", "Pushes.", ["type"], registry=registry),
        "push_time": Histogram(
            "pilot_xds_push_time", "Push time.", ["type"], buckets=(0.01, 0.1, 1), registry=registry
        ),
        "other": Gauge("grpc_threads", "Not istiod's own.", registry=registry),
    }
    return registry, metrics


def _texts() -> tuple[bytes, bytes, bytes]:
    """The supervisor's and two workers' texts: config counted by the supervisor, xDS by
    the workers."""
    sup, s = _registry(_Runtime(cpu=1.5, rss=100.0, start=1000.0, fds=10.0, max_fds=1024.0))
    s["services"].set(7)
    s["rejected"].labels(type="VirtualService", name=TRICKY).inc(2)
    s["other"].set(4)
    one, w1 = _registry(_Runtime(cpu=2.0, rss=200.0, start=2000.0, fds=20.0, max_fds=4096.0))
    w1["xds"].set(3)
    w1["pushes"].labels("cds").inc(2)
    w1["pushes"].labels("eds").inc(1)
    w1["push_time"].labels("cds").observe(0.05)
    w1["push_time"].labels("cds").observe(2.0)
    w1["rejected"].labels(type="VirtualService", name=TRICKY)  # a zero sample, same labels
    w1["other"].set(40)
    Gauge("grpc_worker_queue", "Only the workers have it.", registry=one).set(9)
    two, w2 = _registry(_Runtime(cpu=0.25, rss=300.0, start=3000.0, fds=30.0, max_fds=4096.0))
    w2["xds"].set(2)
    w2["pushes"].labels("cds").inc(1)
    w2["pushes"].labels("lds").inc(4)
    w2["push_time"].labels("cds").observe(0.5)
    w2["push_time"].labels("lds").observe(0.005)
    Gauge("grpc_worker_queue", "Only the workers have it.", registry=two).set(11)
    return istiod_text(sup), istiod_text(one), istiod_text(two)


def _samples(text: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``text`` as prometheus_client's own parser reads it (which names
    a counter's samples ``*_total`` even where the text does not)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def _value(samples: Mapping[Any, float], name: str, /, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_own_families_and_process_totals_are_summed_the_rest_is_the_supervisors() -> None:
    own, one, two = _texts()
    merged = merge_metrics(own, [one, two])
    got = _samples(merged)

    assert _value(got, "pilot_xds") == 5.0
    assert _value(got, "pilot_services") == 7.0
    assert (
        _value(got, "pilot_total_rejected_configs_total", type="VirtualService", name=TRICKY) == 2.0
    )
    assert _value(got, "pilot_xds_pushes_total", type="cds") == 3.0
    assert _value(got, "pilot_xds_pushes_total", type="eds") == 1.0
    assert _value(got, "pilot_xds_pushes_total", type="lds") == 4.0
    assert _value(got, "pilot_xds_push_time_bucket", type="cds", le="0.1") == 1.0
    assert _value(got, "pilot_xds_push_time_bucket", type="cds", le="1.0") == 2.0
    assert _value(got, "pilot_xds_push_time_bucket", type="cds", le="+Inf") == 3.0
    assert _value(got, "pilot_xds_push_time_count", type="cds") == 3.0
    assert _value(got, "pilot_xds_push_time_sum", type="cds") == 2.55
    assert _value(got, "pilot_xds_push_time_bucket", type="lds", le="0.01") == 1.0

    assert _value(got, "process_cpu_seconds_total") == 3.75
    assert _value(got, "process_resident_memory_bytes") == 600.0
    assert _value(got, "process_virtual_memory_bytes") == 6000.0
    assert _value(got, "process_open_fds") == 60.0
    assert _value(got, "process_start_time_seconds") == 1000.0
    assert _value(got, "process_max_fds") == 1024.0
    assert _value(got, "python_info", version="3.11.1000") == 1.0
    assert [k for k in got if k[0] == "python_info"] == [
        ("python_info", frozenset({("version", "3.11.1000")}))
    ]
    assert _value(got, "python_gc_collections_total", generation="0") == 150.0
    assert _value(got, "grpc_threads") == 4.0
    assert _value(got, "grpc_worker_queue") == 9.0

    text = merged.decode()
    assert "\npilot_xds 5.0\n" in text  # written as istiod_text writes values
    assert '\npilot_xds_pushes{type="cds"} 3.0\n' in text  # istiod's name, no _total
    assert text.count("# TYPE pilot_xds_pushes counter") == 1
    assert text.count("# HELP grpc_worker_queue ") == 1


def test_families_keep_the_supervisors_order_then_the_workers_in_first_seen_order() -> None:
    own, one, two = _texts()
    names = [
        f.name for f in text_string_to_metric_families(merge_metrics(own, [one, two]).decode())
    ]
    supervisor = [f.name for f in text_string_to_metric_families(own.decode())]
    assert names[: len(supervisor)] == supervisor
    in_workers = [
        f.name for text in (one, two) for f in text_string_to_metric_families(text.decode())
    ]
    only_workers = [n for n in dict.fromkeys(in_workers) if n not in supervisor]
    assert "grpc_worker_queue" in only_workers  # (and *_created, if created series are on)
    assert names[len(supervisor) :] == only_workers
    lines = merge_metrics(own, [one, two]).decode().splitlines()
    pushes = [line.split()[0] for line in lines if line.startswith("pilot_xds_pushes{")]
    assert pushes == [
        'pilot_xds_pushes{type="cds"}',
        'pilot_xds_pushes{type="eds"}',
        'pilot_xds_pushes{type="lds"}',
    ]


def test_labels_in_another_order_are_the_same_series_and_created_keeps_the_earliest() -> None:
    own = b"""\
# HELP pilot_total_rejected_configs Rejected.
# TYPE pilot_total_rejected_configs counter
pilot_total_rejected_configs{name="a \\"q\\", {b}",type="Gateway"} 2.0
# HELP pilot_xds_push_time_created Push time.
# TYPE pilot_xds_push_time_created gauge
pilot_xds_push_time_created{type="cds"} 1.7e+09
# HELP grpc_created_things Not ours.
# TYPE grpc_created_things gauge
grpc_created_things 1.0
"""
    worker = b"""\
# HELP pilot_total_rejected_configs Rejected.
# TYPE pilot_total_rejected_configs counter
pilot_total_rejected_configs{ type = "Gateway" , name="a \\"q\\", {b}", } 3.0
pilot_total_rejected_configs{name="line\\nbreak \\\\",type="Gateway"} 1.0
# HELP pilot_xds_push_time_created Push time.
# TYPE pilot_xds_push_time_created gauge
pilot_xds_push_time_created{type="cds"} 1.6e+09 1700000000000
"""
    got = _samples(merge_metrics(own, [worker, worker]))
    assert (
        _value(got, "pilot_total_rejected_configs_total", name='a "q", {b}', type="Gateway") == 8.0
    )
    assert (
        _value(got, "pilot_total_rejected_configs_total", name="line\nbreak \\", type="Gateway")
        == 2.0
    )
    assert _value(got, "pilot_xds_push_time_created", type="cds") == 1.6e9
    assert _value(got, "grpc_created_things") == 1.0
    assert len(got) == 4


def test_the_supervisors_own_families_are_never_a_workers() -> None:
    worker = b"""\
# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1.7e+09
# HELP python_info Python platform information
# TYPE python_info gauge
python_info{version="3.11.7"} 1.0
# HELP grpc_threads Not ours.
# TYPE grpc_threads gauge
grpc_threads 2.0
"""
    assert merge_metrics(b"", [worker]).decode().splitlines() == [
        "# HELP grpc_threads Not ours.",
        "# TYPE grpc_threads gauge",
        "grpc_threads 2.0",
    ]


@pytest.mark.parametrize(
    "line",
    [
        'pilot_xds{type="cds} 1.0',
        "pilot_xds one",
        'pilot_xds{type="cds"}1.0',
        'pilot_xds{type="cds" le="1"} 1.0',
        "pilot_xds",
        "{} 1.0",
    ],
)
def test_a_line_that_is_not_the_text_format_is_named(line: str) -> None:
    with pytest.raises(ValueError, match=r"pilot_xds|\{\}"):
        merge_metrics(b"", [f"# TYPE pilot_xds gauge\n{line}\n".encode()])


def _syncz(*proxies: tuple[str, str]) -> list[dict[str, Any]]:
    return [
        {"proxy": p, "connected_at": at, "cds": {"sent": "v1", "acked": "v1"}} for p, at in proxies
    ]


def _client(proxy: str, connection: str) -> dict[str, Any]:
    return {"connectionId": connection, "proxy": proxy, "peer": "127.0.0.1:1", "watches": {}}


def test_syncz_and_adsz_are_concatenated_in_one_workers_order() -> None:
    one = _syncz(("b~1", "2024-01-01T00:00:02"), ("d~1", "2024-01-01T00:00:01"))
    two = _syncz(("a~1", "2024-01-01T00:00:09"), ("b~1", "2024-01-01T00:00:01"))
    assert [(d["proxy"], d["connected_at"][-2:]) for d in merge_syncz([one, two])] == [
        ("a~1", "09"),
        ("b~1", "01"),
        ("b~1", "02"),
        ("d~1", "01"),
    ]
    assert merge_syncz([]) == []

    adsz = merge_adsz(
        [
            {"totalClients": 2, "clients": [_client("c~1", "w0-3"), _client("a~1", "w0-1")]},
            {"totalClients": 0, "clients": []},
            {"totalClients": 1, "clients": [_client("b~1", "w2-1")]},
        ]
    )
    assert adsz["totalClients"] == 3
    assert [c["connectionId"] for c in adsz["clients"]] == ["w0-1", "w2-1", "w0-3"]
    assert merge_adsz([]) == {"totalClients": 0, "clients": []}


def test_config_dump_is_the_first_worker_that_knows_the_proxy_asking_no_further() -> None:
    asked: list[int] = []

    def answers() -> Iterator[object | None]:
        for index, answer in enumerate([None, {"configs": [1]}, {"configs": [2]}]):
            asked.append(index)
            yield answer

    assert first_found(answers()) == {"configs": [1]}
    assert asked == [0, 1]
    assert first_found([None, None]) is None
    assert first_found([]) is None


class _Worker:
    """A worker's monitoring server, its views answering for ``proxies``."""

    def __init__(self, index: int, proxies: list[str], connections: int) -> None:
        self.index = index
        self.proxies = proxies
        self.registry = CollectorRegistry()
        Gauge("pilot_xds", "Connections.", registry=self.registry).set(connections)
        views = {
            "/debug/syncz": lambda q: _syncz(*((p, f"2024-01-0{index}") for p in self.proxies)),
            "/debug/adsz": self.adsz,
            "/debug/config_dump": self.config_dump,
        }
        self.server = Monitoring(
            "127.0.0.1", 0, lambda: True, views, metrics=lambda: istiod_text(self.registry)
        )

    def adsz(self, query: Mapping[str, str]) -> object:
        wanted = query.get("proxyID", "")
        clients = [
            _client(p, f"w{self.index}-{n}")
            for n, p in enumerate(self.proxies)
            if not wanted or p == wanted
        ]
        return {"totalClients": len(clients), "clients": clients}

    def config_dump(self, query: Mapping[str, str]) -> object:
        proxy = query.get("proxyID", "")
        return {"proxy": proxy, "worker": self.index} if proxy in self.proxies else None


@pytest.fixture
def workers() -> Iterator[list[_Worker]]:
    started = [_Worker(1, ["sidecar~a", "sidecar~c"], 2), _Worker(2, ["sidecar~b"], 1)]
    for worker in started:
        worker.server.start()
    yield started
    for worker in started:
        worker.server.stop()


def _supervisor(merged: WorkerViews) -> Monitoring:
    registry = CollectorRegistry()
    Gauge("pilot_services", "Services.", registry=registry).set(5)
    Gauge("pilot_xds", "Connections.", registry=registry)
    views = merged.views()
    return Monitoring(
        "127.0.0.1", 0, lambda: True, views, metrics=merged.metrics(lambda: istiod_text(registry))
    )


def test_the_supervisors_port_answers_for_all_its_workers(workers: list[_Worker]) -> None:
    supervisor = _supervisor(WorkerViews(lambda: [w.server.port for w in workers]))
    supervisor.start()
    base = f"http://127.0.0.1:{supervisor.port}"
    try:
        status, body = http_get(f"{base}/metrics")
        assert status == 200
        got = _samples(body.encode())
        assert _value(got, "pilot_xds") == 3.0 and _value(got, "pilot_services") == 5.0
        syncz = _json(http_get(f"{base}/debug/syncz"))
        assert [d["proxy"] for d in syncz] == ["sidecar~a", "sidecar~b", "sidecar~c"]
        adsz = _json(http_get(f"{base}/debug/adsz"))
        assert adsz["totalClients"] == 3
        only = _json(http_get(f"{base}/debug/adsz?proxyID=sidecar~c"))
        assert only == {"totalClients": 1, "clients": [_client("sidecar~c", "w1-1")]}
        dump = _json(http_get(f"{base}/debug/config_dump?proxyID=sidecar~b"))
        assert dump == {"proxy": "sidecar~b", "worker": 2}
        assert http_get(f"{base}/debug/config_dump?proxyID=sidecar~z")[0] == 404
        assert http_get(f"{base}/debug/configz")[0] == 503  # not merged: the supervisor's own
    finally:
        supervisor.stop()


def test_a_worker_that_does_not_answer_is_left_out_and_logged(workers: list[_Worker]) -> None:
    closed = _closed_port()
    silent = socket.socket()  # accepts connections (the backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    starting = Monitoring("127.0.0.1", 0, lambda: False)  # no views yet: 503
    starting.start()
    ports = [closed, workers[1].server.port, silent.getsockname()[1], starting.port]
    merged = WorkerViews(lambda: ports, timeout=0.2)
    try:
        with capture_logs() as logs:
            syncz: Any = merged.syncz()({})
            adsz = merged.adsz()({})
            dump = merged.config_dump()({"proxyID": "sidecar~a"})
            metrics = _samples(merged.metrics(lambda: b"")())
    finally:
        silent.close()
        starting.stop()
    assert [d["proxy"] for d in syncz] == ["sidecar~b"]
    assert adsz == {"totalClients": 1, "clients": [_client("sidecar~b", "w2-0")]}
    assert dump is None
    assert _value(metrics, "pilot_xds") == 1.0
    warned = [e for e in logs if e["event"] == "monitoring.worker_unreachable"]
    assert all(e["log_level"] == "warning" and e["reason"] for e in warned)
    by_path = {(e["path"], e["port"]) for e in warned}
    for path in ("/debug/syncz", "/debug/adsz", "/debug/config_dump", "/metrics"):
        assert (path, closed) in by_path and (path, ports[2]) in by_path
    assert ("/debug/syncz", starting.port) in by_path  # 503: not serving yet
    assert ("/debug/config_dump", starting.port) in by_path  # a 503 is not a 404
    assert ("/metrics", starting.port) not in by_path  # it has metrics already
    refused = next(e for e in warned if e["port"] == closed)
    assert "refused" in refused["reason"].lower()


def _closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _json(answer: tuple[int, str]) -> Any:
    import json

    status, body = answer
    assert status == 200, body
    return json.loads(body)
