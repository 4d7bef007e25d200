"""Helpers the tests share: the fake vendor, samples, the e2e harness, SDK clients, stream readers. No test here."""
