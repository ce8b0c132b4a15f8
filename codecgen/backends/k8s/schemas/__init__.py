"""JSON Schema (OpenAPI v3 style) documents for the resources the k8s backend emits.

Written by hand from the facts in the Aeraki API protos and webhook, Istio's
networking API and Kubernetes' Service validation; ``validate.py`` picks one by
apiVersion/kind.  Keywords ``x-reasons`` (keyword -> explanation) are ignored by
JSON Schema and used by ``validate.py`` to explain a failure.
"""
