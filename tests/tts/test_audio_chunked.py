"""The render holds only the speech and the WAV's bytes; everything else is computed a chunk at a time.

Issue 11: whole-bulletin float copies (the mix, the bed, the written samples read back for measuring,
a PCM array beside its WAV bytes) made a render's memory grow by ~0.44 MiB per second of bulletin.
Each chunked piece is held here to the whole-array computation it replaced: the same values, to the bit
where the arithmetic is the same.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from playout.config import BulletinSettings
from playout.errors import RenderError
from tts import fit, loudness
from tts.audio import as_float32, from_pcm16, to_pcm16, wav_buffer
from tts.bed import _CHORDS, GeneratedBed, MusicBed, _chord_templates, _load_music, generated_bed
from tts.verify import measure, verify

RATE = 24000


def speechlike(seconds: float, seed: int = 1, rate: int = RATE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    envelope = np.clip(np.sin(2 * np.pi * 3 * t), 0, None) ** 2
    return (rng.standard_normal(len(t)) * envelope * 0.2).astype(np.float32)


# -- the references: the whole-array code these replaced -------------------------------------------------


def reference_generated_bed(duration_s: float, rate: int) -> np.ndarray:
    n = int(round(duration_s * rate))
    if n <= 0:
        return np.zeros(0, dtype=np.float32)
    templates = _chord_templates(rate)
    hop = int(round(4.0 * rate))
    width = len(templates[0])
    out = np.zeros(n + 2 * width, dtype=np.float32)
    for k, pos in enumerate(range(0, n + width, hop)):
        out[pos : pos + width] += templates[k % len(templates)]
    out = out[hop : hop + n]
    rms = float(np.sqrt(np.mean(out.astype(np.float64) ** 2))) or 1.0
    return out / np.float32(rms)


def reference_music_bed(music: np.ndarray, duration_s: float, rate: int) -> np.ndarray:
    n = int(round(duration_s * rate))
    fade = min(int(0.5 * rate), len(music) // 4)
    out = np.zeros(n, dtype=np.float32)
    pos = 0
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    while pos < n:
        overlap = fade if pos > 0 else 0
        pos -= overlap
        piece = music[: n - pos].copy()
        k = min(overlap, len(piece))
        if k:
            out[pos : pos + k] *= 1.0 - ramp[:k]
            piece[:k] *= ramp[:k]
        out[pos : pos + len(piece)] += piece
        pos += len(piece)
    return out


def reference_mix(speech, frames, speech_end, rate, settings, reference_rms, level_db, bed):
    """The old ``_mix`` + ``add_bed``: a full-length copy of the speech, the bed added, faded out."""
    out = np.zeros(frames, dtype=np.float32)
    out[: len(speech)] = speech
    start = min(len(out), speech_end + int(round(min(0.6, settings.max_silence_s / 3) * rate)))
    n = len(out) - start
    if n > 0:
        b = bed(n / rate)[:n]
        b *= np.float32(reference_rms * 10 ** (level_db / 20))
        fade_in = min(n, int(fit.BED_FADE_IN_S * rate))
        b[:fade_in] *= np.linspace(0.0, 1.0, fade_in, dtype=np.float32)
        out[start:] += b
    fade = int(round(settings.fade_s * rate))
    out[-fade:] *= np.cos(np.linspace(0.0, np.pi / 2, fade, dtype=np.float32))
    return out


def in_chunks(signal, sizes) -> np.ndarray:
    """``signal`` read in consecutive slices of the given sizes (cycled), joined."""
    parts, pos, i = [], 0, 0
    while pos < len(signal):
        n = sizes[i % len(sizes)]
        parts.append(signal[pos : pos + n])
        pos, i = pos + n, i + 1
    return np.concatenate(parts)


# -- the bed ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [16000, 22050, 24000, 44100, 48000])
def test_chord_templates_are_the_sines_numpy_computes(rate):
    """The pad's sines come by angle addition (numpy's float64 sine is not vectorised); the float32
    templates are np.sin's to one float32 step, in a few samples in ten thousand."""
    m = int(round(8.0 * rate))
    t = np.arange(m, dtype=np.float64) / rate
    envelope = 0.5 - 0.5 * np.cos(2 * np.pi * t / 8.0)
    for notes, ours in zip(_CHORDS, _chord_templates(rate), strict=True):
        tone = sum(np.sin(2 * np.pi * f * t) + 0.3 * np.sin(2 * np.pi * 2.002 * f * t) for f in notes)
        ref = (tone * envelope).astype(np.float32)
        assert ours.dtype == np.float32 and len(ours) == m
        np.testing.assert_allclose(ours, ref, rtol=0, atol=2.5e-7)
        assert np.count_nonzero(ours != ref) < 1e-3 * m


@pytest.mark.parametrize("seconds", [0.5, 3.9, 4.0, 11.3, 60.0])
def test_generated_bed_in_blocks_is_the_pad_made_whole(seconds):
    ref = reference_generated_bed(seconds, RATE)
    bed = GeneratedBed(seconds, RATE)
    assert len(bed) == len(ref)
    np.testing.assert_array_equal(generated_bed(seconds, RATE), ref)
    np.testing.assert_array_equal(in_chunks(_Blocks(bed), [1, 999, RATE * 4, 65536, 7]), ref)


class _Blocks:
    """A Bed read with slice syntax, for ``in_chunks``."""

    def __init__(self, bed):
        self.bed = bed

    def __len__(self):
        return len(self.bed)

    def __getitem__(self, key):
        start, stop, _ = key.indices(len(self.bed))
        return self.bed.block(start, stop)


@pytest.mark.parametrize("seconds", [0.5, 2.0, 3.0, 3.2, 5.5, 5.8, 17.0, 61.7])
def test_music_bed_in_blocks_is_the_music_looped_whole(seconds):
    # 3 s of music: loops every 2.5 s (half a second of cross-fade); lengths around the loop points.
    t = np.arange(3 * RATE) / RATE
    music = (np.sin(2 * np.pi * 330 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t))).astype(np.float32)
    ref = reference_music_bed(music, seconds, RATE)
    bed = MusicBed(music, seconds, RATE)
    assert len(bed) == len(ref)
    np.testing.assert_array_equal(bed.block(0, len(bed)), ref)
    np.testing.assert_array_equal(in_chunks(_Blocks(bed), [1, 12000, 777, 65536]), ref)


# -- the mix ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tail", [None, 1.0])
@pytest.mark.parametrize("music", [False, True])
def test_mix_in_slices_is_the_whole_buffer_mix(tmp_path, tail, music):
    settings = BulletinSettings(length_s=30)
    frames = 30 * RATE
    speech = speechlike(12.0)
    speech_end = len(speech) - RATE // 2
    if tail is not None:  # the render holds the speech and a second of silence, not the whole bulletin
        speech = np.concatenate((speech, np.zeros(int(tail * RATE), dtype=np.float32)))
    if music:
        t = np.arange(4 * RATE) / RATE
        loop = np.sin(2 * np.pi * 220 * t).astype(np.float32)
        settings = settings.model_copy(update={"music_bed": tmp_path / "bed.wav"})
        sf.write(settings.music_bed, loop, RATE)
        path = settings.music_bed
        music = _load_music(str(path), path.stat().st_mtime, RATE)

        def bed(duration_s):
            return reference_music_bed(music, duration_s, RATE)

    else:

        def bed(duration_s):
            return reference_generated_bed(duration_s, RATE)

    ref = reference_mix(speech, frames, speech_end, RATE, settings, 0.05, -20.0, bed)
    mix = fit.Mix(speech, frames, speech_end, RATE, settings, 0.05, -20.0)
    assert len(mix) == frames
    np.testing.assert_array_equal(mix[0:frames], ref)
    np.testing.assert_array_equal(in_chunks(mix, [65536]), ref)
    np.testing.assert_array_equal(in_chunks(mix, [1, 5000, 30001]), ref)
    # add_bed is the mix written back into a whole buffer.
    whole = np.zeros(frames, dtype=np.float32)
    whole[: len(speech)] = speech
    fit.add_bed(whole, speech_end, RATE, settings, 0.05, -20.0)
    np.testing.assert_array_equal(whole, ref)


def test_assembly_can_stop_a_little_after_the_speech():
    s = BulletinSettings(length_s=60)
    sections = [[speechlike(2.0, 1), speechlike(1.5, 2)], [speechlike(3.0, 3)]]
    whole = fit.assemble(sections, RATE, s)
    short = fit.assemble(sections, RATE, s, tail_s=1.0)
    assert whole.frames == short.frames == len(whole.samples) == 60 * RATE
    assert short.spans == whole.spans and short.layout == whole.layout
    assert len(short.samples) == short.spans[-1][1] + RATE
    np.testing.assert_array_equal(short.samples, whole.samples[: len(short.samples)])
    assert not whole.samples[len(short.samples) :].any()
    # The speech's loudness, and its normalization, read the same without the silence after it.
    assert loudness.integrated_lufs(short.samples, RATE) == loudness.integrated_lufs(whole.samples, RATE)
    kw = {"target_lufs": -16.0, "ceiling_dbtp": -1.0, "tolerance_lu": 0.5}
    a = loudness.normalize(whole.samples, RATE, **kw)
    b = loudness.normalize(short.samples, RATE, **kw)
    assert a.gain_db == b.gain_db
    np.testing.assert_array_equal(b.samples, a.samples[: len(b.samples)])
    # A long tail never runs past the bulletin.
    assert len(fit.assemble(sections, RATE, s, tail_s=100.0).samples) == 60 * RATE


def test_normalizing_and_limiting_in_place_give_the_same_samples():
    x = speechlike(20) * np.float32(4)  # hot: the limiter works
    kw = {"target_lufs": -16.0, "ceiling_dbtp": -1.0, "tolerance_lu": 0.5}
    expected = loudness.normalize(x, RATE, **kw)
    y = x.copy()
    result = loudness.normalize(y, RATE, **kw, out=y)
    assert result.samples is y and result.gain_db == expected.gain_db
    np.testing.assert_array_equal(y, expected.samples)
    for gain in (1.0, 0.3):  # 0.3: nothing over the ceiling, the gain alone is written
        z = x.copy()
        assert loudness.limit(z, RATE, -3.0, gain=gain, out=z) is z
        np.testing.assert_array_equal(z, loudness.limit(x, RATE, -3.0, gain=gain))
    silence = np.zeros(RATE, dtype=np.float32)
    assert loudness.normalize(silence, RATE, **kw, out=silence).samples is silence


# -- quantizing, measuring and writing -------------------------------------------------------------------


@pytest.mark.parametrize("frames", [0, 1, 1000, 24000 * 3 + 7])
@pytest.mark.parametrize("rate", [16000, 22050, 24000, 48000])
def test_wav_buffer_is_the_file_soundfile_writes(frames, rate):
    pcm = np.random.default_rng(frames).integers(-32768, 32768, frames).astype("<i2")
    wav, view = wav_buffer(frames, rate)
    assert view.dtype == np.int16 and len(view) == frames and not view.any()
    view[:] = pcm
    buf = io.BytesIO()
    sf.write(buf, pcm, rate, format="WAV", subtype="PCM_16")
    assert bytes(wav) == buf.getvalue()


def test_pcm_is_quantized_from_slices_into_the_wav_as_from_a_whole_array():
    x = speechlike(7.3)
    expected = to_pcm16(x, dither_seed=0)
    wav, pcm = wav_buffer(len(x), RATE)
    mix = fit.Mix(x, len(x), len(x), RATE, BulletinSettings(length_s=60), 0.1, -90.0)
    to_pcm16(mix, dither_seed=0, out=pcm)  # a Mix is read a slice at a time
    mix_whole = mix[0 : len(x)]
    np.testing.assert_array_equal(pcm, to_pcm16(mix_whole, dither_seed=0))
    to_pcm16(x, dither_seed=0, out=pcm)
    np.testing.assert_array_equal(pcm, expected)
    np.testing.assert_array_equal(as_float32(pcm), from_pcm16(pcm))
    assert as_float32(x) is x


def test_measuring_the_pcm_reads_what_measuring_its_floats_reads():
    settings = BulletinSettings(length_s=20)
    rng = np.random.default_rng(4)
    x = np.concatenate((speechlike(14.0), rng.standard_normal(6 * RATE).astype(np.float32) * 0.02))
    spans = [(RATE // 10, 5 * RATE), (6 * RATE, 14 * RATE)]

    def verdict(samples, measured):
        try:
            return verify(samples, RATE, settings, spans=spans, syllables=[10, 20], measured=measured)
        except RenderError as exc:
            return exc.context["problems"]

    for gain in (2.5, 0.2):  # too loud and too quiet: the verifier's complaints must agree too
        pcm = to_pcm16(x * np.float32(gain), dither_seed=0)
        written = from_pcm16(pcm)
        m = measure(pcm, RATE, settings, 14 * RATE)
        assert m == measure(written, RATE, settings, 14 * RATE)
        assert verdict(pcm, m) == verdict(written, m)
        assert verdict(pcm, None) == verdict(written, None)
