"""The amplifier relay: one GPIO pin, OFF from the first instant, never left keyed.

Wiring (BCM numbering; most relay modules are active-low, i.e. energised when the pin is LOW; the
amplifier's mains or enable line goes through the normally-open contact, so a dead Pi leaves it off)::

    Pi pin 2  (5V)     ──── VCC      relay module
    Pi pin 6  (GND)    ──── GND
    Pi pin 11 (GPIO17) ──── IN       relay.pin: 17, relay.active_high: false
                                     COM / NO ──── amplifier power or remote-on

Example (runs anywhere: without GPIO the relay is simulated and its changes are logged)::

    from gpiozero.pins.mock import MockFactory
    from playout.config import RelaySettings
    from gpio import Relay

    with Relay(RelaySettings(pin=17), pin_factory=MockFactory()) as relay:
        keyed_at = relay.on()      # GPIO17 goes LOW: amplifier on
        ...                        # pre-roll, bulletin, tail
        relay.off()                # GPIO17 goes HIGH: amplifier off

``relay.history`` keeps the transitions for the as-run log and the health endpoint; a watchdog forces
the relay off ``max_on_s`` after it was keyed, whatever the caller is doing.
"""

from __future__ import annotations

import datetime as dt
import glob
import importlib
import logging
import os
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from types import TracebackType

from gpiozero import OutputDevice
from gpiozero.pins import Factory
from gpiozero.pins.mock import MockFactory

from playout.config import RelaySettings
from playout.errors import (
    RelayError as RelayError,  # lives in the one error tree now; importable from here as before
)

logger = logging.getLogger(__name__)

SIMULATED_WARNING = "no GPIO here: relay is simulated (changes are logged)"
#: Transitions kept in ``Relay.history`` (a few per day; the log keeps them all).
HISTORY_LIMIT = 1000

OnChange = Callable[[bool, dt.datetime], None]

# gpiozero's factory classes and the names GPIOZERO_PIN_FACTORY knows them by.
_FACTORY_NAMES = {
    "MockFactory": "mock",
    "LGPIOFactory": "lgpio",
    "RPiGPIOFactory": "rpigpio",
    "PiGPIOFactory": "pigpio",
    "NativeFactory": "native",
}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _inactive_level(settings: RelaySettings) -> int:
    return 0 if settings.active_high else 1


def factory_name(factory: Factory) -> str:
    """The GPIOZERO_PIN_FACTORY-style name of ``factory``: "mock", "lgpio", "rpigpio", …"""
    for cls in type(factory).__mro__:
        if cls.__name__ in _FACTORY_NAMES:
            return _FACTORY_NAMES[cls.__name__]
    return type(factory).__name__.lower().removesuffix("factory")


def _safe_lgpio_factory(inactive_levels: dict[int, int] | None) -> Factory:
    # Imported here: gpio.pins needs lgpio, which exists on the Pi only.
    from gpio.pins import SafeLGPIOFactory

    return SafeLGPIOFactory(inactive_levels=inactive_levels)


def default_pin_factory(*, inactive_levels: dict[int, int] | None = None) -> Factory:
    """The pin factory for this machine.

    * ``GPIOZERO_PIN_FACTORY`` set: that factory (``lgpio`` means our :class:`~gpio.pins.SafeLGPIOFactory`,
      anything else is looked up among gpiozero's entry points, as gpiozero itself does);
    * a ``/dev/gpiochip*`` and an importable ``lgpio``: :class:`~gpio.pins.SafeLGPIOFactory`, told the
      ``inactive_levels`` (BCM pin → OFF level) if given;
    * otherwise gpiozero's :class:`~gpiozero.pins.mock.MockFactory`, with a WARNING: the station runs,
      the relay is simulated, and its changes are logged.

    A Pi whose GPIO chip exists but cannot be opened (the user is not in group ``gpio``) raises
    :class:`RelayError` rather than quietly simulating: the amplifier would never key.
    """
    name = os.environ.get("GPIOZERO_PIN_FACTORY", "").strip()
    if name:
        logger.info("pin factory %r from GPIOZERO_PIN_FACTORY", name)
        group = entry_points(group="gpiozero_pin_factories")
        try:
            if name.lower() == "lgpio":
                return _safe_lgpio_factory(inactive_levels)
            for wanted in (name, name.lower()):
                for ep in group:
                    if ep.name == wanted:
                        return ep.load()()
        except Exception as exc:  # asked for by name: fail loudly, never simulate instead
            raise RelayError(
                f"GPIOZERO_PIN_FACTORY={name!r}: không khởi động được bộ điều khiển GPIO này",
                detail=f"{type(exc).__name__}: {exc}",
            ) from exc
        raise RelayError(
            f"GPIOZERO_PIN_FACTORY={name!r}: không có bộ điều khiển GPIO này",
            detail=f"known: {sorted(ep.name for ep in group)}",
        )
    chips = sorted(glob.glob("/dev/gpiochip*"))
    if chips:
        try:
            importlib.import_module("lgpio")
        except ImportError as exc:
            logger.warning("GPIO chips %s but lgpio is not importable (%s)", chips, exc)
        else:
            try:
                return _safe_lgpio_factory(inactive_levels)
            except Exception as exc:
                raise RelayError(
                    "Không mở được GPIO để điều khiển rơ-le (người dùng có trong nhóm gpio không?)",
                    detail=f"{type(exc).__name__}: {exc}; chips: {chips}",
                ) from exc
    logger.warning(SIMULATED_WARNING)
    return MockFactory()


class Relay:
    """The amplifier relay on one GPIO pin (gpiozero :class:`~gpiozero.OutputDevice`).

    Off at construction, before anything else: the pin is claimed at the OFF level (see
    :mod:`gpio.pins` for why that needs care with lgpio).  ``active_high`` comes from the settings
    (default False: most relay modules are energised when the pin is LOW).

    :param settings: ``relay`` section of schedule.yaml (pin, active_high, max_on_s, …).
    :param pin_factory: a gpiozero factory; ``None`` uses :func:`default_pin_factory` (and the relay
        then owns it and closes it in :meth:`close`).
    :param on_change: called as ``on_change(is_on, when)`` for every entry added to :attr:`history`
        (the initial OFF included), under the relay's lock, so calls arrive in order.  It must be
        quick and must not wait for another thread that uses the relay; its exceptions are logged.

    A watchdog (a daemon :class:`threading.Timer`) forces the relay off ``max_on_s`` after
    :meth:`on`; :meth:`off` cancels it and every :meth:`on` restarts it.  :meth:`off` and :meth:`close`
    never raise: they run in ``finally`` blocks and signal handlers.
    """

    def __init__(
        self,
        settings: RelaySettings,
        *,
        pin_factory: Factory | None = None,
        on_change: OnChange | None = None,
    ):
        self.settings = settings
        self._on_change = on_change
        self._lock = threading.RLock()
        self._watchdog: threading.Timer | None = None
        self._is_on = False
        self._keyed_at: dt.datetime | None = None
        self._closed = False
        self.history: list[tuple[dt.datetime, bool]] = []
        inactive = _inactive_level(settings)
        self._owns_factory = pin_factory is None
        if pin_factory is None:
            pin_factory = default_pin_factory(inactive_levels={settings.pin: inactive})
        factory = self._factory = pin_factory
        self.factory_name = factory_name(factory)
        # A SafeLGPIOFactory someone else built must learn this pin's OFF level before the claim.
        # Duck-typed: gpio.pins cannot even be imported without lgpio.
        if hasattr(factory, "set_inactive_level"):
            factory.set_inactive_level(settings.pin, inactive)
        try:
            self._device = OutputDevice(
                settings.pin, active_high=settings.active_high, initial_value=False, pin_factory=factory
            )
        except Exception as exc:
            if self._owns_factory:
                factory.close()
            raise RelayError(
                f"Không dùng được chân GPIO{settings.pin} cho rơ-le",
                detail=f"{type(exc).__name__}: {exc}",
            ) from exc
        when = _now()
        logger.info(
            "relay OFF (GPIO%d, active_%s, %s pins)",
            settings.pin,
            "high" if settings.active_high else "low",
            self.factory_name,
        )
        self._record(False, when)

    # -- state -------------------------------------------------------------------------------------

    @property
    def is_on(self) -> bool:
        """True while the amplifier is keyed."""
        return self._is_on

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("ON" if self._is_on else "OFF")
        return f"<Relay GPIO{self.settings.pin} {state} ({self.factory_name})>"

    def _record(self, state: bool, when: dt.datetime) -> None:
        # Called with the lock held (or from __init__, before anyone else can see the relay).
        self.history.append((when, state))
        del self.history[:-HISTORY_LIMIT]
        if self._on_change is not None:
            try:
                self._on_change(state, when)
            except Exception:
                logger.exception("relay on_change callback failed")

    # -- transitions -------------------------------------------------------------------------------

    def on(self) -> dt.datetime:
        """Key the amplifier; returns when it was keyed (UTC).  Restarts the watchdog.

        Already on: the pin is driven again, the watchdog restarts, and the original keying time is
        returned.  Raises :class:`RelayError` if the relay is closed or the pin cannot be driven.
        """
        with self._lock:
            if self._closed:
                raise RelayError("Rơ-le đã đóng", detail=f"GPIO{self.settings.pin}: on() after close()")
            try:
                self._device.on()
            except Exception as exc:
                self._drive_off_quietly()
                raise RelayError(
                    f"Không bật được rơ-le GPIO{self.settings.pin}", detail=f"{type(exc).__name__}: {exc}"
                ) from exc
            when = _now()
            self._start_watchdog()
            if self._is_on:
                logger.debug("relay already ON; watchdog restarted")
                assert self._keyed_at is not None
                return self._keyed_at
            self._is_on = True
            self._keyed_at = when
            logger.info("relay ON")
            self._record(True, when)
            return when

    def off(self) -> dt.datetime:
        """Unkey the amplifier; returns when (UTC).  Idempotent; never raises.

        The pin is driven to OFF every time, even when the relay believes it is already off: cheap,
        and it corrects a pin someone else disturbed.
        """
        try:
            with self._lock:
                self._cancel_watchdog()
                if self._closed:
                    return _now()
                self._device.off()
                when = _now()
                self._set_off(when)
                return when
        except Exception:
            logger.exception("relay OFF failed on GPIO%d", self.settings.pin)
            return _now()

    def _set_off(self, when: dt.datetime) -> None:
        if self._is_on:
            self._is_on = False
            self._keyed_at = None
            logger.info("relay OFF")
            self._record(False, when)

    def _drive_off_quietly(self) -> None:
        try:
            self._device.off()
        except Exception:
            logger.exception("relay OFF failed on GPIO%d", self.settings.pin)

    # -- watchdog ----------------------------------------------------------------------------------

    def _start_watchdog(self) -> None:
        self._cancel_watchdog()
        timer = threading.Timer(self.settings.max_on_s, self._watchdog_fired)
        timer.name = f"relay-watchdog-GPIO{self.settings.pin}"
        timer.daemon = True  # must never keep a stopping daemon alive
        self._watchdog = timer
        timer.start()

    def _cancel_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _watchdog_fired(self) -> None:
        try:
            with self._lock:
                # off() or a re-key may have won the race for the lock: then this timer is stale.
                if self._watchdog is not threading.current_thread() or self._closed:
                    return
                self._watchdog = None
                self._device.off()
                when = _now()
                logger.error("relay forced off by watchdog after %g s", self.settings.max_on_s)
                self._set_off(when)
        except Exception:
            logger.exception("relay watchdog could not force GPIO%d off", self.settings.pin)

    # -- lifetime ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Off, then release the pin (and the factory, if the relay made it).  Idempotent; never raises."""
        with self._lock:
            if self._closed:
                return
            self.off()
            self._closed = True
            try:
                self._device.close()
            except Exception:
                logger.exception("releasing GPIO%d failed", self.settings.pin)
            if self._owns_factory:
                try:
                    self._factory.close()
                except Exception:
                    logger.exception("closing the %s pin factory failed", self.factory_name)
            logger.debug("relay GPIO%d released", self.settings.pin)

    def __enter__(self) -> Relay:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def force_off(settings: RelaySettings, *, pin_factory: Factory | None = None) -> str:
    """Drive the relay OFF from a fresh process, then release the pin; returns what was done.

    For ``playout relay-off`` (systemd ``ExecStopPost``): the daemon may have died with the relay
    keyed, and Raspberry Pi OS kernels keep a GPIO output driven after its process dies (unless the
    ``strict_gpiod`` option is set).  The pin is claimed at the OFF level (no blip even now), driven
    OFF explicitly, and released (gpiozero returns it to a floating input, which relay modules read as
    off through their own pull resistors).
    Raises :class:`RelayError` when the pin cannot be claimed.
    """
    inactive = _inactive_level(settings)
    owns = pin_factory is None
    factory = pin_factory
    if factory is None:
        factory = default_pin_factory(inactive_levels={settings.pin: inactive})
    if hasattr(factory, "set_inactive_level"):
        factory.set_inactive_level(settings.pin, inactive)
    try:
        try:
            device = OutputDevice(
                settings.pin, active_high=settings.active_high, initial_value=False, pin_factory=factory
            )
        except Exception as exc:
            raise RelayError(
                f"Không dùng được chân GPIO{settings.pin} để tắt rơ-le",
                detail=f"{type(exc).__name__}: {exc}",
            ) from exc
        try:
            device.off()
        finally:
            device.close()
    finally:
        if owns:
            factory.close()
    text = (
        f"relay on GPIO{settings.pin} forced OFF: pin {'HIGH' if inactive else 'LOW'} "
        f"(active_{'high' if settings.active_high else 'low'}, {factory_name(factory)} pins)"
    )
    logger.info(text)
    return text
