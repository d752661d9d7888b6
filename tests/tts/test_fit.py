import numpy as np
import pytest

from playout.config import BulletinSettings
from tts import fit
from tts.audio import frame_rms_db, longest_silence_s

RATE = 24000


def tone(seconds: float, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (level * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_pauses_stretch_between_bounds():
    s = BulletinSettings(length_s=60)
    sections = [["a", "b"], ["c", "d", "e"]]  # 3 sentence gaps, 1 paragraph gap
    short = fit.plan(10.0, sections, s)
    assert short.sentence_pause_s == pytest.approx(s.sentence_pause_s[1])
    assert short.paragraph_pause_s == pytest.approx(s.paragraph_pause_s[1])
    assert short.fill_s > 40
    tight_speech = fit.available_s(s) - 3 * s.sentence_pause_s[0] - s.paragraph_pause_s[0]
    tight = fit.plan(tight_speech, sections, s)
    assert tight.fits and tight.sentence_pause_s == pytest.approx(s.sentence_pause_s[0])
    assert not fit.plan(tight_speech + 0.5, sections, s).fits


def test_assembly_has_exact_frames_bed_and_fade():
    s = BulletinSettings(length_s=20)
    sections = [[tone(2.0), tone(1.5)], [tone(3.0)]]
    a = fit.assemble(sections, RATE, s)
    fit.add_bed(a.samples, a.spans[-1][1], RATE, s, fit.speech_rms(a.samples, a.spans), s.bed_level_db)
    assert len(a.samples) == 20 * RATE
    assert [e - b for b, e in a.spans] == [len(c) for sec in sections for c in sec]
    # Clips sit where the spans say, untouched.
    b, e = a.spans[1]
    assert np.array_equal(a.samples[b:e], sections[0][1])
    # After the speech: the bed, never dead air longer than allowed; the last sample is faded out.
    fade_start = len(a.samples) - int(s.fade_s * RATE)
    assert longest_silence_s(a.samples[:fade_start], RATE) <= s.max_silence_s
    after = frame_rms_db(a.samples[a.spans[-1][1] + RATE : fade_start], RATE)
    assert after.min() > -55
    assert abs(a.samples[-1]) < 1e-3
    bed_level = frame_rms_db(a.samples[a.spans[-1][1] + 2 * RATE : fade_start], RATE).mean()
    speech_level = frame_rms_db(sections[0][0], RATE).mean()
    assert bed_level == pytest.approx(speech_level + s.bed_level_db, abs=4)


def test_speech_that_does_not_fit_is_rejected():
    s = BulletinSettings(length_s=15)
    with pytest.raises(ValueError):
        fit.assemble([[tone(14.0)]], RATE, s)
