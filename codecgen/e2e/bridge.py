"""The bridge scenario of ``codecgen e2e run --bridge``: registry -> ServiceEntry -> MetaProtocol.

On top of the base run's namespace, protocol and client:

- ZooKeeper (the pinned official image; no sidecar) and its Service ``zookeeper:2181``;
- two providers, ``<name>-provider-v1`` / ``-v2``: ``codecgen serve`` beside ``codecgen bridge
  register``, which puts ``<name>://<pod IP>:<port>/<interface>?codecgen-subset=<subset>&...``
  into ZooKeeper as an ephemeral Dubbo provider node for as long as the pod lives;
- ``codecgen bridge manifests`` for that registry (the sample image, one replica), so the
  bridge runs in the cluster exactly as a user would run it;
- a DestinationRule (subsets by the endpoint label ``codecgen-subset``, which the bridge copies
  from the provider URL) and a MetaRouter for the entry's host, with the base run's routes.

The run waits for the ServiceEntry the bridge writes (its labels ``manager: aeraki``,
``registry: zk``) to list both providers, then runs the base run's probe to the entry's host.
"""

from __future__ import annotations

from typing import Optional

from codecgen import ir
from codecgen.backends.templating import environment
from codecgen.bridge.manifests import NAME as BRIDGE_DEPLOYMENT
from codecgen.e2e import BOOTSTRAP_CONFIGMAP, SUBSETS, Plan
from codecgen.pins import E2EPins

ZOOKEEPER = "zookeeper"
ZK_PORT = 2181
ZK_ROOT = "/dubbo"
SOURCE_NAME = "zk"
BRIDGE_NAMESPACE = "codecgen-bridge"
SUBSET_LABEL = "codecgen-subset"
ENTRY_LABELS = {"manager": "aeraki", "registry": SOURCE_NAME}

# manifest file -> template, applied after the base run's files (names sort after them);
# the bridge's own manifests go in between as 80-bridge-<its file name>.
TEMPLATES = (("70-zookeeper.yaml", "bridge-zookeeper.yaml.j2"),
             ("75-providers.yaml", "bridge-providers.yaml.j2"),
             ("90-bridge-routes.yaml", "bridge-routes.yaml.j2"))


def interface(plan: Plan) -> str:
    """The Dubbo interface the providers register under."""
    return f"org.codecgen.e2e.{plan.proto.name}"


def registry_url(plan: Plan) -> str:
    return f"zookeeper://{ZOOKEEPER}.{plan.namespace}.svc.cluster.local:{ZK_PORT}{ZK_ROOT}"


def source_arg(plan: Plan) -> str:
    """The bridge's ``--source``: the registry, named, its entries in the run's namespace."""
    return f"{registry_url(plan)}#name={SOURCE_NAME}&namespace={plan.namespace}"


def provider_url(plan: Plan, subset: str, address: str = "$(POD_IP)") -> str:
    """A provider's URL as ``bridge register`` writes it (``$(POD_IP)``: Kubernetes fills it in)."""
    query = f"application=codecgen-e2e&{SUBSET_LABEL}={subset}&side=provider"
    return f"{plan.proto.name}://{address}:{plan.port}/{interface(plan)}?{query}"


def entry_host(plan: Plan) -> str:
    """The host the bridge gives the service: its own mapping rule, asked."""
    from codecgen.bridge.config import parse_source
    from codecgen.bridge.mapping import Mapper
    from codecgen.bridge.model import Service

    opts = parse_source(source_arg(plan), plan.namespace)
    mapper = Mapper({SOURCE_NAME: opts}, [plan.proto.name])
    name = interface(plan)
    return mapper.place(Service(source=SOURCE_NAME, key=name, name=name)).host


def bridge_files(plan: Plan) -> dict[str, str]:
    """``codecgen bridge manifests`` for the scenario's registry and protocol."""
    from codecgen.bridge.config import load_protocols, parse_sources
    from codecgen.bridge.manifests import manifests
    from codecgen.bridge.runner import Settings

    settings = Settings(sources=parse_sources([source_arg(plan)], plan.namespace),
                        protocols=sorted(load_protocols([plan.spec_path])))
    files = manifests(settings, [source_arg(plan)], [plan.spec_path], plan.namespace, image=plan.sample_image,
                      bridge_namespace=BRIDGE_NAMESPACE, replicas=1)
    return {f"80-bridge-{name}": text for name, text in files.items()}


def manifests(plan: Plan, pins: E2EPins) -> dict[str, str]:
    """The scenario's files, in apply order (name order), to apply after the base run's."""
    env = environment("codecgen.e2e")
    out = {}
    for name, template in TEMPLATES:
        out[name] = env.get_template(template).render(
            plan=plan, pins=pins, subsets=SUBSETS, bootstrap=BOOTSTRAP_CONFIGMAP, zookeeper=ZOOKEEPER,
            zk_port=ZK_PORT, registry=registry_url(plan), providers={s: provider_url(plan, s) for s in SUBSETS},
            host=entry_host(plan), subset_label=SUBSET_LABEL,
            mark=(ir.CODEC_ID_KEY, plan.proto.codec_name)).rstrip("\n") + "\n"
    out.update(bridge_files(plan))
    return dict(sorted(out.items()))


def deployments(plan: Plan) -> list[tuple[str, str]]:
    """(namespace, Deployment) the run waits for, in order."""
    return [(plan.namespace, ZOOKEEPER), *[(plan.namespace, f"{plan.service}-provider-{s}") for s in SUBSETS],
            (BRIDGE_NAMESPACE, BRIDGE_DEPLOYMENT)]


def selector() -> str:
    return ",".join(f"{k}={v}" for k, v in ENTRY_LABELS.items())


def entry_ready(items: list, host: str, endpoints: int) -> Optional[str]:
    """None when an entry for ``host`` lists ``endpoints`` endpoints, else what is seen (for the
    timeout message)."""
    for item in items:
        spec = item.get("spec", {})
        if spec.get("hosts") == [host]:
            got = len(spec.get("endpoints") or [])
            if got == endpoints:
                return None
            return f"ServiceEntry {item['metadata']['name']} has {got} endpoint(s), {endpoints} expected"
    return f"no ServiceEntry for {host} (labelled {selector()})"
