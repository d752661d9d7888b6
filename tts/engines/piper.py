"""Piper: an optional offline neural engine, for stations that install a Vietnamese voice model locally.

It sounds far better than espeak-ng and needs no network, but the model (tens of megabytes, e.g.
``vi_VN-vais1000-medium.onnx`` with its ``.onnx.json`` beside it) must be copied onto the Pi by hand and
named in ``tts.piper_model``.  Nothing here ever downloads a voice.

Constructing the engine touches no file: the model is checked and loaded the first time speech is
asked for, then kept (loading takes seconds on a Pi).  Anything wrong with the model or its config is
``EngineUnavailable`` with a Vietnamese message naming the file, so the chain moves on to the next engine
and the operator knows what to fix.

    engine = get_engine("piper", settings)          # settings.piper_model = Path(".../vi_VN-x.onnx")
    take = engine.synthesize(["Xin chào bà con."], voice=engine.default_voice(), rate_pct=0)
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from playout.errors import EngineError, EngineUnavailable
from tts.engines import Engine, Take

if TYPE_CHECKING:  # piper pulls in onnxruntime: imported only when a model is actually loaded
    import numpy as np
    from piper import PiperVoice

logger = logging.getLogger(__name__)


def trim_silence(samples: np.ndarray, rate: int) -> np.ndarray:
    """tts.audio's, imported when samples exist: checking a script (in the daemon) needs no numpy."""
    from tts.audio import trim_silence as trim

    return trim(samples, rate)


#: What Piper feeds a single-speaker VITS export (piper/voice.py, phoneme_ids_to_audio); a model
#: with other inputs would fail on the first sentence instead of when it is loaded.
EXPECTED_INPUTS = {"input": "tensor(int64)", "input_lengths": "tensor(int64)", "scales": "tensor(float)"}
#: Multi-speaker voices take a speaker id as well.
SPEAKER_INPUT = ("sid", "tensor(int64)")
#: Piper frames every sentence with these symbols (piper/const.py); without them it raises KeyError.
FRAMING_SYMBOLS = ("^", "_", "$")


class PiperEngine(Engine):
    name = "piper"
    #: A guess, not a calibration: the published vi_VN voices (vais1000, 25hours_single) read news-like
    #: text a little faster than espeak-ng at 165 wpm.  The renderer corrects the rate after the first
    #: synthesis if this is off, so a wrong guess costs one extra synthesis, not a wrong bulletin.
    syllables_per_s = 4.5

    def __init__(self, settings):
        super().__init__(settings)
        self.model_path: Path | None = settings.piper_model
        self._voice: PiperVoice | None = None
        # The daemon and the API may both render; loading twice would double a Pi's memory for nothing.
        self._lock = threading.Lock()

    @property
    def config_path(self) -> Path | None:
        return None if self.model_path is None else Path(f"{self.model_path}.json")

    def default_voice(self) -> str:
        # Named after the file, known without loading it (the estimate asks for it before any synthesis).
        return self.model_path.stem if self.model_path is not None else ""

    def voices(self) -> Sequence[str]:
        return (self.default_voice(),) if self.model_path is not None else ()

    def ready(self) -> bool:
        return (
            self.model_path is not None
            and self.model_path.is_file()
            and bool(self.config_path and self.config_path.is_file())
        )

    def length_scale(self, base: float, rate_pct: int) -> float:
        """Piper's phoneme length multiplier for a rate: +10 % speed is 1/1.1 of the voice's length."""
        return base / max(0.1, 1 + rate_pct / 100)

    # -- loading --------------------------------------------------------------------------------------

    def load(self) -> PiperVoice:
        """The loaded voice, checked on first use and then cached on this engine."""
        with self._lock:
            if self._voice is None:
                self._voice = self._load()
            return self._voice

    def _unavailable(self, message: str, detail: str) -> EngineUnavailable:
        return EngineUnavailable(message, detail=detail, engine=self.name, model=str(self.model_path))

    def _load(self) -> PiperVoice:
        model, config_path = self.model_path, self.config_path
        if model is None or config_path is None:
            raise EngineUnavailable(
                "Chưa cài mô hình giọng Piper: chưa khai báo tệp mô hình (tts.piper_model trong cấu hình)",
                detail="tts.piper_model is not set",
                engine=self.name,
            )
        if not _is_file(model):
            raise self._unavailable(
                f"Chưa cài mô hình giọng Piper: không thấy tệp {model}", f"model file not found: {model}"
            )
        if not _is_file(config_path):
            raise self._unavailable(
                f"Thiếu tệp cấu hình của mô hình giọng Piper: không thấy tệp {config_path}",
                f"voice config not found: {config_path}",
            )
        config = self._read_config(config_path)
        try:
            from piper import PiperVoice
        except ImportError as exc:  # piper-tts is optional on a station
            raise self._unavailable(
                "Chưa cài gói piper-tts nên không dùng được giọng Piper", f"cannot import piper: {exc}"
            ) from None
        started = time.monotonic()
        try:
            voice = PiperVoice.load(model, config_path=config_path)
        except Exception as exc:  # onnxruntime raises its own pybind types (InvalidProtobuf, Fail, …)
            raise self._unavailable(
                f"Tệp mô hình giọng Piper bị hỏng hoặc không phải mô hình ONNX: {model}",
                f"onnxruntime cannot load {model}: {type(exc).__name__}: {exc}",
            ) from None
        self._check_signature(voice, config)
        logger.info(
            "loaded Piper voice %s (%d Hz) in %.1fs",
            model.name,
            voice.config.sample_rate,
            time.monotonic() - started,
        )
        return voice

    def _read_config(self, path: Path) -> dict:
        """The voice config, checked for what Piper and this engine rely on, before the slow model load."""
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise self._unavailable(
                f"Không đọc được tệp cấu hình của mô hình giọng Piper: {path}", f"cannot read {path}: {exc}"
            ) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise self._unavailable(
                f"Tệp cấu hình của mô hình giọng Piper bị hỏng (không phải JSON hợp lệ): {path}",
                f"invalid JSON in {path}: {exc}",
            ) from None
        problems = _config_problems(config)
        if problems:
            raise self._unavailable(
                f"Tệp cấu hình của mô hình giọng Piper không dùng được: {path} "
                f"({'; '.join(vi for vi, _ in problems)})",
                f"unusable voice config {path}: {'; '.join(en for _, en in problems)}",
            )
        return config

    def _check_signature(self, voice: PiperVoice, config: dict) -> None:
        inputs = {i.name: i.type for i in voice.session.get_inputs()}
        expected = dict(EXPECTED_INPUTS)
        if config.get("num_speakers", 1) > 1:
            expected[SPEAKER_INPUT[0]] = SPEAKER_INPUT[1]
        outputs = voice.session.get_outputs()
        if inputs != expected or not outputs or outputs[0].type != "tensor(float)":
            raise self._unavailable(
                f"Tệp mô hình không phải giọng Piper (đầu vào không khớp): {self.model_path}",
                f"model inputs {inputs}, outputs {[(o.name, o.type) for o in outputs]}; "
                f"Piper feeds {expected} and reads one float output",
            )

    # -- synthesis ------------------------------------------------------------------------------------

    def synthesize(self, sentences: Sequence[str], *, voice: str, rate_pct: int) -> Take:
        piper_voice = self.load()
        if voice != self.default_voice():
            raise EngineError(f"Giọng '{voice}' không có trong mô hình Piper", engine=self.name)
        from piper import SynthesisConfig

        syn = SynthesisConfig(length_scale=self.length_scale(piper_voice.config.length_scale, rate_pct))
        rate = piper_voice.config.sample_rate
        # One sentence at a time: onnxruntime already uses every core for one run.
        clips = [self._speak(piper_voice, sentence, syn, rate) for sentence in sentences]
        return Take(self.name, voice, rate_pct, rate, clips)

    def _speak(self, voice: PiperVoice, sentence: str, syn, rate: int) -> np.ndarray:
        import numpy as np

        # Piper reads "[[ … ]]" as raw phonemes; a script's brackets are text, never phonemes.
        text = sentence.replace("[[", "[ [").replace("]]", "] ]")
        try:
            # espeak-ng may split one sentence into several (it ends a sentence at every "." or "?");
            # the fitter wants one clip per input sentence, so the pieces are joined back.
            chunks = [np.ravel(c.audio_float_array) for c in voice.synthesize(text, syn_config=syn)]
        except Exception as exc:  # onnxruntime and the phonemizer raise types of their own
            raise EngineError(
                "Piper báo lỗi khi đọc văn bản",
                detail=f"{type(exc).__name__}: {exc} (sentence {sentence[:60]!r})",
                engine=self.name,
            ) from None
        audio = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
        if not np.isfinite(audio).all():
            raise EngineError(
                "Piper trả về dữ liệu âm thanh hỏng", detail=f"NaN/inf in {sentence[:60]!r}", engine=self.name
            )
        clip = trim_silence(audio, rate)
        if clip.size == 0 and sentence.strip():
            raise EngineError(
                f"Piper không đọc ra tiếng cho câu: {sentence[:60]}",
                detail=f"{len(chunks)} chunks, {len(audio)} samples, all silent, for {sentence!r}",
                engine=self.name,
            )
        logger.debug("piper: %.2fs for %r", len(clip) / rate, sentence[:60])
        return clip

    def close(self) -> None:
        with self._lock:
            self._voice = None


def _is_file(path: Path) -> bool:
    # is_file() raises on a folder the station may not enter (EACCES); for the operator that is the
    # same as a missing file, and the message names the path either way.
    try:
        return path.is_file()
    except OSError:
        return False


def _config_problems(config: object) -> list[tuple[str, str]]:
    """What in a voice config would make Piper fail or read the text in the wrong language.

    Each problem comes in Vietnamese (for the operator) and English (for the log).
    """
    if not isinstance(config, dict):
        return [("không phải một đối tượng JSON", "not a JSON object")]

    def positive_int(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value > 0

    problems = []
    audio = config.get("audio")
    if not positive_int(audio.get("sample_rate") if isinstance(audio, dict) else None):
        problems.append(("thiếu tần số lấy mẫu", "audio.sample_rate missing or not a positive integer"))
    for key in ("num_symbols", "num_speakers"):
        if not positive_int(config.get(key)):
            problems.append((f"thiếu {key}", f"{key} missing or not a positive integer"))
    inference = config.get("inference", {})
    length = inference.get("length_scale", 1.0) if isinstance(inference, dict) else None
    if not isinstance(length, int | float) or isinstance(length, bool) or length <= 0:
        problems.append(("length_scale không hợp lệ", "inference.length_scale not a positive number"))
    # Other phoneme types (pinyin, …) fetch helper models from the Internet on first use; the
    # published Vietnamese voices all use espeak-ng's "vi" phonemes.
    kind = config.get("phoneme_type", "espeak")
    espeak = config.get("espeak")
    lang = espeak.get("voice") if isinstance(espeak, dict) else None
    if kind != "espeak" or not isinstance(lang, str) or not lang.lower().startswith("vi"):
        problems.append(
            ("không phải giọng tiếng Việt", f"phoneme_type {kind!r}, espeak.voice {lang!r}: not Vietnamese")
        )
    id_map = config.get("phoneme_id_map")
    if not isinstance(id_map, dict) or not id_map:
        problems.append(("thiếu bảng âm vị", "phoneme_id_map missing"))
    else:
        missing = [s for s in FRAMING_SYMBOLS if s not in id_map]
        malformed = not all(
            isinstance(ids, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
            for ids in id_map.values()
        )
        if missing or malformed:
            problems.append(
                ("bảng âm vị không hợp lệ", f"phoneme_id_map lacks {missing} or has non-integer ids")
            )
    return problems
