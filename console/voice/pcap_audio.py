"""A call's sound from rtpengine's recording: rtpengine (userspace, `--recording-method=pcap`)
writes each recorded call's RTP as it passes, decrypted, into one pcap file (raw IP or
Ethernet frames), and moves the call's metadata file into `metadata/` once the call is deleted
(its first line is the pcap's path). This reads the G.711 packets (PCMU, PCMA) of every flow in
the file and mixes them by arrival time into one 16-bit mono WAV at 8 kHz: for a call both
sides, for a voicemail the caller alone (rtpengine records what reaches it, not what it plays).
Other payloads (DTMF events, comfort noise) are skipped."""

from __future__ import annotations

import glob
import io
import struct
import wave
from array import array
from pathlib import Path

RATE = 8000
PCMU, PCMA = 0, 8
LINK_ETHERNET, LINK_RAW = 1, 101
# A flow's packets further apart than this in arrival than in RTP time are placed by arrival.
MAX_SECONDS = 4 * 3600


def _ulaw(byte: int) -> int:
    byte = ~byte & 0xFF
    sign, exponent, mantissa = byte & 0x80, (byte >> 4) & 7, byte & 0x0F
    sample = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return -sample if sign else sample


def _alaw(byte: int) -> int:
    byte ^= 0x55
    sign, exponent, mantissa = byte & 0x80, (byte >> 4) & 7, byte & 0x0F
    sample = (mantissa << 4) + 8 if exponent == 0 else ((mantissa << 4) + 0x108) << (exponent - 1)
    return sample if sign else -sample


DECODE = {PCMU: [_ulaw(b) for b in range(256)], PCMA: [_alaw(b) for b in range(256)]}


def _packets(data: bytes) -> list[tuple[float, tuple[bytes, int, int, int], int, bytes]]:
    """(arrival, flow, payload type, payload) of the UDP packets of a pcap."""
    if len(data) < 24:
        return []
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    link = struct.unpack_from(endian + "I", data, 20)[0]
    out = []
    at = 24
    while at + 16 <= len(data):
        seconds, fraction, length, _ = struct.unpack_from(endian + "IIII", data, at)
        frame = data[at + 16 : at + 16 + length]
        at += 16 + length
        ip = frame[14:] if link == LINK_ETHERNET else frame
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        header = (ip[0] & 0x0F) * 4
        source, destination = ip[12:16], ip[16:20]
        sport, dport = struct.unpack_from("!HH", ip, header)
        rtp = ip[header + 8 :]
        if len(rtp) < 12 or rtp[0] >> 6 != 2:
            continue
        skip = 12 + 4 * (rtp[0] & 0x0F)
        if rtp[0] & 0x10 and len(rtp) >= skip + 4:  # a header extension
            skip += 4 + 4 * struct.unpack_from("!H", rtp, skip + 2)[0]
        payload_type = rtp[1] & 0x7F
        arrival = seconds + fraction / (1e9 if nano else 1e6)
        out.append(
            (arrival, (source + destination, sport, dport, payload_type), payload_type, rtp[skip:])
        )
    return out


def wav_of_pcap(data: bytes) -> bytes:
    """One mono WAV of every G.711 flow in the pcap, placed by arrival; empty when none."""
    packets = [p for p in _packets(data) if p[2] in DECODE and p[3]]
    if not packets:
        return b""
    start = min(p[0] for p in packets)
    mixed = array("i")
    placed: dict[tuple[bytes, int, int, int], int] = {}
    for arrival, flow, payload_type, payload in sorted(packets, key=lambda p: p[0]):
        at = int((arrival - start) * RATE)
        # back to back within a flow: jitter must not cut or overlap the sound
        if flow in placed and abs(at - placed[flow]) < RATE // 10:
            at = placed[flow]
        if at > MAX_SECONDS * RATE:
            break
        table = DECODE[payload_type]
        end = at + len(payload)
        if len(mixed) < end:
            mixed.extend([0] * (end - len(mixed)))
        for i, byte in enumerate(payload):
            mixed[at + i] += table[byte]
        placed[flow] = end
    samples = array("h", (max(-32768, min(32767, s)) for s in mixed))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.tobytes())
    return out.getvalue()


def finished_pcap(recording_dir: Path, call_id: str) -> Path | None:
    """The pcap of a call rtpengine has deleted (its metadata moved to `metadata/`), or None
    while it is still being written."""
    for meta in (recording_dir / "metadata").glob("rtpengine-meta-*.txt"):
        try:
            lines = meta.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            continue
        if lines and Path(lines[0]).name.startswith(_safe(call_id) + "-"):
            return recording_dir / "pcaps" / Path(lines[0]).name
    return None


def _safe(call_id: str) -> str:
    return call_id.replace("/", "_")


def forget_pcap(recording_dir: Path, pcap: Path) -> None:
    """The pcap and its metadata, once the sound is kept."""
    pcap.unlink(missing_ok=True)
    for meta in (recording_dir / "metadata").glob(f"rtpengine-meta-{glob.escape(pcap.stem)}*.txt"):
        meta.unlink(missing_ok=True)
