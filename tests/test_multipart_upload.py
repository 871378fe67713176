"""REST V4's multipart uploads over `lean_http` (http.client), not httpx: the bytes on the wire
are httpx's (so a real FME node sees the request it always saw), the body is streamed with an
exact Content-Length, and a re-sent upload (after a 401 or a 429) carries the whole file again."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from fmeaa.client import FmeClient, connect
from fmeaa.client.lean_http import LeanPool
from fmeaa.client.multipart import BLOCK, Multipart, encode
from fmeaa.emulator import Sandbox
from tests.conftest import TEST_PASSWORD


class Recorder(BaseHTTPRequestHandler):
    """Keeps each request's headers and body as received; answers 201."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[tuple[dict[str, str], bytes]]] = []  # each test's subclass: its own

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.seen.append((dict(self.headers.items()), self.rfile.read(length)))
        self.send_response(201)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    seen: list[tuple[dict[str, str], bytes]] = []
    handler = type("Handler", (Recorder,), {"seen": seen})  # this test's own list
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()
    thread.join()


AWKWARD = ['say "hi" #1.fmw', "back\\slash.fmw", "Straßen über.fmw", "道路.fmw",
           "50% done %22.fmw", "tab\tand\r\nnewline.fmw", "esc\x1b.fmw", "  spaced  .fmw"]


@pytest.mark.parametrize("filename", AWKWARD)
def test_the_pool_sends_the_bytes_httpx_sent(recorder: tuple[str, list[tuple[dict[str, str],
                                                                          bytes]]],
                                             tmp_path: Path, filename: str) -> None:
    """Part headers, text parts, file and closing boundary are byte for byte httpx's for the
    same boundary; Content-Length is exact and the body is not chunked."""
    url, seen = recorder
    data = bytes(range(256)) * 600  # > two blocks: the file goes in several sends
    local = tmp_path / "local.bin"
    local.write_bytes(data)
    fields = (('na"me\\ü', "välue 1"), ("overwrite", "true"))
    pool = LeanPool(url, 5.0, None)
    try:
        answer = pool.request("POST", "/upload", multipart=Multipart("file", filename, local,
                                                                      fields))
    finally:
        pool.close()
    assert answer.status_code == 201
    [(headers, body)] = seen
    content_type = headers["Content-Type"]
    boundary = content_type.removeprefix("multipart/form-data; boundary=")
    assert len(boundary) == 32 and "Transfer-Encoding" not in headers
    expected = httpx.Request("POST", url, data=dict(fields),
                             files={"file": (filename, io.BytesIO(data),
                                             "application/octet-stream")},
                             headers={"Content-Type": content_type})
    assert body == expected.read()
    assert headers["Content-Length"] == expected.headers["Content-Length"] == str(len(body))


def test_each_upload_has_its_own_random_boundary(tmp_path: Path) -> None:
    upload = Multipart("file", "a.fmw", tmp_path / "a.fmw")
    assert encode(upload, 1).boundary != encode(upload, 1).boundary


def test_a_file_that_shrank_while_uploading_is_an_error_not_a_short_body(tmp_path: Path) -> None:
    form = encode(Multipart("file", "a.fmw", tmp_path / "a.fmw"), BLOCK * 2)
    short = io.BytesIO(b"x" * (BLOCK + 5))
    short.name = "a.fmw"
    with pytest.raises(ValueError, match=r"a\.fmw shrank .*\(65531 of 131072 bytes missing\)"):
        list(form.chunks(short))


def test_a_body_is_sent_in_blocks_with_the_head_and_tail_attached(tmp_path: Path) -> None:
    """A small upload is one send; a large one never holds more than two blocks at once."""
    upload = Multipart("file", "a.fmw", tmp_path / "a.fmw")
    small = encode(upload, 10)
    assert list(small.chunks(io.BytesIO(b"0123456789"))) == [
        small.head + b"0123456789" + small.tail]
    big = encode(upload, BLOCK * 5 + 1)
    chunks = list(big.chunks(io.BytesIO(b"y" * (BLOCK * 5 + 1))))
    assert b"".join(chunks) == big.head + b"y" * (BLOCK * 5 + 1) + big.tail
    assert len(chunks) == 6 and max(map(len, chunks)) <= 2 * BLOCK


def test_an_answer_sent_before_the_body_was_read_is_the_answer(tmp_path: Path) -> None:
    """A server that refuses a large upload at once (401, 413…) and closes the connection
    breaks the sending; its answer still counts (httpx reads it too), so the transport can
    re-login and send again instead of reporting a broken connection."""
    listener = socket.create_server(("127.0.0.1", 0))

    def refuse_unread() -> None:
        conn, _ = listener.accept()
        with conn:
            received = b""
            while b"\r\n\r\n" not in received:
                received += conn.recv(65536)
            conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n"
                         b"Connection: close\r\n\r\n{}")
        # closed with the body unread: the sender's next writes fail (reset, broken pipe)

    server = threading.Thread(target=refuse_unread)
    server.start()
    big = tmp_path / "big.fmw"
    with big.open("wb") as out:  # far beyond what loopback's socket buffers absorb
        out.truncate(64 * 1024 * 1024)
    pool = LeanPool(f"http://127.0.0.1:{listener.getsockname()[1]}", 5.0, None)
    try:
        answer = pool.request("POST", "/upload", multipart=Multipart("file", "big.fmw", big))
    finally:
        pool.close()
        server.join()
        listener.close()
    assert (answer.status_code, answer.content) == (401, b"{}")
    assert pool._idle == []  # that connection is not reused


@pytest.fixture
def v4_node() -> Iterator[Sandbox]:
    with Sandbox(1, password=TEST_PASSWORD, fme_version="2026.1") as box:
        yield box


def _client(box: Sandbox) -> FmeClient:
    node = box.nodes[0]
    client = connect(node.name, node.url, username="admin", password=TEST_PASSWORD, timeout=5)
    client.login()
    return client


def test_v4_uploads_never_go_through_httpx(v4_node: Sandbox, tmp_path: Path) -> None:
    client = _client(v4_node)
    local = tmp_path / "local.fmw"
    local.write_bytes(b"#! workspace\n")
    client.create_repository("Straßen")
    assert client.upload_item("Straßen", local, name="über.fmw")["name"] == "über.fmw"
    client.upload_resource("FME_SHAREDRESOURCE_DATA", "dir ä", local, "file ü.csv")
    assert [i["name"] for i in client.items("Straßen")] == ["über.fmw"]
    assert client._client is None  # httpx's client was never made


@pytest.mark.parametrize("refusal", ["expired token", "429"])
def test_an_upload_sent_again_carries_the_whole_file(v4_node: Sandbox, tmp_path: Path,
                                                      refusal: str) -> None:
    """The first send is refused (401: the token expired; 429: the node is overloaded); the
    second starts the file from its first byte and stores it whole."""
    node = v4_node.nodes[0]
    client = _client(v4_node)
    client.create_repository("Roads")
    data = bytes(range(256)) * 1000  # several blocks
    local = tmp_path / "roads.fmw"
    local.write_bytes(data)
    if refusal == "429":
        node.faults.retry_after_s = 0.0
        node.faults.throttle_next = 1
    else:
        node.state.expire_tokens()
    before = node.request_count
    assert client.upload_item("Roads", local)["name"] == "roads.fmw"
    assert node.request_count - before == (2 if refusal == "429" else 3)  # (+ the re-login)
    assert client.throttled == (1 if refusal == "429" else 0)
    assert client.items("Roads")[0]["totalFileSize"] == len(data)
    assert client.download_item("Roads", "roads.fmw", None) == hashlib.sha256(data).hexdigest()
    assert client._client is None
