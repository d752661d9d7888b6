"""A tiny stand-in Piper voice, generated on the spot (tests never download a real voice).

The ONNX graph has exactly the signature of a real Piper VITS export, so ``PiperVoice.load`` and
``PiperVoice.synthesize`` run unchanged, with Piper's own espeak-ng phonemizer in front:

    inputs   input          int64   [1, N]   phoneme ids (with ^ … _ … $ framing)
             input_lengths  int64   [1]
             scales         float32 [3]      noise_scale, length_scale, noise_w
    output   output         float32 [1, 1, T]

Instead of a voice it plays, for every phoneme id, a tone of ``150 + 4 * id`` Hz lasting
``seconds_per_id * length_scale`` seconds at amplitude 0.3: different text gives different audio, a
smaller length_scale gives shorter audio, and every sentence is clearly audible (the renderer's verifier
needs a few hundred milliseconds of sound per syllable).

    onnx_path = make_tiny_voice(tmp_path)   # tmp_path/vi_VN-test-tiny.onnx and .onnx.json
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from piper.phoneme_ids import DEFAULT_PHONEME_ID_MAP

#: Old enough for any onnxruntime piper-tts supports; real Piper voices are exported at opset 15.
OPSET = 13
IR_VERSION = 8
#: About 4.5 syllables/s for Vietnamese text through espeak-ng phonemes, like a real voice.
SECONDS_PER_ID = 0.018
AMPLITUDE = 0.3


def _const(name: str, value, dtype) -> onnx.NodeProto:
    return helper.make_node(
        "Constant", [], [name], value=numpy_helper.from_array(np.array(value, dtype=dtype), name)
    )


def tiny_graph(sample_rate: int, seconds_per_id: float = SECONDS_PER_ID) -> onnx.ModelProto:
    nodes = [
        _const("one", 1, np.int64),
        _const("zero", 0, np.int64),
        _const("per_id", sample_rate * seconds_per_id, np.float32),
        _const("rate", float(sample_rate), np.float32),
        _const("hz_per_id", 4.0, np.float32),
        _const("base_hz", 150.0, np.float32),
        _const("two_pi", 2 * math.pi, np.float32),
        _const("amp", AMPLITUDE, np.float32),
        _const("col", [-1, 1], np.int64),
        _const("row", [1, -1], np.int64),
        _const("out_shape", [1, 1, -1], np.int64),
        # Samples per id: length_scale (scales[1]) times the base duration, at least one.
        helper.make_node("Gather", ["scales", "one"], ["length_scale"], axis=0),
        helper.make_node("Mul", ["length_scale", "per_id"], ["n_float"]),
        helper.make_node("Round", ["n_float"], ["n_round"]),
        helper.make_node("Cast", ["n_round"], ["n_raw"], to=TensorProto.INT64),
        helper.make_node("Max", ["n_raw", "one"], ["n"]),
        # Time within one phoneme's tone, as a row [1, n].
        helper.make_node("Range", ["zero", "n", "one"], ["t_int"]),
        helper.make_node("Cast", ["t_int"], ["t_samples"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["t_samples", "rate"], ["t_flat"]),
        helper.make_node("Reshape", ["t_flat", "row"], ["t"]),
        # One frequency per id, as a column [N, 1]; the product broadcasts to [N, n].
        helper.make_node("Cast", ["input"], ["ids"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["ids", "col"], ["ids_col"]),
        helper.make_node("Mul", ["ids_col", "hz_per_id"], ["hz_step"]),
        helper.make_node("Add", ["hz_step", "base_hz"], ["hz"]),
        helper.make_node("Mul", ["hz", "t"], ["cycles"]),
        helper.make_node("Mul", ["cycles", "two_pi"], ["phase"]),
        helper.make_node("Sin", ["phase"], ["wave"]),
        helper.make_node("Mul", ["wave", "amp"], ["loud"]),
        helper.make_node("Reshape", ["loud", "out_shape"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_piper_voice",
        # input_lengths is unused (batch of one), but it must be there: Piper always feeds it.
        inputs=[
            helper.make_tensor_value_info("input", TensorProto.INT64, [1, "phonemes"]),
            helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1]),
            helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3]),
        ],
        outputs=[helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, "time"])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="playout-tests"
    )
    # make_model stamps the installed onnx's newest IR version, which onnxruntime may not read yet.
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def voice_config(sample_rate: int) -> dict:
    """A Piper voice config shaped like the published vi_VN voices (espeak-ng "vi", default id map)."""
    id_map = {phoneme: list(ids) for phoneme, ids in DEFAULT_PHONEME_ID_MAP.items()}
    return {
        "dataset": "test-tiny",
        "audio": {"sample_rate": sample_rate, "quality": "x_low"},
        "espeak": {"voice": "vi"},
        "language": {"code": "vi_VN", "family": "vi", "region": "VN"},
        "inference": {"noise_scale": 0.667, "length_scale": 1.0, "noise_w": 0.8},
        "phoneme_type": "espeak",
        "phoneme_map": {},
        "phoneme_id_map": id_map,
        "num_symbols": 1 + max(i for ids in id_map.values() for i in ids),
        "num_speakers": 1,
        "speaker_id_map": {},
        "hop_length": 256,
        "piper_version": "1.8.0",
    }


def make_tiny_voice(
    folder: Path, name: str = "vi_VN-test-tiny", sample_rate: int = 16000, **graph_options
) -> Path:
    """Write ``<name>.onnx`` and ``<name>.onnx.json`` into folder; return the .onnx path."""
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / f"{name}.onnx"
    onnx.save(tiny_graph(sample_rate, **graph_options), model_path)
    config = voice_config(sample_rate)
    Path(f"{model_path}.json").write_text(json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8")
    return model_path
