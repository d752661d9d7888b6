"""The amplifier relay: MockFactory for behaviour, a recording lgpio for the order of pin writes."""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import sys
import threading
import time
import types

import gpiozero.pins
import gpiozero.pins.local
import pytest
from gpiozero import OutputDevice
from gpiozero.pins.mock import MockFactory, MockPin

import gpio
import gpio.relay
from gpio import SIMULATED_WARNING, Relay, RelayError, default_pin_factory, force_off
from playout.config import RelaySettings

PIN = 17


# -- a recording stand-in for the lgpio module ------------------------------------------------------


class FakeLgpio(types.ModuleType):
    """Just enough of lgpio for gpiozero's LGPIOPin; records every claim and write, in order.

    ``events`` holds ("claim_input", pin, flags), ("claim_output", pin, level), ("write", pin, level),
    ("free", pin), ("chip_open", chip), ("chip_close", handle).  Levels are what the line would carry.
    """

    SET_ACTIVE_LOW = 4
    SET_OPEN_DRAIN = 8
    SET_OPEN_SOURCE = 16
    SET_PULL_UP = 32
    SET_PULL_DOWN = 64
    SET_PULL_NONE = 128
    RISING_EDGE = 1
    FALLING_EDGE = 2
    BOTH_EDGES = 3
    _IS_OUT = 1 << 1  # LGPIOPin.GPIO_IS_OUT

    class error(Exception):  # noqa: N801 - lgpio's own name
        pass

    def __init__(self, *, open_fails: bool = False):
        super().__init__("lgpio")
        self.events: list[tuple] = []
        self.levels: dict[int, int] = {}
        self.outputs: set[int] = set()
        self.open_fails = open_fails

    def error_text(self, code):
        return f"lgpio error {code}"

    def gpiochip_open(self, chip):
        if self.open_fails:
            raise self.error("can not open gpiochip")
        self.events.append(("chip_open", chip))
        return 7

    def gpiochip_close(self, handle):
        self.events.append(("chip_close", handle))

    def gpio_claim_input(self, handle, gpio, lFlags=0):  # noqa: N803 - lgpio's signature
        self.outputs.discard(gpio)
        self.events.append(("claim_input", gpio, lFlags))

    def gpio_claim_output(self, handle, gpio, level=0, lFlags=0):  # noqa: N803 - level=0 as in lgpio
        self.outputs.add(gpio)
        self.levels[gpio] = int(bool(level))
        self.events.append(("claim_output", gpio, int(bool(level))))

    def gpio_free(self, handle, gpio):
        self.outputs.discard(gpio)
        self.events.append(("free", gpio))

    def gpio_get_mode(self, handle, gpio):
        return self._IS_OUT if gpio in self.outputs else 0

    def gpio_read(self, handle, gpio):
        return self.levels.get(gpio, 0)

    def gpio_write(self, handle, gpio, level):
        assert gpio in self.outputs, "write to a pin not claimed for output"
        self.levels[gpio] = int(bool(level))
        self.events.append(("write", gpio, int(bool(level))))

    def driven(self, gpio: int) -> list[int]:
        """Every level the line was driven to (output claims and writes), in order."""
        return [e[2] for e in self.events if e[0] in ("claim_output", "write") and e[1] == gpio]


@pytest.fixture
def fake_lgpio(monkeypatch):
    """Install a FakeLgpio where gpiozero's lgpio pin module imports it; fresh pin modules each test."""
    fake = FakeLgpio()
    monkeypatch.setitem(sys.modules, "lgpio", fake)
    for name, package, attr in (
        ("gpiozero.pins.lgpio", gpiozero.pins, "lgpio"),
        ("gpio.pins", gpio, "pins"),
    ):
        # setitem then delitem: the import below runs fresh, and undo puts back whatever was there
        # before (nothing, without real lgpio), so no module bound to the fake outlives the test.
        monkeypatch.setitem(sys.modules, name, None)
        monkeypatch.delitem(sys.modules, name)
        monkeypatch.setattr(package, attr, None, raising=False)
        monkeypatch.delattr(package, attr)
    # Not a Pi: tell gpiozero's board lookup it is a Pi 3B.
    monkeypatch.setattr(gpiozero.pins.local, "get_pi_revision", lambda: 0xA02082)
    fake.pins = importlib.import_module("gpio.pins")
    fake.stock = importlib.import_module("gpiozero.pins.lgpio")
    yield fake
    # LocalPiFactory keeps pins and reservations in class-level dicts; never leak one into the next test.
    gpiozero.pins.local.LocalPiFactory.pins.clear()
    gpiozero.pins.local.LocalPiFactory._reservations.clear()


@pytest.fixture
def mock_factory():
    factory = MockFactory()
    yield factory
    factory.close()
    factory.reset()


def settings(**kw) -> RelaySettings:
    return RelaySettings(pin=PIN, **kw)


def states(pin: MockPin) -> list[bool]:
    return [s.state for s in pin.states]


# -- the lgpio blip (gpiozero PR #1177) ------------------------------------------------------------


def test_stock_lgpio_factory_blips_an_active_low_relay_on(fake_lgpio):
    """Documents the upstream bug: the claim drives 0 (relay ON) before the initial value (1) is written.

    If this starts failing, gpiozero fixed it upstream and SafeLGPIOFactory may be retired.
    """
    factory = fake_lgpio.stock.LGPIOFactory()
    try:
        device = OutputDevice(PIN, active_high=False, initial_value=False, pin_factory=factory)
        device.close()
    finally:
        factory.close()
    claim = next(e for e in fake_lgpio.events if e[0] == "claim_output")
    assert claim == ("claim_output", PIN, 0)
    assert fake_lgpio.driven(PIN)[:2] == [0, 1]  # ON for a moment, then OFF: the thump


def test_safe_factory_claims_active_low_output_high_and_never_drives_low_before_on(fake_lgpio):
    factory = fake_lgpio.pins.SafeLGPIOFactory(inactive_levels={PIN: 1})
    try:
        device = OutputDevice(PIN, active_high=False, initial_value=False, pin_factory=factory)
        claim = next(e for e in fake_lgpio.events if e[0] == "claim_output")
        assert claim == ("claim_output", PIN, 1)
        assert 0 not in fake_lgpio.driven(PIN)
        device.on()
        device.off()
        device.close()
    finally:
        factory.close()
    assert fake_lgpio.driven(PIN) == [1, 0, 1]
    assert fake_lgpio.events[-2:] == [("claim_input", PIN, FakeLgpio.SET_PULL_NONE), ("chip_close", 7)]


def test_safe_factory_mirror_case_active_high_claims_low(fake_lgpio):
    factory = fake_lgpio.pins.SafeLGPIOFactory(inactive_levels={PIN: 0})
    try:
        device = OutputDevice(PIN, active_high=True, initial_value=False, pin_factory=factory)
        assert fake_lgpio.driven(PIN) == [0]
        device.on()
        device.close()
    finally:
        factory.close()
    assert fake_lgpio.driven(PIN) == [0, 1]


def test_safe_pin_function_output_claims_at_inactive_level(fake_lgpio):
    """``initial_value=None`` sets ``pin.function = "output"``: the overridden _set_function path."""
    stock = fake_lgpio.stock.LGPIOFactory()
    try:
        OutputDevice(PIN, active_high=False, initial_value=None, pin_factory=stock).close()
    finally:
        stock.close()
    assert fake_lgpio.driven(PIN) == [0]  # stock: left ON
    fake_lgpio.events.clear()
    safe = fake_lgpio.pins.SafeLGPIOFactory(default_inactive_level=1)
    try:
        device = OutputDevice(PIN, active_high=False, initial_value=None, pin_factory=safe)
        assert isinstance(device.pin, fake_lgpio.pins.SafeLGPIOPin)
        assert device.is_active is False
        device.close()
    finally:
        safe.close()
    assert fake_lgpio.driven(PIN) == [1]


def test_safe_factory_rejects_levels_other_than_0_and_1(fake_lgpio):
    with pytest.raises(ValueError, match="0 or 1"):
        fake_lgpio.pins.SafeLGPIOFactory(inactive_levels={PIN: 2})
    assert not fake_lgpio.events  # refused before the chip was opened


def test_relay_tells_a_safe_factory_its_off_level(fake_lgpio):
    factory = fake_lgpio.pins.SafeLGPIOFactory()  # knows nothing about pin 17
    try:
        relay = Relay(settings(), pin_factory=factory)
        assert relay.factory_name == "lgpio"
        assert fake_lgpio.driven(PIN) == [1]
        relay.on()
        relay.close()
    finally:
        factory.close()
    assert fake_lgpio.driven(PIN) == [1, 0, 1]


def test_force_off_through_lgpio_from_the_environment(fake_lgpio, monkeypatch):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "lgpio")
    text = force_off(settings())
    assert "GPIO17" in text and "HIGH" in text and "lgpio" in text
    assert fake_lgpio.driven(PIN) == [1, 1]  # claimed OFF, driven OFF: never a 0
    assert fake_lgpio.events[-2:] == [("claim_input", PIN, FakeLgpio.SET_PULL_NONE), ("chip_close", 7)]


def test_default_factory_on_a_pi_is_the_safe_lgpio_one(fake_lgpio, monkeypatch):
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    monkeypatch.setattr(gpio.relay.glob, "glob", lambda pattern: ["/dev/gpiochip0"])
    factory = default_pin_factory(inactive_levels={PIN: 1})
    try:
        assert isinstance(factory, fake_lgpio.pins.SafeLGPIOFactory)
        assert factory.inactive_level(PIN) == 1
    finally:
        factory.close()


def test_default_factory_refuses_a_pi_whose_gpio_cannot_be_opened(fake_lgpio, monkeypatch):
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    monkeypatch.setattr(gpio.relay.glob, "glob", lambda pattern: ["/dev/gpiochip0"])
    fake_lgpio.open_fails = True
    with pytest.raises(RelayError, match="gpio") as info:
        default_pin_factory()
    assert "can not open gpiochip" in info.value.detail


# -- behaviour, on gpiozero's MockFactory ----------------------------------------------------------


def test_relay_is_off_at_the_pin_from_construction(mock_factory):
    with Relay(settings(), pin_factory=mock_factory) as relay:
        pin = mock_factory.pin(PIN)
        assert relay.is_on is False
        assert pin.function == "output"
        # The mock's pin starts as a floating input reading LOW; the first level DRIVEN is HIGH (off).
        assert states(pin) == [False, True]
        assert relay.factory_name == "mock"
        assert [state for _, state in relay.history] == [False]


def test_active_high_relay_is_low_when_off(mock_factory):
    with Relay(settings(active_high=True), pin_factory=mock_factory) as relay:
        pin = mock_factory.pin(PIN)
        assert states(pin) == [False]
        relay.on()
        assert pin.state is True
        relay.off()
    assert states(pin) == [False, True, False]


def test_on_off_give_the_exact_pin_sequence(mock_factory):
    with Relay(settings(), pin_factory=mock_factory) as relay:
        pin = mock_factory.pin(PIN)
        relay.on()
        assert relay.is_on and pin.state is False
        relay.off()
        relay.on()
        relay.off()
    pin.assert_states([False, True, False, True, False, True])
    assert states(pin) == [False, True, False, True, False, True]


def test_returned_times_match_the_pin_history(mock_factory):
    calls: list[tuple[bool, dt.datetime]] = []
    relay = Relay(settings(), pin_factory=mock_factory, on_change=lambda s, t: calls.append((t, s)))
    pin = mock_factory.pin(PIN)
    pin.clear_states()  # MockPin times are deltas from here
    ref = dt.datetime.now(dt.UTC)
    keyed = relay.on()
    time.sleep(0.05)
    unkeyed = relay.off()
    relay.close()
    assert keyed.tzinfo is dt.UTC and unkeyed.tzinfo is dt.UTC
    assert states(pin) == [True, False, True]
    pin_on = ref + dt.timedelta(seconds=pin.states[1].timestamp)
    pin_off = pin_on + dt.timedelta(seconds=pin.states[2].timestamp)
    assert abs(keyed - pin_on) < dt.timedelta(milliseconds=5)
    assert abs(unkeyed - pin_off) < dt.timedelta(milliseconds=5)
    assert relay.history[1:] == [(keyed, True), (unkeyed, False)]
    assert calls == relay.history


def test_each_transition_is_logged(mock_factory, caplog):
    caplog.set_level(logging.INFO, logger="gpio")
    with Relay(settings(), pin_factory=mock_factory) as relay:
        relay.on()
        relay.off()
    messages = [r.getMessage() for r in caplog.records if r.name == "gpio.relay"]
    assert messages[0].startswith("relay OFF (GPIO17, active_low, mock pins)")
    assert messages[1:] == ["relay ON", "relay OFF"]


def test_off_twice_is_harmless(mock_factory):
    with Relay(settings(), pin_factory=mock_factory) as relay:
        relay.on()
        first = relay.off()
        second = relay.off()
        assert second >= first
        assert [s for _, s in relay.history] == [False, True, False]
        assert states(mock_factory.pin(PIN)) == [False, True, False, True]


def test_rekeying_keeps_the_keying_time(mock_factory):
    with Relay(settings(), pin_factory=mock_factory) as relay:
        keyed = relay.on()
        assert relay.on() == keyed
        assert [s for _, s in relay.history] == [False, True]


def test_watchdog_forces_the_relay_off(mock_factory, caplog):
    caplog.set_level(logging.INFO, logger="gpio")
    forced = threading.Event()
    calls: list[tuple[bool, dt.datetime]] = []

    def on_change(state: bool, when: dt.datetime) -> None:
        calls.append((state, when))
        if not state and len(calls) > 2:
            forced.set()

    with Relay(settings(max_on_s=0.2), pin_factory=mock_factory, on_change=on_change) as relay:
        keyed = relay.on()
        assert forced.wait(3), "watchdog did not fire"
        assert relay.is_on is False
        assert mock_factory.pin(PIN).state is True  # HIGH: off
        held = calls[-1][1] - keyed
        assert dt.timedelta(seconds=0.2) <= held < dt.timedelta(seconds=1)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == ["relay forced off by watchdog after 0.2 s"]
    assert errors[0].threadName.startswith("relay-watchdog")
    assert [s for s, _ in calls] == [False, True, False]


def test_rekeying_restarts_the_watchdog(mock_factory):
    forced = threading.Event()
    with Relay(
        settings(max_on_s=0.4), pin_factory=mock_factory, on_change=lambda s, t: s or forced.set()
    ) as relay:
        forced.clear()  # the initial OFF
        relay.on()
        time.sleep(0.25)
        rekeyed = time.monotonic()
        relay.on()
        time.sleep(0.25)  # 0.5 s since the first key, 0.25 s since the second
        assert relay.is_on and not forced.is_set()
        assert forced.wait(3)
        assert time.monotonic() - rekeyed >= 0.4


def test_off_cancels_the_watchdog(mock_factory, caplog):
    with Relay(settings(max_on_s=0.15), pin_factory=mock_factory) as relay:
        relay.on()
        relay.off()
        time.sleep(0.3)
        assert [s for _, s in relay.history] == [False, True, False]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [t for t in threading.enumerate() if t.name.startswith("relay-watchdog") and t.is_alive()]


def test_close_drives_off_and_releases_the_pin(mock_factory):
    relay = Relay(settings(), pin_factory=mock_factory)
    relay.on()
    relay.close()
    pin = mock_factory.pin(PIN)
    assert states(pin) == [False, True, False, True]
    assert pin.function == "input"
    assert relay.closed and not relay.is_on
    relay.close()  # idempotent
    assert isinstance(relay.off(), dt.datetime)  # still never raises
    with pytest.raises(RelayError):
        relay.on()
    # Released: the pin can be claimed again.
    OutputDevice(PIN, pin_factory=mock_factory).close()


def test_relay_holds_its_pin(mock_factory):
    with Relay(settings(), pin_factory=mock_factory), pytest.raises(RelayError) as info:
        Relay(settings(), pin_factory=mock_factory)
    assert "GPIOPinInUse" in info.value.detail


class BrokenPin(MockPin):
    broken = False

    def _set_state(self, value):
        if self.broken:
            raise OSError("line gone")
        super()._set_state(value)


def test_off_and_close_never_raise(caplog):
    factory = MockFactory(pin_class=BrokenPin)
    try:
        relay = Relay(settings(), pin_factory=factory)
        relay.on()
        factory.pin(PIN).broken = True
        assert isinstance(relay.off(), dt.datetime)
        relay.close()
    finally:
        factory.close()
    assert any("relay OFF failed on GPIO17" in r.getMessage() for r in caplog.records)


def test_a_failing_callback_is_logged_not_raised(mock_factory, caplog):
    def boom(state, when):
        raise RuntimeError("callback broke")

    with Relay(settings(), pin_factory=mock_factory, on_change=boom) as relay:
        relay.on()
        assert relay.is_on
    assert any(r.getMessage() == "relay on_change callback failed" for r in caplog.records)


def test_force_off_drives_an_active_low_pin_high(mock_factory):
    # A daemon that died with the relay keyed: the pin was left LOW.
    OutputDevice(PIN, active_high=False, initial_value=True, pin_factory=mock_factory).close()
    pin = mock_factory.pin(PIN)
    assert pin.state is False
    text = force_off(settings(), pin_factory=mock_factory)
    assert pin.state is True
    assert text == "relay on GPIO17 forced OFF: pin HIGH (active_low, mock pins)"
    assert pin.function == "input"  # released


def test_default_pin_factory_simulates_here(monkeypatch, caplog):
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    factory = default_pin_factory()
    try:
        assert isinstance(factory, MockFactory)
    finally:
        factory.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [SIMULATED_WARNING]


def test_default_pin_factory_simulates_when_lgpio_is_missing(monkeypatch, caplog):
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    monkeypatch.setitem(sys.modules, "lgpio", None)  # import lgpio -> ImportError, even on a Pi
    monkeypatch.setattr(gpio.relay.glob, "glob", lambda pattern: ["/dev/gpiochip0"])
    factory = default_pin_factory()
    factory.close()
    assert isinstance(factory, MockFactory)
    assert SIMULATED_WARNING in caplog.messages


@pytest.mark.parametrize("name", ["mock", "MOCK"])
def test_default_pin_factory_honours_the_environment(monkeypatch, caplog, name):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", name)
    factory = default_pin_factory()
    factory.close()
    assert isinstance(factory, MockFactory)
    assert SIMULATED_WARNING not in caplog.messages


def test_default_pin_factory_rejects_an_unknown_name(monkeypatch):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "nosuch")
    with pytest.raises(RelayError) as info:
        default_pin_factory()
    assert "mock" in info.value.detail


def test_a_named_factory_that_cannot_start_is_an_error_not_a_simulation(monkeypatch):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "lgpio")
    monkeypatch.setitem(sys.modules, "lgpio", None)  # not installed
    with pytest.raises(RelayError) as info:
        default_pin_factory()
    assert "ImportError" in info.value.detail or "ModuleNotFoundError" in info.value.detail


def test_relay_without_a_factory_makes_and_closes_its_own(monkeypatch):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    relay = Relay(settings())
    factory = relay._factory
    relay.on()
    relay.close()
    assert relay.factory_name == "mock"
    assert not factory.pins  # PiFactory.close() dropped its pins
