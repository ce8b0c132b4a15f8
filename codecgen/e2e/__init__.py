"""The e2e suite: a kind cluster with Istio and Aeraki, sample apps speaking a protocol.

``codecgen e2e run SPEC --image IMG`` takes a MetaProtocol proxy image built by ``codecgen
image build`` (the codec linked in) and checks it where it is used: in a mesh.

1. preflight (``preflight.py``): the tools, the Docker engine, the proxy image, registries;
   one line per missing thing, exit 2;
2. the sample app image (``Dockerfile.j2``): codecgen itself (``codecgen serve`` for the
   servers, ``codecgen probe`` for the client) and the spec, on the pinned Python image;
3. the cluster (``cluster.py``): kind with the pinned node image, ``istioctl install`` with
   the mesh settings Aeraki needs (``istio-operator.yaml.j2``), Aeraki from its pinned release;
   both images loaded into the nodes;
4. the manifests (``manifests()``, templates beside this file): a namespace with sidecar
   injection, the ApplicationProtocol / Service / DestinationRule of the Kubernetes backend,
   a MetaRouter that routes ``key=values[0]`` to v1 (with a request mutation) and
   ``key=values[1]`` to v2 and nothing else, the two server Deployments and a client, all
   with the proxy image and Aeraki's bootstrap as sidecar;
5. the checks: ``codecgen probe`` in the client pod, through the client's sidecar to the
   service: routing both ways, the mutation at v1, the codec's error reply for an unrouted
   request, the heartbeat. On failure the pods' logs and the sidecars' are printed;
6. with ``--bridge`` (``bridge.py``): ZooKeeper in the cluster, two providers registering
   themselves in it as Dubbo does, ``codecgen bridge`` (its own manifests) writing the
   ServiceEntry, and the same checks to the entry's host.

Pins (kind, node image, istioctl, Aeraki, Python image) are ``e2e:`` in
``codecgen/targets.yaml``, read by ``codecgen.pins.get_e2e``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from codecgen import ir
from codecgen.backends import k8s
from codecgen.backends.templating import environment
from codecgen.errors import UserError
from codecgen.pins import E2EPins, Target

NAMESPACE = "codecgen-e2e"
CLUSTER = "codecgen-e2e"
CLIENT = "codecgen-client"
PORT = 20880
SPECS_DIR = "/specs"
BOOTSTRAP_CONFIGMAP = "aeraki-bootstrap-config"
SUBSETS = ("v1", "v2")

# manifest file -> template (None: from the Kubernetes backend), in apply order
MANIFESTS = (
    ("00-namespace.yaml", "namespace.yaml.j2"),
    ("10-applicationprotocol.yaml", None),
    ("20-service.yaml", None),
    ("30-destinationrule.yaml", None),
    ("40-metarouter.yaml", "metarouter.yaml.j2"),
    ("50-servers.yaml", "servers.yaml.j2"),
    ("60-client.yaml", "client.yaml.j2"),
)
FROM_BACKEND = {"10-applicationprotocol.yaml": "applicationprotocol.yaml",
                "20-service.yaml": "service.yaml", "30-destinationrule.yaml": "destinationrule.yaml"}


@dataclass(frozen=True)
class Plan:
    """Everything the manifests and the checks need, computed once."""

    proto: ir.ProtocolIR
    spec_file: str            # the spec's file name, copied to SPECS_DIR in the sample image
    proxy_image: str
    sample_image: str
    key: str
    values: tuple
    unrouted: str
    mutation: dict
    spec_path: str = ""       # the spec file here (the bridge scenario's ConfigMap holds it)
    namespace: str = NAMESPACE
    port: int = PORT

    @property
    def service(self) -> str:
        return self.proto.name

    @property
    def host(self) -> str:
        return f"{self.service}.{self.namespace}.svc.cluster.local"

    @property
    def spec_in_image(self) -> str:
        return f"{SPECS_DIR}/{self.spec_file}"

    def probe_argv(self, host: Optional[str] = None) -> list[str]:
        """The client's check, as run in its pod, to the Service's host (or ``host``)."""
        argv = ["codecgen", "probe", self.spec_in_image, "--to", f"{host or self.host}:{self.port}",
                "--key", self.key, "--values", *self.values]
        for k, v in sorted(self.mutation.items()):
            argv += ["--mutation", f"{k}={v}"]
        return argv


def make_plan(spec: str, proxy_image: str, sample_image: Optional[str] = None,
              key: Optional[str] = None, values: Optional[tuple] = None,
              target: Optional[str] = None) -> Plan:
    from codecgen.frontend import load
    from codecgen.sample import probe_plan

    proto = load(spec, target=target)
    if not proxy_image or any(c.isspace() for c in proxy_image):
        raise UserError(f"--image {proxy_image!r}: an image reference (name:tag) is required")
    probe = probe_plan(proto, key, values)
    return Plan(proto=proto, spec_file=Path(spec).name, spec_path=str(spec), proxy_image=proxy_image,
                sample_image=sample_image or f"codecgen-e2e/sample-{proto.name}:latest",
                key=probe.key, values=probe.values, unrouted=probe.unrouted, mutation=probe.mutation)


def manifests(plan: Plan) -> dict[str, str]:
    """Manifest file name -> YAML, in apply order (see MANIFESTS)."""
    backend = k8s.render(plan.proto, namespace=plan.namespace, port=plan.port)
    env = environment(__name__)
    out = {}
    for name, template in MANIFESTS:
        if template is None:
            out[name] = backend[FROM_BACKEND[name]]
        else:
            out[name] = env.get_template(template).render(
                plan=plan, subsets=SUBSETS, client=CLIENT, bootstrap=BOOTSTRAP_CONFIGMAP,
                mark=(ir.CODEC_ID_KEY, plan.proto.codec_name)).rstrip("\n") + "\n"
    return out


def sample_dockerfile(pins: E2EPins) -> str:
    return environment(__name__).get_template("Dockerfile.j2").render(pins=pins).rstrip("\n") + "\n"


def istio_operator(target: Target) -> str:
    return environment(__name__).get_template("istio-operator.yaml.j2").render(
        target=target).rstrip("\n") + "\n"


def kind_config() -> str:
    return environment(__name__).get_template("kind.yaml.j2").render(cluster=CLUSTER).rstrip("\n") + "\n"
