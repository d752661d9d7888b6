"""Audio out through the real ALSA/PortAudio path into a PulseAudio null sink, recorded from its monitor.

What reached the "loudspeaker" is measured, not assumed: the tone's frequency, level, length and
samples in the recording, and the real-time pacing of each play.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from array import array
from pathlib import Path

import numpy as np
import pytest
import sounddevice as sd
import soundfile as sf
from scipy.signal import correlate

from playout import audio_out
from playout.audio_out import (
    NULL_DESCRIPTION,
    AudioError,
    NullPlayer,
    PlayResult,
    SoundDevicePlayer,
    _Feed,
    open_player,
    output_devices,
)
from playout.config import AudioSettings
from playout.errors import PlayoutError
from tests.conftest import ROOT
from tests.pulse import PulseSink

RATE = 24000


def tone(seconds: float, *, freq: float = 440.0, amplitude: float = 0.3, dtype=np.int16) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    wave = amplitude * np.sin(2 * np.pi * freq * t)
    return (wave * 32767).astype(np.int16) if dtype == np.int16 else wave.astype(np.float32)


def as_float(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64) / 32768 if x.dtype == np.int16 else x.astype(np.float64)


def rms_db(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(as_float(x) ** 2)))


def peak_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(as_float(x) * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / RATE)[np.argmax(spectrum)])


def heard(path: Path) -> np.ndarray:
    data, rate = sf.read(path, dtype="int16")
    assert rate == RATE and data.ndim == 1
    return data


def loud_span_s(x: np.ndarray, threshold: float = 0.01) -> float:
    """Seconds from the first to the last sample above ``threshold`` (full scale 1)."""
    loud = np.flatnonzero(np.abs(as_float(x)) > threshold)
    return (loud[-1] - loud[0] + 1) / RATE if len(loud) else 0.0


def aligned(recording: np.ndarray, played: np.ndarray) -> np.ndarray:
    """The part of the recording that lines up with ``played`` (by cross-correlation)."""
    lag = int(np.argmax(correlate(as_float(recording), as_float(played), mode="valid", method="fft")))
    return recording[lag : lag + len(played)]


@pytest.fixture(scope="module")
def sink():
    with PulseSink() as pulse, pulse.route_this_process():
        yield pulse


@pytest.fixture
def record(sink, tmp_path):
    """Start recording the sink; returns a function that stops and returns the samples."""
    path = tmp_path / "air.wav"
    recording = sink.record(path)

    def stop() -> np.ndarray:
        recording.stop()
        return heard(path)

    yield stop
    recording.stop()


# -- the real path, measured ---------------------------------------------------------------------------


@pytest.mark.slow
def test_a_tone_reaches_the_sink_intact_and_in_real_time(sink, record):
    played = tone(2.0)
    starts: list[dt.datetime] = []
    player = SoundDevicePlayer("pulse")
    assert player.describe() == "sounddevice: pulse (ALSA)"
    result = player.play(played, RATE, on_start=starts.append)
    returned_at = dt.datetime.now(dt.UTC)
    air = record()

    assert isinstance(result, PlayResult)
    assert result.frames == len(played) and result.underruns == 0 and not result.stopped
    assert result.device == "sounddevice: pulse (ALSA)"
    assert result.started_at.tzinfo is dt.UTC and starts == [result.started_at]
    assert result.duration_s == pytest.approx(2.0, abs=0.1)  # real pacing: measured 2.000-2.005 s
    # The caller's next step (the relay's tail) is timed from ended_at: play must return right then.
    assert 0 <= (returned_at - result.ended_at).total_seconds() < 0.1

    assert loud_span_s(air) == pytest.approx(2.0, abs=0.05)
    segment = aligned(air, played)
    assert abs(peak_hz(segment) - 440) <= 2
    assert rms_db(segment) == pytest.approx(rms_db(played), abs=1.0)
    similarity = np.dot(as_float(segment), as_float(played)) / (
        np.linalg.norm(as_float(segment)) * np.linalg.norm(as_float(played))
    )
    assert similarity > 0.9
    # The sink runs in the station's format, so the monitor gives back the very samples, first to last.
    assert np.array_equal(segment, played)


@pytest.mark.slow
def test_default_settings_route_float_audio_to_the_sink(sink, record):
    player = open_player(AudioSettings())
    assert isinstance(player, SoundDevicePlayer)
    assert player.describe() == "sounddevice: default (ALSA)"
    played = tone(0.5, dtype=np.float32)
    with player:
        result = player.play(played, RATE)
    air = record()
    assert result.frames == len(played) and result.underruns == 0
    segment = aligned(air, played)
    assert rms_db(segment) == pytest.approx(rms_db(played), abs=0.1)
    assert abs(peak_hz(segment) - 440) <= 2
    assert loud_span_s(air) == pytest.approx(0.5, abs=0.05)


@pytest.mark.slow
def test_stop_event_ends_the_play_promptly(sink, record):
    played = tone(2.0)
    stop = threading.Event()
    stopped_at: list[float] = []

    def press_stop():
        stopped_at.append(time.monotonic())
        stop.set()

    timer = threading.Timer(0.5, press_stop)
    timer.start()
    result = SoundDevicePlayer("pulse").play(played, RATE, stop=stop)
    lag = time.monotonic() - stopped_at[0]
    air = record()
    assert result.stopped
    assert lag < 0.3  # measured about 0.05 s: one callback block
    assert 0 < result.frames < len(played)
    assert result.duration_s == pytest.approx(0.5, abs=0.3)
    assert 0.3 < loud_span_s(air) < 1.0  # the rest of the bulletin never reached the loudspeaker


def test_stop_before_play_plays_nothing(sink):
    stop = threading.Event()
    stop.set()
    starts = []
    result = SoundDevicePlayer("pulse").play(tone(1.0), RATE, stop=stop, on_start=starts.append)
    assert result.stopped and result.frames == 0 and starts == []


class _StallOnce(_Feed):
    """A callback that blocks once for longer than the whole output buffer: a guaranteed underrun."""

    stall_s = 0.5

    def _fill(self, outdata, frames, time_info, status):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 10:
            time.sleep(self.stall_s)
        super()._fill(outdata, frames, time_info, status)


class _StallingPlayer(SoundDevicePlayer):
    feed_class = _StallOnce


@pytest.mark.slow
def test_an_underrun_is_counted_and_logged(sink, record, caplog):
    caplog.set_level(logging.WARNING, logger="playout.audio_out")
    played = tone(1.0)
    result = _StallingPlayer("pulse").play(played, RATE)
    air = record()
    assert result.underruns == 1  # one stall, one underflow reported by PortAudio (3 of 3 runs)
    assert result.frames == len(played)
    assert "1 output underrun(s)" in caplog.text
    # The stall (0.5 s) minus the buffer that covered it (0.2 s) shows as a gap on air.
    assert loud_span_s(air) == pytest.approx(1.0 + 0.3, abs=0.1)


def test_underflow_flags_are_counted_by_the_callback():
    """The counter itself, without a device: the callback called as PortAudio would."""
    samples = np.arange(1, 101, dtype=np.int16)
    feed = _Feed(
        samples,
        RATE,
        None,
        pad=50,
        fallback_delay_s=0.2,
        callback_stop=sd.CallbackStop,
        abort=sd.CallbackAbort,
    )
    underflow = sd.CallbackFlags()
    underflow.output_underflow = True
    out = np.full((60, 1), -1, dtype=np.int16)
    feed.callback(out, 60, None, underflow)
    assert feed.underruns == 1 and feed.started.is_set() and out[:, 0].tolist() == list(range(1, 61))
    feed.callback(out, 60, None, sd.CallbackFlags())
    assert out[:40, 0].tolist() == list(range(61, 101)) and not out[40:].any()
    assert feed.completed and feed.frames == 100
    # The end is the device's delay (here the fallback) plus the frames still ahead of it.
    assert feed.end_at == pytest.approx(time.time() + 0.2 + 40 / RATE, abs=0.05)
    with pytest.raises(sd.CallbackStop):  # after the silence pad
        feed.callback(out, 60, None, underflow)
    assert feed.underruns == 2 and not out.any()


def test_stop_inside_the_callback_aborts_with_silence():
    stop = threading.Event()
    feed = _Feed(
        np.ones(1000, np.int16),
        RATE,
        stop,
        pad=0,
        fallback_delay_s=0.2,
        callback_stop=sd.CallbackStop,
        abort=sd.CallbackAbort,
    )
    stop.set()
    out = np.full((100, 1), 7, dtype=np.int16)
    with pytest.raises(sd.CallbackAbort):
        feed.callback(out, 100, None, sd.CallbackFlags())
    assert feed.stopped and not out.any() and feed.frames == 0


def test_the_callback_fills_raw_buffers_and_every_channel_of_a_stereo_one():
    """What ``RawOutputStream`` hands the callback: bytes for ``frames`` interleaved frames.  A device
    that only takes stereo gets the mono signal on both channels."""
    feed = _Feed(
        array("h", range(1, 101)).tobytes(),
        RATE,
        None,
        pad=50,
        fallback_delay_s=0.2,
        callback_stop=sd.CallbackStop,
        abort=sd.CallbackAbort,
    )
    out = bytearray(b"\xff" * 60 * 2 * 2)  # 60 stereo int16 frames
    feed.callback(out, 60, None, sd.CallbackFlags())
    assert array("h", out).tolist() == [v for v in range(1, 61) for _ in range(2)]
    feed.callback(out, 60, None, sd.CallbackFlags())
    assert array("h", out).tolist() == [v for v in range(61, 101) for _ in range(2)] + [0] * 40
    assert feed.completed and feed.frames == 100

    floats = _Feed(
        array("f", [0.5, -0.25, 1.0]),
        RATE,
        None,
        pad=0,
        fallback_delay_s=0.2,
        callback_stop=sd.CallbackStop,
        abort=sd.CallbackAbort,
    )
    mono = bytearray(4 * 4)
    with pytest.raises(sd.CallbackStop):
        floats.callback(mono, 4, None, sd.CallbackFlags())
    assert array("f", mono).tolist() == [0.5, -0.25, 1.0, 0.0]


def test_samples_come_as_pcm_bytes_arrays_or_numpy():
    player = NullPlayer()
    pcm = array("h", [1, -2, 3, -4])
    for samples in (pcm, pcm.tobytes(), bytearray(pcm.tobytes()), memoryview(pcm), memoryview(pcm.tobytes())):
        assert audio_out._as_mono(samples).dtype == "int16" and len(audio_out._as_mono(samples)) == 4
        assert bytes(audio_out._as_mono(samples).data) == pcm.tobytes()
    assert audio_out._as_mono(array("f", [0.5, 0.25])).dtype == "float32"
    as_numpy = audio_out._as_mono(np.array([[0.5], [0.25]]))  # float64 (n, 1): float32 mono
    assert as_numpy.dtype == "float32" and bytes(as_numpy.data) == array("f", [0.5, 0.25]).tobytes()
    assert player.play(b"", RATE).frames == 0
    with pytest.raises(ValueError):
        player.play(b"\x00\x01\x02", RATE)  # half a sample
    with pytest.raises(ValueError):
        player.play(array("i", [1, 2]), RATE)
    with pytest.raises(ValueError):
        player.play(memoryview(np.zeros((4, 2), np.int16)), RATE)
    with pytest.raises(TypeError):
        player.play([1, 2, 3], RATE)


@pytest.mark.slow
def test_pcm_bytes_reach_the_sink_sample_for_sample(sink, record):
    """The daemon's way: the cached WAV's 16-bit frames, as bytes, through a raw PortAudio stream."""
    played = tone(1.0, freq=660)
    result = SoundDevicePlayer("pulse").play(played.tobytes(), RATE)
    air = record()
    assert result.frames == len(played) and result.underruns == 0 and not result.stopped
    assert np.array_equal(aligned(air, played), played)


@pytest.mark.slow
def test_a_device_that_only_takes_stereo_gets_the_signal_on_both_channels(sink, record, monkeypatch, caplog):
    opened = []
    real = sd.RawOutputStream

    def stereo_only(*args, channels, **kwargs):
        opened.append(channels)
        if channels != 2:
            raise sd.PortAudioError("Invalid number of channels")
        return real(*args, channels=channels, **kwargs)

    monkeypatch.setattr(sd, "RawOutputStream", stereo_only)
    caplog.set_level(logging.INFO, logger="playout.audio_out")
    player = SoundDevicePlayer("pulse")
    played = tone(0.5)
    first = player.play(array("h", played.tobytes()), RATE)
    second = player.play(played, RATE)  # remembered: straight to stereo
    air = record()
    assert opened == [1, 2, 2] and "takes 2 channels, not 1" in caplog.text
    assert first.frames == second.frames == len(played) and first.underruns == second.underruns == 0
    # The sink is mono: PulseAudio averages the two channels, which only gives the very samples back if
    # both carried the same signal.
    assert np.array_equal(aligned(air, played), played)


@pytest.mark.slow
def test_a_hung_device_raises_instead_of_hanging(sink):
    class Hang(_Feed):
        def _fill(self, outdata, frames, time_info, status):
            super()._fill(outdata, frames, time_info, status)
            if self.pos > RATE // 4:
                time.sleep(1.0)

    class HangingPlayer(SoundDevicePlayer):
        feed_class = Hang

    t0 = time.monotonic()
    with pytest.raises(AudioError) as err:
        HangingPlayer("pulse", stall_timeout_s=0.3).play(tone(2.0), RATE)
    assert err.value.code == "AUDIO_DEVICE_FAILED" and "treo" in err.value.message
    assert time.monotonic() - t0 < 2.0


@pytest.mark.slow
def test_sound_server_dying_mid_play_is_an_audio_error(sink):
    with PulseSink() as doomed, doomed.route_this_process():
        player = SoundDevicePlayer("pulse")
        threading.Timer(0.5, lambda: doomed.pactl("exit")).start()
        t0 = time.monotonic()
        with pytest.raises(AudioError) as err:
            player.play(tone(3.0), RATE)
    assert isinstance(err.value, PlayoutError) and err.value.code == "AUDIO_DEVICE_FAILED"
    assert time.monotonic() - t0 < 2.0


@pytest.mark.slow
def test_a_subprocess_plays_into_the_sink_with_its_env(sink, record):
    """As the on-air process plays: 16-bit PCM bytes, and neither numpy nor soundfile ever loaded."""
    code = textwrap.dedent(
        """
        import json, math, sys
        from array import array
        from playout.audio_out import open_player
        from playout.config import AudioSettings
        wave = (0.3 * 32767 * math.sin(2 * math.pi * 440 * i / 24000) for i in range(12000))
        samples = array("h", map(int, wave))
        player = open_player(AudioSettings(device="pulse"))
        result = player.play(samples.tobytes(), 24000)
        print(json.dumps({"device": player.describe(), "frames": result.frames, "s": result.duration_s,
                          "loaded": sorted({"numpy", "soundfile"} & set(sys.modules))}))
        """
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_") and k != "XDG_RUNTIME_DIR"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **sink.env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    air = record()
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["device"] == "sounddevice: pulse (ALSA)" and report["frames"] == 12000
    assert report["loaded"] == []
    assert report["s"] == pytest.approx(0.5, abs=0.1)
    assert loud_span_s(air) == pytest.approx(0.5, abs=0.05)
    assert abs(peak_hz(aligned(air, tone(0.5))) - 440) <= 2


# -- PortAudio only while it is used ---------------------------------------------------------------------


def alsa_plugins_mapped() -> bool:
    """Whether ALSA's pulse plugin (what an initialised PortAudio holds here) is in this process."""
    return "libasound_module_pcm_pulse" in Path("/proc/self/maps").read_text()


@pytest.mark.slow
def test_portaudio_is_up_only_while_it_is_used(sink, record):
    player = SoundDevicePlayer("pulse")
    # Idle, as the station is all day between windows: PortAudio terminated and ALSA's plugins unloaded.
    assert sd._initialized == 0 and not alsa_plugins_mapped()
    with player.session():
        assert sd._initialized == 1 and alsa_plugins_mapped()
        first = player.play(tone(0.4), RATE)
        assert sd._initialized == 1  # the play used the session's PortAudio, not one of its own
    assert sd._initialized == 0 and not alsa_plugins_mapped()
    second = player.play(tone(0.4, freq=880), RATE)  # no session: the play starts and ends one itself
    assert sd._initialized == 0 and not alsa_plugins_mapped()
    assert output_devices() == ["0: pulse (ALSA)", "1: default (ALSA)"]
    assert sd._initialized == 0
    air = record()
    assert first.frames == second.frames == len(tone(0.4)) and first.underruns == second.underruns == 0
    # Both plays reached the sink: each tone is found in the recording at its own pitch.
    assert abs(peak_hz(aligned(air, tone(0.4))) - 440) <= 2
    assert abs(peak_hz(aligned(air, tone(0.4, freq=880))) - 880) <= 2


def test_log_lines_written_while_portaudio_starts_are_not_lost(sink, capfd):
    """sounddevice points fd 2 at /dev/null while PortAudio initialises; the daemon's log is its stderr."""

    class Stderr(logging.Handler):
        def emit(self, record):
            os.write(2, f"{record.getMessage()}\n".encode())

    handler, log = Stderr(), logging.getLogger("test.audio_out.stderr")
    log.addHandler(handler)
    log.propagate = False
    written, done = [0], threading.Event()

    def chatter():
        while not done.is_set():
            log.warning("line %d", written[0])
            written[0] += 1

    thread = threading.Thread(target=chatter)
    thread.start()
    try:
        for _ in range(10):
            with audio_out.portaudio():
                pass
    finally:
        done.set()
        thread.join()
        log.removeHandler(handler)
    lines = [line for line in capfd.readouterr().err.splitlines() if line.startswith("line ")]
    assert written[0] > 100 and len(lines) == written[0]


# -- choosing a player ---------------------------------------------------------------------------------


def test_unknown_device_name_lists_the_devices_there_are(sink):
    assert output_devices() == ["0: pulse (ALSA)", "1: default (ALSA)"]
    with pytest.raises(AudioError) as err:
        open_player(AudioSettings(device="Loa USB không có"))
    message = err.value.message
    assert err.value.code == "AUDIO_DEVICE_FAILED"
    assert "'Loa USB không có'" in message and "pulse (ALSA)" in message and "default (ALSA)" in message
    assert err.value.to_dict()["devices"] == ["0: pulse (ALSA)", "1: default (ALSA)"]
    with pytest.raises(AudioError):
        open_player(AudioSettings(device=99))


def test_no_output_device_gives_a_null_player_and_one_warning(sink, monkeypatch, caplog):
    monkeypatch.setattr(sd, "query_devices", lambda *a, **k: sd.DeviceList())
    caplog.set_level(logging.INFO, logger="playout.audio_out")
    player = open_player(AudioSettings())
    assert isinstance(player, NullPlayer) and player.describe() == NULL_DESCRIPTION
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "discarded" in warnings[0].getMessage()
    assert output_devices() == []
    # A device named in the settings is a promise of sound: no silent fallback.
    with pytest.raises(AudioError) as err:
        open_player(AudioSettings(device="pulse"))
    assert "không có thiết bị phát nào" in err.value.message


def test_no_portaudio_at_all_gives_a_null_player(monkeypatch, caplog):
    monkeypatch.setattr(audio_out, "_sounddevice", lambda: None)
    caplog.set_level(logging.WARNING, logger="playout.audio_out")
    assert isinstance(open_player(AudioSettings()), NullPlayer)
    assert len(caplog.records) == 1
    with pytest.raises(AudioError):
        open_player(AudioSettings(device=0))


# -- the null player ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_null_player_takes_real_time():
    starts = []
    t0 = time.monotonic()
    result = NullPlayer().play(tone(1.0), RATE, on_start=starts.append)
    elapsed = time.monotonic() - t0
    assert elapsed == pytest.approx(1.0, abs=0.05)
    assert result.duration_s == pytest.approx(1.0, abs=0.05)
    assert starts == [result.started_at] and result.started_at.tzinfo is dt.UTC
    assert result.frames == RATE and not result.stopped and result.underruns == 0
    assert result.device == NULL_DESCRIPTION


@pytest.mark.slow
def test_null_player_is_stoppable():
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    t0 = time.monotonic()
    result = NullPlayer().play(tone(2.0, dtype=np.float32), RATE, stop=stop)
    assert time.monotonic() - t0 == pytest.approx(0.3, abs=0.05)
    assert result.stopped and result.frames == pytest.approx(0.3 * RATE, abs=0.05 * RATE)


def test_samples_must_be_mono_int16_or_float32():
    player = NullPlayer()
    with pytest.raises(ValueError):
        player.play(np.zeros((10, 2), np.int16), RATE)
    with pytest.raises(ValueError):
        player.play(np.zeros(10, np.int32), RATE)
    assert player.play(np.zeros((0, 1), np.int16), RATE).frames == 0
