"""The amplifier relay (gpiozero), OFF from the first instant and never left keyed.

Public surface::

    Relay                 the relay on one GPIO pin: on(), off(), close(), is_on, history, factory_name
    force_off(settings)   drive it OFF from a fresh process (``playout relay-off``, systemd ExecStopPost)
    default_pin_factory() lgpio on a Pi (claiming outputs at their OFF level), else a logged simulation
    RelayError            the relay cannot be driven (a PlayoutError)
    SafeLGPIOFactory      the lgpio factory without the start-up blip (imported lazily: needs lgpio)

Example (runs anywhere)::

    from gpiozero.pins.mock import MockFactory
    from playout.config import RelaySettings
    from gpio import Relay

    with Relay(RelaySettings(pin=17), pin_factory=MockFactory()) as relay:
        relay.on()
        relay.off()
"""

from gpio.relay import (
    SIMULATED_WARNING,
    Relay,
    RelayError,
    default_pin_factory,
    factory_name,
    force_off,
)

__all__ = [
    "SIMULATED_WARNING",
    "Relay",
    "RelayError",
    "SafeLGPIOFactory",
    "default_pin_factory",
    "factory_name",
    "force_off",
]


def __getattr__(name: str):
    # gpio.pins subclasses gpiozero's lgpio factory, which imports lgpio: only on the Pi.
    if name in ("SafeLGPIOFactory", "SafeLGPIOPin"):
        from gpio import pins

        return getattr(pins, name)
    raise AttributeError(f"module 'gpio' has no attribute {name!r}")
