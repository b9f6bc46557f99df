"""A py-libp2p peer for the interop test: task-protocol server and client
with its own varint framing, and a GossipSub peer on /meshsub/2.0.0.

    peer.py serve <security>                 prints "listening on <multiaddr>"
    peer.py call <security> <multiaddr> <n> <in flight>
                                             prints "ok <n> <calls/s>"
    peer.py gossip <multiaddr> <topic>       prints "got <message>" for a
                                             message from the Rust node,
                                             after publishing "hello from python"
    peer.py helper-serve <security> <size>   the same server on py-libp2p's
                                             request/response helper (0.7.0+),
                                             sized for <size>-byte payloads
    peer.py helper-call <security> <multiaddr> <n> <in flight> <size>
                                             the same client on the helper,
                                             payloads of <size> bytes
    peer.py template-node <listen multiaddr> <node id>
                                             a template-like node (task
                                             protocol under /pos-transport,
                                             template heartbeat every second)
    peer.py template <multiaddr> <node id>   publishes the template's JSON
                                             heartbeat and peer_state; prints
                                             "got template heartbeat <json>"
                                             once the Rust node's arrives

<security> is "noise" or "pos" (Noise under /pos-transport/1.0.0).
"""

import sys
import time

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.noise.transport import Transport as NoiseTransport

TASK = TProtocol("/subnet/task_protocol/1.0.0")
MAX_FRAME = 4 * 1024 * 1024


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_request(task_id: str, payload: bytes) -> bytes:
    # TaskRequest { string task_id = 1; bytes payload = 2; }
    tid = task_id.encode()
    return b"\x0a" + varint(len(tid)) + tid + b"\x12" + varint(len(payload)) + payload


def encode_response(result: bytes) -> bytes:
    # TaskResponse { bool accepted = 1; bytes result = 2; string error = 3; }
    return b"\x08\x01" + b"\x12" + varint(len(result)) + result


def fields(message: bytes) -> dict:
    out, i = {}, 0
    while i < len(message):
        key, i = read_varint_from(message, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = read_varint_from(message, i)
        elif wire == 2:
            length, i = read_varint_from(message, i)
            value, i = message[i : i + length], i + length
        else:
            raise ValueError(f"unexpected wire type {wire}")
        out[number] = value
    return out


def read_varint_from(data: bytes, i: int):
    shift = value = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


async def read_exact(stream, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = await stream.read(n - len(data))
        if not chunk:
            raise EOFError("stream ended early")
        data += chunk
    return data


async def read_frame(stream) -> bytes:
    shift = length = 0
    for _ in range(10):
        byte = (await read_exact(stream, 1))[0]
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
    else:
        raise ValueError("varint too long")
    if length > MAX_FRAME:
        raise ValueError("frame too large")
    return await read_exact(stream, length)


def host_for(security: str):
    key_pair = create_new_key_pair()
    sec_opt = None
    if security == "pos":
        noise = NoiseTransport(key_pair, noise_privkey=create_x25519().private_key)
        sec_opt = {TProtocol("/pos-transport/1.0.0"): noise}
    elif security == "noise":
        noise = NoiseTransport(key_pair, noise_privkey=create_x25519().private_key)
        sec_opt = {TProtocol("/noise"): noise}
    return new_host(key_pair=key_pair, sec_opt=sec_opt, muxer_preference="YAMUX")


async def serve(security: str) -> None:
    host = host_for(security)

    async def handler(stream) -> None:
        try:
            request = fields(await read_frame(stream))
            payload = request.get(2, b"")
            response = encode_response(payload.upper())
            await stream.write(varint(len(response)) + response)
        finally:
            await stream.close()

    host.set_stream_handler(TASK, handler)
    async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        address = host.get_addrs()[0]
        print(f"listening on {address}", flush=True)
        await trio.sleep_forever()


async def run_all(one, n: int) -> float:
    """Runs one(0) .. one(n - 1) at once; returns the seconds they took."""
    started = time.monotonic()
    async with trio.open_nursery() as nursery:
        for i in range(n):
            nursery.start_soon(one, i)
    return time.monotonic() - started


async def call(security: str, target: str, n: int, in_flight: int) -> None:
    host = host_for(security)
    info = info_from_p2p_addr(multiaddr.Multiaddr(target))
    async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        await host.connect(info)
        ok = 0
        limiter = trio.CapacityLimiter(in_flight)

        async def one(i: int) -> None:
            nonlocal ok
            async with limiter:
                stream = await host.new_stream(info.peer_id, [TASK])
                payload = f"python {i}".encode()
                request = encode_request(str(i), payload)
                await stream.write(varint(len(request)) + request)
                response = fields(await read_frame(stream))
                await stream.close()
                if response.get(2) == payload.upper() and response.get(1) == 1:
                    ok += 1

        elapsed = await run_all(one, n)
        print(f"ok {ok} {n / elapsed:.0f}", flush=True)


def gossip_peer(target: str, degree: int, low: int, high: int):
    """A host with GossipSub on /meshsub/2.0.0 (mesh degree, low, high),
    and the target's peer info."""
    from libp2p.pubsub.gossipsub import GossipSub
    from libp2p.pubsub.pubsub import Pubsub

    host = host_for("noise")
    info = info_from_p2p_addr(multiaddr.Multiaddr(target))
    router = GossipSub(
        protocols=[TProtocol("/meshsub/2.0.0")],
        degree=degree,
        degree_low=low,
        degree_high=high,
        heartbeat_initial_delay=0.1,
        heartbeat_interval=1,
    )
    return host, info, router, Pubsub(host, router)


async def from_peer(subscription, peer_id, seconds: float):
    """The first message from `peer_id` within `seconds`, or None. Our own
    messages come back on our subscription too: they are skipped, not
    answered with another publish (py-libp2p 0.6.0 drops a node's own
    messages beyond 10 a second on a topic)."""
    with trio.move_on_after(seconds):
        while True:
            message = await subscription.get()
            if message.from_id == peer_id.to_bytes():
                return message
    return None


async def gossip(target: str, topic: str) -> None:
    host, info, router, pubsub = gossip_peer(target, 3, 1, 6)
    async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        async with background_trio_service(pubsub), background_trio_service(router):
            await pubsub.wait_until_ready()
            subscription = await pubsub.subscribe(topic)
            await host.connect(info)
            got = None
            with trio.fail_after(30):
                while got is None:
                    await pubsub.publish(topic, b"hello from python")
                    got = await from_peer(subscription, info.peer_id, 0.5)
            print(f"got {len(got.data)} bytes from rust", flush=True)
            # Publish a little more so the Rust side surely sees ours.
            for _ in range(4):
                await pubsub.publish(topic, b"hello from python")
                await trio.sleep(0.5)


def helper_config(size: int):
    from libp2p.request_response import RequestResponseConfig

    # Room for a response of `size` bytes and its protobuf framing.
    limit = max(size, 1024) + 1024
    return RequestResponseConfig(
        timeout=60.0, max_request_size=limit, max_response_size=limit
    )


async def helper_serve(security: str, size: int) -> None:
    """Serves the task protocol with py-libp2p's request/response helper
    (libp2p.request_response, 0.7.0+): one uvarint-framed message each way."""
    from libp2p.request_response import BytesCodec, RequestResponse

    host = host_for(security)
    helper = RequestResponse(host)

    async def handler(request: bytes, _context) -> bytes:
        return encode_response(fields(request).get(2, b"").upper())

    helper.set_handler(TASK, handler, BytesCodec(), helper_config(size))
    async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        print(f"listening on {host.get_addrs()[0]}", flush=True)
        await trio.sleep_forever()


async def helper_call(
    security: str, target: str, n: int, in_flight: int, size: int
) -> None:
    """Calls the task protocol n times (in_flight at once) with py-libp2p's
    request/response helper, each payload `size` bytes (at least the text
    of its index); prints "ok <answered> <calls/s>"."""
    from libp2p.request_response import BytesCodec, RequestResponse

    host = host_for(security)
    helper = RequestResponse(host)
    info = info_from_p2p_addr(multiaddr.Multiaddr(target))
    async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        await host.connect(info)
        ok = 0
        errors = []
        limiter = trio.CapacityLimiter(in_flight)

        async def one(i: int) -> None:
            nonlocal ok
            async with limiter:
                payload = f"python {i} ".encode().ljust(size, b"x")
                try:
                    response = fields(
                        await helper.send_request(
                            info.peer_id,
                            [TASK],
                            encode_request(str(i), payload),
                            BytesCodec(),
                            helper_config(size),
                        )
                    )
                except Exception as error:  # reported below, one line each kind
                    errors.append(f"{type(error).__name__}: {error}")
                    return
                if response.get(2) == payload.upper() and response.get(1) == 1:
                    ok += 1

        elapsed = await run_all(one, n)
        for error in sorted(set(errors)):
            print(f"error {error}", flush=True)
        print(f"ok {ok} {n / elapsed:.0f}", flush=True)


def background_trio_service(service):
    # Where it lives moved after 0.6.0.
    try:
        from libp2p.tools.anyio_service import background_trio_service as run
    except ImportError:
        from libp2p.tools.async_service.trio_service import (
            background_trio_service as run,
        )
    return run(service)


def template_message(subnet_node_id: int, **more) -> bytes:
    """The template's heartbeat (with `more`: its peer_state) as pydantic
    writes it: compact JSON, keys in declaration order."""
    import json
    import secrets

    return json.dumps(
        {
            "uid": secrets.token_hex(16),
            "epoch": template_epoch(),
            "subnet_id": 1,
            "subnet_node_id": subnet_node_id,
            **more,
        },
        separators=(",", ":"),
    ).encode()


async def template_node(listen: str, subnet_node_id: int) -> None:
    """A template-like node: listens at <listen> (a multiaddr), serves the
    task protocol under /pos-transport/1.0.0, runs GossipSub on
    /meshsub/2.0.0 with the template's degrees and publishes the template's
    heartbeat every second, until killed."""
    from libp2p.pubsub.gossipsub import GossipSub
    from libp2p.pubsub.pubsub import Pubsub

    host = host_for("pos")
    router = GossipSub(
        protocols=[TProtocol("/meshsub/2.0.0")],
        degree=7,
        degree_low=5,
        degree_high=10,
        heartbeat_initial_delay=0.5,
        heartbeat_interval=2,
    )
    pubsub = Pubsub(host, router)

    async def handler(stream) -> None:
        try:
            request = fields(await read_frame(stream))
            response = encode_response(request.get(2, b"").upper())
            await stream.write(varint(len(response)) + response)
        finally:
            await stream.close()

    host.set_stream_handler(TASK, handler)
    async with host.run(listen_addrs=[multiaddr.Multiaddr(listen)]):
        async with background_trio_service(pubsub), background_trio_service(router):
            await pubsub.wait_until_ready()
            await pubsub.subscribe("heartbeat")
            print(f"listening on {listen}/p2p/{host.get_id()}", flush=True)
            while True:
                await pubsub.publish("heartbeat", template_message(subnet_node_id))
                await trio.sleep(1)


def template_epoch() -> int:
    # The template's mock chain: block = unix / 6, slot 3, 20-block epochs.
    return (int(time.time() // 6) - 3) // 20


async def template(target: str, subnet_node_id: int) -> None:
    """Publishes the template's JSON heartbeat (and a peer_state message)
    as subnet node <subnet_node_id> of subnet 1, until the Rust node's own
    template heartbeat arrives."""
    import json

    # The template's own GossipSub degrees.
    host, info, router, pubsub = gossip_peer(target, 7, 5, 10)

    def heartbeat() -> bytes:
        return template_message(subnet_node_id)

    def peer_state() -> bytes:
        return template_message(subnet_node_id, state=2, role=0)  # ONLINE, VALIDATOR

    async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        async with background_trio_service(pubsub), background_trio_service(router):
            await pubsub.wait_until_ready()
            print(f"peer {host.get_id()}", flush=True)
            heartbeats = await pubsub.subscribe("heartbeat")
            await pubsub.subscribe("peer_state")
            await host.connect(info)
            got = None
            with trio.fail_after(30):
                while got is None:
                    await pubsub.publish("heartbeat", heartbeat())
                    await pubsub.publish("peer_state", peer_state())
                    got = await from_peer(heartbeats, info.peer_id, 0.5)
            got = json.loads(got.data.decode())
            print(f"got template heartbeat {json.dumps(got, sort_keys=True)}", flush=True)
            for _ in range(4):
                await pubsub.publish("heartbeat", heartbeat())
                await trio.sleep(0.5)


def main() -> None:
    mode = sys.argv[1]
    if mode == "serve":
        trio.run(serve, sys.argv[2])
    elif mode == "gossip":
        trio.run(gossip, sys.argv[2], sys.argv[3])
    elif mode == "helper-serve":
        trio.run(helper_serve, sys.argv[2], int(sys.argv[3]))
    elif mode == "helper-call":
        trio.run(
            helper_call,
            sys.argv[2],
            sys.argv[3],
            int(sys.argv[4]),
            int(sys.argv[5]),
            int(sys.argv[6]),
        )
    elif mode == "template-node":
        trio.run(template_node, sys.argv[2], int(sys.argv[3]))
    elif mode == "template":
        trio.run(template, sys.argv[2], int(sys.argv[3]))
    elif mode == "call":
        trio.run(call, sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
