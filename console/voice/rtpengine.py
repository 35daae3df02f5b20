"""rtpengine's control protocol ("ng": a cookie, a space, a bencoded dictionary, over UDP), as
Mazkira speaks it for voicemail and recording (`RTPENGINE_NG`); Kamailio speaks it for the rest.

Voicemail has no far end to answer the caller: Mazkira offers the caller's SDP to rtpengine
(recording on) and answers it with a silent stand-in (`FAR_END`: the discard port, so what the
caller says goes nowhere but into the recording), and rtpengine's answer is the SDP the SIP
server answers the caller with. The greeting is played to the caller from its bytes (`blob`),
so rtpengine needs no file of ours. Bencode is small enough to write here (four types)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from typing import Any

TIMEOUT_SECONDS = 2.0
FAR_END_TAG = "mazkira-voicemail"
# The stand-in far end of a voicemail: telephone audio to the discard port, nothing sent back.
FAR_END = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=voicemail\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 9 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n"
)


class EngineError(Exception):
    """rtpengine did not answer, or refused."""


def encode(value: Any) -> bytes:
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list):
        return b"l" + b"".join(encode(item) for item in value) + b"e"
    if isinstance(value, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
        return b"d" + b"".join(encode(k) + encode(v) for k, v in items) + b"e"
    raise TypeError(f"cannot bencode {type(value).__name__}")


def decode(data: bytes, at: int = 0) -> tuple[Any, int]:
    kind = data[at : at + 1]
    if kind == b"i":
        end = data.index(b"e", at)
        return int(data[at + 1 : end]), end + 1
    if kind in (b"l", b"d"):
        at += 1
        items = []
        while data[at : at + 1] != b"e":
            item, at = decode(data, at)
            items.append(item)
        if kind == b"l":
            return items, at + 1
        return {k.decode(): v for k, v in zip(items[::2], items[1::2], strict=True)}, at + 1
    colon = data.index(b":", at)
    length = int(data[at:colon])
    return data[colon + 1 : colon + 1 + length], colon + 1 + length


class Engine:
    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self.address = (host.removeprefix("udp:") or "127.0.0.1", int(port))

    def _ask(self, command: dict[str, Any]) -> dict[str, Any]:
        cookie = os.urandom(6).hex().encode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(TIMEOUT_SECONDS)
            s.sendto(cookie + b" " + encode(command), self.address)
            try:
                while True:
                    reply = s.recv(65535)
                    if reply.startswith(cookie + b" "):
                        break
            except OSError as error:
                raise EngineError(f"rtpengine did not answer: {error}") from None
        answer, _ = decode(reply, len(cookie) + 1)
        if answer.get("result") not in (b"ok", b"pong"):
            reason = answer.get("error-reason", b"").decode(errors="replace")
            raise EngineError(f"rtpengine refused {command.get('command')}: {reason}")
        return dict(answer)

    async def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(self._ask, command)

    async def answer_voicemail(self, call_id: str, from_tag: str, sdp: str) -> str:
        """The SDP to answer the caller with: their audio recorded, and nothing else heard."""
        common = {"call-id": call_id, "replace": ["origin", "session-connection"]}
        await self.ask(
            common
            | {
                "command": "offer",
                "from-tag": from_tag,
                "sdp": sdp,
                "flags": ["record call"],
                "ICE": "remove",
            }
        )
        answered = await self.ask(
            common
            | {"command": "answer", "from-tag": from_tag, "to-tag": FAR_END_TAG, "sdp": FAR_END}
        )
        return bytes(answered["sdp"]).decode()

    async def play(self, call_id: str, from_tag: str, sound: bytes) -> int:
        """Play `sound` to the party of `from_tag`; its length in milliseconds."""
        played = await self.ask(
            {"command": "play media", "call-id": call_id, "from-tag": from_tag, "blob": sound}
        )
        return int(played.get("duration", 0))

    async def block_media(self, call_id: str) -> None:
        """Nothing forwarded between the call's parties (what it plays itself still goes)."""
        await self.ask({"command": "block media", "call-id": call_id})

    async def unblock_media(self, call_id: str) -> None:
        """The call's parties hear each other again."""
        await self.ask({"command": "unblock media", "call-id": call_id, "flags": ["all"]})

    async def delete(self, call_id: str) -> None:
        """The whole call, now: its recording is then complete."""
        with contextlib.suppress(EngineError):  # Kamailio deleted it first
            await self.ask({"command": "delete", "call-id": call_id, "delete delay": 0})
