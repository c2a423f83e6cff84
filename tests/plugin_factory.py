"""Feature functions and fake entry points for the plugin and check-features tests."""

from __future__ import annotations

import numpy as np

from engine import feature_plugins


def momentum(timestamp, open_, high, low, close, volume, k):
    """An honest windowed feature: c_t / c_{t-k} - 1."""
    out = np.full(close.shape, np.nan)
    out[k:] = close[k:] / close[:-k] - 1.0
    return out


momentum.lookback = lambda k: k


def peek(timestamp, open_, high, low, close, volume, k):
    """Looks one bar ahead: the next close over this one."""
    out = np.full(close.shape, np.nan)
    out[:-1] = close[1:] / close[:-1] - 1.0
    return out


peek.lookback = 0


def running_mean(timestamp, open_, high, low, close, volume, k):
    """Infinite memory: the mean of every close so far, whatever lookback it claims."""
    return np.cumsum(close) / np.arange(1, close.shape[0] + 1)


running_mean.lookback = lambda k: k


def wrong_shape(timestamp, open_, high, low, close, volume, k):
    return np.zeros(close.shape[0] + 1)


wrong_shape.lookback = 0


def no_lookback(timestamp, open_, high, low, close, volume, k):
    return close.copy()


class FakeDist:
    def __init__(self, name, version):
        self.name, self.version = name, version


class FakeEntryPoint:
    def __init__(self, name, fn, dist=("acme-features", "1.0")):
        self.name = name
        self.value = f"plugin_factory:{fn.__name__}"
        self.group = feature_plugins.GROUP
        self.dist = FakeDist(*dist) if dist else None
        self._fn = fn
        self.loads = 0

    def load(self):
        self.loads += 1
        return self._fn


def install(monkeypatch, *eps):
    """Make `eps` the installed foldgate.features entry points for this test."""
    monkeypatch.setattr(feature_plugins, "discover_entry_points", lambda: list(eps))
    feature_plugins.reset()
    monkeypatch.setattr(feature_plugins, "_registry", None)
    return eps
