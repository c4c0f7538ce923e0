"""`payments fuzz`: seeded, mutated requests to every public route of the local stack's API."""
