"""Turning a bulletin script into air-ready speech.

Public surface: ``tts.normalize`` (Vietnamese spoken form), ``tts.render`` (the pipeline: engine chain →
assembly → fit to length → loudness → verify → cache), ``tts.engines`` (the engine seam).
"""
