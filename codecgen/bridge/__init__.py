"""``codecgen bridge``: third-party service registries -> Istio ServiceEntries."""
