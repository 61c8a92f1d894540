"""Tiny TCP/UDP server and client for the vrouter demo's NAT scenes.

  peer.py serve ADDR PORT
      listens on ADDR:PORT for TCP and UDP; prints "tcp|udp ADDR:PORT <- PEER"
      for each connection or datagram and answers "you are PEER". TCP
      connections stay open until the client closes them.
  peer.py connect tcp|udp HOST PORT [HOLD]
      connects (or sends one datagram), prints its own address and the answer,
      then keeps the socket open HOLD seconds (default 0).
"""

import socket
import sys
import threading
import time


def serve(addr, port):
    where = "%s:%d" % (addr, port)

    def tcp():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        s.listen(16)
        while True:
            c, peer = s.accept()
            threading.Thread(target=conn, args=(c, peer), daemon=True).start()

    def conn(c, peer):
        with c:
            print("tcp %s <- %s:%d" % (where, peer[0], peer[1]), flush=True)
            c.sendall(b"you are %s:%d\n" % (peer[0].encode(), peer[1]))
            while c.recv(1024):
                pass

    threading.Thread(target=tcp, daemon=True).start()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((addr, port))
    while True:
        _, peer = u.recvfrom(2048)
        print("udp %s <- %s:%d" % (where, peer[0], peer[1]), flush=True)
        u.sendto(b"you are %s:%d\n" % (peer[0].encode(), peer[1]), peer)


def connect(proto, host, port, hold):
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind)
    s.settimeout(3)
    s.connect((host, port))
    if proto == "udp":
        s.send(b"hello\n")
    me = s.getsockname()
    answer = s.recv(2048).decode().strip()
    print("%s %s:%d -> %s:%d, the server answers \"%s\"" % (proto, me[0], me[1], host, port, answer), flush=True)
    time.sleep(hold)
    s.close()


def main(a):
    if a[0] == "serve":
        serve(a[1], int(a[2]))
    else:
        connect(a[1], a[2], int(a[3]), float(a[4]) if len(a) > 4 else 0)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except KeyboardInterrupt:
        pass
