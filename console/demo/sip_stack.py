"""A private SIP stack on this machine: rtpengine (userspace) and Kamailio with the shipped
`deploy/sip/kamailio.cfg` on free ports, and baresip as a carrier's caller (plain SIP over UDP,
G.711, playing a wav). Nothing of the machine's own SIP services is touched.

`mazkira demo --phone` starts one beside the console and calls a demo business every few
seconds; the phone's tests (tests/voice/sip_stack.py) start one per test.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KAMAILIO_CFG = ROOT / "deploy" / "sip" / "kamailio.cfg"
DOMAIN = "mazkira.test"
# The program and the Debian package it comes in.
BINARIES = {"kamailio": "kamailio", "rtpengine": "rtpengine", "baresip": "baresip-core"}


class NotInstalled(Exception):
    """Kamailio, rtpengine or baresip is missing; the message names the Debian packages."""


def missing() -> list[str]:
    """The Debian packages of the programs not found on PATH."""
    return [package for name, package in BINARIES.items() if shutil.which(name) is None]


def installed() -> dict[str, str]:
    """kamailio, rtpengine and baresip, or NotInstalled naming what is missing."""
    if lacking := missing():
        raise NotInstalled(f"the SIP stack is not installed (apt-get install {' '.join(lacking)})")
    return {name: str(shutil.which(name)) for name in BINARIES}


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM to the group this test started (Kamailio forks its workers), then SIGKILL."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


class SipStack:
    """rtpengine + Kamailio for one test, asking `mazkira_url` whom to ring."""

    # Seconds Kamailio waits for Mazkira's answer (the shipped configuration's 2 s).
    mazkira_timeout = 2

    def __init__(self, workdir: Path, *, mazkira_url: str, secret: str) -> None:
        self.binaries = installed()
        self.workdir = workdir
        self.mazkira_url = mazkira_url
        self.secret = secret
        self.sip_port = free_port(socket.SOCK_DGRAM)
        self.ws_port = free_port()
        self.ng_port = free_port(socket.SOCK_DGRAM)
        # Where outgoing calls go: the carrier's side, a baresip answering there (`Caller.answer`).
        self.trunk_port = free_port(socket.SOCK_DGRAM)
        # rtpengine's media ports: a random block of its own, away from other runs.
        self.rtp_min = random.randrange(20_000, 59_000, 200)
        self.ws_url = f"ws://127.0.0.1:{self.ws_port}"
        self.domain = DOMAIN
        # Where rtpengine writes the calls it is told to record (voicemail, recorded calls).
        self.recording_dir = workdir / "rtpengine-recordings"
        self.kamailio_log = workdir / "kamailio.log"
        self.rtpengine_log = workdir / "rtpengine.log"
        self.kamailio: subprocess.Popen[bytes] | None = None
        self.rtpengine: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        started = time.monotonic()
        self._start_rtpengine()
        self._start_kamailio()
        self.ready_seconds = time.monotonic() - started

    def _start_rtpengine(self) -> None:
        with self.rtpengine_log.open("wb") as log:
            self.rtpengine = subprocess.Popen(  # noqa: S603 (programs on PATH, our arguments)
                [
                    self.binaries["rtpengine"],
                    "--config-file=none",
                    "--table=-1",
                    "--foreground",
                    "--log-stderr",
                    "--log-level=5",
                    "--interface=127.0.0.1",
                    f"--listen-ng=127.0.0.1:{self.ng_port}",
                    f"--port-min={self.rtp_min}",
                    f"--port-max={self.rtp_min + 199}",
                    f"--recording-dir={self.recording_dir}",
                    "--recording-method=pcap",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait(self._rtpengine_pongs, "rtpengine", self.rtpengine_log, self.rtpengine)

    def _start_kamailio(self) -> None:
        defines = {
            "SIP_IP": "127.0.0.1",
            "SIP_PORT": str(self.sip_port),
            "WS_IP": "127.0.0.1",
            "WS_PORT": str(self.ws_port),
            "SIP_DOMAIN": f'"{self.domain}"',
            "MAZKIRA_URL": f'"{self.mazkira_url}"',
            "SIP_SECRET": f'"{self.secret}"',
            "RTPENGINE": f'"udp:127.0.0.1:{self.ng_port}"',
            "TRUNK_URI": f'"sip:127.0.0.1:{self.trunk_port}"',
            "TRUNK_NET": '"127.0.0.1/32"',
            "SIP_ADDR": f'"127.0.0.1:{self.sip_port}"',
            "MAZKIRA_TIMEOUT": str(self.mazkira_timeout),
        }
        command = [self.binaries["kamailio"], "-DD", "-E", "-f", str(KAMAILIO_CFG)]
        command += ["-Y", str(self.workdir), "-P", str(self.workdir / "kamailio.pid")]
        command += ["-m", "32", "-M", "4"]
        for name, value in defines.items():
            command += ["-A", f"{name}={value}"]
        with self.kamailio_log.open("wb") as log:
            self.kamailio = subprocess.Popen(  # noqa: S603 (programs on PATH, our arguments)
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait(self._kamailio_answers, "kamailio", self.kamailio_log, self.kamailio)

    def _wait(
        self, probe: Callable[[], bool], name: str, log: Path, process: subprocess.Popen[bytes]
    ) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if probe():
                return
            time.sleep(0.02)
        raise RuntimeError(f"{name} did not start:\n{log.read_text(errors='replace')[-4000:]}")

    def _rtpengine_pongs(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            s.sendto(b"probe d7:command4:pinge", ("127.0.0.1", self.ng_port))
            try:
                return b"pong" in s.recv(200)
            except OSError:
                return False

    def _kamailio_answers(self) -> bool:
        branch = uuid.uuid4().hex
        options = (
            f"OPTIONS sip:127.0.0.1:{self.sip_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK{branch}\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=1\r\n"
            f"To: <sip:127.0.0.1:{self.sip_port}>\r\nCall-ID: {branch}\r\nCSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            s.bind(("127.0.0.1", 0))
            options = options.replace("127.0.0.1:9", f"127.0.0.1:{s.getsockname()[1]}")
            s.sendto(options.encode(), ("127.0.0.1", self.sip_port))
            try:
                return s.recv(2000).startswith(b"SIP/2.0 200")
            except OSError:
                return False

    def stop(self) -> None:
        _stop(self.kamailio)
        _stop(self.rtpengine)

    def log_text(self) -> str:
        return self.kamailio_log.read_text(errors="replace")


class Caller:
    """baresip as a carrier's caller: plain SIP over UDP to Kamailio, G.711, playing `wav`,
    recording what it hears (sndfile), driven by its stdio menu."""

    def __init__(self, workdir: Path, stack: SipStack, *, number: str, wav: Path) -> None:
        self.binary = installed()["baresip"]
        self.stack = stack
        self.number = number
        self.home = workdir / f"baresip-{uuid.uuid4().hex[:8]}"
        self.home.mkdir()
        self.heard = self.home / "heard"
        self.heard.mkdir()
        self.port = free_port(socket.SOCK_DGRAM)
        rtp = random.randrange(20_000, 59_000, 20)
        modules = "/usr/lib/baresip/modules"
        (self.home / "config").write_text(
            f"poll_method epoll\nnet_interface 127.0.0.1\nsip_listen 127.0.0.1:{self.port}\n"
            f"audio_player aubridge,nil\naudio_source aufile,{wav}\naudio_alert aubridge,nil\n"
            f"rtp_ports {rtp}-{rtp + 19}\nsnd_path {self.heard}\n"
            f"module_path {modules}\nmodule g711.so\nmodule aufile.so\n"
            "module aubridge.so\nmodule sndfile.so\nmodule_app account.so\nmodule_app menu.so\n"
        )
        (self.home / "accounts").write_text(
            f"<sip:{number}@127.0.0.1:{self.port}>;regint=0;audio_codecs=PCMU,PCMA\n"
        )
        self.log = self.home / "baresip.log"
        self.process: subprocess.Popen[bytes] | None = None

    def call(self, dialled: str) -> None:
        target = f"sip:{dialled}@127.0.0.1:{self.stack.sip_port}"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 (baresip on PATH, our arguments)
                [self.binary, "-f", str(self.home), "-e", f"/dial {target}"],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def answer(self, *, trace: bool = False, also: tuple[str, ...] = ()) -> None:
        """Be the carrier's far end of outgoing calls: listen on the stack's trunk address and
        answer whatever comes at once to its number (and the numbers `also`: several phones
        beyond the trunk); with `trace`, its output shows the SIP it receives."""
        (self.home / "config").write_text(
            (self.home / "config")
            .read_text()
            .replace(
                f"sip_listen 127.0.0.1:{self.port}", f"sip_listen 127.0.0.1:{self.stack.trunk_port}"
            )
        )
        (self.home / "accounts").write_text(
            "".join(
                f"<sip:{number}@127.0.0.1:{self.stack.trunk_port}>;regint=0;answermode=auto;"
                "audio_codecs=PCMU,PCMA\n"
                for number in (self.number, *also)
            )
        )
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 (baresip on PATH, our arguments)
                [self.binary, "-f", str(self.home), *(["-s"] if trace else [])],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_for("baresip is ready")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def hang_up(self) -> None:
        """End the call (a BYE), as a caller who has said what they had to say."""
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(b"/hangup\n")
        self.process.stdin.flush()

    def wait_for(self, pattern: str, timeout: float = 20, poll: float = 0.05) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.output())
            if found:
                return found
            time.sleep(poll)
        raise AssertionError(f"baresip never said {pattern!r}:\n{self.output()[-3000:]}")

    def hung_up_on(self) -> bool:
        """The far end ended its call (a BYE it received: libre reports the session reset)."""
        return "session closed: Connection reset by peer" in self.output()

    def heard_sound(self) -> bytes:
        """What it received in its last call, decoded: sndfile's `-dec` WAV, complete once the
        call is over; empty before any call."""
        dumps = sorted(self.heard.glob("*-dec.wav"))
        return dumps[-1].read_bytes() if dumps else b""

    def heard_bytes(self) -> int:
        """Bytes of decoded audio received from the network (sndfile's `-dec` recordings)."""
        return sum(path.stat().st_size for path in self.heard.glob("*dec*.wav"))

    def receiving_bits(self) -> int:
        """The audio bitrate baresip receives now, from its last status line (tx/rx bit/s)."""
        found = re.findall(r"audio=(\d+)/(\d+) \(bit/s\)", self.output())
        return int(found[-1][1]) if found else 0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            assert self.process.stdin is not None
            try:
                self.process.stdin.write(b"q")
                self.process.stdin.flush()
                self.process.wait(timeout=3)
            except (OSError, subprocess.TimeoutExpired):
                pass
        _stop(self.process)


RING_WAV = Path("/usr/share/baresip/ring.wav")


class DemoCalls:
    """A caller on the demo's stack: every `every` seconds baresip calls the next of `numbers`
    (the demo businesses' lines) as a carrier would, and hangs up after `length` seconds, so
    whoever tries the demo sees and hears the phone ring in a secretary's console."""

    def __init__(
        self, stack: SipStack, workdir: Path, numbers: list[str], *, every: float, length: float
    ) -> None:
        self.stack = stack
        self.workdir = workdir
        self.numbers = numbers
        self.every = every
        self.length = length
        self.placed = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-calls", daemon=True)
        self._live: list[tuple[float, Caller]] = []
        self._lock = threading.Lock()  # the thread and stop() may hang up at the same time

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(self.every):
            number = self.numbers[self.placed % len(self.numbers)]
            caller = Caller(
                self.workdir,
                self.stack,
                number=f"+97250{random.randrange(10**7):07d}",
                wav=RING_WAV,
            )
            caller.call(number)
            self.placed += 1
            with self._lock:
                self._live.append((time.monotonic(), caller))
            self._hang_up(time.monotonic() - self.length)

    def _hang_up(self, placed_before: float) -> None:
        with self._lock:
            due = [(placed, caller) for placed, caller in self._live if placed <= placed_before]
            self._live = [entry for entry in self._live if entry not in due]
        for _, caller in due:
            caller.stop()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=30)
        self._hang_up(float("inf"))
