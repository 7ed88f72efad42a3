from __future__ import annotations

import pluggy
import pytest

from automl_od import Capabilities, Component, hookimpl
from automl_od.errors import PluginError
from automl_od.registry import DEFAULT_PLUGINS, Registry, get_plugin_manager, registry_with
from automl_od.spaces import resolve_space


class ConstantDetector:
    def __init__(self, level: float = 1.0) -> None:
        self.level = level

    def fit(self, X, y=None):
        return self

    def anomaly_score(self, X):
        return abs(X).sum(axis=1) * self.level


class DemoPlugin:
    @hookimpl
    def register_detectors(self):
        return [Component("demo_abs", "detector", ConstantDetector, {"level": {"type": "float", "low": 0.5, "high": 2}},
                          Capabilities(), "sum of absolute values")]


def test_builtins_are_ordinary_plugins():
    registry = Registry(get_plugin_manager(load_entry_points=False))
    assert set(registry.components("detector")) >= {"isolation_forest", "local_outlier_factor", "one_class_svm", "robust_covariance",
                                                    "gaussian_mixture", "knn", "ecod", "copod", "hbos", "pae", "autoencoder"}
    assert set(registry.components("ranker")) == {"all_features", "outrank", "plain_mi"}
    assert set(registry.components("resampler")) == {"none", "smote", "random_undersampling", "smote_undersampling"}
    assert set(registry.components("controller")) >= {"tpe", "random"}
    plugins = {p["name"]: p for p in registry.describe()}
    assert set(DEFAULT_PLUGINS) <= set(plugins)
    assert all(plugins[name]["version"] for name in DEFAULT_PLUGINS)
    component = registry.get("detector", "isolation_forest")
    assert component.plugin == "automl_od.plugins.sklearn_detectors"


def test_registered_plugin_becomes_searchable():
    registry = registry_with([DemoPlugin()])
    assert registry.get("detector", "demo_abs").description == "sum of absolute values"
    space = resolve_space("default", registry)
    assert "demo_abs" in space.names("detector")
    assert space.components["detector"]["demo_abs"]["level"].kind == "float"


def test_duplicate_name_is_an_error_naming_both_plugins():
    class Clash:
        @hookimpl
        def register_detectors(self):
            return [Component("isolation_forest", "detector", ConstantDetector)]

    pm = get_plugin_manager(load_entry_points=False)
    pm.register(Clash(), name="clashing-plugin")
    with pytest.raises(PluginError) as info:
        Registry(pm)
    assert "automl_od.plugins.sklearn_detectors" in str(info.value) and "clashing-plugin" in str(info.value)


def test_hook_without_spec_fails_loudly():
    class Typo:
        @hookimpl
        def register_detector(self):  # missing "s"
            return []

    pm = get_plugin_manager(load_entry_points=False)
    pm.register(Typo())
    with pytest.raises(pluggy.PluginValidationError):
        Registry(pm)


def test_wrong_component_kind_is_rejected():
    class Wrong:
        @hookimpl
        def register_rankers(self):
            return [Component("x", "detector", ConstantDetector)]

    with pytest.raises(PluginError, match="must return ranker Components"):
        registry_with([Wrong()])


def test_capabilities_filter():
    caps = Capabilities(needs_labels=True, max_rows=100)
    assert caps.unfit_reason(n_rows=50, n_labelled_anomalies=None) == "needs labelled anomalies"
    assert "max_rows" in caps.unfit_reason(n_rows=500, n_labelled_anomalies=3)
    assert caps.unfit_reason(n_rows=50, n_labelled_anomalies=3) is None
