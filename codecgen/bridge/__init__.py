"""``codecgen bridge``: third-party service registries -> Istio ServiceEntries.

- ``model``: the contract with the registry sources (``sources/``, one module per URL scheme);
- ``config``: ``--source`` URLs with their per-source options, ``--protocol`` specs;
- ``mapping``: services -> ServiceEntry / alias Service objects, users' templates filled in place;
- ``reconcile``: desired state from the last good snapshots vs what is live; grace periods;
- ``kube``: the Kubernetes API client (server-side apply); ``leader``: Lease leader election;
- ``runner``: ``once`` and the running loop (debounce, resync); ``observe``: logs, metrics, health;
- ``manifests``: Deployment and RBAC for ``bridge run``; ``cli``: the subcommands' arguments.
"""
