"""Mid-stream resume (issue 21), the pure parts: how the continuation of a cut answer is joined to what the client
already has (`seam.Seam`). The engine does not call these yet (docs/reliability.md: Answers that survive a cut)."""
