"""What a registry source reports, and the interface every source implements.

This module is the contract between the two halves of ``codecgen bridge``:

- ``codecgen/bridge/sources/``: one module per registry (zookeeper, etcd, consul, nacos, polaris,
  file), each a :class:`Source` that turns the registry's own layout into :class:`Service` values;
- the rest of ``codecgen/bridge/`` (mapping, reconciler, Kubernetes client, runner, manifests): it
  turns :class:`Service` values into ServiceEntry objects and keeps them in sync.

A source never decides anything about Kubernetes; the reconciler never reads a registry.
Extend these types only by adding fields with defaults.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Tuple


class SourceError(Exception):
    """The registry could not be read (unreachable, session suspended or expired, an error
    answer). The reconciler changes nothing for this source while its last read failed."""


@dataclass(frozen=True)
class Instance:
    """One endpoint of a service, as the registry reports it."""

    address: str                      # IP address or host name of the provider
    port: int
    protocol: Optional[str] = None    # the registry's word for the wire protocol (URL scheme,
                                      # Dubbo's `dubbo`, a Consul tag/meta...), None if it has none
    labels: Mapping[str, str] = field(default_factory=dict)   # raw registry metadata (unfiltered)
    weight: Optional[int] = None
    locality: Optional[str] = None    # region/zone/subzone, '/'-separated, if the registry knows
    healthy: bool = True              # instances reported unhealthy are kept out of endpoints


@dataclass(frozen=True)
class Service:
    """One service a source reports: the unit that becomes one ServiceEntry host."""

    source: str                       # the source's name (Source.name), e.g. "zookeeper"
    key: str                          # the registry's identity of the service, unique per source
                                      # (Dubbo: interface[:group][:version]; Consul: service name)
    name: str                         # the service's name in the registry (interface, service...)
    namespace: Optional[str] = None   # registry namespace/group where the registry has one
    attributes: Mapping[str, str] = field(default_factory=dict)  # service-level metadata
    instances: Tuple[Instance, ...] = ()


# A snapshot: every service the source currently reports, by Service.key.
Snapshot = Mapping[str, Service]


class Source(abc.ABC):
    """A registry, read as snapshots, with change notifications.

    ``list()`` returns the whole current snapshot or raises :class:`SourceError`; it never
    returns a partial or empty snapshot because the registry failed. ``watch(notify)`` starts
    the source's own change detection (watches, blocking queries, polling) on background
    threads and calls ``notify(keys)`` with the keys of services that may have changed (an
    empty set means "anything may have changed: resync"); it must re-arm watches and reconnect
    by itself, calling ``notify(set())`` after every reconnect. ``healthy()`` says whether the
    last contact with the registry succeeded. ``close()`` stops every thread the source started.
    """

    #: the scheme in the source URL, e.g. "zookeeper"
    scheme: str = ""

    def __init__(self, url: str, name: Optional[str] = None):
        self.url = url
        self.name = name or self.scheme

    @abc.abstractmethod
    def list(self) -> Snapshot:
        ...

    @abc.abstractmethod
    def watch(self, notify: Callable[[set], None]) -> None:
        ...

    @abc.abstractmethod
    def healthy(self) -> bool:
        ...

    def close(self) -> None:
        """Stop background work; the default has none."""
