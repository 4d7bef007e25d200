"""scripts/cluster: N mitmdump workers behind HAProxy, sharing one CA and one Redis (docs/scaling.md)."""
