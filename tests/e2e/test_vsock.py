"""virtio-vsock end to end: a Debian kernel's vsock driver against vibevmm's
hybrid Unix-socket bridge (Firecracker's protocol), data both ways with
checksums. The guest side is tests/fixtures/guest-tests/vsock.sh with the
static vsock-tool (tests/fixtures/guest-vsock/vsock-tool.c)."""
import os
import socket
import threading
import time

from conftest import metrics_totals

GUEST_CID = 3
KB = 1024  # each way


def fnv1a64(data, h=0xcbf29ce484222325):
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def read_all(s):
    chunks = []
    while True:
        c = s.recv(65536)
        if not c:
            return b"".join(chunks)
        chunks.append(c)


def host_service(path, result):
    """The guest connects to CID 2 port 6000 -> PATH_6000: take everything,
    answer "<bytes> <fnv>\\n" as the guest's listener does."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(300)

    def run():
        try:
            c, _ = srv.accept()
            data = read_all(c)
            result["rx"] = (len(data), fnv1a64(data))
            c.sendall(f"{len(data)} {fnv1a64(data):016x}\n".encode())
            c.close()
        except OSError as e:
            result["rx_error"] = repr(e)
        finally:
            srv.close()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def host_client(path, payload, result, deadline):
    """CONNECT 5000 until the guest listens (its RST closes us until then),
    then send the payload, shut the write side, read the guest's answer."""
    def run():
        while time.monotonic() < deadline:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(30)
                s.connect(path)
                s.sendall(b"CONNECT 5000\n")
                line = b""
                while not line.endswith(b"\n"):
                    c = s.recv(1)
                    if not c:
                        break
                    line += c
                if not line.startswith(b"OK "):
                    s.close()
                    time.sleep(0.5)
                    continue
                result["ok_line"] = line.decode().strip()
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
                result["reply"] = read_all(s).decode().strip()
                s.close()
                return
            except OSError:
                time.sleep(0.5)
        result["tx_error"] = "the guest never accepted CONNECT 5000"
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_vsock_both_ways(boot, tmp_path):
    """Guest -> host (port 6000 to PATH_6000) and host -> guest (CONNECT
    5000), 1 MiB each way under credit flow control, checksums compared;
    the listening socket is removed at exit; --metrics-path's last line
    counts the connections and bytes."""
    uds = str(tmp_path / "v.sock")
    metrics = tmp_path / "metrics.json"
    payload = os.urandom(KB * 1024)
    got, sent = {}, {}
    service = host_service(uds + "_6000", got)
    # The client starts once vibevmm listens; it retries until the guest does.
    starter = threading.Thread(target=lambda: (
        [time.sleep(0.2) for _ in range(600) if not os.path.exists(uds)],
        host_client(uds, payload, sent, time.monotonic() + 300).join()), daemon=True)
    starter.start()
    b = boot("cloud", tests=("devices", "vsock"), timeout=400,
             args=["--vsock", f"cid={GUEST_CID},uds={uds}", "--metrics-path", str(metrics)],
             cmdline_extra=f"vibevmm.vsock_kb={KB}")
    service.join(timeout=30)
    starter.join(timeout=30)
    assert b.rc == 0, b.out[-3000:]
    assert "vibevmm: info: guest powered off" in b.err
    assert "virtio-vsock at" in b.err and f"guest CID {GUEST_CID}" in b.err
    assert b.test_rc("vsock") == 0, b.console[-3000:]
    # guest -> host
    n, h = got["rx"]
    assert n == KB * 1024
    assert b.value("VSOCK-CONNECT-FNV") == f"{h:016x}"
    assert b.value("VSOCK-CONNECT-REPLY") == f"{n} {h:016x}"
    # host -> guest
    assert sent.get("ok_line", "").startswith("OK "), sent
    port = int(sent["ok_line"].split()[1])
    assert port >= 1 << 30  # our ephemeral range
    want = f"{len(payload)} {fnv1a64(payload):016x}"
    assert sent["reply"] == want
    assert b.value("VSOCK-LISTEN-BYTES") == str(len(payload))
    assert b.value("VSOCK-LISTEN-FNV") == f"{fnv1a64(payload):016x}"
    assert not os.path.exists(uds)
    # the metrics counted the connections (the host client's tries before
    # the guest listened among them) and every byte
    vs = metrics_totals(metrics)["vsock"]
    assert vs["conns_added"] >= 2, vs
    assert vs["tx_bytes_count"] >= KB * 1024 and vs["rx_bytes_count"] >= KB * 1024, vs
    assert vs["bad_packets"] == 0, vs


def test_vsock_bad_options(boot, tmp_path):
    """A regular file at the uds path is refused and left alone; a bad CID
    is a one-line error."""
    plain = tmp_path / "plain"
    plain.write_text("keep me")
    b = boot("microvm-vmlinux", args=["--vsock", f"cid=3,uds={plain}"], timeout=60, log=1)
    assert b.rc == 1
    assert "not a socket" in b.err and len(b.err.strip().splitlines()) == 1, b.err
    assert plain.read_text() == "keep me"
    b = boot("microvm-vmlinux", args=["--vsock", f"cid=2,uds={tmp_path}/v"], timeout=60, log=1)
    assert b.rc == 1 and "cid=2" in b.err
