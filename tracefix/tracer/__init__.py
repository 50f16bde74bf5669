"""tracer: control-flow blocks, runtime recording, coverage and suspiciousness. Knows nothing of LLMs."""
