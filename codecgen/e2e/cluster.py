"""The cluster steps of ``codecgen e2e run``: kind, Istio, Aeraki, the workloads, the checks.

Each step is one method; every command goes through ``Tools`` (echoed, one-line errors).
Nothing here is run by the default test suite except what works without a cluster (the
Aeraki install manifest's substitution, the istioctl archive layout): a kind cluster needs
the internet (node, Istio and Aeraki images), which the dev machines do not have.
"""

from __future__ import annotations

import io
import json
import os
import re
import string
import tarfile
import time
import urllib.request
from pathlib import Path
from typing import Iterable, Optional

from codecgen.e2e import BOOTSTRAP_CONFIGMAP, CLIENT, CLUSTER, SUBSETS, Plan, istio_operator, kind_config
from codecgen.e2e import bridge
from codecgen.e2e.preflight import istioctl_version
from codecgen.e2e.tools import StepFailed, Tools
from codecgen.pins import E2EPins, Target

AERAKI_NAMESPACE = "istio-system"
# The Aeraki manifest's ${VAR}s: what Aeraki's own test/e2e/scripts/aeraki.sh exports at the
# pinned tag (non-TCM mode), with the image from the pins.  AERAKI_CLUSTER_ID and
# AERAKI_ISTIO_CONFIG_STORE_SECRET are TCM-only: aeraki.sh leaves them unset, so envsubst
# writes them empty, and so do we.
_VAR_RE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


def aeraki_env(pins: E2EPins) -> dict[str, str]:
    repo, _, tag = pins.aeraki_image.rpartition(":")
    return {
        "AERAKI_NAMESPACE": AERAKI_NAMESPACE,
        "AERAKI_ISTIOD_ADDR": "istiod.istio-system:15010",
        "AERAKI_IS_MASTER": "true",
        "AERAKI_IMAGE": repo,
        "AERAKI_TAG": tag,
        "AERAKI_IMG_PULL_POLICY": "IfNotPresent",
        "AERAKI_XDS_ADDR": "aeraki.istio-system",
        "AERAKI_XDS_PORT": ":15010",
        "AERAKI_ENABLE_ENVOY_FILTER_NS_SCOPE": "false",
        "AERAKI_CLUSTER_ID": "",
        "AERAKI_ISTIO_CONFIG_STORE_SECRET": "",
    }


def substitute(text: str, env: dict[str, str], where: str) -> str:
    """``envsubst`` for the Aeraki manifest; a variable with no value is an error, not ''."""
    missing = sorted({m.group(1) for m in _VAR_RE.finditer(text)} - set(env))
    if missing:
        raise StepFailed(f"{where}: no value for {', '.join('$' + m for m in missing)} "
                         f"(codecgen.e2e.cluster.aeraki_env)")
    return string.Template(text).substitute(env)


def _download(url: str, timeout: float = 120) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read()
    except OSError as exc:
        raise StepFailed(f"download {url}: {exc}") from None


def aeraki_sources(pins: E2EPins, archive: bytes) -> dict[str, str]:
    """k8s/crd.yaml and k8s/aeraki.yaml out of the GitHub archive of the pinned tag, after
    checking that the archive is of the pinned commit (GitHub writes it in the pax header)."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        commit = tar.pax_headers.get("comment", "")
        if commit != pins.aeraki_commit:
            raise StepFailed(f"{pins.aeraki_repo} {pins.aeraki_tag}: the archive is of commit "
                             f"{commit or '?'}, the pins say {pins.aeraki_commit}")
        out = {}
        for member in tar.getmembers():
            parts = member.name.split("/", 1)
            if len(parts) == 2 and parts[1] in ("k8s/crd.yaml", "k8s/aeraki.yaml"):
                out[parts[1]] = tar.extractfile(member).read().decode()
    for name in ("k8s/crd.yaml", "k8s/aeraki.yaml"):
        if name not in out:
            raise StepFailed(f"{pins.aeraki_repo} {pins.aeraki_tag}: {name} is not in the archive")
    return out


def istioctl_from_archive(archive: bytes, dest: Path, version: str) -> Path:
    """Extract ``istio-<version>/bin/istioctl`` from the release archive to ``dest``."""
    wanted = f"istio-{version}/bin/istioctl"
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        try:
            member = tar.getmember(wanted)
        except KeyError:
            raise StepFailed(f"istio {version} archive: no {wanted}") from None
        data = tar.extractfile(member).read()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.chmod(0o755)
    tmp.replace(dest)
    return dest


class Cluster:
    def __init__(self, tools: Tools, target: Target, pins: E2EPins, work: Path, name: str = CLUSTER):
        self.tools, self.target, self.pins, self.work, self.name = tools, target, pins, work, name
        self.context = f"kind-{name}"
        self.istioctl = "istioctl"

    def kubectl(self, *args: str, **kw):
        return self.tools.run(["kubectl", "--context", self.context, *args], **kw)

    # ------------------------------------------------------------------ cluster

    def exists(self) -> bool:
        return self.name in self.tools.output(["kind", "get", "clusters"]).split()

    def create(self) -> None:
        if self.exists():
            self.tools.log(f"e2e: kind cluster {self.name} exists: reusing it")
            return
        config = self.work / "kind.yaml"
        config.write_text(kind_config())
        self.tools.run(["kind", "create", "cluster", "--name", self.name, "--image", self.pins.kind_node_image,
                        "--config", config, "--wait", "180s"], timeout=600)

    def load_images(self, images: Iterable[str]) -> None:
        for image in images:
            self.tools.run(["kind", "load", "docker-image", image, "--name", self.name], timeout=900)

    def delete(self) -> None:
        self.tools.run(["kind", "delete", "cluster", "--name", self.name], timeout=300)

    # ------------------------------------------------------------------ Istio, Aeraki

    def install_istio(self) -> None:
        self.istioctl = self._istioctl()
        operator = self.work / "istio-operator.yaml"
        operator.write_text(istio_operator(self.target))
        self.tools.run([self.istioctl, "install", "-y", "--context", self.context, "-f", operator],
                       timeout=900)

    def _istioctl(self) -> str:
        """istioctl of the target's Istio: on PATH if its version matches, else downloaded."""
        version = self.target.istio_version
        found = istioctl_version("istioctl")
        if found == version:
            return "istioctl"
        cached = Path(os.environ.get("CODECGEN_CACHE", Path.home() / ".cache" / "codecgen")) / "e2e" / \
            f"istioctl-{version}"
        if istioctl_version(str(cached)) != version:
            self.tools.log(f"e2e: istioctl {version} not on PATH (found {found or 'none'}): "
                           f"downloading {self.pins.istioctl_url}")
            istioctl_from_archive(_download(self.pins.istioctl_url), cached, version)
        return str(cached)

    def install_aeraki(self) -> None:
        url = f"{self.pins.aeraki_repo}/archive/refs/tags/{self.pins.aeraki_tag}.tar.gz"
        self.tools.log(f"e2e: Aeraki {self.pins.aeraki_tag} manifests from {url}")
        sources = aeraki_sources(self.pins, _download(url))
        env = aeraki_env(self.pins)
        # Aeraki's own e2e deletes and recreates the CRDs (their scope changed between releases).
        self.kubectl("delete", "--ignore-not-found", "-f", "-", input=sources["k8s/crd.yaml"])
        self.kubectl("apply", "-f", "-", input=sources["k8s/crd.yaml"])
        self.kubectl("apply", "-f", "-", input=substitute(sources["k8s/aeraki.yaml"], env, "k8s/aeraki.yaml"))
        self.kubectl("-n", AERAKI_NAMESPACE, "rollout", "status", "deploy/aeraki", "--timeout=300s", timeout=330)

    # ------------------------------------------------------------------ workloads, checks

    def deploy(self, plan: Plan, files: dict[str, str]) -> None:
        names = sorted(files)
        first, rest = names[0], names[1:]
        self.kubectl("apply", "-f", "-", input=files[first])  # the namespace
        self._wait_for_configmap(plan.namespace)
        for name in rest:
            self.kubectl("apply", "-f", "-", input=files[name])
        for deploy in [f"{plan.service}-{s}" for s in SUBSETS] + [CLIENT]:
            self.kubectl("-n", plan.namespace, "rollout", "status", f"deploy/{deploy}", "--timeout=300s",
                         timeout=330)

    def _wait_for_configmap(self, namespace: str, timeout: float = 120) -> None:
        """Aeraki writes its bootstrap ConfigMap into every injection-enabled namespace."""
        deadline = time.monotonic() + timeout
        while True:
            proc = self.kubectl("-n", namespace, "get", "configmap", BOOTSTRAP_CONFIGMAP, check=False, quiet=True)
            if proc.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise StepFailed(f"Aeraki did not create ConfigMap {BOOTSTRAP_CONFIGMAP} in namespace "
                                 f"{namespace} within {timeout:g}s (is Aeraki running? kubectl -n "
                                 f"{AERAKI_NAMESPACE} logs deploy/aeraki)")
            time.sleep(2)

    def probe(self, plan: Plan, host: Optional[str] = None) -> str:
        """The checks from the client pod, to the Service's host (or ``host``)."""
        proc = self.kubectl("-n", plan.namespace, "exec", f"deploy/{CLIENT}", "-c", "client", "--",
                            *plan.probe_argv(host), check=False, timeout=120)
        if proc.returncode != 0:
            last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
            raise StepFailed(f"codecgen probe {'to ' + host + ' ' if host else ''}in the client pod failed "
                             f"(exit {proc.returncode}): {last}")
        return proc.stdout

    # ------------------------------------------------------------------ the bridge scenario

    def deploy_bridge(self, plan: Plan, files: dict[str, str]) -> None:
        """ZooKeeper (awaited first: the providers register when they start), then the
        self-registering providers, the bridge and the entry's routes."""
        (zk_namespace, zk), *rest = bridge.deployments(plan)
        first, *others = sorted(files)  # 70-zookeeper.yaml
        self.kubectl("apply", "-f", "-", input=files[first])
        self.kubectl("-n", zk_namespace, "rollout", "status", f"deploy/{zk}", "--timeout=300s", timeout=330)
        for name in others:
            self.kubectl("apply", "-f", "-", input=files[name])
        for namespace, deploy in rest:
            self.kubectl("-n", namespace, "rollout", "status", f"deploy/{deploy}", "--timeout=300s", timeout=330)

    def wait_for_entry(self, plan: Plan, host: str, timeout: float = 180) -> None:
        """Until the bridge's ServiceEntry for ``host`` lists every provider."""
        deadline = time.monotonic() + timeout
        while True:
            proc = self.kubectl("-n", plan.namespace, "get", "serviceentry", "-l", bridge.selector(), "-o", "json",
                                check=False, quiet=True)
            try:
                items = json.loads(proc.stdout).get("items", []) if proc.returncode == 0 else []
            except ValueError:
                items = []
            missing = bridge.entry_ready(items, host, len(SUBSETS))
            if missing is None:
                self.tools.log(f"e2e: ServiceEntry for {host} written by the bridge, {len(SUBSETS)} endpoints")
                return
            if time.monotonic() > deadline:
                raise StepFailed(f"the bridge wrote no complete ServiceEntry within {timeout:g}s: {missing} "
                                 f"(kubectl -n {bridge.BRIDGE_NAMESPACE} logs deploy/{bridge.BRIDGE_DEPLOYMENT})")
            time.sleep(2)

    def diagnostics(self, plan: Plan, with_bridge: bool = False) -> str:
        """Pods, the servers' logs and every sidecar's (and the bridge scenario's), for a failed run."""
        out = []
        argvs = [["-n", plan.namespace, "get", "pods", "-o", "wide"],
                 ["-n", AERAKI_NAMESPACE, "logs", "deploy/aeraki", "--tail=50"]]
        containers = [(plan.namespace, f"{plan.service}-{s}", c) for s in SUBSETS for c in ("server", "istio-proxy")]
        containers += [(plan.namespace, CLIENT, c) for c in ("client", "istio-proxy")]
        if with_bridge:
            argvs.append(["-n", plan.namespace, "get", "serviceentry", "-l", bridge.selector(), "-o", "yaml"])
            containers += [(plan.namespace, bridge.ZOOKEEPER, "zookeeper")]
            containers += [(plan.namespace, f"{plan.service}-provider-{s}", c) for s in SUBSETS
                           for c in ("server", "register", "istio-proxy")]
            containers += [(bridge.BRIDGE_NAMESPACE, bridge.BRIDGE_DEPLOYMENT, "bridge")]
        for argv in argvs:
            out.append(self.kubectl(*argv, check=False, quiet=True).stdout)
        for namespace, deploy, container in containers:
            proc = self.kubectl("-n", namespace, "logs", f"deploy/{deploy}", "-c", container,
                                "--tail=50", check=False, quiet=True)
            out.append(f"--- {deploy}/{container}\n{proc.stdout or proc.stderr}")
        return "\n".join(out)

