#!/usr/bin/env python3
# A fake alloc-admin endpoint on loopback for measuring alloc-soak's memory
# against a 300 MiB /snapshot body. Usage: fake_admin.py PORT with|without
import socket, sys, threading
port = int(sys.argv[1]); with_length = sys.argv[2] == "with"
BIG = 300 << 20
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port)); srv.listen(64)
epoch = [1]
def serve(c):
    data = b""
    while b"\r\n\r\n" not in data:
        d = c.recv(4096)
        if not d: c.close(); return
        data += d
    target = data.split(b" ")[1].decode()
    def ans(body):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
    if target.startswith("/r/"): ans(b"ok\n")
    elif target == "/connections": ans(b'{"open":0}')
    elif target == "/epoch": epoch[0] += 1; ans(b'{"epoch":%d}' % epoch[0])
    elif target.startswith("/snapshot"):
        head = b"HTTP/1.1 200 OK\r\n" + (b"Content-Length: %d\r\n" % BIG if with_length else b"") + b"Connection: close\r\n\r\n"
        sent = 0
        try:
            c.sendall(head)
            chunk = b" " * (1 << 20)
            while sent < BIG:
                c.sendall(chunk); sent += len(chunk)
        except OSError: pass
        print("snapshot body bytes sent before the client stopped: %d MiB" % (sent >> 20), flush=True)
    else: ans(b"")
    c.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
