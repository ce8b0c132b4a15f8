"""Build pins per target, read from ``codecgen/targets.yaml`` (package data: the wheel ships it).

This module is the ONLY reader of that file.  Everything that depends on the
meta-protocol-proxy / Istio / Envoy version (Bazel labels for generated BUILD
files, the builder and proxyv2 images, the root ``BUILD`` anchor, Metadata API
drift) comes from a :class:`Target`::

    from codecgen.pins import get_target, DEFAULT_TARGET
    t = get_target()            # the default target ("1.4.2")
    t.annotations_dep           # "@com_github_cncf_udpa//udpa/annotations:pkg"
    get_target("head").bazel_version  # "6.3.2"

The file lies beside this module (in a checkout and in an installed wheel alike), or at
``$CODECGEN_TARGETS_FILE`` when that is set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import yaml

from codecgen.errors import UserError

__all__ = ["Target", "E2EPins", "PinsError", "targets_file", "load_targets", "get_target",
           "get_e2e", "target_names", "DEFAULT_TARGET"]

ENV_VAR = "CODECGEN_TARGETS_FILE"
REPO_ROOT = Path(__file__).resolve().parent.parent  # a checkout's root (the e2e sample image builds a wheel from it)
DEFAULT_PATH = Path(__file__).resolve().parent / "targets.yaml"


class PinsError(UserError):
    """The pins file is missing or malformed, or a target name is unknown."""


@dataclass(frozen=True)
class Target:
    """One build target: a meta-protocol-proxy revision and everything pinned with it."""

    name: str
    description: str
    proxy_repo: str
    proxy_tag: str                 # git tag (or branch, informational for "head")
    proxy_commit: str              # the commit actually fetched and checked
    istio_version: str
    bazel_version: str
    envoy_commit: str
    builder_image: str             # toolchain image of the builder stage
    llvm_root: str
    builder_apt_packages: Tuple[str, ...]
    proxyv2_image: str             # final stage base: istio proxyv2 of the same Istio
    bazel_flags: Tuple[str, ...]
    annotations_dep: str           # api_proto_package(deps=[...]) in a codec BUILD
    metadata_get_method: str       # "get" (<= 1.4.2) or "getByKey" (master)
    has_remove_string: bool
    builtin_codecs: Tuple[str, ...]
    root_build_anchor: str         # root envoy_cc_binary dep after which codecs go
    config_deps: Tuple[str, ...]   # deps of a codec's ":config" envoy_cc_library
    codec_deps: Tuple[str, ...]    # deps of a codec's ":codec_lib" envoy_cc_library
    istio_extension_deps: Tuple[str, ...]  # @io_istio_proxy deps of the root envoy binary
    # Kind -> the apiVersions the target's Istio / Aeraki / Kubernetes serve for it.
    served_api_versions: Tuple[Tuple[str, Tuple[str, ...]], ...]
    # Kind -> field paths (``a.b``, ``[]`` for list items) codecgen's schemas know but the
    # target's CRDs lack.
    unserved_fields: Tuple[Tuple[str, Tuple[str, ...]], ...]

    def codec_config_label(self, protocol: str) -> str:
        """The label added to the root ``envoy_cc_binary`` for ``protocol``."""
        return f"//src/application_protocols/{protocol}:config"

    def api_versions(self, kind: str) -> Optional[Tuple[str, ...]]:
        """The apiVersions served for ``kind``, or None when the pins do not say."""
        return dict(self.served_api_versions).get(kind)

    def fields_unserved(self, kind: str) -> Tuple[str, ...]:
        return dict(self.unserved_fields).get(kind, ())


@dataclass(frozen=True)
class E2EPins:
    """What the e2e suite (``codecgen e2e``) installs around a target's proxy image: a kind
    cluster, Istio (the target's ``istio_version``) and the Aeraki release paired with it."""

    target: str
    kind_version: str              # the kind CLI the node image was released with
    kind_node_image: str           # kindest/node image (a Kubernetes version Istio supports)
    istioctl_url: str              # the istioctl release archive of the target's Istio
    aeraki_repo: str
    aeraki_tag: str
    aeraki_commit: str             # the commit the tag must resolve to
    aeraki_image: str              # the Aeraki control-plane image of that tag
    python_image: str              # base of the sample app image (codecgen serve / probe)
    zookeeper_image: str           # the registry of the bridge scenario (e2e run --bridge)


_STR_FIELDS = {f.name for f in fields(Target) if f.type in ("str", str)} - {"name"}
_MAP_FIELDS = {"served_api_versions", "unserved_fields"}
_TUPLE_FIELDS = {f.name for f in fields(Target) if "Tuple" in str(f.type)} - _MAP_FIELDS
_BOOL_FIELDS = {f.name for f in fields(Target) if f.type in ("bool", bool)}
_METADATA_GET = ("get", "getByKey")
_E2E_FIELDS = {f.name for f in fields(E2EPins)} - {"target"}


def targets_file() -> Path:
    """Where the pins are read from."""
    override = os.environ.get(ENV_VAR)
    return Path(override) if override else DEFAULT_PATH


def _parse_target(name: str, raw: Any, where: Path) -> Target:
    if not isinstance(raw, dict):
        raise PinsError(f"{where}: target {name!r} must be a mapping")
    expected = _STR_FIELDS | _TUPLE_FIELDS | _BOOL_FIELDS | _MAP_FIELDS
    unknown = sorted(set(raw) - expected)
    missing = sorted(expected - set(raw))
    if unknown:
        raise PinsError(f"{where}: target {name!r}: unknown key(s) {', '.join(unknown)}")
    if missing:
        raise PinsError(f"{where}: target {name!r}: missing key(s) {', '.join(missing)}")
    values: Dict[str, Any] = {"name": name}
    for key in sorted(expected):
        value = raw[key]
        if key in _STR_FIELDS:
            if not isinstance(value, str) or not value:
                raise PinsError(f"{where}: target {name!r}: {key} must be a non-empty string")
        elif key in _BOOL_FIELDS:
            if not isinstance(value, bool):
                raise PinsError(f"{where}: target {name!r}: {key} must be true or false")
        elif key in _MAP_FIELDS:
            if not isinstance(value, dict) or not all(
                    isinstance(k, str) and isinstance(v, list) and all(isinstance(i, str) and i for i in v)
                    for k, v in value.items()):
                raise PinsError(f"{where}: target {name!r}: {key} must map kinds to lists of strings")
            value = tuple(sorted((k, tuple(v)) for k, v in value.items()))
        else:
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise PinsError(f"{where}: target {name!r}: {key} must be a list of strings")
            value = tuple(value)
        values[key] = value
    if values["metadata_get_method"] not in _METADATA_GET:
        raise PinsError(f"{where}: target {name!r}: metadata_get_method must be one of "
                        f"{', '.join(_METADATA_GET)}")
    return Target(**values)


@lru_cache(maxsize=8)
def _load(path: Path) -> Tuple[str, Dict[str, Target]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PinsError(f"build pins not found at {path} (set {ENV_VAR} to a pins file, or "
                        f"reinstall codecgen: its wheel ships codecgen/targets.yaml)") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PinsError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("targets"), dict) or not doc["targets"]:
        raise PinsError(f"{path}: expected a mapping with a non-empty 'targets' mapping")
    unknown = sorted(set(doc) - {"default", "targets", "e2e"})
    if unknown:
        raise PinsError(f"{path}: unknown top-level key(s) {', '.join(unknown)}")
    targets = {str(n): _parse_target(str(n), raw, path) for n, raw in doc["targets"].items()}
    default = doc.get("default")
    if default not in targets:
        raise PinsError(f"{path}: default {default!r} is not one of the targets "
                        f"({', '.join(sorted(targets))})")
    e2e = doc.get("e2e") or {}
    if not isinstance(e2e, dict):
        raise PinsError(f"{path}: e2e must be a mapping of target name -> pins")
    for name in e2e:
        if str(name) not in targets:
            raise PinsError(f"{path}: e2e pins for {name!r}, which is not one of the targets")
    _E2E[path] = {str(n): _parse_e2e(str(n), raw, path) for n, raw in e2e.items()}
    return default, targets


_E2E: Dict[Path, Dict[str, "E2EPins"]] = {}


def _parse_e2e(name: str, raw: Any, where: Path) -> E2EPins:
    if not isinstance(raw, dict):
        raise PinsError(f"{where}: e2e pins of {name!r} must be a mapping")
    unknown = sorted(set(raw) - _E2E_FIELDS)
    missing = sorted(_E2E_FIELDS - set(raw))
    if unknown:
        raise PinsError(f"{where}: e2e pins of {name!r}: unknown key(s) {', '.join(unknown)}")
    if missing:
        raise PinsError(f"{where}: e2e pins of {name!r}: missing key(s) {', '.join(missing)}")
    for key in sorted(_E2E_FIELDS):
        if not isinstance(raw[key], str) or not raw[key]:
            raise PinsError(f"{where}: e2e pins of {name!r}: {key} must be a non-empty string")
    return E2EPins(target=name, **{k: raw[k] for k in _E2E_FIELDS})


def load_targets(path: Optional[Path] = None) -> Dict[str, Target]:
    """All targets by name (a fresh dict; the Target objects are frozen)."""
    return dict(_load(Path(path) if path else targets_file())[1])


def target_names(path: Optional[Path] = None) -> Tuple[str, ...]:
    return tuple(sorted(load_targets(path)))


def default_target_name(path: Optional[Path] = None) -> str:
    return _load(Path(path) if path else targets_file())[0]


def get_target(name: Optional[str] = None, path: Optional[Path] = None) -> Target:
    """The target called ``name`` (the default target when None)."""
    default, targets = _load(Path(path) if path else targets_file())
    key = default if name is None else name
    try:
        return targets[key]
    except KeyError:
        raise PinsError(f"unknown target {key!r}; known targets: "
                        f"{', '.join(sorted(targets))} (default {default})") from None


def get_e2e(name: Optional[str] = None, path: Optional[Path] = None) -> E2EPins:
    """The e2e pins of target ``name`` (the default target when None)."""
    file = Path(path) if path else targets_file()
    target = get_target(name, file)
    pins = _E2E[file].get(target.name)
    if pins is None:
        have = ", ".join(sorted(_E2E[file])) or "none"
        raise PinsError(f"target {target.name!r} has no e2e pins in {file} (targets with e2e pins: "
                        f"{have}): no released Aeraki pairs with its Istio {target.istio_version}")
    return pins


def __getattr__(attr: str) -> str:
    # DEFAULT_TARGET is read from the pins file on first use, so the file stays
    # the single place the default is written.
    if attr == "DEFAULT_TARGET":
        return default_target_name()
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
