"""What happens after an outcome: retry decisions on what a vendor error means, forced streaming."""
