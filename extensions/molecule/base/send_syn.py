"""Send one TCP SYN with a chosen (forged) source address, through a raw socket.

Usage: send_syn.py SRC_ADDR DST_ADDR:PORT [SRC_ADDR DST_ADDR:PORT ...]

The kernel routes each packet by its destination (so a destination on the tailnet leaves on
tailscale0, one on the public network on eth0) and sends the IP header as written, source
included. Nothing waits for an answer: the target's side shows whether it was accepted (a
connection in SYN-RECV from SRC_ADDR). Prints a JSON list of what was sent. Needs root.
"""
import json
import os
import socket
import struct
import sys


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def syn(src: str, dst: str, sport: int, dport: int) -> bytes:
    src_b, dst_b = socket.inet_aton(src), socket.inet_aton(dst)
    seq = int.from_bytes(os.urandom(4), "big")
    # TCP header: ports, seq, ack, data offset 5 words, flags SYN, window, checksum, urgent.
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = src_b + dst_b + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, socket.IPPROTO_TCP, 0, src_b, dst_b)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + tcp


def main() -> None:
    args = sys.argv[1:]
    if not args or len(args) % 2:
        sys.exit(__doc__)
    sent = []
    # IPPROTO_RAW implies IP_HDRINCL: the header above, forged source and all, goes out as is.
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as sock:
        for src, target in zip(args[::2], args[1::2]):
            dst, port = target.rsplit(":", 1)
            sport = 40000 + int.from_bytes(os.urandom(2), "big") % 20000
            count = sock.sendto(syn(src, dst, sport, int(port)), (dst, 0))
            sent.append({"src": src, "dst": target, "sport": sport, "bytes": count})
    print(json.dumps(sent))


if __name__ == "__main__":
    main()
