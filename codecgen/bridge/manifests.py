"""``bridge manifests``: what ``bridge run`` needs in a cluster, with least privilege.

- the bridge's Namespace (the entries' namespaces are expected to exist), a ServiceAccount and a
  Deployment (``--replicas``, leader election on a Lease in the bridge's
  namespace; probes on /healthz and /readyz; Prometheus scrape annotations);
- a ConfigMap holding the ``--protocol`` spec files, mounted where the Deployment's arguments
  name them (built-in protocol names are passed as they are);
- per namespace the entries go to, a Role (ServiceEntries, and Services when a source asks for
  aliases: get, list, create, patch, delete: server-side apply that creates needs create) and
  its RoleBinding; in the bridge's namespace a Role for its Lease (get, create, update).
  Nothing cluster-wide.

File names sort in apply order (``kubectl apply -f DIR``, or the stdout stream).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import yaml

from codecgen.bridge.runner import Settings

NAME = "codecgen-bridge"
SPEC_DIR = "/etc/codecgen/protocols"
PORT = 8080


def _meta(name: str, namespace: str) -> dict:
    return {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/name": NAME}}


def manifests(settings: Settings, source_args: Sequence[str], protocol_args: Sequence[str], namespace: str, *,
              image: str, bridge_namespace: str, replicas: int) -> dict[str, str]:
    specs = {Path(p).name: Path(p).read_text(encoding="utf-8") for p in protocol_args if Path(p).is_file()}
    protocols = [f"{SPEC_DIR}/{Path(p).name}" if Path(p).is_file() else p for p in protocol_args]
    args = ["bridge", "run", "--namespace", namespace, "--lease-namespace", bridge_namespace,
            "--listen", f"0.0.0.0:{PORT}"]
    for s in source_args:
        args += ["--source", s]
    for p in protocols:
        args += ["--protocol", p]
    probe = {"httpGet": {"path": "/healthz", "port": PORT}, "periodSeconds": 10}
    container = {
        "name": "bridge", "image": image, "imagePullPolicy": "IfNotPresent", "command": ["codecgen"], "args": args,
        "ports": [{"name": "http-metrics", "containerPort": PORT}],
        "livenessProbe": probe,
        "readinessProbe": {**probe, "httpGet": {"path": "/readyz", "port": PORT}},
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "protocols", "mountPath": SPEC_DIR, "readOnly": True}],
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(NAME, bridge_namespace),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": NAME},
                             "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": str(PORT),
                                             "sidecar.istio.io/inject": "false"}},
                "spec": {"serviceAccountName": NAME, "containers": [container],
                         "volumes": [{"name": "protocols", "configMap": {"name": f"{NAME}-protocols"}}]},
            },
        },
    }
    docs = {
        "00-namespace.yaml": {"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": bridge_namespace, "labels": {"app.kubernetes.io/name": NAME}}},
        "10-serviceaccount.yaml": {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(NAME, bridge_namespace)},
        "30-configmap.yaml": {"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": _meta(f"{NAME}-protocols", bridge_namespace), "data": specs},
        "40-deployment.yaml": deployment,
    }
    verbs = ["get", "list", "create", "patch", "delete"]
    lease_rules = [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                    "verbs": ["get", "create", "update"]}]
    aliases = {o.namespace for o in settings.sources if o.alias}
    for ns in sorted({o.namespace for o in settings.sources} | {bridge_namespace}):
        rules = []
        if any(o.namespace == ns for o in settings.sources):
            rules.append({"apiGroups": ["networking.istio.io"], "resources": ["serviceentries"], "verbs": verbs})
        if ns in aliases:
            rules.append({"apiGroups": [""], "resources": ["services"], "verbs": verbs})
        if ns == bridge_namespace:
            rules += lease_rules
        docs[f"20-rbac-{ns}.yaml"] = [
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _meta(NAME, ns), "rules": rules},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": _meta(NAME, ns),
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME},
             "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": bridge_namespace}]},
        ]
    return {name: yaml.safe_dump_all(doc if isinstance(doc, list) else [doc], sort_keys=False)
            for name, doc in docs.items()}
