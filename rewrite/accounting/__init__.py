"""What answers used and cost: usage normalisation, prices, Prometheus metrics."""
