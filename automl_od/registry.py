"""The plugin registry: a pluggy manager plus the merged, validated component tables."""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Iterable
from dataclasses import replace
from importlib import metadata
from typing import Any

import pluggy

from automl_od import hookspecs
from automl_od.components import Component, ComponentKind
from automl_od.errors import PluginError, UnknownComponent

#: Set to any non-empty value to skip loading third-party plugins from the ``automl_od``
#: entry-point group (the test suite sets it so it never sees what happens to be installed).
DISABLE_AUTOLOAD_ENV = "AUTOML_OD_DISABLE_PLUGIN_AUTOLOAD"

#: The built-in plugins, registered exactly like third-party ones.
DEFAULT_PLUGINS = (
    "automl_od.plugins.sklearn_detectors",
    "automl_od.plugins.classical_detectors",
    "automl_od.plugins.pyod_adapter",
    "automl_od.plugins.autoencoders",
    "automl_od.plugins.supervised_detectors",
    "automl_od.plugins.basic_rankers",
    "automl_od.plugins.outrank",
    "automl_od.plugins.basic_resamplers",
    "automl_od.plugins.smote",
    "automl_od.plugins.optuna_controllers",
    "automl_od.plugins.curiosity_controller",
    "automl_od.plugins.selection_strategies",
)

_HOOK_BY_KIND: dict[ComponentKind, str] = {
    "detector": "register_detectors",
    "ranker": "register_rankers",
    "resampler": "register_resamplers",
    "controller": "register_controllers",
    "selector": "register_selectors",
}


def get_plugin_manager(*, load_entry_points: bool | None = None) -> pluggy.PluginManager:
    """A fresh plugin manager with the specs, the entry-point plugins and the built-ins."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    if load_entry_points is None:
        load_entry_points = not os.environ.get(DISABLE_AUTOLOAD_ENV)
    if load_entry_points:
        pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
    for module_name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    pm.check_pending()
    return pm


def _plugin_versions(pm: pluggy.PluginManager) -> dict[str, str]:
    versions = {}
    for plugin, dist in pm.list_plugin_distinfo():
        versions[pm.get_name(plugin) or ""] = dist.version
    return versions


class Registry:
    """Components by kind and name, merged from every registered plugin."""

    def __init__(self, pm: pluggy.PluginManager | None = None) -> None:
        self.pm = pm if pm is not None else get_plugin_manager()
        self.pm.check_pending()
        self._tables: dict[ComponentKind, dict[str, Component]] = {}
        versions = _plugin_versions(self.pm)
        own_version = _own_version()
        for kind, hook_name in _HOOK_BY_KIND.items():
            table: dict[str, Component] = {}
            hook = getattr(self.pm.hook, hook_name)
            for impl in hook.get_hookimpls():
                plugin_name = impl.plugin_name
                for component in _returned_components(impl.function(), kind, hook_name, plugin_name):
                    if component.name in table:
                        raise PluginError(
                            f"duplicate {kind} name {component.name!r}: registered by plugin "
                            f"{table[component.name].plugin!r} and by plugin {plugin_name!r}; "
                            "rename one of them or uninstall one plugin"
                        )
                    version = versions.get(plugin_name) or (
                        own_version if plugin_name.startswith("automl_od.") else ""
                    )
                    table[component.name] = replace(
                        component, plugin=plugin_name, plugin_version=version
                    )
            self._tables[kind] = table

    def components(self, kind: ComponentKind) -> dict[str, Component]:
        return dict(self._tables[kind])

    def get(self, kind: ComponentKind, name: str) -> Component:
        table = self._tables[kind]
        if name not in table:
            known = ", ".join(sorted(table)) or "none"
            raise UnknownComponent(f"unknown {kind} {name!r}; registered {kind}s: {known} (see `automl-od plugins`)")
        return table[name]

    def describe(self) -> list[dict[str, Any]]:
        """One entry per plugin: its name, version and the components it registers."""
        by_plugin: dict[str, dict[str, Any]] = {}
        versions = _plugin_versions(self.pm)
        for plugin in self.pm.get_plugins():
            name = self.pm.get_name(plugin) or repr(plugin)
            by_plugin[name] = {
                "name": name,
                "version": versions.get(name) or (_own_version() if name.startswith("automl_od.") else ""),
                "builtin": name in DEFAULT_PLUGINS,
                "components": [],
            }
        for kind, table in self._tables.items():
            for component in table.values():
                entry = by_plugin.setdefault(
                    component.plugin,
                    {"name": component.plugin, "version": component.plugin_version, "builtin": False, "components": []},
                )
                entry["components"].append(
                    {"kind": kind, "name": component.name, "description": component.description}
                )
        return sorted(by_plugin.values(), key=lambda e: (not e["builtin"], e["name"]))


def _returned_components(returned: Any, kind: ComponentKind, hook_name: str, plugin_name: str) -> list[Component]:
    """What one hook implementation returned, checked: a list of sound ``kind`` Components (see
    :meth:`Component.problems`); otherwise a PluginError naming the plugin, component and problem."""
    if returned is None:
        return []
    if not isinstance(returned, list | tuple):
        raise PluginError(f"plugin {plugin_name!r}: {hook_name} must return a list of {kind} Components, got {returned!r}")
    for component in returned:
        if not isinstance(component, Component) or component.kind != kind:
            raise PluginError(
                f"plugin {plugin_name!r}: {hook_name} must return {kind} Components, "
                f"got {component!r}"
            )
        problems = component.problems()
        if problems:
            raise PluginError(
                f"plugin {plugin_name!r} registers an invalid {kind} {component.name!r}: "
                + "; ".join(problems)
            )
    return list(returned)


def _own_version() -> str:
    try:
        return metadata.version("automl-od")
    except metadata.PackageNotFoundError:
        return "0+unknown"


@functools.cache
def default_registry() -> Registry:
    """The process-wide registry (built once per process, e.g. once per Ray worker)."""
    return Registry()


def registry_with(plugins: Iterable[Any]) -> Registry:
    """A registry with extra plugin objects registered on top of the defaults."""
    pm = get_plugin_manager()
    for plugin in plugins:
        pm.register(plugin)
    return Registry(pm)
