"""What happens after an outcome: retry decisions, vendor-hinted delays, forced streaming, refused parameters."""
