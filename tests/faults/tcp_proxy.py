"""A TCP proxy the fault tests cut and restore: `python tcp_proxy.py LISTEN_PORT TARGET_HOST TARGET_PORT`.

It runs as its own process (plain threads, no eventlet: the test process is
monkey-patched, and green threads of a proxy would stay in its hub). SIGUSR1 cuts:
the listening socket closes (new connections are refused at once, as from a broker
that is down) and every open connection is reset. SIGUSR2 listens again on the same
port. It prints "listening" or "cut" after each change, so the test can wait for it.
"""

import signal
import socket
import struct
import sys
import threading


class Proxy:
    def __init__(self, port, target):
        self.port, self.target = port, target
        self.lock = threading.Lock()
        self.listener = None
        self.open = set()

    def listen(self):
        with self.lock:
            if self.listener is None:
                listener = socket.socket()
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind(("127.0.0.1", self.port))
                listener.listen(64)
                self.listener = listener
                threading.Thread(target=self.accept, args=(listener,), daemon=True).start()
        print("listening", flush=True)

    def cut(self):
        with self.lock:
            listener, self.listener = self.listener, None
            connections, self.open = self.open, set()
        if listener is not None:
            # close() alone leaves a blocked accept() holding the socket, still listening, until
            # a connection comes; shutdown() wakes it (Linux) so the port closes now
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        for sock in connections:
            # the peer must notice now, not at its next heartbeat: shutdown wakes the pipe
            # thread blocked on this socket, and with SO_LINGER 0 close() sends a reset
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        print("cut", flush=True)

    def accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by cut()
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                if self.listener is not listener:  # cut meanwhile
                    client.close()
                    upstream.close()
                    return
                self.open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pipe, args=(a, b), daemon=True).start()

    def pipe(self, source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            with self.lock:
                self.open.discard(source)
                self.open.discard(sink)


def main(port, host, target_port):
    proxy = Proxy(int(port), (host, int(target_port)))
    # handlers run in the main thread between its waits; cut and listen are quick
    signal.signal(signal.SIGUSR1, lambda *_: proxy.cut())
    signal.signal(signal.SIGUSR2, lambda *_: proxy.listen())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    proxy.listen()
    while True:
        signal.pause()


if __name__ == "__main__":
    main(*sys.argv[1:])
