"""The espeak-ng engine, run for real."""

import numpy as np
import pytest

from playout.config import TtsSettings
from playout.errors import EngineError
from tts.audio import active_s
from tts.engines import get_engine
from tts.engines.espeak import parse_streamed_wav


@pytest.fixture(scope="module")
def espeak():
    return get_engine("espeak", TtsSettings())


def test_one_clip_per_sentence_with_speech_in_each(espeak):
    sentences = ["Kính thưa bà con.", "Hôm nay chúng ta học cách dùng điện thoại thông minh.", "Xin cảm ơn."]
    take = espeak.synthesize(sentences, voice="vi", rate_pct=0)
    assert len(take.clips) == 3
    assert take.sample_rate == 22050
    for clip in take.clips:
        assert clip.dtype == np.float32
        assert active_s(clip, take.sample_rate) > 0.3
    # Longer sentences take longer to read.
    assert len(take.clips[1]) > 2 * len(take.clips[2])


def test_rate_changes_duration(espeak):
    text = ["Bà con nhớ đặt mật khẩu khó đoán và không cho người khác mượn điện thoại để chuyển tiền."]
    slow = espeak.synthesize(text, voice="vi", rate_pct=-10).speech_s
    fast = espeak.synthesize(text, voice="vi", rate_pct=15).speech_s
    assert fast < slow * 0.9


def test_text_is_read_not_interpreted(espeak):
    # Leading dash (would be an option on argv), markup characters, quotes: all plain text on stdin.
    take = espeak.synthesize(['-v en <speak> & "xin chào"'], voice="vi", rate_pct=0)
    assert active_s(take.clips[0], take.sample_rate) > 0.3


def test_unknown_voice_is_refused(espeak):
    with pytest.raises(EngineError):
        espeak.synthesize(["Xin chào."], voice="en-us", rate_pct=0)


def test_voice_choice_falls_back_to_the_engines_own(espeak):
    assert espeak.pick_voice("vi-vn-x-south") == "vi-vn-x-south"
    assert espeak.pick_voice("vi-VN-HoaiMyNeural") == "vi"
    assert espeak.pick_voice(None) == "vi"


def test_broken_wav_stream_is_an_engine_error():
    with pytest.raises(EngineError):
        parse_streamed_wav(b"not a wav at all, just some bytes here........")
