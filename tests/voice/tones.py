"""Tones for the phone's tests, and finding one in what a caller heard: each sound a test plays
(a greeting, an announcement, a voice) is a sine of its own frequency, so the frequency found in
baresip's recording of what it received says which sound reached the caller."""

from __future__ import annotations

import io
import math
import struct
import wave
from array import array

RATE = 8000


def sine(hz: float, seconds: float, level: int = 8000) -> bytes:
    """A WAV of one tone, telephone quality (8 kHz, 16-bit mono)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        samples = (
            int(level * math.sin(2 * math.pi * hz * n / RATE)) for n in range(int(RATE * seconds))
        )
        w.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return out.getvalue()


def levels(sound: bytes, hz: float, window: float = 0.1) -> list[float]:
    """The tone's amplitude in each `window` seconds of the WAV (Goertzel's algorithm): about the
    level it was made with where the tone is, near 0 where it is not."""
    with wave.open(io.BytesIO(sound)) as w:
        rate, frames = w.getframerate(), w.readframes(w.getnframes())
    samples = array("h", frames)
    size = int(rate * window)
    coefficient = 2 * math.cos(2 * math.pi * hz / rate)
    found = []
    for start in range(0, len(samples) - size + 1, size):
        before = earlier = 0.0
        for sample in samples[start : start + size]:
            before, earlier = sample + coefficient * before - earlier, before
        power = before * before + earlier * earlier - coefficient * before * earlier
        found.append(2 * math.sqrt(max(power, 0.0)) / size)
    return found


def loudest(sound: bytes, hz: float) -> float:
    """The tone's greatest amplitude in any tenth of a second of the WAV."""
    return max(levels(sound, hz), default=0.0)
