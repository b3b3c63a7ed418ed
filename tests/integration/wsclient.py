"""A small WebSocket client (RFC 6455) on the standard library, for haven's viewer tests.

It does what a browser does on haven's viewer socket: opens it, reads text and binary
messages, answers pings, sends text, and reports the close code and reason. Client frames are
masked as the RFC requires. One connection per object; not thread-safe.
"""
import base64
import os
import socket
import struct
import threading
import time


class Closed(Exception):
    def __init__(self, code, reason):
        super().__init__(f"closed {code}: {reason}")
        self.code = code
        self.reason = reason


class WebSocket:
    def __init__(self, host, port, path, timeout=10, rcvbuf=None):
        # rcvbuf: a receive buffer set before connecting (the window is fixed then), for a
        # test of a slow reader: Linux otherwise grows it to megabytes, which hold seconds of
        # a stream before the server sees the reader is behind.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(req.encode())
        self.buf = b""
        head = self._read_until(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].decode()
        self.status = int(status_line.split()[1])
        if self.status != 101:
            raise ConnectionError(f"upgrade refused: {status_line}")
        self.close_code = None
        self.close_reason = None

    def _read_until(self, marker):
        while marker not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed during the handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(marker, 1)
        return head

    def _read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send_frame(self, opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def send_text(self, text):
        self._send_frame(0x1, text.encode())

    def recv(self):
        """Returns ("text", str) or ("binary", bytes); raises Closed on a close frame."""
        message = b""
        first_opcode = None
        while True:
            b0, b1 = self._read_exact(2)
            fin, opcode = b0 & 0x80, b0 & 0x0F
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read_exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read_exact(8))[0]
            if b1 & 0x80:
                mask = self._read_exact(4)
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self._read_exact(n)))
            else:
                payload = self._read_exact(n)
            if opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.close_code, self.close_reason = code, payload[2:].decode(errors="replace")
                try:
                    self._send_frame(0x8, payload[:2])
                except OSError:
                    pass
                raise Closed(self.close_code, self.close_reason)
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            if first_opcode is None:
                first_opcode = opcode
            message += payload
            if fin:
                if first_opcode == 0x1:
                    return "text", message.decode()
                return "binary", message

    def close(self, code=1000):
        try:
            self._send_frame(0x8, struct.pack("!H", code))
        except OSError:
            pass
        self.sock.close()


class FrameCounter:
    """A viewer on haven's viewer socket that counts the JPEG frames it receives, reading in a
    thread (read=False: connects and never reads, a stalled viewer). closed is (code, reason)
    once the connection ends."""

    def __init__(self, port, mint, query="", read=True):
        self.ws = WebSocket("127.0.0.1", port, f"/api/live-sessions/ws/live/{mint}{query}")
        self.frames = 0
        self.closed = None
        if read:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()

    def _run(self):
        try:
            while True:
                kind, _ = self.ws.recv()
                if kind == "binary":
                    self.frames += 1
        except Closed as c:
            self.closed = (c.code, c.reason)
        except (OSError, ConnectionError) as e:
            self.closed = ("error", str(e))

    def wait_frames(self, n, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.frames < n:
            time.sleep(0.05)
        assert self.frames >= n, f"{self.frames} frames, expected {n}"
