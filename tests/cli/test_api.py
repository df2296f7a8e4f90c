"""The Firecracker-compatible API socket (--api-sock) and --config-file,
driven over the Unix socket with http.client, on the tiny PVH guests that
run on this machine's KVM (tests/guests/x86_64/elf). Linux boots through
the API are tests/e2e/test_api.py's."""
import http.client
import json
import os
import select
import signal
import socket
import stat
import subprocess
import time

import pytest

from conftest import run


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class Api:
    def __init__(self, path):
        self.path = path

    def call(self, method, url, body=None):
        conn = UnixHTTPConnection(self.path)
        try:
            data = body if isinstance(body, (str, bytes)) or body is None else json.dumps(body)
            conn.request(method, url, body=data,
                         headers={"Content-Type": "application/json"} if data is not None else {})
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
        finally:
            conn.close()

    def put(self, url, body):
        return self.call("PUT", url, body)

    def get(self, url):
        return self.call("GET", url)


@pytest.fixture
def vmm_api(vibevmm, tmp_path):
    """Start vibevmm --api-sock; yield (proc, Api, socket path)."""
    procs = []

    def start(*extra):
        sock = tmp_path / "api.sock"
        proc = subprocess.Popen([vibevmm, "--api-sock", str(sock), *extra],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        procs.append(proc)
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "socket never appeared"
            time.sleep(0.02)
        return proc, Api(str(sock)), sock

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.communicate()


def fault(resp):
    status, body = resp
    assert status == 400, resp
    return body["fault_message"]


def test_socket_mode_info_and_removal(vmm_api):
    proc, api, sock = vmm_api()
    assert stat.S_ISSOCK(os.lstat(sock).st_mode)
    assert stat.S_IMODE(os.lstat(sock).st_mode) == 0o600
    status, info = api.get("/")
    assert status == 200
    assert info == {"id": "anonymous-instance", "state": "Not started",
                    "vmm_version": info["vmm_version"], "app_name": "vibevmm"}
    assert api.get("/version") == (200, {"firecracker_version": info["vmm_version"]})
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)
    assert proc.returncode == 143
    assert not sock.exists()


def test_refuses_to_replace_a_regular_file(vibevmm, tmp_path):
    f = tmp_path / "not-a-socket"
    f.write_text("keep me")
    res = run([vibevmm, "--api-sock", str(f)])
    assert res.returncode == 1
    assert res.stderr.strip() == f"vibevmm: --api-sock {f}: exists and is not a socket (not replaced)"
    assert f.read_text() == "keep me"


def test_machine_config_good_and_bad(vmm_api):
    _, api, _ = vmm_api()
    assert api.put("/machine-config", {"vcpu_count": 2, "mem_size_mib": 64, "smt": False,
                                       "track_dirty_pages": True}) == (204, None)
    assert api.get("/machine-config") == (200, {"vcpu_count": 2, "mem_size_mib": 64,
                                                "smt": False, "track_dirty_pages": True})
    assert "vcpu_count: want a non-negative integer" in fault(
        api.put("/machine-config", {"vcpu_count": "2", "mem_size_mib": 64}))
    assert "missing field 'mem_size_mib'" in fault(api.put("/machine-config", {"vcpu_count": 1}))
    assert "unknown field 'cpus'" in fault(
        api.put("/machine-config", {"vcpu_count": 1, "mem_size_mib": 64, "cpus": 1}))
    assert "vcpu_count: want 1 to" in fault(api.put("/machine-config", {"vcpu_count": 0, "mem_size_mib": 64}))
    # PATCH: the fields given, over the others
    assert api.call("PATCH", "/machine-config", {"vcpu_count": 3}) == (204, None)
    assert api.get("/machine-config")[1] == {"vcpu_count": 3, "mem_size_mib": 64, "smt": False,
                                             "track_dirty_pages": True}
    assert "mem_size_mib: want a non-negative integer" in fault(
        api.call("PATCH", "/machine-config", {"mem_size_mib": "1G"}))
    assert "unknown field 'cpus'" in fault(api.call("PATCH", "/machine-config", {"cpus": 1}))
    assert api.get("/machine-config")[1]["vcpu_count"] == 3
    assert api.call("PATCH", "/machine-config", {"vcpu_count": 2}) == (204, None)
    assert "smt: true is not supported" in fault(
        api.put("/machine-config", {"vcpu_count": 1, "mem_size_mib": 64, "smt": True}))
    assert "bad JSON" in fault(api.put("/machine-config", "{"))
    # nothing of the bad bodies stuck
    assert api.get("/machine-config")[1]["vcpu_count"] == 2


def test_sections_good_and_bad(vmm_api):
    _, api, _ = vmm_api()
    assert "kernel_image_path: want a string" in fault(api.put("/boot-source", {"kernel_image_path": 1}))
    assert "missing field 'kernel_image_path'" in fault(api.put("/boot-source", {"boot_args": "x"}))
    assert api.put("/boot-source", {"kernel_image_path": "/k", "boot_args": "a=1"})[0] == 204
    drive = {"drive_id": "rootfs", "path_on_host": "/r.img", "is_root_device": True,
             "is_read_only": True, "cache_type": "Writeback"}
    assert api.put("/drives/rootfs", drive)[0] == 204
    assert "differs from the body's" in fault(api.put("/drives/other", drive))
    assert "cache_type: want" in fault(api.put("/drives/rootfs", {**drive, "cache_type": "Nope"}))
    assert "is_root_device: want true or false" in fault(
        api.put("/drives/rootfs", {**drive, "is_root_device": "yes"}))
    assert "already" in fault(api.put("/drives/data", {**drive, "drive_id": "data"}))
    assert api.put("/drives/data", {**drive, "drive_id": "data", "is_root_device": False})[0] == 204
    assert "Invalid request method and/or path" in fault(api.put("/drives/", drive))
    net = {"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "02:00:00:00:00:01"}
    assert api.put("/network-interfaces/eth0", net)[0] == 204
    assert "guest_mac" in fault(api.put("/network-interfaces/eth0", {**net, "guest_mac": "zz"}))
    assert "host_dev_name: tap0 is used by eth0" in fault(
        api.put("/network-interfaces/eth1", {**net, "iface_id": "eth1", "guest_mac": None}))
    assert "rx_rate_limiter: want null" in fault(
        api.put("/network-interfaces/eth0", {**net, "rx_rate_limiter": {}}))
    assert api.put("/logger", {"log_path": "/dev/null", "level": "Info"})[0] == 204
    assert "level: want" in fault(api.put("/logger", {"level": "Loud"}))
    assert api.put("/metrics", {"metrics_path": "/tmp/m"})[0] == 204
    assert "missing field 'metrics_path'" in fault(api.put("/metrics", {}))
    assert api.put("/entropy", {})[0] == 204
    assert api.put("/vsock", {"guest_cid": 3, "uds_path": "/tmp/v.sock"})[0] == 204
    assert "guest_cid: want 3" in fault(api.put("/vsock", {"guest_cid": 2, "uds_path": "/v"}))
    status, cfg = api.get("/vm/config")
    assert status == 200
    assert cfg["boot-source"] == {"kernel_image_path": "/k", "initrd_path": None, "boot_args": "a=1"}
    assert [d["drive_id"] for d in cfg["drives"]] == ["rootfs", "data"]
    assert cfg["drives"][0]["is_read_only"] is True
    assert cfg["network-interfaces"] == [net]
    assert cfg["logger"] == {"log_path": "/dev/null", "level": "Info"}
    assert cfg["metrics"] == {"metrics_path": "/tmp/m"}
    assert cfg["vsock"] == {"guest_cid": 3, "uds_path": "/tmp/v.sock"}
    assert cfg["entropy"] == {}


def test_paths_methods_and_actions_before_start(vmm_api):
    _, api, _ = vmm_api()
    assert "Invalid request method and/or path: GET /nope" in fault(api.get("/nope"))
    status, body = api.call("DELETE", "/")
    assert status == 405 and "DELETE is not allowed on /" in body["fault_message"]
    status, body = api.get("/boot-source")
    assert status == 405
    assert "action_type: unknown" in fault(api.put("/actions", {"action_type": "Reboot"}))
    assert "unknown field 'x'" in fault(api.put("/actions", {"action_type": "InstanceStart", "x": 1}))
    assert "no kernel_image_path" in fault(api.put("/actions", {"action_type": "InstanceStart"}))
    assert "not running" in fault(api.put("/actions", {"action_type": "SendCtrlAltDel"}))
    assert "no metrics configured" in fault(api.put("/actions", {"action_type": "FlushMetrics"}))
    assert "not running" in fault(api.call("PATCH", "/vm", {"state": "Paused"}))
    assert 'want "Paused" or "Resumed"' in fault(api.call("PATCH", "/vm", {"state": "Asleep"}))
    # a kernel that cannot be read fails InstanceStart; the VMM stays to be fixed
    assert api.put("/boot-source", {"kernel_image_path": "/nonexistent"})[0] == 204
    assert "cannot read --kernel /nonexistent" in fault(
        api.put("/actions", {"action_type": "InstanceStart"}))
    assert api.get("/")[1]["state"] == "Not started"


def test_instance_start_boots_and_exit_ends_process(vmm_api, guest_dir, kvm_usable):
    proc, api, sock = vmm_api("--debugcon", "--exit-port")
    assert api.put("/machine-config", {"vcpu_count": 1, "mem_size_mib": 64})[0] == 204
    assert api.put("/boot-source", {"kernel_image_path": str(guest_dir / "pvh.elf"),
                                    "boot_args": "hello-pvh x=1"})[0] == 204
    assert api.put("/actions", {"action_type": "InstanceStart"})[0] == 204
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 42, err
    assert out.decode().strip() == "PVH cmdline=hello-pvh x=1 memmap=3 modules=0"
    assert not sock.exists()


def test_running_vm_rejects_changes(vmm_api, guest_dir, kvm_usable):
    """lifecycle.elf with "x" spins: the VM stays up to be asked."""
    proc, api, sock = vmm_api("--log", "3")
    assert api.put("/boot-source", {"kernel_image_path": str(guest_dir / "lifecycle.elf"),
                                    "boot_args": "x"})[0] == 204
    assert api.put("/machine-config", {"vcpu_count": 1, "mem_size_mib": 64})[0] == 204
    assert api.put("/actions", {"action_type": "InstanceStart"})[0] == 204
    assert api.get("/")[1]["state"] == "Running"
    assert "started already" in fault(api.put("/actions", {"action_type": "InstanceStart"}))
    assert "cannot be changed after the VM started" in fault(
        api.put("/machine-config", {"vcpu_count": 1, "mem_size_mib": 64}))
    assert "cannot be changed after the VM started" in fault(
        api.call("PATCH", "/machine-config", {"vcpu_count": 2}))
    assert "cannot be changed after the VM started" in fault(
        api.put("/drives/x", {"drive_id": "x", "path_on_host": "/x", "is_root_device": False}))
    assert api.get("/machine-config") == (200, {"vcpu_count": 1, "mem_size_mib": 64,
                                                "smt": False, "track_dirty_pages": False})
    # the guest ignores the keys, but they reach the i8042 (a Linux machine)
    assert api.put("/actions", {"action_type": "SendCtrlAltDel"}) == (204, None)
    assert api.call("PATCH", "/vm", {"state": "Paused"}) == (204, None)
    assert api.get("/")[1]["state"] == "Paused"
    assert api.call("PATCH", "/vm", {"state": "Paused"}) == (204, None)  # again: no error
    assert api.call("PATCH", "/vm", {"state": "Resumed"}) == (204, None)
    assert api.get("/")[1]["state"] == "Running"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 143, err
    assert not sock.exists()


def locked(path):
    """Whether another process holds a lock on the file."""
    import fcntl
    with open(path, "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True


def test_patch_drive_gives_a_running_vm_a_new_image(vmm_api, guest_dir, kvm_usable, tmp_path):
    """PATCH /drives/{id} on a running VM (under its seccomp sandbox): the
    disk takes the new image (locked now, the old one let go), GET
    /vm/config says so; bad bodies and images fail with the reason and
    change nothing. Linux seeing the new disk is tests/e2e/test_api.py's."""
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    a.write_bytes(b"a" * 65536)
    b.write_bytes(b"b" * 131072)
    proc, api, sock = vmm_api("--log", "3")
    assert api.put("/boot-source", {"kernel_image_path": str(guest_dir / "lifecycle.elf"),
                                    "boot_args": "x"})[0] == 204
    assert api.put("/drives/data", {"drive_id": "data", "path_on_host": str(a),
                                    "is_root_device": False})[0] == 204
    assert "before InstanceStart, PUT /drives/data" in fault(
        api.call("PATCH", "/drives/data", {"drive_id": "data", "path_on_host": str(b)}))
    assert api.put("/actions", {"action_type": "InstanceStart"})[0] == 204
    assert locked(a) and not locked(b)

    assert api.call("PATCH", "/drives/data", {"drive_id": "data", "path_on_host": str(b)}) == (204, None)
    assert locked(b) and not locked(a)
    assert api.get("/vm/config")[1]["drives"][0]["path_on_host"] == str(b)
    # nothing to change
    assert api.call("PATCH", "/drives/data", {"drive_id": "data"}) == (204, None)
    # the same file, grown: kept (still locked), the new size told
    with open(b, "ab") as f:
        f.write(b"c" * 4096)
    assert api.call("PATCH", "/drives/data", {"drive_id": "data", "path_on_host": str(b)}) == (204, None)
    assert locked(b)
    # refused, the image stays b
    assert "No such file or directory" in fault(api.call(
        "PATCH", "/drives/data", {"drive_id": "data", "path_on_host": str(tmp_path / "none")}))
    assert "is a directory" in fault(api.call(
        "PATCH", "/drives/data", {"drive_id": "data", "path_on_host": str(tmp_path)})).lower()
    assert "no drive other" in fault(api.call(
        "PATCH", "/drives/other", {"drive_id": "other", "path_on_host": str(a)}))
    assert "differs from the body's" in fault(api.call(
        "PATCH", "/drives/data", {"drive_id": "x", "path_on_host": str(a)}))
    assert "rate_limiter" in fault(api.call(
        "PATCH", "/drives/data", {"drive_id": "data", "rate_limiter": {"bandwidth": {}}}))
    assert "unknown field 'is_read_only'" in fault(api.call(
        "PATCH", "/drives/data", {"drive_id": "data", "is_read_only": True}))
    assert "no interface eth0" in fault(api.call(
        "PATCH", "/network-interfaces/eth0", {"iface_id": "eth0"}))
    assert api.get("/vm/config")[1]["drives"][0]["path_on_host"] == str(b)
    assert locked(b) and not locked(a)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 143, err
    assert f"now {b}, 256 sectors" in err.decode()
    assert f"now {b}, 264 sectors" in err.decode()


def read_for(stream, seconds):
    """What the process wrote to `stream` (non-blocking) within `seconds`."""
    got, end = b"", time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if select.select([stream], [], [], left)[0]:
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                break
            got += chunk
    return got


def test_pause_stops_console_output_and_resume_continues(vmm_api, guest_dir, kvm_usable):
    """lifecycle.elf with "t" prints dots forever: none while paused."""
    proc, api, sock = vmm_api()
    assert api.put("/boot-source", {"kernel_image_path": str(guest_dir / "lifecycle.elf"),
                                    "boot_args": "t"})[0] == 204
    assert api.put("/actions", {"action_type": "InstanceStart"})[0] == 204
    assert b"." in read_for(proc.stdout, 5)
    assert api.call("PATCH", "/vm", {"state": "Paused"}) == (204, None)
    read_for(proc.stdout, 0.5)  # what was on its way out before the pause
    assert read_for(proc.stdout, 1.0) == b""
    assert api.call("PATCH", "/vm", {"state": "Resumed"}) == (204, None)
    assert b"." in read_for(proc.stdout, 5)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=10)
    assert proc.returncode == 143


def test_metrics_lines_count_the_guests_exits(vmm_api, guest_dir, kvm_usable, tmp_path):
    """FlushMetrics writes one JSON line; its exit counts follow the guest
    (lifecycle.elf "t": one port-I/O exit per dot) since the line before,
    and are 0 over a pause."""
    metrics = tmp_path / "metrics.json"
    proc, api, sock = vmm_api()
    assert api.put("/metrics", {"metrics_path": str(metrics)})[0] == 204
    assert api.put("/boot-source", {"kernel_image_path": str(guest_dir / "lifecycle.elf"),
                                    "boot_args": "t"})[0] == 204
    assert api.put("/actions", {"action_type": "InstanceStart"})[0] == 204
    dots = read_for(proc.stdout, 2).count(b".")
    assert dots > 0
    assert api.put("/actions", {"action_type": "FlushMetrics"}) == (204, None)
    assert api.call("PATCH", "/vm", {"state": "Paused"})[0] == 204
    read_for(proc.stdout, 0.5)
    for _ in range(2):
        assert api.put("/actions", {"action_type": "FlushMetrics"}) == (204, None)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=10)
    lines = [json.loads(l) for l in metrics.read_text().splitlines()]
    assert len(lines) == 4  # three flushes and the last line at exit
    # as Firecracker's, each line counts what happened since the one before
    io = [l["vcpu"]["exit_io"] for l in lines]
    assert io[0] >= dots                # every dot was a port write
    assert io[2] == 0                   # paused: no exits in between
    assert all(l["vcpu"]["exits"] >= l["vcpu"]["exit_io"] >= 0 for l in lines)
    assert lines[0]["utc_timestamp_ms"] <= lines[1]["utc_timestamp_ms"]


def test_metrics_path_and_id_flags(vibevmm, vmm_api, guest_dir, kvm_usable, tmp_path):
    """Firecracker's --metrics-path works with --kernel/--binary too (a line
    at the end counting the guest's exits), and --id is what GET / says."""
    metrics = tmp_path / "m.json"
    res = run([vibevmm, "--binary", str(guest_dir / "hello.bin"), "--metrics-path", str(metrics)])
    assert res.returncode == 42, res.stderr  # hello's exit-port value
    last = json.loads(metrics.read_text().splitlines()[-1])
    assert last["vcpu"]["exits"] > 0 and last["vcpu"]["exit_mmio"] > 0  # the debug console
    _, api, _ = vmm_api("--id", "vm-42")
    assert api.get("/")[1]["id"] == "vm-42"
    res = run([vibevmm, "--id", "bad id", "--binary", str(guest_dir / "hello.bin")])
    assert res.returncode == 1
    assert res.stderr.strip() == "vibevmm: --id bad id: want 1 to 64 letters, digits or '-'"


def test_vsock_from_the_api_listens_on_its_socket(vmm_api, guest_dir, kvm_usable, tmp_path):
    """PUT /vsock makes the device: its hybrid socket listens, and goes at exit."""
    uds = tmp_path / "v.sock"
    proc, api, sock = vmm_api()
    assert "guest_cid: want 3" in fault(api.put("/vsock", {"guest_cid": 2, "uds_path": str(uds)}))
    assert api.put("/vsock", {"guest_cid": 3, "uds_path": str(uds)}) == (204, None)
    assert api.get("/vm/config")[1]["vsock"] == {"guest_cid": 3, "uds_path": str(uds)}
    assert api.put("/boot-source", {"kernel_image_path": str(guest_dir / "lifecycle.elf"),
                                    "boot_args": "x"})[0] == 204
    assert api.put("/actions", {"action_type": "InstanceStart"})[0] == 204
    assert stat.S_ISSOCK(uds.stat().st_mode)
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(str(uds))  # the listener takes it (no guest driver: no OK)
    c.close()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=10)
    assert proc.returncode == 143
    assert not uds.exists()


def raw_request(sock_path, data, wait=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(wait)
    s.connect(str(sock_path))
    s.sendall(data)
    reply = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            break
        if not chunk:
            break
        reply += chunk
    s.close()
    return reply


def test_http_limits(vmm_api):
    _, api, sock = vmm_api()
    reply = raw_request(sock, b"PUT /logger HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 411 ")
    reply = raw_request(sock, b"PUT /logger HTTP/1.1\r\nContent-Length: 70000\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 413 ")
    reply = raw_request(sock, b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 70000 + b"\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 413 ")
    reply = raw_request(sock, b"GET / HTTP/2.0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 505 ")
    reply = raw_request(sock, b"GET /\n\n")
    assert reply.startswith(b"HTTP/1.1 400 ")
    # two requests on one connection, the second closing it
    reply = raw_request(sock, b"GET /version HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert reply.count(b"HTTP/1.1 200 OK") == 2
    # a request that never completes: 408 after the read timeout (5 s)
    t0 = time.monotonic()
    reply = raw_request(sock, b"PUT /logger HTTP/1.1\r\nContent-Length: 10\r\n\r\n{", wait=15)
    assert reply.startswith(b"HTTP/1.1 408 "), reply
    assert 4 < time.monotonic() - t0 < 10
    assert api.get("/")[0] == 200  # still serving


def test_config_file_starts_without_socket(vibevmm, guest_dir, kvm_usable, tmp_path):
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(guest_dir / "pvh.elf"), "boot_args": "from-file"},
        "machine-config": {"vcpu_count": 1, "mem_size_mib": 64},
        "drives": [], "network-interfaces": [],
        "logger": {"log_path": "/dev/null", "level": "Warning"},
    }))
    res = run([vibevmm, "--config-file", str(cfg), "--no-api", "--debugcon", "--exit-port"])
    assert res.returncode == 42, res.stderr
    assert res.stdout.strip() == "PVH cmdline=from-file memmap=3 modules=0"


def test_config_file_errors(vibevmm, tmp_path):
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({"boot-source": {"kernel_image_path": "/k"}, "machine-config": {"vcpu_count": "1"}}))
    res = run([vibevmm, "--config-file", str(cfg)])
    assert res.returncode == 1
    assert res.stderr.strip() == (f"vibevmm: --config-file {cfg}: machine-config: "
                                  "vcpu_count: want a non-negative integer")
    cfg.write_text(json.dumps({"boot-source": {"kernel_image_path": "/k"}, "extra": 1}))
    assert "unknown field 'extra'" in run([vibevmm, "--config-file", str(cfg)]).stderr
    res = run([vibevmm, "--no-api"])
    assert res.stderr.strip() == "vibevmm: --no-api needs --config-file (else nothing says what to run)"
    res = run([vibevmm, "--config-file", str(cfg), "--kernel", "/k"])
    assert res.returncode == 1 and "go in the file" in res.stderr
