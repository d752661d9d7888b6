"""The Piper engine, run for real: Piper's own phonemizer and onnxruntime on a tiny generated voice.

No real voice is ever downloaded; tests/tts/piper_model.py builds a model with Piper's exact signature.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from playout.config import TtsSettings
from playout.errors import EngineError, EngineUnavailable
from playout.intake import parse_script
from tests.tts.piper_model import make_tiny_voice
from tts.audio import active_s
from tts.engines import get_engine
from tts.engines.piper import PiperEngine
from tts.render import Renderer


def short_script():
    text = "Kính thưa bà con. Hôm nay chúng ta học cách tạo mật khẩu an toàn."
    return parse_script(f"---\ntitle: Mật khẩu an toàn\n---\n{text}".encode(), "tin-ngan.md")


SENTENCES = ["Kính thưa bà con.", "Hôm nay chúng ta học cách dùng điện thoại thông minh.", "Xin cảm ơn."]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return make_tiny_voice(tmp_path_factory.mktemp("piper"))


@pytest.fixture(scope="module")
def piper(tiny_model):
    return get_engine("piper", TtsSettings(piper_model=tiny_model))


def unavailable(model) -> EngineUnavailable:
    engine = get_engine("piper", TtsSettings(piper_model=model))  # never raises: nothing is read yet
    with pytest.raises(EngineError) as err:
        engine.synthesize(["Xin chào."], voice=engine.default_voice(), rate_pct=0)
    assert type(err.value) is EngineUnavailable
    assert err.value.code == "ENGINE_UNAVAILABLE" and err.value.detail
    return err.value


def test_no_model_configured_is_unavailable_in_vietnamese():
    engine = get_engine("piper", TtsSettings())
    assert isinstance(engine, PiperEngine) and engine.voices() == ()
    err = unavailable(None)
    assert "Chưa cài mô hình giọng Piper" in err.message and "tts.piper_model" in err.message


def test_missing_model_file_names_where_it_looked(tmp_path):
    model = tmp_path / "vi_VN-vais1000-medium.onnx"
    err = unavailable(model)
    assert "không thấy tệp" in err.message and str(model) in err.message


def test_missing_json_config(tmp_path, tiny_model):
    model = tmp_path / tiny_model.name
    model.write_bytes(tiny_model.read_bytes())
    err = unavailable(model)
    assert "cấu hình" in err.message and f"{model}.json" in err.message


@pytest.mark.parametrize(
    "config_text",
    [
        "{ not json",
        b"\xff\xfe garbage",
        "[1, 2, 3]",
        json.dumps({"audio": {"sample_rate": 16000}}),  # valid JSON, not a voice config
    ],
)
def test_broken_json_config(tmp_path, tiny_model, config_text):
    model = tmp_path / tiny_model.name
    model.write_bytes(tiny_model.read_bytes())
    config = tmp_path / f"{model.name}.json"
    if isinstance(config_text, bytes):
        config.write_bytes(config_text)
    else:
        config.write_text(config_text, encoding="utf-8")
    err = unavailable(model)
    assert str(config) in err.message


def test_a_voice_for_another_language_is_refused(tmp_path):
    model = make_tiny_voice(tmp_path, name="en_US-test-tiny")
    config_path = tmp_path / "en_US-test-tiny.onnx.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["espeak"]["voice"] = "en-us"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    assert "tiếng Việt" in unavailable(model).message


def test_garbage_onnx_file(tmp_path, tiny_model):
    model = tmp_path / tiny_model.name
    model.write_bytes(b"this is not an onnx model\x00\x01" * 100)
    (tmp_path / f"{model.name}.json").write_bytes(tiny_model.with_name(f"{model.name}.json").read_bytes())
    err = unavailable(model)
    assert "ONNX" in err.message and str(model) in err.message


def test_onnx_model_with_other_inputs_is_not_a_piper_voice(tmp_path, tiny_model):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["output"])],
        "not_piper",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [3])],
    )
    model = tmp_path / tiny_model.name
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx_model.ir_version = 8
    onnx.save(onnx_model, model)
    (tmp_path / f"{model.name}.json").write_bytes(tiny_model.with_name(f"{model.name}.json").read_bytes())
    err = unavailable(model)
    assert "đầu vào không khớp" in err.message


def test_voice_is_the_model_stem(piper, tiny_model):
    assert piper.voices() == ("vi_VN-test-tiny",) == (tiny_model.stem,)
    assert piper.default_voice() == "vi_VN-test-tiny"
    assert piper.pick_voice("vi-VN-HoaiMyNeural") == "vi_VN-test-tiny"


def test_one_clip_per_sentence_from_the_model(piper):
    take = piper.synthesize(SENTENCES, voice=piper.default_voice(), rate_pct=0)
    assert take.engine == "piper" and take.sample_rate == 16000
    assert len(take.clips) == 3
    for clip in take.clips:
        assert clip.dtype == np.float32 and clip.ndim == 1
        assert active_s(clip, take.sample_rate) > 0.3
    # The tiny model sounds every phoneme id, so longer text is longer audio, and different text differs.
    assert len(take.clips[1]) > 2 * len(take.clips[2])
    assert not np.array_equal(take.clips[0][:1000], take.clips[2][:1000])
    # Loaded once, then reused.
    voice = piper.load()
    piper.synthesize(SENTENCES[:1], voice=piper.default_voice(), rate_pct=0)
    assert piper.load() is voice


def test_espeak_splitting_a_sentence_still_gives_one_clip(piper):
    # espeak-ng ends a sentence at "?" and "!": Piper returns two chunks, the engine joins them.
    voice = piper.load()
    assert len(list(voice.synthesize("Bà con đã nghe chưa? Hãy nghe kỹ!"))) == 2
    take = piper.synthesize(["Bà con đã nghe chưa? Hãy nghe kỹ!"], voice=piper.default_voice(), rate_pct=0)
    assert len(take.clips) == 1
    one = piper.synthesize(["Bà con đã nghe chưa?"], voice=piper.default_voice(), rate_pct=0)
    assert len(take.clips[0]) > len(one.clips[0])


def test_rate_sets_length_scale(piper):
    text = ["Bà con nhớ đặt mật khẩu khó đoán và không cho người khác mượn điện thoại để chuyển tiền."]
    slow = piper.synthesize(text, voice=piper.default_voice(), rate_pct=-10).speech_s
    natural = piper.synthesize(text, voice=piper.default_voice(), rate_pct=0).speech_s
    fast = piper.synthesize(text, voice=piper.default_voice(), rate_pct=15).speech_s
    assert fast < natural < slow
    assert fast == pytest.approx(natural / 1.15, rel=0.02)
    assert slow == pytest.approx(natural / 0.9, rel=0.02)


def test_brackets_are_text_not_raw_phonemes(piper):
    take = piper.synthesize(["Mã số [[ABC]] của bà con."], voice=piper.default_voice(), rate_pct=0)
    assert active_s(take.clips[0], take.sample_rate) > 0.3


def test_unknown_voice_and_runtime_failure_are_engine_errors(piper, monkeypatch):
    with pytest.raises(EngineError):
        piper.synthesize(["Xin chào."], voice="vi", rate_pct=0)

    class Broken:
        def run(self, *args, **kwargs):
            raise RuntimeError("onnxruntime: bad allocation")

    engine = get_engine("piper", piper.settings)
    monkeypatch.setattr(engine.load(), "session", Broken())
    with pytest.raises(EngineError) as err:
        engine.synthesize(["Xin chào."], voice=engine.default_voice(), rate_pct=0)
    assert type(err.value) is EngineError and "bad allocation" in err.value.detail


def test_renderer_falls_back_to_espeak_without_a_model(make_config, tmp_path):
    config = make_config(
        bulletin={"length_s": 25},
        tts={"engines": ["piper", "espeak"], "piper_model": str(tmp_path / "no.onnx")},
    )
    result = Renderer(config).render(short_script())
    assert result.summary["engine"] == "espeak"
    assert any("piper" in w and "không thấy tệp" in w for w in result.summary["warnings"])


def test_renderer_makes_a_bulletin_with_the_model(make_config, tiny_model):
    config = make_config(
        bulletin={"length_s": 25}, tts={"engines": ["piper", "espeak"], "piper_model": str(tiny_model)}
    )
    result = Renderer(config).render(short_script())
    s = result.summary
    assert s["engine"] == "piper" and s["voice"] == "vi_VN-test-tiny"
    assert s["duration_s"] == 25 and not any("dự phòng" in w for w in s["warnings"])


def test_estimate_uses_the_engine_that_will_read(make_config, tmp_path):
    """Without a model the estimate is espeak's, as the render will be."""
    from playout.intake import parse_script
    from tts.render import Renderer

    config = make_config(tts={"engines": ["piper", "espeak"], "piper_model": str(tmp_path / "none.onnx")})
    est = Renderer(config).estimate(parse_script("Xin chào bà con. Hôm nay học số.".encode(), "a.txt"))
    assert est.engine == "espeak" and est.voice == "vi"
