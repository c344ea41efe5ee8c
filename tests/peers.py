"""Real peers on loopback for the notification tests and the bench: an SMTP server (aiosmtpd)
and an HTTP receiver for webhooks that can be told to fail."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Mailbox:
    """What the SMTP server received: raw messages, parsed on demand."""

    raw: list[bytes] = field(default_factory=list)
    delay: float = 0.0
    entered: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import asyncio

        self.entered.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        self.raw.append(envelope.original_content or envelope.content)
        return "250 OK"

    def messages(self) -> list[EmailMessage]:
        """The received messages, parsed with the modern policy (headers decoded)."""
        return [
            email.message_from_bytes(r, policy=email.policy.default)  # type: ignore[misc]
            for r in self.raw
        ]


@contextmanager
def smtp_server(port: int | None = None, delay: float = 0.0) -> Iterator[tuple[int, Mailbox]]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1; yields (port, mailbox)."""
    box = Mailbox(delay=delay)
    port = port or free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    try:
        yield port, box
    finally:
        controller.stop()


@dataclass
class Hook:
    """What the webhook receiver got; it answers 500 to the first `fail` requests."""

    fail: int = 0
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def webhook_receiver(fail: int = 0) -> Iterator[tuple[str, Hook]]:
    """A local HTTP server taking JSON POSTs; yields (url, hook)."""
    hook = Hook(fail=fail)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length)
            with hook.lock:
                hook.requests.append((dict(self.headers.items()), data))
                failing = len(hook.requests) <= hook.fail
                if not failing:
                    hook.accepted.append(json.loads(data))
            self.send_response(500 if failing else 200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"errcode": 0, "errmsg": "ok"}' if not failing else b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/robot/send?key=test", hook
    finally:
        server.shutdown()
        server.server_close()
