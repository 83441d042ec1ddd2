"""Unit tests for the pure configuration parts: paths, Kafka, FerretDB, services."""

from __future__ import annotations

import base64
import socket
import stat
import struct
import threading
from pathlib import Path

import pytest

from devstack import kafka, services, store
from devstack.paths import Paths, RepoRootNotFoundError, find_repo_root

pytestmark = pytest.mark.unit


# --- paths ------------------------------------------------------------------


def test_repo_root_from_marker_and_env(tmp_path: Path) -> None:
    (tmp_path / "repo" / "a" / "b").mkdir(parents=True)
    (tmp_path / "repo" / "Makefile").write_text("")
    assert find_repo_root(tmp_path / "repo" / "a" / "b", environ={}) == tmp_path / "repo"
    assert (
        find_repo_root(tmp_path, environ={"BATCHYARD_HOME": str(tmp_path / "x")}) == tmp_path / "x"
    )


def test_repo_root_missing(tmp_path: Path) -> None:
    # tmp dirs live under /tmp, which has neither .git nor a Makefile above it
    with pytest.raises(RepoRootNotFoundError):
        find_repo_root(tmp_path, environ={})


def test_paths_layout(tmp_path: Path) -> None:
    p = Paths(tmp_path)
    p.ensure()
    assert p.m2 == tmp_path / ".cache" / "m2"
    assert p.kafka_lib == tmp_path / ".cache" / "kafka" / "lib"
    assert p.ferretdb_bin == tmp_path / ".cache" / "bin" / "ferretdb"
    assert p.log_file("kafka") == tmp_path / ".batchyard" / "logs" / "kafka.log"
    assert p.admin_key == tmp_path / ".batchyard" / "admin.key"
    for d in (p.run, p.logs, p.kafka_data, p.ferretdb_data, p.cache_bin):
        assert d.is_dir()


# --- kafka ------------------------------------------------------------------


def _props(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return {key: value for key, _, value in (line.partition("=") for line in lines)}


def test_server_properties_defaults(tmp_path: Path) -> None:
    props = _props(kafka.render_server_properties(kafka.KafkaSettings(), tmp_path / "logs"))
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert props["log.dirs"] == str(tmp_path / "logs")
    assert props["num.partitions"] == "6"
    assert props["auto.create.topics.enable"] == "true"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["log.retention.hours"] == "168"


def test_server_properties_follow_port_env(tmp_path: Path) -> None:
    settings = kafka.KafkaSettings.from_env({"BATCHYARD_KAFKA_PORT": "19092"})
    assert settings.controller_port == 19093
    assert settings.bootstrap_servers == "127.0.0.1:19092"
    props = _props(kafka.render_server_properties(settings, tmp_path))
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert kafka.KafkaSettings.from_env({}).port == 9092


def test_server_properties_need_absolute_log_dir() -> None:
    with pytest.raises(ValueError, match="absolute"):
        kafka.render_server_properties(kafka.KafkaSettings(), Path("relative/logs"))


def test_cluster_id_shape() -> None:
    for _ in range(200):
        cid = kafka.new_cluster_id()
        assert len(cid) == 22
        assert not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_kafka_argv(tmp_path: Path) -> None:
    argv = kafka.argv(Paths(tmp_path), "/usr/bin/java")
    assert argv[0] == "/usr/bin/java"
    assert "-Xmx512m" in argv
    assert "-XX:+UseG1GC" in argv
    assert argv[argv.index("-cp") + 1] == f"{tmp_path}/.cache/kafka/lib/*"
    assert argv[-2:] == ["kafka.Kafka", str(tmp_path / ".batchyard/data/kafka/server.properties")]


# --- store ------------------------------------------------------------------


def test_ferretdb_argv(tmp_path: Path) -> None:
    argv = store.argv(Paths(tmp_path), store.StoreSettings(port=27018, debug_port=None))
    data = tmp_path / ".batchyard" / "data" / "ferretdb"
    assert argv[0] == str(tmp_path / ".cache" / "bin" / "ferretdb")
    assert "--handler=sqlite" in argv
    url = next(a for a in argv if a.startswith("--sqlite-url="))
    # a directory URL; commits skip their fsync, as MongoDB's default write concern does
    assert url.startswith(f"--sqlite-url=file:{data}/?")
    assert "_pragma=synchronous(normal)" in url.split("?", 1)[1].split("&")
    assert "--listen-addr=127.0.0.1:27018" in argv
    assert "--debug-addr=-" in argv
    assert "--telemetry=disable" in argv
    assert f"--state-dir={data / 'state'}" in argv


def test_store_settings_from_env() -> None:
    default = store.StoreSettings.from_env({})
    assert (default.port, default.debug_port) == (27017, 8089)
    assert default.mongodb_url() == "mongodb://127.0.0.1:27017/batchyard"
    custom = store.StoreSettings.from_env(
        {"BATCHYARD_STORE_PORT": "27999", "BATCHYARD_STORE_DEBUG_PORT": "-"}
    )
    assert (custom.port, custom.debug_port) == (27999, None)
    assert custom.mongodb_url("e2e") == "mongodb://127.0.0.1:27999/e2e"


def test_ping_encoding() -> None:
    doc = store.encode_ping()
    assert doc == (
        b"\x1e\x00\x00\x00\x10ping\x00\x01\x00\x00\x00\x02$db\x00\x06\x00\x00\x00admin\x00\x00"
    )
    msg = store.encode_op_msg(doc, request_id=7)
    length, request_id, response_to, opcode = struct.unpack_from("<iiii", msg)
    assert (length, request_id, response_to, opcode) == (len(msg), 7, 0, 2013)
    assert msg[16:21] == b"\x00\x00\x00\x00\x00"


def _bson(*elements: bytes) -> bytes:
    body = b"".join(elements)
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


def test_decode_numbers_skips_other_types() -> None:
    doc = _bson(
        b"\x02msg\x00" + struct.pack("<i", 3) + b"hi\x00",
        b"\x03sub\x00" + _bson(b"\x10x\x00" + struct.pack("<i", 5)),
        b"\x08flag\x00\x01",
        b"\x12big\x00" + struct.pack("<q", 2**40),
        b"\x01ok\x00" + struct.pack("<d", 1.0),
    )
    assert store.decode_top_level_numbers(doc) == {"flag": 1.0, "big": float(2**40), "ok": 1.0}


def _fake_mongo(reply_ok: float) -> tuple[int, threading.Thread]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def serve() -> None:
        with server:
            conn, _ = server.accept()
            with conn:
                header = conn.recv(16)
                length = struct.unpack_from("<i", header)[0]
                conn.recv(length - 16)
                reply = store.encode_op_msg(_bson(b"\x01ok\x00" + struct.pack("<d", reply_ok)))
                conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return port, thread


@pytest.mark.parametrize(("ok", "expected"), [(1.0, True), (0.0, False)])
def test_ping_against_fake_server(ok: float, expected: bool) -> None:
    port, thread = _fake_mongo(ok)
    assert store.ping(port, timeout=5) is expected
    thread.join(5)


def test_ping_nobody_listening() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert store.ping(port, timeout=0.5) is False


# --- services -----------------------------------------------------------------


def test_service_table_defaults() -> None:
    specs = services.service_specs(3)
    table = [(s.name, s.script, s.port, s.instance_id) for s in specs]
    assert table == [
        ("batch-api", "batchyard-api", 8000, "batch-api"),
        ("scheduler", "batchyard-scheduler", 8001, "scheduler"),
        ("rollback", "batchyard-rollback", 8002, "rollback"),
        ("reporter", "batchyard-reporter", 8003, "reporter"),
        ("executor-1", "batchyard-executor", 8011, "executor-1"),
        ("executor-2", "batchyard-executor", 8012, "executor-2"),
        ("executor-3", "batchyard-executor", 8013, "executor-3"),
    ]
    assert [s.admin_api for s in specs].count(True) == 1
    assert specs[0].readyz == "http://127.0.0.1:8000/readyz"
    assert len(services.service_specs(0)) == 4


def test_service_names() -> None:
    assert services.executor_index("executor-12") == 12
    for bad in ("executor-0", "executor-", "executor-x", "kafka", "executor-1a"):
        assert services.executor_index(bad) is None
    assert services.is_service_name("reporter")
    assert not services.is_service_name("ferretdb")
    assert services.spec_for("executor-5").port == 8015
    with pytest.raises(KeyError):
        services.spec_for("nope")


def test_custom_ports() -> None:
    ports = services.ServicePorts.pick_free(executors=2)
    specs = services.service_specs(2, ports)
    assert len({s.port for s in specs}) == 6
    assert specs[-1].port == ports.executor_ports[1]
    assert services.ServicePorts(executor_base=9000).executor(3) == 9003


def test_service_env() -> None:
    api, scheduler = services.service_specs(0)[:2]
    kafka_bootstrap, mongodb_url = "127.0.0.1:9092", "mongodb://127.0.0.1:27017/db"
    env = services.service_env(
        api,
        kafka_bootstrap=kafka_bootstrap,
        mongodb_url=mongodb_url,
        admin_key="bya_k",
        extra_env={"BATCHYARD_TOPIC_PREFIX": "t."},
    )
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9092"
    assert env["MONGODB_URL"] == "mongodb://127.0.0.1:27017/db"
    assert env["BATCHYARD_HTTP_PORT"] == "8000"
    assert env["BATCHYARD_INSTANCE_ID"] == "batch-api"
    assert env["BATCHYARD_ADMIN_KEY"] == "bya_k"
    assert env["BATCHYARD_TOPIC_PREFIX"] == "t."
    other = services.service_env(
        scheduler, kafka_bootstrap=kafka_bootstrap, mongodb_url=mongodb_url, admin_key="bya_k"
    )
    assert "BATCHYARD_ADMIN_KEY" not in other
    assert other["BATCHYARD_INSTANCE_ID"] == "scheduler"


def test_admin_key_resolution(tmp_path: Path) -> None:
    key_file = tmp_path / "state" / "admin.key"
    assert services.resolve_admin_key(key_file, {"BATCHYARD_ADMIN_KEY": "from-env"}) == "from-env"
    assert not key_file.exists()
    generated = services.resolve_admin_key(key_file, {})
    assert generated.startswith("bya_")
    assert len(generated) > 40
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert services.resolve_admin_key(key_file, {}) == generated
    assert services.resolve_admin_key(key_file, {"BATCHYARD_ADMIN_KEY": "x"}) == "x"


def test_missing_console_script_has_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="console script"):
        services.script_path(tmp_path, services.spec_for("reporter"))


def test_prometheus_scrapes_every_service_with_the_alert_rules(tmp_path: Path) -> None:
    from devstack import prometheus
    from devstack.services import ServicePorts

    ports = ServicePorts(api=1, scheduler=2, rollback=3, reporter=4, executor_ports=(5, 6, 7))
    config = prometheus.config(3, ports, tmp_path)
    jobs = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert jobs == {
        "batch-api": ["127.0.0.1:1"],
        "scheduler": ["127.0.0.1:2"],
        "rollback": ["127.0.0.1:3"],
        "reporter": ["127.0.0.1:4"],
        "executor": ["127.0.0.1:5", "127.0.0.1:6", "127.0.0.1:7"],
    }
    assert config["rule_files"] == [str(tmp_path / "batchyard.rules.yml")]
