"""An lgpio pin factory that claims outputs at their OFF level, so a relay never blips at start-up.

gpiozero's :class:`~gpiozero.pins.lgpio.LGPIOFactory` claims a pin for output with
``lgpio.gpio_claim_output(handle, pin)``, whose level argument defaults to 0, and only then writes the
device's initial value (gpiozero PR #1177, still open).  On an active-low relay module, the usual
kind, that 0 energises the relay for as long as the two calls take: the amplifier keys, the horn
speakers thump, at every start of the daemon.  :class:`SafeLGPIOFactory` is told which level means
OFF for each pin and claims outputs at that level, so the line goes straight from input to OFF.

Wiring (BCM numbering; a 5 V active-low relay module, amplifier on the normally-open contact)::

    Pi pin 2  (5V)     ──── VCC
    Pi pin 6  (GND)    ──── GND
    Pi pin 11 (GPIO17) ──── IN      LOW = energised = amplifier on

Example (on a Pi; :class:`gpio.Relay` does this wiring itself)::

    from gpiozero import OutputDevice
    from gpio.pins import SafeLGPIOFactory

    factory = SafeLGPIOFactory(inactive_levels={17: 1})  # GPIO17 is OFF when HIGH
    relay = OutputDevice(17, active_high=False, initial_value=False, pin_factory=factory)
    relay.on()    # drives GPIO17 LOW
    relay.close()
    factory.close()

Importing this module needs the ``lgpio`` package (installed on ARM Linux only); :mod:`gpio` imports
it lazily, so the rest of the station runs anywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

# The module object, not its names: tests swap the ``lgpio`` it holds for a recording stand-in, and the
# stock pins and ours must then talk to the same one.
from gpiozero.pins import lgpio as _gz_lgpio
from gpiozero.pins.lgpio import LGPIOFactory, LGPIOPin

logger = logging.getLogger(__name__)

__all__ = ["SafeLGPIOFactory", "SafeLGPIOPin"]


def _level(value: object) -> int:
    if value not in (0, 1):  # True/False are 1/0
        raise ValueError(f"a GPIO level is 0 or 1, not {value!r}")
    return int(value)  # type: ignore[call-overload]


class SafeLGPIOPin(LGPIOPin):
    """An :class:`~gpiozero.pins.lgpio.LGPIOPin` whose output claims never pass through the ON level.

    Two entry points claim a pin for output, and both are covered:

    * ``pin.function = "output"`` (``_set_function``): claims at the factory's inactive level for
      this pin instead of lgpio's default 0;
    * ``pin.output_with_state(state)`` (what :class:`~gpiozero.OutputDevice` calls with its initial
      value): claims directly at ``state``, in one call, with no moment at any other level.

    Everything else (input claims, reads, writes, PWM, edge detection, close) is gpiozero's.
    """

    def _claim_output(self, level: int) -> None:
        # What the stock _set_function does before claiming: an alert callback must not outlive an
        # input claim.  lFlags stay 0, as in the stock claim.
        if self._callback is not None:
            self._callback.cancel()
            self._callback = None
        _gz_lgpio.lgpio.gpio_claim_output(self.factory._handle, self._number, level)

    def _set_function(self, value):
        if value == "output":
            self._claim_output(self.factory.inactive_level(self._number))
        else:
            super()._set_function(value)

    def output_with_state(self, state):
        self._claim_output(1 if state else 0)


class SafeLGPIOFactory(LGPIOFactory):
    """:class:`~gpiozero.pins.lgpio.LGPIOFactory` whose pins claim outputs at their OFF level.

    :param chip: the gpiochip to open; ``None`` lets gpiozero choose (4 on a Pi 5 with an old
        kernel, else 0).
    :param inactive_levels: BCM pin number → the level (0 or 1) that means OFF on that pin: 1 for an
        active-low relay module, 0 for an active-high one.
    :param default_inactive_level: the level for pins not listed; 0 is gpiozero's own behaviour.

    :class:`gpio.Relay` calls :meth:`set_inactive_level` for its pin before claiming it, so a
    factory built without ``inactive_levels`` (as ``GPIOZERO_PIN_FACTORY=lgpio`` gives) is safe too.
    """

    def __init__(
        self,
        chip: int | None = None,
        *,
        inactive_levels: Mapping[int, int] | None = None,
        default_inactive_level: int = 0,
    ):
        # Validate before the chip is opened: a bad argument must not leave a handle behind.
        levels = {int(pin): _level(level) for pin, level in (inactive_levels or {}).items()}
        default = _level(default_inactive_level)
        super().__init__(chip)
        self._inactive_levels = levels
        self._default_inactive_level = default
        self.pin_class = SafeLGPIOPin

    def inactive_level(self, pin: int) -> int:
        """The level an output claim of BCM ``pin`` starts at."""
        return self._inactive_levels.get(pin, self._default_inactive_level)

    def set_inactive_level(self, pin: int, level: int) -> None:
        """Declare the OFF level of BCM ``pin``; call it before the pin is claimed for output."""
        self._inactive_levels[int(pin)] = _level(level)
        logger.debug("GPIO%d claims outputs at level %d", pin, level)
