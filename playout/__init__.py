"""The ward loudspeaker station ("Loa phường thông minh – Học số mỗi ngày 3 phút").

Packages: ``playout`` (the station: config, intake, approvals, library, daemon, API and web page, CLI),
``tts`` (spoken-form normalization, speech engines, fitting to length, loudness) and ``gpio`` (the
amplifier relay).
"""

__version__ = "0.1.0"
